import { DonationWriter } from "@fundraise-sync/core/airtable-writer";
import { readAirtableTarget } from "./config";
import type { WriteToAirtableInput, WriteToAirtableOutput } from "./contracts";

/** WriteToAirtable: upserts one donation keyed on its event Id. Errors are named for the state machine's Retry/Catch. */
export async function handler(input: WriteToAirtableInput): Promise<WriteToAirtableOutput> {
  const writer = new DonationWriter(await readAirtableTarget());
  return writer.upsert(input.event);
}
