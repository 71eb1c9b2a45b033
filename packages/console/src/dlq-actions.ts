/**
 * What the console needs from the DLQ. The interface is defined beside the dead-letter functions it wraps
 * (`@fundraise-sync/local/dead-letter-actions`); the console imports its types only and is handed an implementation.
 */
export type { ActionOutcome, DeadLetterActions, DeadLetterEntry, Verdict } from "@fundraise-sync/local/dead-letter-actions";
