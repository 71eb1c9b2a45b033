import { DONATION_TABLE_FIELDS } from "./donation-fields";

/** Airtable's 422 types that mean: the base's table does not have the field, or not with a type that takes the value. */
const FIELD_MISMATCH_TYPES = new Set(["UNKNOWN_FIELD_NAME", "INVALID_VALUE_FOR_COLUMN"]);

/**
 * For a write Airtable refused because of a field, a sentence that names the field, what the pipeline needs it to be,
 * and the command that checks the whole table; undefined for any other refusal. Airtable names the field in its
 * message (`Unknown field name: "X"`, `Field "X" cannot accept the provided value`), not in a separate property.
 *
 * @example
 * fieldRejectionHint("UNKNOWN_FIELD_NAME", 'Unknown field name: "Donation Amount"')
 * // 'the table has no field "Donation Amount" (the pipeline writes it as currency or number): run `npm run airtable -- check`'
 */
export function fieldRejectionHint(airtableType: string | undefined, message: string | undefined): string | undefined {
  if (airtableType === undefined || !FIELD_MISMATCH_TYPES.has(airtableType)) return undefined;
  const field = /"([^"]+)"/.exec(message ?? "")?.[1];
  const spec = DONATION_TABLE_FIELDS.find((candidate) => candidate.name === field);
  const needs = spec === undefined ? "" : ` (the pipeline writes it as ${spec.accepts.join(" or ")})`;
  const what =
    field === undefined ? "a field of the table does not match what the pipeline writes"
    : airtableType === "UNKNOWN_FIELD_NAME" ? `the table has no field "${field}"${needs}`
    : `the table's field "${field}" refuses the value${needs}`;
  return `${what}: run \`npm run airtable -- check\``;
}
