// zod's mini build: the same validation, a tenth of the bundle (the classic build carries every locale's messages,
// and every message here is the project's own).
import * as z from "zod/mini";
import { InvalidDonationEventError } from "./errors";
import { MAX_EVENT_BYTES } from "./limits";
import { utf8Bytes } from "./message-size";

/**
 * The `DonationCreated` integration event as the .NET producer puts it on the queue: Newtonsoft.Json with default
 * settings (PascalCase names, lower-case hyphenated Guids, UTC DateTime with up to 7 fractional digits and `Z`,
 * nulls written out). See `shared/notes/donation-event.md`.
 */
export interface DonationCreatedEvent {
  /** Unique per event: the Airtable upsert key. Normalised to lower case. */
  Id: string;
  /** ISO 8601 UTC, normalised to millisecond precision (Airtable's date-time precision). */
  CreationDate: string;
  UserId: string | null;
  FundraiserId: string;
  /** Dollars, finite and > 0. */
  DonationAmount: number;
  DonorDisplayName: string | null;
}

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// Newtonsoft writes up to 7 fractional digits; a zone (Z or an offset) is required so the instant is unambiguous.
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})$/;

const describe = (value: unknown): string => {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
};

const required = (what: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? "is missing" : `must be ${what}, got ${describe(issue.input)}`;

const guid = z.pipe(
  z
    .string({ error: required("a Guid string") })
    .check(z.regex(GUID, { error: (issue) => `must be a Guid like "0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17", got ${describe(issue.input)}` })),
  z.transform((value: string) => value.toLowerCase()),
);

const utcDateTime = z.pipe(
  z.string({ error: required("an ISO 8601 date-time string") }).check(
    z.refine((value: string) => parseIsoDateTime(value) !== undefined, {
      error: (issue) =>
        `must be an ISO 8601 date-time with a time zone, like "2018-06-10T14:03:27.1234567Z", got ${describe(issue.input)}`,
    }),
  ),
  z.transform((value: string) => parseIsoDateTime(value)!),
);

// Extra properties are allowed and ignored: a newer producer may add fields, and that must not dead-letter donations.
const DonationCreatedSchema = z.object({
  Id: guid,
  CreationDate: utcDateTime,
  UserId: z.nullable(z.string({ error: required("a string or null") })),
  FundraiserId: guid,
  DonationAmount: z
    // zod 4's number() itself refuses Infinity (JSON's 1e400): say "finite" rather than "must be a number, got number".
    .number({
      error: (issue) =>
        typeof issue.input === "number" ? `must be a finite number, got ${String(issue.input)}` : required("a number")(issue),
    })
    .check(z.refine((amount: number) => amount > 0, { error: (issue) => `must be greater than 0, got ${String(issue.input)}` })),
  DonorDisplayName: z.nullable(z.string({ error: required("a string or null") })),
});

/** Parses `2018-06-10T14:03:27.1234567Z` (or an offset form) to `2018-06-10T14:03:27.123Z`; undefined if invalid. */
function parseIsoDateTime(value: string): string | undefined {
  const match = ISO_DATE_TIME.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction = "", zone] = match;
  const millis = fraction.padEnd(3, "0").slice(0, 3);
  const date = new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}.${millis}${zone}`);
  if (Number.isNaN(date.getTime())) return undefined;
  // Date rolls 2018-02-30 over to March: reject calendar dates that do not exist.
  const [y, m, d] = [Number(year), Number(month), Number(day)];
  const calendar = new Date(Date.UTC(y, m - 1, d));
  if (calendar.getUTCFullYear() !== y || calendar.getUTCMonth() !== m - 1 || calendar.getUTCDate() !== d) return undefined;
  return date.toISOString();
}

/**
 * Parses and validates one queue message body.
 *
 * @throws {InvalidDonationEventError} listing every problem found, e.g.
 *   `DonationAmount: must be greater than 0, got -5; FundraiserId: is missing`.
 * @example
 * const event = parseDonationEvent(message.Body);
 */
export function parseDonationEvent(body: string): DonationCreatedEvent {
  // Over the producer's limit a body could not be redriven (the queue keeps only room for RedriveCount): invalid,
  // with whatever else is wrong with it, so that one edit fixes everything.
  const bytes = utf8Bytes(body);
  const problems =
    bytes > MAX_EVENT_BYTES ? [`body: is ${bytes} bytes; a DonationCreated event may be at most ${MAX_EVENT_BYTES} bytes`] : [];
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new InvalidDonationEventError([...problems, `the body is not JSON (${detail})`]);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InvalidDonationEventError([...problems, `the body must be a JSON object, got ${describe(json)}`]);
  }
  const result = DonationCreatedSchema.safeParse(json);
  if (!result.success) {
    problems.push(...result.error.issues.map((issue) => `${issue.path.join(".") || "body"}: ${issue.message}`));
  }
  if (problems.length > 0 || !result.success) throw new InvalidDonationEventError(problems);
  return result.data;
}

/**
 * Serializes an event the way the .NET producer does (Newtonsoft property order and null handling), so that events
 * published by this project are indistinguishable on the wire from the web application's.
 */
export function serializeDonationEvent(event: DonationCreatedEvent): string {
  const { UserId, FundraiserId, DonationAmount, DonorDisplayName, Id, CreationDate } = event;
  return JSON.stringify({ UserId, FundraiserId, DonationAmount, DonorDisplayName, Id, CreationDate });
}
