import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME } from "@fundraise-sync/airtable-emulator";
import { type DonationCreatedEvent, toAirtableFields } from "@fundraise-sync/core";

/**
 * The Airtable emulator's data file (`dataFile`) holding one record per event, as the pipeline writes them: a base
 * of any size at once, without spending the emulator's 5 requests/s (for reconcile's benchmark and pace test).
 */
export function emulatorDataFile(events: Iterable<DonationCreatedEvent>): string {
  const records = [];
  let n = 0;
  for (const event of events) {
    records.push({ id: `rec${String(n++).padStart(14, "0")}`, createdTime: new Date().toISOString(), fields: toAirtableFields(event) });
  }
  return JSON.stringify({
    version: 1,
    bases: { [DEFAULT_BASE_ID]: { tables: { [DEFAULT_TABLE_NAME]: { name: DEFAULT_TABLE_NAME, choices: {}, records } } } },
  });
}
