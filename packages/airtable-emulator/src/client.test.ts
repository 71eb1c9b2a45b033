import Airtable from "airtable";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME, DEFAULT_TOKEN } from "./config";
import { startAirtableEmulator, type AirtableEmulator } from "./server";
import { donationFields } from "./test-support";

// The real airtable.js client against the emulator: what the project's writer will do.
describe("airtable.js client against the emulator", () => {
  let emulator: AirtableEmulator;
  let table: Airtable.Table<Airtable.FieldSet>;

  beforeEach(async () => {
    emulator = await startAirtableEmulator({ port: 0, rateLimit: false });
    const base = new Airtable({ apiKey: DEFAULT_TOKEN, endpointUrl: emulator.url, noRetryIfRateLimited: true }).base(DEFAULT_BASE_ID);
    table = base(DEFAULT_TABLE_NAME);
  });
  afterEach(async () => {
    await emulator.close();
  });

  it("creates one record and returns it with id, createdTime and normalized fields", async () => {
    // Act
    const record = await table.create(donationFields({ Id: "evt-1" }) as Airtable.FieldSet);

    // Assess
    expect(record.id).toMatch(/^rec[A-Za-z0-9]{14}$/);
    expect(record.get("Id")).toBe("evt-1");
    expect(record.get("Creation Date")).toBe("2018-06-10T14:03:27.123Z");
    expect(record.get("Donation Amount")).toBe(25.5);
    expect(record._rawJson.createdTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it("creates many records, finds one, updates, replaces and destroys", async () => {
    // Arrange
    const created = await table.create([
      { fields: donationFields({ Id: "a" }) as Airtable.FieldSet },
      { fields: donationFields({ Id: "b" }) as Airtable.FieldSet },
    ]);
    const [a, b] = created as [Airtable.Record<Airtable.FieldSet>, Airtable.Record<Airtable.FieldSet>];

    // Act
    const found = await table.find(a.id);
    const updated = await table.update(a.id, { "Donor Display Name": "Grace H." });
    const replaced = await table.replace(b.id, { Id: "b" });
    const destroyed = await table.destroy(a.id);

    // Assess
    expect(found.get("Id")).toBe("a");
    expect(updated.get("Donor Display Name")).toBe("Grace H.");
    expect(updated.get("Donation Amount")).toBe(25.5);
    expect(replaced.fields).toEqual({ Id: "b" });
    expect(destroyed.id).toBe(a.id);
    expect(emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME).map((r) => r.fields.Id)).toEqual(["b"]);
  });

  it("updates and destroys many records at once", async () => {
    // Arrange
    const created = await table.create([{ fields: { Id: "a" } }, { fields: { Id: "b" } }]);

    // Act
    const updated = await table.update(created.map((r) => ({ id: r.id, fields: { "Donation Amount": 10 } })));
    const destroyed = await table.destroy(created.map((r) => r.id));

    // Assess
    expect(updated.map((r) => r.get("Donation Amount"))).toEqual([10, 10]);
    expect(destroyed.map((r) => r.id)).toEqual(created.map((r) => r.id));
    expect(emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME)).toEqual([]);
  });

  it("pages through more than 100 records with eachPage and all", async () => {
    // Arrange: 230 records, 10 per request
    for (let i = 0; i < 23; i++) {
      await table.create(Array.from({ length: 10 }, (_, j) => ({ fields: { Id: `r${String(i * 10 + j).padStart(3, "0")}` } })));
    }
    const pageSizes: number[] = [];

    // Act
    await table.select({ pageSize: 100 }).eachPage((records, next) => {
      pageSizes.push(records.length);
      next();
    });
    const all = await table.select({ sort: [{ field: "Id", direction: "desc" }], fields: ["Id"] }).all();
    const firstPage = await table.select({ maxRecords: 3, filterByFormula: "OR({Id} = 'r001', {Id} = \"r002\")" }).firstPage();

    // Assess
    expect(pageSizes).toEqual([100, 100, 30]);
    expect(all).toHaveLength(230);
    expect(all[0]?.get("Id")).toBe("r229");
    expect(all[229]?.get("Id")).toBe("r000");
    expect(firstPage.map((r) => r.get("Id"))).toEqual(["r001", "r002"]);
  });

  it("lists with method: post (POST …/listRecords)", async () => {
    // Arrange
    await table.create([{ fields: { Id: "x" } }, { fields: { Id: "y" } }]);

    // Act
    const records = await table.select({ method: "post", filterByFormula: "{Id} = 'y'" } as Airtable.SelectOptions<Airtable.FieldSet>).all();

    // Assess
    expect(records.map((r) => r.get("Id"))).toEqual(["y"]);
  });

  it("upserts on Id: the second upsert of the same event updates the one record", async () => {
    // Arrange
    const upsert = { performUpsert: { fieldsToMergeOn: ["Id"] } };
    const first = donationFields({ Id: "evt-42", "Donation Amount": 5 });
    const second = donationFields({ Id: "evt-42", "Donation Amount": 7 });

    // Act
    // airtable.js's types lack performUpsert: cast the call (the wire body is right).
    const update = table.update.bind(table) as unknown as (records: unknown[], opts: unknown) => Promise<Airtable.Records<Airtable.FieldSet>>;
    const one = await update([{ fields: first }], upsert);
    const two = await update([{ fields: second }], upsert);

    // Assess
    const stored = emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME);
    expect(stored).toHaveLength(1);
    expect(stored[0]?.fields["Donation Amount"]).toBe(7);
    expect(one[0]?.id).toBe(two[0]?.id);
  });

  it("surfaces Airtable's errors through the client", async () => {
    // Act
    const unknownField = await table.create({ Nope: "x" }).catch((e: unknown) => e);
    const wrongType = await table.create({ "Donation Amount": "25" }).catch((e: unknown) => e);
    const missing = await table.find("rec00000000000000").catch((e: unknown) => e);

    // Assess
    expect(unknownField).toMatchObject({ error: "UNKNOWN_FIELD_NAME", statusCode: 422 });
    expect(wrongType).toMatchObject({ error: "INVALID_VALUE_FOR_COLUMN", statusCode: 422 });
    expect(missing).toMatchObject({ error: "NOT_FOUND", message: "Record not found", statusCode: 404 });
  });
});
