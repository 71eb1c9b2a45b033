import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_BASE_ID, DEFAULT_EMULATOR_CONFIG, DEFAULT_TABLE_NAME, MODEL_NOT_FOUND_MESSAGE } from "./index";
import { startAirtableEmulator, type AirtableEmulator } from "./server";
import { call, donationFields } from "./test-support";

const EMPTY_BASE = "appEmptyBase0001";
const META = (base: string) => `/v0/meta/bases/${base}/tables`;

/** A create request with every type the emulator validates. */
const EVERY_TYPE = {
  name: "Everything",
  description: "one of each",
  fields: [
    { name: "Name", type: "singleLineText", description: "the primary field" },
    { name: "Notes", type: "multilineText" },
    { name: "Count", type: "number", options: { precision: 0 } },
    { name: "Price", type: "currency", options: { precision: 2, symbol: "€" } },
    { name: "Share", type: "percent", options: { precision: 1 } },
    { name: "Day", type: "date", options: { dateFormat: { name: "iso" } } },
    { name: "At", type: "dateTime", options: { dateFormat: { name: "us" }, timeFormat: { name: "12hour" }, timeZone: "Europe/Paris" } },
    { name: "Mail", type: "email" },
    { name: "Done", type: "checkbox", options: { icon: "check", color: "greenBright" } },
    { name: "Stage", type: "singleSelect", options: { choices: [{ name: "new" }, { name: "paid" }] } },
  ],
};

