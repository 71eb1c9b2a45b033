/**
 * The numbers that two or more places need (core, the stack, the local runtime, tests): one source for each.
 * Airtable's come from its published limits; AWS's from the Step Functions and SQS quotas.
 */

/** Airtable: records per create/update/upsert request. */
export const AIRTABLE_MAX_RECORDS_PER_REQUEST = 10;
/** Airtable: requests per second per base. */
export const AIRTABLE_REQUESTS_PER_SECOND = 5;
/** Airtable: after a 429 the base refuses every request for this long. */
export const AIRTABLE_RATE_LIMIT_PENALTY_SECONDS = 30;

/** SQS: messages per ReceiveMessage call. */
export const SQS_MAX_MESSAGES_PER_RECEIVE = 10;
/** Step Functions: largest input or output of a state. */
export const STATE_PAYLOAD_LIMIT_BYTES = 256 * 1024;
/** Step Functions: events in one Standard execution's history. */
export const EXECUTION_HISTORY_LIMIT_EVENTS = 25_000;

/**
 * Largest message the donations queue accepts (its `MaximumMessageSize`). A donation event is a few hundred bytes;
 * 8 KiB leaves room for growth while a full batch of 10, plus each Map iteration's copy of the batch's bodies
 * (used to spot duplicates), stays far below {@link STATE_PAYLOAD_LIMIT_BYTES}.
 */
export const MAX_EVENT_BYTES = 8 * 1024;
