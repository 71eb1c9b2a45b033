import { parseDonationEvent } from "@fundraise-sync/core/donation-event";
import { findEarlierCopy } from "@fundraise-sync/core/duplicates";
import type { ValidateInput, ValidateOutput } from "./contracts";

/** Validate: parses one message against the DonationCreated contract. Throws InvalidDonationEventError if it is not. */
export async function handler(input: ValidateInput): Promise<ValidateOutput> {
  const event = parseDonationEvent(input.message.Body);
  const isCopy = findEarlierCopy(event, input.index, input.batchBodies) !== undefined;
  return { event, isCopy };
}
