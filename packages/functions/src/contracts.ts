import type { MessageHandle } from "@fundraise-sync/core/queue";
import type { ReceivedMessage } from "@fundraise-sync/core/queue";
import type { Round } from "@fundraise-sync/core/write-round";

/**
 * The payloads the state machine sends each handler and gets back. The stack builds these shapes in its
 * `Parameters`/`ResultSelector`, so a change here is a change there.
 */

/** Input of Validate: one received message. */
export interface ValidateInput {
  message: ReceivedMessage;
}

/** Validate's verdict on a valid message (an invalid one throws `InvalidDonationEventError`). */
export interface ValidateOutput {
  eventId: string;
}

/** WriteToAirtable takes a round and returns it with every message sorted by what became of it. */
export type WriteToAirtableInput = Round;
export type WriteToAirtableOutput = Round;

/** Input of DeleteMessages: what to delete, and what to make visible again when the base unlocks. */
export interface DeleteMessagesInput {
  queueUrl: string;
  delete: MessageHandle[];
  release?: MessageHandle[];
  /** When released messages become visible again (ISO 8601); at once when null or past. */
  releaseAt?: string | null;
  /** A held round's messages: kept hidden for `keepHiddenSeconds` more, for the execution that takes the round on. */
  keepHidden?: MessageHandle[];
  keepHiddenSeconds?: number;
}

export interface DeleteMessagesOutput {
  deleted: number;
  released: number;
  /** Held messages whose visibility was extended. */
  keptHidden?: number;
  /** Message ids that could not be deleted or released: they reappear after the visibility timeout. */
  failed: string[];
}
