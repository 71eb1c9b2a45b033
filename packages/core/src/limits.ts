/**
 * The numbers that two or more places need (core, the stack, the local runtime, tests): one source for each.
 * Airtable's come from its published limits; AWS's from the Step Functions and SQS quotas.
 */

/** Airtable: records per create/update/upsert request. */
export const AIRTABLE_MAX_RECORDS_PER_REQUEST = 10;
/** Airtable: requests per second per base, for every client of the base together. */
export const AIRTABLE_REQUESTS_PER_SECOND = 5;
/** Airtable counts requests in a sliding window of this length. */
export const AIRTABLE_RATE_WINDOW_MS = 1000;
/**
 * The pipeline's default share of a base's requests per second: one request per second stays free for the base's
 * other clients (staff scripts, automations, a website's "total raised" counter).
 */
export const DEFAULT_AIRTABLE_SHARE_PER_SECOND = 4;
/** Airtable: after a 429 the base refuses every request for this long. */
export const AIRTABLE_RATE_LIMIT_PENALTY_SECONDS = 30;

/** SQS: messages per ReceiveMessage call. */
export const SQS_MAX_MESSAGES_PER_RECEIVE = 10;
/** Step Functions: largest input or output of a state. */
export const STATE_PAYLOAD_LIMIT_BYTES = 256 * 1024;
/** Step Functions: events in one Standard execution's history. */
export const EXECUTION_HISTORY_LIMIT_EVENTS = 25_000;

/** SQS: entries per DeleteMessageBatch / ChangeMessageVisibilityBatch / SendMessageBatch call. */
export const SQS_MAX_ENTRIES_PER_BATCH_CALL = 10;
/** SQS: longest receipt handle. */
export const SQS_MAX_RECEIPT_HANDLE_BYTES = 1024;

/**
 * Receives per round: a round's valid messages are written together by one WriteToAirtable task, 10 per request, so
 * three receives make three full requests: most of a second of the default share.
 */
export const RECEIVES_PER_ROUND = 3;

/**
 * Largest message the donations queue accepts (its `MaximumMessageSize`), and what the producer refuses above. A
 * donation event is about 300 bytes. A round's bodies travel once through the execution's state (no copies), and a
 * body may double in size when escaped inside that JSON, so 30 bodies of 3 KiB, their receipt handles and outcomes
 * stay under {@link STATE_PAYLOAD_LIMIT_BYTES} (checked in `stacks/timing.test.ts`).
 */
export const MAX_EVENT_BYTES = 3 * 1024;
