import type { DonationCreatedEvent } from "./donation-event";

/** The Airtable table's field names, as the original integration created them. */
export const DonationField = {
  Id: "Id",
  CreationDate: "Creation Date",
  DonorId: "Donor Id",
  FundraiserId: "Fundraiser Id",
  DonationAmount: "Donation Amount",
  DonorDisplayName: "Donor Display Name",
} as const;

/** The field every write upserts on: the event's Id, unique per event. */
export const MERGE_FIELD = DonationField.Id;

/** Airtable cell values for one donation. */
export type DonationFields = Record<string, string | number>;

/**
 * Maps an event to the Donations table's fields. Null values are left out rather than sent as empty: a redelivered
 * event then never blanks a value that staff filled in by hand.
 */
export function toAirtableFields(event: DonationCreatedEvent): DonationFields {
  const fields: DonationFields = {
    [DonationField.Id]: event.Id,
    [DonationField.CreationDate]: event.CreationDate,
    [DonationField.FundraiserId]: event.FundraiserId,
    [DonationField.DonationAmount]: event.DonationAmount,
  };
  if (event.UserId !== null) fields[DonationField.DonorId] = event.UserId;
  if (event.DonorDisplayName !== null) fields[DonationField.DonorDisplayName] = event.DonorDisplayName;
  return fields;
}

/** The Airtable field types this project names (Airtable's own type names, as its metadata API reports them). */
export type AirtableFieldType = "singleLineText" | "multilineText" | "dateTime" | "number" | "currency";

/** One field of the Donations table, as `npm run airtable -- setup` creates it and `check` expects it. */
export interface DonationFieldSpec {
  name: (typeof DonationField)[keyof typeof DonationField];
  /** The type `setup` creates. */
  type: AirtableFieldType;
  /** Airtable's field options for `type` (its metadata API requires them for dateTime and currency). */
  options?: Record<string, unknown>;
  /** Every type under which the writer's values are accepted without `typecast` (what `check` allows). */
  accepts: readonly string[];
  /** What the field holds, for people (README, the field's description in Airtable). */
  description: string;
}

const TEXT = ["singleLineText", "multilineText"] as const;

/**
 * The Donations table: the one source of its field names and types for the writer (through {@link DonationField}),
 * `npm run airtable -- check|setup`, the emulator's default table and the README. The first field is the table's
 * primary field. {@link toAirtableFields} sends strings to the text and dateTime fields (ISO 8601 UTC for
 * dateTime) and a JSON number to Donation Amount.
 */
export const DONATION_TABLE_FIELDS: readonly DonationFieldSpec[] = [
  {
    name: DonationField.Id,
    type: "singleLineText",
    accepts: TEXT,
    description: "The event's Id (a Guid, lower case): unique per donation, the field every write upserts on",
  },
  {
    name: DonationField.CreationDate,
    type: "dateTime",
    options: { dateFormat: { name: "iso" }, timeFormat: { name: "24hour" }, timeZone: "utc" },
    accepts: ["dateTime"],
    description: "When the donation was made (UTC, to the millisecond)",
  },
  { name: DonationField.DonorId, type: "singleLineText", accepts: TEXT, description: "The donor's user id; empty for a guest donation" },
  { name: DonationField.FundraiserId, type: "singleLineText", accepts: TEXT, description: "The fundraiser the donation went to (a Guid)" },
  {
    name: DonationField.DonationAmount,
    type: "currency",
    options: { precision: 2, symbol: "$" },
    accepts: ["currency", "number"],
    description: "The amount in dollars, greater than 0",
  },
  {
    name: DonationField.DonorDisplayName,
    type: "singleLineText",
    accepts: TEXT,
    description: "The name the donor chose to show; empty when anonymous",
  },
];