describe("metadata API over HTTP", () => {
  let emulator: AirtableEmulator;
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "emulator-meta-"));
    emulator = await startAirtableEmulator({
      port: 0,
      rateLimit: false,
      dataFile: path.join(dir, "data.json"),
      config: { bases: [...DEFAULT_EMULATOR_CONFIG.bases, { id: EMPTY_BASE, tables: [] }] },
    });
  });
  afterEach(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("describes the configured table with ids, the first field as primary, types, default options and views", async () => {
    // Act
    const reply = await call(emulator, "GET", META(DEFAULT_BASE_ID));

    // Assess
    expect(reply.status).toBe(200);
    const [table] = reply.body.tables;
    expect(table).toMatchObject({ id: expect.stringMatching(/^tbl[A-Za-z0-9]{14}$/), name: DEFAULT_TABLE_NAME });
    expect(table.primaryFieldId).toBe(table.fields[0].id);
    expect(table.fields.map((field: { name: string; type: string }) => [field.name, field.type])).toEqual([
      ["Id", "singleLineText"],
      ["Creation Date", "dateTime"],
      ["Donor Id", "singleLineText"],
      ["Fundraiser Id", "singleLineText"],
      ["Donation Amount", "currency"],
      ["Donor Display Name", "singleLineText"],
    ]);
    expect(table.fields[1].options).toEqual({
      dateFormat: { name: "iso", format: "YYYY-MM-DD" },
      timeFormat: { name: "24hour", format: "HH:mm" },
      timeZone: "utc",
    });
    expect(table.fields[4].options).toEqual({ precision: 2, symbol: "$" });
    expect(table.views).toEqual([{ id: expect.stringMatching(/^viw[A-Za-z0-9]{14}$/), name: "Grid view", type: "grid" }]);
  });

  it("lists an empty base as no tables", async () => {
    expect(await call(emulator, "GET", META(EMPTY_BASE))).toMatchObject({ status: 200, body: { tables: [] } });
  });

  it("creates a table with every supported type, which then takes records and survives a restart", async () => {
    // Act
    const created = await call(emulator, "POST", META(EMPTY_BASE), { body: EVERY_TYPE });

    // Assess: the reply is the table model
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ name: "Everything", description: "one of each", primaryFieldId: created.body.fields[0].id });
    expect(created.body.fields[0]).toMatchObject({ name: "Name", type: "singleLineText", description: "the primary field" });
    expect(created.body.fields[6].options).toEqual({
      dateFormat: { name: "us", format: "M/D/YYYY" },
      timeFormat: { name: "12hour", format: "h:mma" },
      timeZone: "Europe/Paris",
    });
    expect(created.body.fields[9].options.choices.map((choice: { name: string }) => choice.name)).toEqual(["new", "paid"]);

    // Act: write to it, by name and by id
    const write = await call(emulator, "POST", `/v0/${EMPTY_BASE}/Everything`, { body: { fields: { Name: "a", Price: 3.5, Stage: "paid" } } });
    const byId = await call(emulator, "GET", `/v0/${EMPTY_BASE}/${created.body.id}`);

    // Assess
    expect(write.status).toBe(200);
    expect(byId.body.records).toHaveLength(1);

    // Act: restart on the same data file
    await emulator.close();
    emulator = await startAirtableEmulator({
      port: 0,
      rateLimit: false,
      dataFile: path.join(dir, "data.json"),
      config: { bases: [...DEFAULT_EMULATOR_CONFIG.bases, { id: EMPTY_BASE, tables: [] }] },
    });

    // Assess: the same table, ids and record
    const after = await call(emulator, "GET", META(EMPTY_BASE));
    expect(after.body.tables).toEqual([created.body]);
    expect(emulator.records(EMPTY_BASE, "Everything").map((record) => record.fields.Name)).toEqual(["a"]);
  });

  it("refuses a table name already in the base, in any case, and changes nothing", async () => {
    // Act
    const reply = await call(emulator, "POST", META(DEFAULT_BASE_ID), {
      body: { name: DEFAULT_TABLE_NAME.toUpperCase(), fields: [{ name: "X", type: "singleLineText" }] },
    });

    // Assess
    expect(reply).toMatchObject({ status: 422, body: { error: { type: "DUPLICATE_OR_EMPTY_TABLE_NAME" } } });
    expect((await call(emulator, "GET", META(DEFAULT_BASE_ID))).body.tables).toHaveLength(1);
  });

  it.each([
    ["no fields", { name: "T", fields: [] }, "INVALID_REQUEST_UNKNOWN", /fields must be a non-empty array/],
    ["an unknown property", { name: "T", fields: [{ name: "A", type: "singleLineText" }], primaryFieldId: "A" }, "INVALID_REQUEST_UNKNOWN", /unknown property "primaryFieldId"/],
    ["an unknown type", { name: "T", fields: [{ name: "A", type: "text" }] }, "INVALID_REQUEST_UNKNOWN", /unknown field type "text"/],
    ["a type the emulator lacks", { name: "T", fields: [{ name: "A", type: "url" }] }, "INVALID_REQUEST_UNKNOWN", /does not support the field type "url"/],
    ["currency without options", { name: "T", fields: [{ name: "A", type: "singleLineText" }, { name: "B", type: "currency" }] }, "INVALID_REQUEST_UNKNOWN", /needs options with precision, symbol/],
    ["dateTime without a time zone", { name: "T", fields: [{ name: "A", type: "singleLineText" }, { name: "B", type: "dateTime", options: { dateFormat: { name: "iso" }, timeFormat: { name: "24hour" } } }] }, "INVALID_REQUEST_UNKNOWN", /needs options\.timeZone/],
    ["a precision out of range", { name: "T", fields: [{ name: "A", type: "number", options: { precision: 9 } }] }, "INVALID_REQUEST_UNKNOWN", /precision must be an integer from 0 to 8/],
    ["options on a text field", { name: "T", fields: [{ name: "A", type: "singleLineText", options: {} }] }, "INVALID_REQUEST_UNKNOWN", /takes no options/],
    ["a checkbox as primary field", { name: "T", fields: [{ name: "A", type: "checkbox", options: { icon: "check", color: "greenBright" } }] }, "INVALID_REQUEST_UNKNOWN", /primary field and cannot be checkbox/],
    ["duplicate field names", { name: "T", fields: [{ name: "A", type: "singleLineText" }, { name: "a", type: "email" }] }, "DUPLICATE_OR_EMPTY_FIELD_NAME", /unique/],
    ["an empty name", { name: " ", fields: [{ name: "A", type: "singleLineText" }] }, "DUPLICATE_OR_EMPTY_TABLE_NAME", /non-empty/],
  ])("refuses %s with 422 and creates nothing", async (_case, body, type, message) => {
    // Act
    const reply = await call(emulator, "POST", META(EMPTY_BASE), { body });

    // Assess
    expect(reply.status).toBe(422);
    expect(reply.body.error.type).toBe(type);
    expect(reply.body.error.message).toMatch(message);
    expect((await call(emulator, "GET", META(EMPTY_BASE))).body.tables).toEqual([]);
  });

  it("answers Airtable's errors for a missing token, an unknown base, an unknown route and bad JSON", async () => {
    expect(await call(emulator, "GET", META(DEFAULT_BASE_ID), { token: null })).toMatchObject({
      status: 401,
      body: { error: { type: "AUTHENTICATION_REQUIRED" } },
    });
    expect(await call(emulator, "GET", META("appNoSuchBase0001"))).toMatchObject({
      status: 403,
      body: { error: { type: "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", message: MODEL_NOT_FOUND_MESSAGE } },
    });
    expect(await call(emulator, "DELETE", META(DEFAULT_BASE_ID))).toMatchObject({ status: 404, body: { error: "NOT_FOUND" } });
    expect(await call(emulator, "GET", `/v0/meta/bases/${DEFAULT_BASE_ID}`)).toMatchObject({ status: 404, body: { error: "NOT_FOUND" } });
    expect(await call(emulator, "POST", META(EMPTY_BASE), { rawBody: "{" })).toMatchObject({ status: 400 });
  });

  it("counts metadata requests against the base's rate limit", async () => {
    // Arrange: an emulator with Airtable's limit on and a clock that stands still
    await emulator.close();
    emulator = await startAirtableEmulator({ port: 0, clock: { now: () => 1_000 } });

    // Act: five record reads, then a metadata read in the same second
    for (let i = 0; i < 5; i++) await call(emulator, "GET", `/v0/${DEFAULT_BASE_ID}/${DEFAULT_TABLE_NAME}`);
    const meta = await call(emulator, "GET", META(DEFAULT_BASE_ID));

    // Assess
    expect(meta).toMatchObject({ status: 429, body: { error: { type: "RATE_LIMIT_REACHED" } } });
  });

  it("keeps records of a created table apart from the configured one", async () => {
    // Arrange
    await call(emulator, "POST", META(EMPTY_BASE), { body: { name: DEFAULT_TABLE_NAME, fields: [{ name: "Id", type: "singleLineText" }] } });

    // Act
    await call(emulator, "POST", `/v0/${DEFAULT_BASE_ID}/${DEFAULT_TABLE_NAME}`, { body: { fields: donationFields() } });

    // Assess
    expect(emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME)).toHaveLength(1);
    expect(emulator.records(EMPTY_BASE, DEFAULT_TABLE_NAME)).toHaveLength(0);
  });
});
