import { describe, expect, it } from "vitest";
import { type DonationCreatedEvent, parseDonationEvent, serializeDonationEvent } from "./donation-event";
import { ErrorName, InvalidDonationEventError } from "./errors";
import { MAX_EVENT_BYTES } from "./limits";

/** The wire example of `shared/notes/donation-event.md`, as Newtonsoft writes it. */
const WIRE = {
  UserId: "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
  FundraiserId: "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
  DonationAmount: 25.5,
  DonorDisplayName: "Ada L.",
  Id: "0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17",
  CreationDate: "2018-06-10T14:03:27.1234567Z",
};

/** A message body: the wire example with some properties replaced (or removed, with `undefined`). */
const body = (overrides: Record<string, unknown> = {}): string => JSON.stringify({ ...WIRE, ...overrides });

/** Runs the parser and returns what it threw, failing the test if it threw nothing. */
function parseFailure(raw: string): InvalidDonationEventError {
  try {
    parseDonationEvent(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidDonationEventError);
    return error as InvalidDonationEventError;
  }
  throw new Error(`parseDonationEvent accepted ${raw}`);
}

describe("parseDonationEvent", () => {
  describe("accepts what the .NET producer sends", () => {
    const expected: DonationCreatedEvent = {
      Id: WIRE.Id,
      CreationDate: "2018-06-10T14:03:27.123Z",
      UserId: WIRE.UserId,
      FundraiserId: WIRE.FundraiserId,
      DonationAmount: 25.5,
      DonorDisplayName: "Ada L.",
    };

    it.each<{ case: string; raw: string; event: DonationCreatedEvent }>([
      {
        case: "Newtonsoft's 7 fractional digits and Z (kept to Airtable's millisecond precision)",
        raw: body(),
        event: expected,
      },
      {
        case: "no fractional seconds",
        raw: body({ CreationDate: "2018-06-10T14:03:27Z" }),
        event: { ...expected, CreationDate: "2018-06-10T14:03:27.000Z" },
      },
      {
        case: "one fractional digit",
        raw: body({ CreationDate: "2018-06-10T14:03:27.5Z" }),
        event: { ...expected, CreationDate: "2018-06-10T14:03:27.500Z" },
      },
      {
        case: "an anonymous donor: null UserId and DonorDisplayName",
        raw: body({ UserId: null, DonorDisplayName: null }),
        event: { ...expected, UserId: null, DonorDisplayName: null },
      },
      {
        case: "upper-case Guids, normalised to lower case (the upsert key must not depend on case)",
        raw: body({ Id: WIRE.Id.toUpperCase(), FundraiserId: WIRE.FundraiserId.toUpperCase() }),
        event: expected,
      },
      {
        case: "extra properties from a newer producer, ignored",
        raw: body({ CampaignId: "c-1", Currency: "USD", Nested: { a: [1, 2] } }),
        event: expected,
      },
      {
        case: "an offset time zone, converted to UTC",
        raw: body({ CreationDate: "2018-06-10T16:03:27.1234567+02:00" }),
        event: expected,
      },
      {
        case: "a negative offset that moves the instant to the next UTC day",
        raw: body({ CreationDate: "2018-06-10T23:30:00-02:00" }),
        event: { ...expected, CreationDate: "2018-06-11T01:30:00.000Z" },
      },
      {
        case: "a leap day",
        raw: body({ CreationDate: "2020-02-29T12:00:00Z" }),
        event: { ...expected, CreationDate: "2020-02-29T12:00:00.000Z" },
      },
      {
        case: "unicode names, kept byte for byte",
        raw: body({ DonorDisplayName: "李华 & Zoë Ø. 🎉" }),
        event: { ...expected, DonorDisplayName: "李华 & Zoë Ø. 🎉" },
      },
      {
        case: "a fractional amount in shortest round-trip form",
        raw: body({ DonationAmount: 0.1 }),
        event: { ...expected, DonationAmount: 0.1 },
      },
    ])("$case", ({ raw, event }) => {
      // Act
      const parsed = parseDonationEvent(raw);

      // Assert: exactly these six properties, nothing carried over from extras
      expect(parsed).toStrictEqual(event);
    });
  });

  describe("refuses anything else, naming each problem", () => {
    const { UserId: _u, ...withoutUserId } = WIRE;
    const { DonorDisplayName: _d, ...withoutDonorDisplayName } = WIRE;
    const { Id: _i, ...withoutId } = WIRE;
    const { CreationDate: _c, ...withoutCreationDate } = WIRE;
    const { FundraiserId: _f, ...withoutFundraiserId } = WIRE;
    const { DonationAmount: _a, ...withoutDonationAmount } = WIRE;

    it.each<{ case: string; raw: string; problem: string }>([
      { case: "not JSON", raw: "DonationCreated 25.50", problem: "the body is not JSON" },
      { case: "truncated JSON", raw: body().slice(0, 60), problem: "the body is not JSON" },
      { case: "an empty body", raw: "", problem: "the body is not JSON" },
      { case: "a JSON array", raw: `[${body()}]`, problem: "the body must be a JSON object, got an array" },
      { case: "JSON null", raw: "null", problem: "the body must be a JSON object, got null" },
      { case: "a JSON string", raw: '"hello"', problem: 'the body must be a JSON object, got the string "hello"' },
      { case: "a JSON number", raw: "42", problem: "the body must be a JSON object, got number 42" },
      { case: "missing Id", raw: JSON.stringify(withoutId), problem: "Id: is missing" },
      { case: "missing CreationDate", raw: JSON.stringify(withoutCreationDate), problem: "CreationDate: is missing" },
      { case: "missing UserId (null is fine, absent is not)", raw: JSON.stringify(withoutUserId), problem: "UserId: is missing" },
      { case: "missing FundraiserId", raw: JSON.stringify(withoutFundraiserId), problem: "FundraiserId: is missing" },
      { case: "missing DonationAmount", raw: JSON.stringify(withoutDonationAmount), problem: "DonationAmount: is missing" },
      {
        case: "missing DonorDisplayName",
        raw: JSON.stringify(withoutDonorDisplayName),
        problem: "DonorDisplayName: is missing",
      },
      {
        case: "an amount as a string",
        raw: body({ DonationAmount: "25.5" }),
        problem: 'DonationAmount: must be a number, got the string "25.5"',
      },
      {
        case: 'NaN, as Newtonsoft writes it ("NaN")',
        raw: body({ DonationAmount: "NaN" }),
        problem: 'DonationAmount: must be a number, got the string "NaN"',
      },
      {
        case: 'Infinity, as Newtonsoft writes it ("Infinity")',
        raw: body({ DonationAmount: "Infinity" }),
        problem: 'DonationAmount: must be a number, got the string "Infinity"',
      },
      { case: "an Id as a number", raw: body({ Id: 42 }), problem: "Id: must be a Guid string, got number 42" },
      { case: "a UserId as a number", raw: body({ UserId: 7 }), problem: "UserId: must be a string or null, got number 7" },
      {
        case: "a DonorDisplayName as an object",
        raw: body({ DonorDisplayName: { first: "Ada" } }),
        problem: "DonorDisplayName: must be a string or null, got an object",
      },
      { case: "a zero amount", raw: body({ DonationAmount: 0 }), problem: "DonationAmount: must be greater than 0, got 0" },
      {
        case: "a negative amount",
        raw: body({ DonationAmount: -5 }),
        problem: "DonationAmount: must be greater than 0, got -5",
      },
      {
        // JSON.parse reads 1e400 as Infinity.
        case: "an amount too large for a double (1e400)",
        raw: body().replace('"DonationAmount":25.5', '"DonationAmount":1e400'),
        problem: "DonationAmount: must be a finite number",
      },
      { case: "an invalid Guid", raw: body({ Id: "not-a-guid" }), problem: 'Id: must be a Guid like "' },
      {
        case: "a Guid without hyphens",
        raw: body({ FundraiserId: "7b0c9e522f3b4a7e9d0a3c8f0e6b1a21" }),
        problem: 'FundraiserId: must be a Guid like "',
      },
      {
        case: "a date without a time zone",
        raw: body({ CreationDate: "2018-06-10T14:03:27.1234567" }),
        problem: 'CreationDate: must be an ISO 8601 date-time with a time zone, like "2018-06-10T14:03:27.1234567Z", got the string "2018-06-10T14:03:27.1234567"',
      },
      {
        case: "an impossible date (2018-02-30)",
        raw: body({ CreationDate: "2018-02-30T10:00:00Z" }),
        problem: 'CreationDate: must be an ISO 8601 date-time with a time zone, like "2018-06-10T14:03:27.1234567Z", got the string "2018-02-30T10:00:00Z"',
      },
      {
        case: "29 February of a common year",
        raw: body({ CreationDate: "2019-02-29T10:00:00Z" }),
        problem: 'got the string "2019-02-29T10:00:00Z"',
      },
      {
        case: "an impossible hour",
        raw: body({ CreationDate: "2018-06-10T25:00:00Z" }),
        problem: 'got the string "2018-06-10T25:00:00Z"',
      },
      {
        case: "a date only",
        raw: body({ CreationDate: "2018-06-10" }),
        problem: 'CreationDate: must be an ISO 8601 date-time with a time zone',
      },
    ])("$case", ({ raw, problem }) => {
      // Act
      const error = parseFailure(raw);

      // Assert
      expect(error.name).toBe(ErrorName.InvalidDonationEvent);
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toContain(problem);
      expect(error.message).toContain(problem);
    });

    it("lists every problem at once, each naming its field", () => {
      // Arrange: three defects in one message
      const raw = body({ Id: "nope", DonationAmount: -1, FundraiserId: undefined });

      // Act
      const error = parseFailure(raw);

      // Assert
      expect(error.name).toBe(ErrorName.InvalidDonationEvent);
      expect([...error.problems].sort()).toEqual(
        [
          "DonationAmount: must be greater than 0, got -1",
          "FundraiserId: is missing",
          expect.stringContaining('Id: must be a Guid like "'),
        ].sort(),
      );
      expect(error.problems).toHaveLength(3);
      for (const problem of error.problems) expect(error.message).toContain(problem);
    });

    it("shortens a very long offending value in the reason", () => {
      // Arrange
      const raw = body({ Id: "x".repeat(2_000) });

      // Act
      const error = parseFailure(raw);

      // Assert: the reason names the field but does not echo 2,000 characters into a DLQ attribute
      expect(error.problems[0]).toMatch(/^Id: must be a Guid/);
      expect(error.message.length).toBeLessThan(300);
    });
  });

  describe("the size limit: a body the producer would not send is invalid (MAX_EVENT_BYTES)", () => {
    /** A valid body of exactly `bytes` UTF-8 bytes, padded in DonorDisplayName with `char`. */
    const validOfBytes = (bytes: number, char = "x") => {
      const base = Buffer.byteLength(body({ DonorDisplayName: "" }));
      const charBytes = Buffer.byteLength(char);
      const raw = body({ DonorDisplayName: char.repeat((bytes - base) / charBytes) });
      expect(Buffer.byteLength(raw)).toBe(bytes);
      return raw;
    };

    it("accepts a valid body of exactly the limit", () => {
      expect(parseDonationEvent(validOfBytes(MAX_EVENT_BYTES)).Id).toBe(WIRE.Id);
    });

    it.each([
      ["one byte over, in ASCII", MAX_EVENT_BYTES + 1, "x"],
      ["over in 3-byte characters (fewer characters than the limit)", MAX_EVENT_BYTES + 3 - ((MAX_EVENT_BYTES - Buffer.byteLength(body({ DonorDisplayName: "" }))) % 3), "李"],
      ["4 KiB, the edit that used to pass", 4 * 1024, "x"],
    ])("refuses a valid-looking body %s, naming its size and the limit", (_, bytes, char) => {
      // Act
      const error = parseFailure(validOfBytes(bytes, char));

      // Assert
      expect(error.problems).toEqual([`body: is ${bytes} bytes; a DonationCreated event may be at most ${MAX_EVENT_BYTES} bytes`]);
      expect(error.message).toContain(`at most ${MAX_EVENT_BYTES} bytes`);
    });

    it("lists the body's other problems beside its size, so that one edit can fix all", () => {
      const error = parseFailure(body({ DonationAmount: -5, DonorDisplayName: "x".repeat(MAX_EVENT_BYTES) }));
      expect(error.problems).toEqual([expect.stringMatching(/^body: is \d+ bytes; a DonationCreated event may be at most/), expect.stringMatching(/^DonationAmount: must be greater than 0/)]);
    });
  });
});

