import type { DonationCreatedEvent } from "@fundraise-sync/core/donation-event";
import type { ReceivedMessage } from "@fundraise-sync/core/queue";

/**
 * The payloads the state machine sends each handler and gets back. The stack builds these shapes in its
 * `Parameters`/`ResultSelector`, so a change here is a change there.
 */

/** Input of Validate: one message of the batch, its position, and every body of the batch (to spot copies). */
export interface ValidateInput {
  message: ReceivedMessage;
  index: number;
  batchBodies: string[];
}

export interface ValidateOutput {
  event: DonationCreatedEvent;
  /** True when an earlier message in this batch carries the same event: it writes, this copy is only deleted. */
  isCopy: boolean;
}

export interface WriteToAirtableInput {
  event: DonationCreatedEvent;
}

export interface WriteToAirtableOutput {
  recordId: string;
  created: boolean;
}

/** What happened to a message before it was deleted; shown as each Map iteration's output in the console. */
export type MessageOutcome = "written" | "copy-in-batch" | "dead-lettered";

export interface DeleteMessageInput {
  queueUrl: string;
  receiptHandle: string;
  messageId: string;
  outcome: MessageOutcome;
}

export interface DeleteMessageOutput {
  messageId: string;
  outcome: MessageOutcome;
}
