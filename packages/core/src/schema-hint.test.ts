import { describe, expect, it } from "vitest";
import { fieldRejectionHint } from "./schema-hint";

describe("fieldRejectionHint", () => {
  it.each([
    ["UNKNOWN_FIELD_NAME", 'Unknown field name: "Donation Amount"', 'the table has no field "Donation Amount" (the pipeline writes it as currency or number): run `npm run airtable -- check`'],
    ["INVALID_VALUE_FOR_COLUMN", 'Field "Creation Date" cannot accept the provided value', 'the table\'s field "Creation Date" refuses the value (the pipeline writes it as dateTime): run `npm run airtable -- check`'],
    ["INVALID_VALUE_FOR_COLUMN", 'Field "Notes" cannot accept the provided value', 'the table\'s field "Notes" refuses the value: run `npm run airtable -- check`'],
    ["UNKNOWN_FIELD_NAME", "no field named", "a field of the table does not match what the pipeline writes: run `npm run airtable -- check`"],
  ])("%s %j → names the field and the check command", (type, message, expected) => {
    expect(fieldRejectionHint(type, message)).toBe(expected);
  });

  it("says nothing for refusals that are not about a field", () => {
    expect(fieldRejectionHint("INVALID_RECORDS", "You must provide an array")).toBeUndefined();
    expect(fieldRejectionHint(undefined, undefined)).toBeUndefined();
  });
});
