import { parseDonationEvent } from "@fundraise-sync/core/donation-event";
import type { ValidateInput, ValidateOutput } from "./contracts";

/** Validate: parses one message against the DonationCreated contract. Throws InvalidDonationEventError if it is not. */
export async function handler(input: ValidateInput): Promise<ValidateOutput> {
  const event = parseDonationEvent(input.message.Body);
  return { eventId: event.Id };
}
