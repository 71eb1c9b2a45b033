import {
  type AirtableEmulator,
  DEFAULT_BASE_ID,
  DEFAULT_TABLE_NAME,
  DEFAULT_TOKEN,
  startAirtableEmulator,
} from "@fundraise-sync/airtable-emulator";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AirtableTarget, DonationWriter, type WriteResult } from "./airtable-writer";
import type { DonationCreatedEvent } from "./donation-event";
import { DonationField, toAirtableFields } from "./donation-fields";
import {
  AirtableConfigurationError,
  AirtableRateLimitedError,
  AirtableRecordRejectedError,
  AirtableUnavailableError,
  ErrorName,
} from "./errors";

const donation = (overrides: Partial<DonationCreatedEvent> = {}): DonationCreatedEvent => ({
  Id: "0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17",
  CreationDate: "2018-06-10T14:03:27.123Z",
  UserId: "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
  FundraiserId: "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
  DonationAmount: 25.5,
  DonorDisplayName: "Ada L.",
  ...overrides,
});

/** Runs an upsert that must fail and returns what it rejected with. */
async function upsertFailure(writer: DonationWriter, event = donation()): Promise<Error> {
  const outcome = await writer.upsert([event]).then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) throw new Error(`the upsert succeeded: ${JSON.stringify(outcome.result)}`);
  expect(outcome.error).toBeInstanceOf(Error);
  return outcome.error as Error;
}