describe("serializeDonationEvent", () => {
  const event: DonationCreatedEvent = {
    Id: "0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17",
    CreationDate: "2018-06-10T14:03:27.123Z",
    UserId: null,
    FundraiserId: "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
    DonationAmount: 25.5,
    DonorDisplayName: "Zoë Ø.",
  };

  it("round-trips through parseDonationEvent", () => {
    // Act
    const parsed = parseDonationEvent(serializeDonationEvent(event));

    // Assert
    expect(parsed).toStrictEqual(event);
  });

  it("writes Newtonsoft's property order, with nulls written out", () => {
    // Act
    const wire = JSON.parse(serializeDonationEvent(event)) as Record<string, unknown>;

    // Assert
    expect(Object.keys(wire)).toEqual(["UserId", "FundraiserId", "DonationAmount", "DonorDisplayName", "Id", "CreationDate"]);
    expect(wire.UserId).toBeNull();
  });

  it("reproduces the producer's bytes for a message at millisecond precision", () => {
    // Arrange: the notes' example, at the precision this project keeps
    const raw = body({ CreationDate: "2018-06-10T14:03:27.123Z" });

    // Act
    const again = serializeDonationEvent(parseDonationEvent(raw));

    // Assert
    expect(again).toBe(raw);
  });
});
