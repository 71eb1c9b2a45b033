import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compileConfig, DEFAULT_BASE_ID, DEFAULT_EMULATOR_CONFIG, DEFAULT_TABLE_NAME, MODEL_NOT_FOUND_MESSAGE } from "./index";
import { startAirtableEmulator, type AirtableEmulator } from "./server";
import { call, donationFields, TABLE_PATH } from "./test-support";

// Plain fetch: exact statuses and bodies, which airtable.js rewrites or hides.
describe("records API over HTTP", () => {
  let emulator: AirtableEmulator;

  beforeEach(async () => {
    emulator = await startAirtableEmulator({
      port: 0,
      rateLimit: false,
      maxBodyBytes: 64 * 1024,
      config: {
        bases: [
          {
            id: DEFAULT_BASE_ID,
            tables: [
              {
                name: DEFAULT_TABLE_NAME,
                fields: [
                  { name: "Id", type: "singleLineText" },
                  { name: "Creation Date", type: "dateTime" },
                  { name: "Donor Id", type: "singleLineText" },
                  { name: "Fundraiser Id", type: "singleLineText" },
                  { name: "Donation Amount", type: "currency" },
                  { name: "Donor Display Name", type: "singleLineText" },
                  { name: "Email", type: "email" },
                  { name: "Paid", type: "checkbox" },
                  { name: "Day", type: "date" },
                  { name: "Status", type: "singleSelect", choices: ["new", "done"] },
                ],
              },
            ],
          },
        ],
      },
    });
  });
  afterEach(async () => {
    await emulator.close();
  });

  describe("upsert", () => {
    it("replies with createdRecords and updatedRecords", async () => {
      // Arrange
      const upsert = { performUpsert: { fieldsToMergeOn: ["Id"] } };
      const first = await call(emulator, "PATCH", `${TABLE_PATH}/`, { body: { ...upsert, records: [{ fields: donationFields({ Id: "a" }) }] } });

      // Act
      const second = await call(emulator, "PATCH", TABLE_PATH, {
        body: { ...upsert, records: [{ fields: { Id: "a", "Donation Amount": 9 } }, { fields: { Id: "b" } }] },
      });

      // Assess
      expect(first.status).toBe(200);
      expect(first.body.createdRecords).toEqual([first.body.records[0].id]);
      expect(first.body.updatedRecords).toEqual([]);
      expect(second.status).toBe(200);
      expect(second.body.updatedRecords).toEqual([first.body.records[0].id]);
      expect(second.body.createdRecords).toEqual([second.body.records[1].id]);
      expect(second.body.records[0].fields).toMatchObject({ Id: "a", "Donation Amount": 9, "Donor Display Name": "Ada L." });
    });

    it("matches on the current values after a record's merge field changed or it was deleted", async () => {
      // Arrange
      const upsert = { performUpsert: { fieldsToMergeOn: ["Id"] } };
      const first = await call(emulator, "PATCH", TABLE_PATH, { body: { ...upsert, records: [{ fields: { Id: "old" } }, { fields: { Id: "gone" } }] } });
      const [renamed, removed] = first.body.records as { id: string }[];
      await call(emulator, "PATCH", `${TABLE_PATH}/${renamed?.id}`, { body: { fields: { Id: "new" } } });
      await call(emulator, "DELETE", `${TABLE_PATH}/${removed?.id}`);

      // Act
      const reply = await call(emulator, "PATCH", TABLE_PATH, {
        body: { ...upsert, records: [{ fields: { Id: "new" } }, { fields: { Id: "old" } }, { fields: { Id: "gone" } }] },
      });

      // Assess
      expect(reply.body.updatedRecords).toEqual([renamed?.id]);
      expect(reply.body.createdRecords).toHaveLength(2);
    });

    it("PUT upsert clears the fields not sent on the matched record", async () => {
      // Arrange
      const upsert = { performUpsert: { fieldsToMergeOn: ["Id"] } };
      await call(emulator, "PATCH", TABLE_PATH, { body: { ...upsert, records: [{ fields: donationFields({ Id: "a" }) }] } });

      // Act
      const reply = await call(emulator, "PUT", TABLE_PATH, { body: { ...upsert, records: [{ fields: { Id: "a" } }] } });

      // Assess
      expect(reply.body.records[0].fields).toEqual({ Id: "a" });
    });

    it("fails the whole request when several records match", async () => {
      // Arrange
      await call(emulator, "POST", TABLE_PATH, { body: { records: [{ fields: { Id: "dup" } }, { fields: { Id: "dup" } }] } });

      // Act
      const reply = await call(emulator, "PATCH", TABLE_PATH, {
        body: { performUpsert: { fieldsToMergeOn: ["Id"] }, records: [{ fields: { Id: "new" } }, { fields: { Id: "dup" } }] },
      });

      // Assess
      expect(reply.status).toBe(422);
      expect(reply.body.error.type).toBe("INVALID_VALUE_FOR_COLUMN");
      expect(reply.body.error.message).toMatch(/^Multiple records match/);
      expect(emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME)).toHaveLength(2);
    });

    it.each([
      [{ fieldsToMergeOn: [] }, "INVALID_REQUEST_UNKNOWN"],
      [{ fieldsToMergeOn: ["Id", "Day", "Status", "Donor Id"] }, "INVALID_REQUEST_UNKNOWN"],
      [{ fieldsToMergeOn: ["Email"] }, "INVALID_REQUEST_UNKNOWN"],
      [{ fieldsToMergeOn: ["Paid"] }, "INVALID_REQUEST_UNKNOWN"],
      [{ fieldsToMergeOn: ["Nope"] }, "UNKNOWN_FIELD_NAME"],
    ])("refuses performUpsert %j", async (performUpsert, type) => {
      // Act
      const reply = await call(emulator, "PATCH", TABLE_PATH, { body: { performUpsert, records: [{ fields: { Id: "a" } }] } });

      // Assess
      expect(reply.status).toBe(422);
      expect(reply.body.error.type).toBe(type);
    });

    it("refuses two records with the same merge values in one request", async () => {
      // Act
      const reply = await call(emulator, "PATCH", TABLE_PATH, {
        body: { performUpsert: { fieldsToMergeOn: ["Id"] }, records: [{ fields: { Id: "a" } }, { fields: { Id: "a" } }] },
      });

      // Assess
      expect(reply.status).toBe(422);
      expect(emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME)).toHaveLength(0);
    });
  });

  describe("errors", () => {
    it("401 without a token or with a wrong one", async () => {
      // Act
      const none = await call(emulator, "GET", TABLE_PATH, { token: null });
      const wrong = await call(emulator, "GET", TABLE_PATH, { token: "patWrong" });

      // Assess
      for (const reply of [none, wrong]) {
        expect(reply.status).toBe(401);
        expect(reply.body).toEqual({ error: { type: "AUTHENTICATION_REQUIRED", message: "Authentication required" } });
      }
    });

    it("403 for an unknown base or table", async () => {
      // Act
      const base = await call(emulator, "GET", `/v0/appNope/${DEFAULT_TABLE_NAME}`);
      const table = await call(emulator, "GET", `/v0/${DEFAULT_BASE_ID}/Nope`);

      // Assess
      for (const reply of [base, table]) {
        expect(reply.status).toBe(403);
        expect(reply.body).toEqual({ error: { type: "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", message: MODEL_NOT_FOUND_MESSAGE } });
      }
    });

    it("404 with a bare body for unknown routes and methods, with a typed body for unknown records", async () => {
      // Act
      const route = await call(emulator, "GET", "/v1/whatever");
      const method = await call(emulator, "POST", `${TABLE_PATH}/rec00000000000000`, { body: {} });
      const record = await call(emulator, "GET", `${TABLE_PATH}/rec00000000000000`);
      const deleted = await call(emulator, "DELETE", `${TABLE_PATH}/rec00000000000000`);

      // Assess
      expect(route).toMatchObject({ status: 404, body: { error: "NOT_FOUND" } });
      expect(method).toMatchObject({ status: 404, body: { error: "NOT_FOUND" } });
      expect(record).toMatchObject({ status: 404, body: { error: { type: "MODEL_ID_NOT_FOUND", message: "Record not found" } } });
      expect(deleted.status).toBe(404);
    });

    it("400 for a body that is not JSON", async () => {
      // Act
      const reply = await call(emulator, "POST", TABLE_PATH, { rawBody: "{not json" });

      // Assess
      expect(reply.status).toBe(400);
      expect(reply.body.error.type).toBe("INVALID_REQUEST_UNKNOWN");
    });

    it("413 for a body over maxBodyBytes", async () => {
      // Act
      const reply = await call(emulator, "POST", TABLE_PATH, { body: { fields: { Id: "x".repeat(70 * 1024) } } });

      // Assess
      expect(reply.status).toBe(413);
      expect(reply.body.error.type).toBe("REQUEST_TOO_LARGE");
    });

    it.each([
      ["unknown field", { fields: { Nope: 1 } }, "UNKNOWN_FIELD_NAME", 'Unknown field name: "Nope"'],
      ["string for currency", { fields: { "Donation Amount": "25" } }, "INVALID_VALUE_FOR_COLUMN", 'Field "Donation Amount" cannot accept the provided value'],
      ["number for text", { fields: { Id: 5 } }, "INVALID_VALUE_FOR_COLUMN", 'Field "Id" cannot accept the provided value'],
      ["bad dateTime", { fields: { "Creation Date": "yesterday" } }, "INVALID_VALUE_FOR_COLUMN", 'Field "Creation Date" cannot accept the provided value'],
      ["bad date", { fields: { Day: "2024-02-30" } }, "INVALID_VALUE_FOR_COLUMN", 'Field "Day" cannot accept the provided value'],
      ["bad email", { fields: { Email: "nope" } }, "INVALID_VALUE_FOR_COLUMN", 'Field "Email" cannot accept the provided value'],
      ["string for checkbox", { fields: { Paid: "yes" } }, "INVALID_VALUE_FOR_COLUMN", 'Field "Paid" cannot accept the provided value'],
      ["new select option", { fields: { Status: "odd" } }, "INVALID_MULTIPLE_CHOICE_OPTIONS", 'Insufficient permissions to create new select option ""odd""'],
      ["no fields", {}, "INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "fields" in the request body'],
      ["unknown body key", { fields: {}, extra: 1 }, "INVALID_REQUEST_UNKNOWN", undefined],
      ["11 records", { records: Array.from({ length: 11 }, () => ({ fields: {} })) }, "INVALID_RECORDS", undefined],
      ["empty records", { records: [] }, "INVALID_RECORDS", undefined],
    ])("422 for %s", async (_name, body, type, message) => {
      // Act
      const reply = await call(emulator, "POST", TABLE_PATH, { body });

      // Assess
      expect(reply.status).toBe(422);
      expect(reply.body.error.type).toBe(type);
      if (message !== undefined) expect(reply.body.error.message).toBe(message);
    });

    it("accepts 10 records and refuses 11 on update, delete and upsert too", async () => {
      // Arrange
      const created = await call(emulator, "POST", TABLE_PATH, { body: { records: Array.from({ length: 10 }, (_, i) => ({ fields: { Id: `r${i}` } })) } });
      const ids: string[] = created.body.records.map((r: { id: string }) => r.id);

      // Act
      const eleven = [...ids, ids[0]];
      const update = await call(emulator, "PATCH", TABLE_PATH, { body: { records: eleven.map((id) => ({ id, fields: {} })) } });
      const remove = await call(emulator, "DELETE", `${TABLE_PATH}?${eleven.map((id) => `records%5B%5D=${id}`).join("&")}`);
      const removeTen = await call(emulator, "DELETE", `${TABLE_PATH}?${ids.map((id) => `records[]=${id}`).join("&")}`);

      // Assess
      expect(created.body.records).toHaveLength(10);
      expect(update).toMatchObject({ status: 422, body: { error: { type: "INVALID_RECORDS" } } });
      expect(remove).toMatchObject({ status: 422, body: { error: { type: "INVALID_RECORDS" } } });
      expect(removeTen.body.records).toEqual(ids.map((id) => ({ id, deleted: true })));
    });

    it("is all-or-nothing: one bad record in a batch changes nothing", async () => {
      // Act
      const reply = await call(emulator, "POST", TABLE_PATH, { body: { records: [{ fields: { Id: "ok" } }, { fields: { "Donation Amount": "x" } }] } });

      // Assess
      expect(reply.status).toBe(422);
      expect(emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME)).toEqual([]);
    });

    it("422 ROW_DOES_NOT_EXIST when a batch update names a missing record", async () => {
      // Act
      const reply = await call(emulator, "PATCH", TABLE_PATH, { body: { records: [{ id: "rec00000000000000", fields: {} }] } });

      // Assess
      expect(reply.status).toBe(422);
      expect(reply.body.error.type).toBe("ROW_DOES_NOT_EXIST");
    });

    it.each([
      ["an unknown query parameter", "?foo=1", "INVALID_REQUEST_UNKNOWN", /does not support the query parameter "foo"/],
      ["an unsupported formula", "?filterByFormula=" + encodeURIComponent("FIND('a', {Id})"), "INVALID_FILTER_BY_FORMULA", /does not support the function FIND\(\)/],
      ["a formula with an unknown field", "?filterByFormula=" + encodeURIComponent("{Nope} = 1"), "INVALID_FILTER_BY_FORMULA", /Unknown field names: Nope/],
      ["an unknown view", "?view=Kanban", "VIEW_NAME_NOT_FOUND", /Kanban/],
      ["cellFormat=string", "?cellFormat=string", "INVALID_REQUEST_UNKNOWN", /cellFormat/],
      ["pageSize over 100", "?pageSize=101", "INVALID_REQUEST_UNKNOWN", /pageSize/],
      ["an unknown sort field", "?sort%5B0%5D%5Bfield%5D=Nope", "UNKNOWN_FIELD_NAME", /Nope/],
      ["an unknown offset", "?offset=itrNope/recNope", "LIST_RECORDS_ITERATOR_NOT_AVAILABLE", /offset/],
    ])("422 when listing with %s", async (_name, query, type, message) => {
      // Act
      const reply = await call(emulator, "GET", `${TABLE_PATH}${query}`);

      // Assess
      expect(reply.status).toBe(422);
      expect(reply.body.error.type).toBe(type);
      expect(reply.body.error.message).toMatch(message);
    });
  });

  describe("values", () => {
    it("typecast coerces strings and adds select options", async () => {
      // Act
      const reply = await call(emulator, "POST", TABLE_PATH, {
        body: { typecast: true, fields: { Id: 42, "Donation Amount": " 25.50 ", Status: "odd", Paid: "true", Day: "2024-05-01T10:00:00Z" } },
      });

      // Assess
      expect(reply.status).toBe(200);
      expect(reply.body.fields).toEqual({ Id: "42", "Donation Amount": 25.5, Status: "odd", Paid: true, Day: "2024-05-01" });
      const again = await call(emulator, "POST", TABLE_PATH, { body: { fields: { Status: "odd" } } });
      expect(again.status).toBe(200);
    });

    it("leaves empty values out and normalizes date-times", async () => {
      // Act
      const reply = await call(emulator, "POST", TABLE_PATH, {
        body: { fields: { Id: "", "Donor Id": null, Paid: false, "Creation Date": "2018-06-10T16:03:27+02:00", "Donation Amount": 0 } },
      });

      // Assess
      expect(reply.body.fields).toEqual({ "Creation Date": "2018-06-10T14:03:27.000Z", "Donation Amount": 0 });
    });

    it("lists with fields[], sort, filterByFormula, maxRecords and returnFieldsByFieldId", async () => {
      // Arrange
      await call(emulator, "POST", TABLE_PATH, {
        body: { records: [5, 30, 12, 40].map((amount, i) => ({ fields: { Id: `r${i}`, "Donation Amount": amount, "Donor Id": "d" } })) },
      });
      const formula = encodeURIComponent("AND({Donation Amount} >= 10, NOT({Id} = 'r3'))");

      // Act
      const reply = await call(
        emulator,
        "GET",
        `${TABLE_PATH}?fields%5B%5D=Id&fields%5B%5D=Donation+Amount&sort%5B0%5D%5Bfield%5D=Donation%20Amount&sort%5B0%5D%5Bdirection%5D=desc&filterByFormula=${formula}&maxRecords=5`,
      );
      const byId = await call(emulator, "GET", `${TABLE_PATH}?returnFieldsByFieldId=true&maxRecords=1`);
      const one = await call(emulator, "GET", `${TABLE_PATH}?filterByFormula=${encodeURIComponent(`RECORD_ID() = '${reply.body.records[0].id}'`)}`);

      // Assess
      expect(reply.body.records.map((r: { fields: unknown }) => r.fields)).toEqual([
        { Id: "r1", "Donation Amount": 30 },
        { Id: "r2", "Donation Amount": 12 },
      ]);
      expect(Object.keys(byId.body.records[0].fields).every((k) => k.startsWith("fld"))).toBe(true);
      expect(one.body.records).toHaveLength(1);
    });

    it("accepts the table's id in place of its name", async () => {
      // Arrange
      const created = await call(emulator, "POST", TABLE_PATH, { body: { fields: { Id: "x" } } });
      const id = compileConfig(DEFAULT_EMULATOR_CONFIG)[0]?.tables[0]?.id as string; // same base id and table name

      // Act
      const reply = await call(emulator, "GET", `/v0/${DEFAULT_BASE_ID}/${id}/${created.body.id}`);

      // Assess
      expect(reply.status).toBe(200);
      expect(reply.body.fields).toEqual({ Id: "x" });
    });
  });
});
