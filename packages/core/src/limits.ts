/**
 * The numbers that two or more places need (core, the stack, the local runtime, tests): one source for each.
 * Airtable's come from its published limits; AWS's from the Step Functions and SQS quotas.
 */
import { DeadLetterAttribute, type DeadLetterAttributeName } from "./names";
import { utf8Bytes } from "./message-size";

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
 * Largest body the producer sends (`publish` refuses more with `EventTooLargeError`) and Validate accepts (a longer
 * body is an `InvalidDonationEventError`). A donation event is about 300 bytes. A round's bodies travel once through
 * the execution's state (no copies), and a body may double in size when escaped inside that JSON, so 30 bodies at the
 * queue's maximum, their receipt handles and outcomes stay under {@link STATE_PAYLOAD_LIMIT_BYTES} (checked in
 * `stacks/Workflow.test.ts`).
 */
export const MAX_EVENT_BYTES = 3 * 1024;

// --- The size budget: what the queues must hold besides the body ------------------------------------------------
//
// SQS counts every message attribute's name, type and value toward a queue's MaximumMessageSize (SQS API,
// MessageAttributeValue). A redrive (`npm run dlq -- redrive`, the console's Edit and resend) puts a body back on the
// donations queue with a RedriveCount attribute; the state machine's DLQ copy carries the reason attributes
// (`DeadLetterAttribute`, set by stacks/drain-definition.ts `deadLetter`). Each attribute's value is bounded here:
//
//   donations queue: body (MAX_EVENT_BYTES 3072) + RedriveCount (12 + "Number" 6 + 16 digits = 34)       = 3106
//   dead-letter queue: body at the donations queue's maximum (3106)
//     + ErrorName        9 + 6 +   64 (MAX_ERROR_NAME_BYTES)                                             =   79
//     + ErrorCause      10 + 6 + 2225 (MAX_ERROR_CAUSE_BYTES: Lambda's JSON, name and message twice)     = 2241
//     + FailedState     11 + 6 +   80 (a state's name: at most 80 characters, ours ASCII)                =   97
//     + ExecutionArn    12 + 6 +  256 (an execution ARN: at most 256 characters, ASCII)                  =  274
//     + ReceiveCount    12 + 6 +   16                                                                    =   34
//     + SourceMessageId 15 + 6 +  128 (an SQS message id: a UUID, 36 characters)                         =  149
//     + RedriveCount    12 + 6 +   16                                                                    =   34
//                                                                                             worst case  = 6014
//   ≤ DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES (8192). Proven with real strings in limits.test.ts and against the local SQS
//   server (which counts attributes as SQS does) in packages/local/src/dead-letters.test.ts.

/** Step Functions and SQS facts the budget rests on, and the bounds the pipeline's own values keep to. */
export const ATTRIBUTE_VALUE_LIMITS = {
  /** Every error name the pipeline puts in ErrorName (`boundedErrorText` cuts longer ones), JSON-escaped bytes. */
  errorNameBytes: 64,
  /** Every error message the pipeline builds (InvalidDonationEventError's, write-round's causes), JSON-escaped bytes. */
  errorMessageBytes: 1024,
  /** Step Functions: a state's name is 1 to 80 characters; every name in the definition is ASCII. */
  stateNameBytes: 80,
  /** Step Functions API: an execution ARN is 1 to 256 characters (ours are ASCII: region, account, names). */
  executionArnBytes: 256,
  /** SQS message ids are UUIDs (36 characters); the bound leaves room. */
  messageIdBytes: 128,
  /** A count (ReceiveCount, RedriveCount) as a decimal integer: Number.MAX_SAFE_INTEGER has 16 digits. */
  countDigits: 16,
} as const;

/** Longest ErrorName value. */
export const MAX_ERROR_NAME_BYTES = ATTRIBUTE_VALUE_LIMITS.errorNameBytes;
/** Longest error message (JSON-escaped UTF-8) in an ErrorCause. */
export const MAX_ERROR_MESSAGE_BYTES = ATTRIBUTE_VALUE_LIMITS.errorMessageBytes;
/**
 * Longest ErrorCause: Lambda's error JSON `{"errorType","errorMessage","trace":["<name>: <message>"]}` with a name
 * and message at their bounds (InvalidDonationEventError's stack is that one line); write-round's causes, without the
 * trace, are shorter.
 */
export const MAX_ERROR_CAUSE_BYTES =
  utf8Bytes(JSON.stringify({ errorType: "", errorMessage: "", trace: [": "] })) +
  2 * (MAX_ERROR_NAME_BYTES + MAX_ERROR_MESSAGE_BYTES);

/** SQS: a message carries at most 10 attributes. */
export const SQS_MAX_MESSAGE_ATTRIBUTES = 10;

/** What each attribute the pipeline sets can take at most: its type, and its value's bytes. */
export const DEAD_LETTER_ATTRIBUTE_BOUNDS: Record<DeadLetterAttributeName, { dataType: "String" | "Number"; maxValueBytes: number }> = {
  [DeadLetterAttribute.ErrorName]: { dataType: "String", maxValueBytes: MAX_ERROR_NAME_BYTES },
  [DeadLetterAttribute.ErrorCause]: { dataType: "String", maxValueBytes: MAX_ERROR_CAUSE_BYTES },
  [DeadLetterAttribute.FailedState]: { dataType: "String", maxValueBytes: ATTRIBUTE_VALUE_LIMITS.stateNameBytes },
  [DeadLetterAttribute.ExecutionArn]: { dataType: "String", maxValueBytes: ATTRIBUTE_VALUE_LIMITS.executionArnBytes },
  [DeadLetterAttribute.ReceiveCount]: { dataType: "Number", maxValueBytes: ATTRIBUTE_VALUE_LIMITS.countDigits },
  [DeadLetterAttribute.SourceMessageId]: { dataType: "String", maxValueBytes: ATTRIBUTE_VALUE_LIMITS.messageIdBytes },
  [DeadLetterAttribute.RedriveCount]: { dataType: "Number", maxValueBytes: ATTRIBUTE_VALUE_LIMITS.countDigits },
};

/** What SQS counts for one attribute at its bound: name + type + value (all ASCII names and types). */
const attributeMaxBytes = (name: DeadLetterAttributeName) =>
  name.length + DEAD_LETTER_ATTRIBUTE_BOUNDS[name].dataType.length + DEAD_LETTER_ATTRIBUTE_BOUNDS[name].maxValueBytes;

/** The most a redrive adds to a body on the donations queue: its RedriveCount attribute. */
export const REDRIVE_ATTRIBUTE_MAX_BYTES = attributeMaxBytes(DeadLetterAttribute.RedriveCount);

/**
 * The donations queue's `MaximumMessageSize`: a body at the producer's limit plus the RedriveCount a redrive adds,
 * so every body the producer sends can be redriven.
 */
export const DONATIONS_QUEUE_MAX_MESSAGE_BYTES = MAX_EVENT_BYTES + REDRIVE_ATTRIBUTE_MAX_BYTES;

/** Every reason attribute of a DLQ copy at its bound. */
export const DEAD_LETTER_ATTRIBUTES_MAX_BYTES = (Object.keys(DEAD_LETTER_ATTRIBUTE_BOUNDS) as DeadLetterAttributeName[]).reduce(
  (sum, name) => sum + attributeMaxBytes(name),
  0,
);

/**
 * The dead-letter queue's `MaximumMessageSize`, set explicitly (SQS's default has changed over the years): a body at
 * the donations queue's maximum and every reason attribute at its bound fit, with room to spare.
 */
export const DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES = 8 * 1024;