describe("DonationWriter against the Airtable emulator", () => {
  let emulator: AirtableEmulator;
  const target = (overrides: Partial<AirtableTarget> = {}): AirtableTarget => ({
    token: DEFAULT_TOKEN,
    baseId: DEFAULT_BASE_ID,
    tableName: DEFAULT_TABLE_NAME,
    endpointUrl: emulator.url,
    requestTimeoutMs: 5_000,
    requestsPerSecond: 5,
    ...overrides,
  });
  const records = () => emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME);

  beforeAll(async () => {
    emulator = await startAirtableEmulator({ port: 0, rateLimit: false });
  });
  afterAll(() => emulator?.close());
  beforeEach(() => emulator.reset());

  describe("upsert", () => {
    it("creates a record holding the donation's fields", async () => {
      // Arrange
      const writer = new DonationWriter(target());

      // Act
      const [result] = await writer.upsert([donation()]);

      // Assert
      expect(result!.created).toBe(true);
      expect(result!.recordId).toMatch(/^rec[A-Za-z0-9]{14}$/);
      expect(records()).toHaveLength(1);
      expect(records()[0]).toMatchObject({ id: result!.recordId, fields: toAirtableFields(donation()) });
    });

    it("updates the same record when the event is delivered again, never duplicating it", async () => {
      // Arrange
      const writer = new DonationWriter(target());
      const [first] = await writer.upsert([donation()]);

      // Act
      const again = await writer.upsert([donation()]);

      // Assert
      expect(again).toEqual([{ recordId: first!.recordId, created: false }]);
      expect(records()).toHaveLength(1);
    });

    it("keeps one record per event Id among several donations", async () => {
      // Arrange
      const writer = new DonationWriter(target());
      const other = donation({ Id: "11111111-2222-4333-8444-555555555555", DonationAmount: 10 });

      // Act
      await writer.upsert([donation()]);
      await writer.upsert([other]);
      await writer.upsert([donation()]);

      // Assert
      expect(records().map((record) => record.fields[DonationField.Id]).sort()).toEqual([donation().Id, other.Id].sort());
    });

    it("does not blank a name staff filled in by hand when an anonymous event is redelivered", async () => {
      // Arrange: an anonymous donation, then a person adds the donor's name in Airtable
      const writer = new DonationWriter(target());
      const anonymous = donation({ UserId: null, DonorDisplayName: null });
      const [{ recordId }] = (await writer.upsert([anonymous])) as [WriteResult];
      const edit = await fetch(`${emulator.url}/v0/${DEFAULT_BASE_ID}/${DEFAULT_TABLE_NAME}/${recordId}`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${DEFAULT_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ fields: { [DonationField.DonorDisplayName]: "Grace H." } }),
      });
      expect(edit.status).toBe(200);

      // Act
      await writer.upsert([anonymous]);

      // Assert
      expect(records()[0]?.fields[DonationField.DonorDisplayName]).toBe("Grace H.");
      expect(records()[0]?.fields).not.toHaveProperty([DonationField.DonorId]);
    });
  });

  describe("batches", () => {
    const tenDonations = () =>
      Array.from({ length: 10 }, (_, index) => donation({ Id: `00000000-0000-4000-8000-${String(index).padStart(12, "0")}` }));

    it("upserts ten donations in one request and answers for each, in order", async () => {
      // Arrange
      const writer = new DonationWriter(target());
      const events = tenDonations();

      // Act
      const results = await writer.upsert(events);

      // Assert
      expect(emulator.stats().requests).toBe(1);
      expect(results).toHaveLength(10);
      const byId = new Map(records().map((record) => [record.id, record.fields[DonationField.Id]]));
      expect(results.map((result) => byId.get(result.recordId))).toEqual(events.map((event) => event.Id));
      expect(results.every((result) => result.created)).toBe(true);
    });

    it("tells created from updated within one request", async () => {
      // Arrange: the first three were written before (a redelivery)
      const writer = new DonationWriter(target());
      const events = tenDonations();
      await writer.upsert(events.slice(0, 3));

      // Act
      const results = await writer.upsert(events);

      // Assert
      expect(results.map((result) => result.created)).toEqual([false, false, false, true, true, true, true, true, true, true]);
      expect(records()).toHaveLength(10);
    });

    it.each([0, 11])("refuses %i records before sending anything (Airtable takes 1 to 10)", async (count) => {
      // Arrange
      const writer = new DonationWriter(target());
      const events = Array.from({ length: count }, (_, index) => donation({ Id: `00000000-0000-4000-8000-${String(index).padStart(12, "0")}` }));

      // Act + Assert
      await expect(writer.upsert(events)).rejects.toThrow(RangeError);
      expect(emulator.stats().requests).toBe(0);
    });

    it("names the field problem and says how to check the table when Airtable refuses a column", async () => {
      // Arrange
      emulator.faults.failNext(1, {
        status: 422,
        type: "UNKNOWN_FIELD_NAME",
        message: 'Unknown field name: "Donation Amount"',
      });
      const writer = new DonationWriter(target());

      // Act
      const error = await upsertFailure(writer);

      // Assert
      expect(error.name).toBe(ErrorName.AirtableRecordRejected);
      expect(error.message).toContain('Unknown field name: "Donation Amount"');
      expect(error.message).toContain("npm run airtable -- check");
    });
  });

  describe("names every failure so the state machine can retry, dead-letter or stop", () => {
    const SECRET_TOKEN = "patSECRETsecret123.abcdefghijklmnopqrstuvwxyz0123456789";

    it.each<{
      case: string;
      arrange: (emulator: AirtableEmulator) => void;
      overrides?: Partial<AirtableTarget>;
      event?: DonationCreatedEvent;
      error: new (...args: never[]) => Error;
      name: string;
      status: number | undefined;
      fragment: string;
    }>([
      {
        case: "429 (rate limit)",
        arrange: (e) => e.faults.failNext(1, { status: 429 }),
        error: AirtableRateLimitedError,
        name: ErrorName.AirtableRateLimited,
        status: 429,
        fragment: `rate limit reached for base ${DEFAULT_BASE_ID}`,
      },
      ...[500, 502, 503].map((status) => ({
        case: `${status} (server error)`,
        arrange: (e: AirtableEmulator) => e.faults.failNext(1, { status }),
        error: AirtableUnavailableError,
        name: ErrorName.AirtableUnavailable,
        status,
        fragment: `Airtable server error ${status}`,
      })),
      {
        case: "422 for this record's value",
        arrange: (e) => e.faults.failWhen({ field: DonationField.DonorDisplayName, equals: "Bobby Tables" }, { status: 422 }),
        event: donation({ DonorDisplayName: "Bobby Tables" }),
        error: AirtableRecordRejectedError,
        name: ErrorName.AirtableRecordRejected,
        status: 422,
        fragment: "Airtable rejected the record (422",
      },
      {
        case: "400 (invalid request)",
        arrange: (e) => e.faults.failNext(1, { status: 400 }),
        error: AirtableRecordRejectedError,
        name: ErrorName.AirtableRecordRejected,
        status: 400,
        fragment: "Airtable rejected the record (400",
      },
      {
        case: "413 (request too large)",
        arrange: (e) => e.faults.failNext(1, { status: 413 }),
        error: AirtableRecordRejectedError,
        name: ErrorName.AirtableRecordRejected,
        status: 413,
        fragment: "Airtable rejected the record (413",
      },
      {
        case: "a wrong token (401)",
        arrange: () => undefined,
        overrides: { token: SECRET_TOKEN },
        error: AirtableConfigurationError,
        name: ErrorName.AirtableConfiguration,
        status: 401,
        fragment: "Airtable refused the token (401",
      },
      {
        case: "an unknown base (403)",
        arrange: () => undefined,
        overrides: { baseId: "appNoSuchBase0001" },
        error: AirtableConfigurationError,
        name: ErrorName.AirtableConfiguration,
        status: 403,
        fragment: "base appNoSuchBase0001",
      },
      {
        case: "an unknown table (403)",
        arrange: () => undefined,
        overrides: { tableName: "Donashuns" },
        error: AirtableConfigurationError,
        name: ErrorName.AirtableConfiguration,
        status: 403,
        fragment: 'table "Donashuns"',
      },
      {
        case: "a 404",
        arrange: (e) => e.faults.failNext(1, { status: 404 }),
        error: AirtableConfigurationError,
        name: ErrorName.AirtableConfiguration,
        status: 404,
        fragment: "check the base id and table name",
      },
      {
        case: "a request that never answers (timeout)",
        arrange: (e) => e.faults.hang(),
        overrides: { requestTimeoutMs: 300 },
        error: AirtableUnavailableError,
        name: ErrorName.AirtableUnavailable,
        status: undefined,
        fragment: "could not be reached or timed out",
      },
    ])("$case → $name", async ({ arrange, overrides, event, error: errorClass, name, status, fragment }) => {
      // Arrange
      arrange(emulator);
      const writer = new DonationWriter(target(overrides));

      // Act
      const error = await upsertFailure(writer, event);

      // Assert
      expect(error).toBeInstanceOf(errorClass);
      expect(error.name).toBe(name);
      expect((error as AirtableUnavailableError).status).toBe(status);
      expect(error.message).toContain(fragment);
      expect(records()).toHaveLength(0);
    });

    it("never puts the token in what it throws (messages end up in logs and DLQ attributes)", async () => {
      // Arrange: one failure of each kind, each with a distinctive token
      const failures: Error[] = [];
      const own = await startAirtableEmulator({ port: 0, rateLimit: false, token: SECRET_TOKEN });
      const tokenWriter = (overrides: Partial<AirtableTarget> = {}) =>
        new DonationWriter(target({ endpointUrl: own.url, token: SECRET_TOKEN, ...overrides }));

      // Act
      try {
        failures.push(await upsertFailure(tokenWriter({ token: `${SECRET_TOKEN}-revoked` })));
        failures.push(await upsertFailure(tokenWriter({ baseId: "appNoSuchBase0001" })));
        for (const status of [400, 422, 429, 500, 503]) {
          own.faults.failNext(1, { status });
          failures.push(await upsertFailure(tokenWriter()));
        }
        own.faults.hang();
        failures.push(await upsertFailure(tokenWriter({ requestTimeoutMs: 300 })));
      } finally {
        await own.close();
      }

      // Assert
      expect(failures.map((error) => error.name)).toEqual([
        ErrorName.AirtableConfiguration,
        ErrorName.AirtableConfiguration,
        ErrorName.AirtableRecordRejected,
        ErrorName.AirtableRecordRejected,
        ErrorName.AirtableRateLimited,
        ErrorName.AirtableUnavailable,
        ErrorName.AirtableUnavailable,
        ErrorName.AirtableUnavailable,
      ]);
      for (const error of failures) {
        const everything = `${String(error)} ${error.stack ?? ""} ${JSON.stringify(error)}`;
        expect(everything).not.toContain(SECRET_TOKEN);
        expect(everything).not.toContain("patSECRET");
      }
    });
  });
});
