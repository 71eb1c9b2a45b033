/** Names that the stack, the local runtime and the tools all need: one source for each. */

/** The donations queue and its dead-letter queue (deployed names are prefixed with the stage). */
export const SOURCE_QUEUE_NAME = "FundraiseDonations";
export const DEAD_LETTER_QUEUE_NAME = "FundraiseDonations-dlq";

/**
 * Message attributes that carry the reason a message was dead-lettered. The body itself is the original, byte for
 * byte, so a redrive re-feeds the pipeline unchanged.
 */
export const DeadLetterAttribute = {
  /** The error's name, e.g. `InvalidDonationEventError` (see `errors.ts`). */
  ErrorName: "ErrorName",
  /** What went wrong, in words a person can act on (for Lambda errors: Lambda's JSON with `errorMessage`). */
  ErrorCause: "ErrorCause",
  /** The state that failed: `Validate` or `WriteToAirtable`. */
  FailedState: "FailedState",
  /** The Step Functions execution that dead-lettered it. */
  ExecutionArn: "ExecutionArn",
  /** How many times SQS had delivered the message. */
  ReceiveCount: "ReceiveCount",
  /** The message's id in the source queue. */
  SourceMessageId: "SourceMessageId",
  /**
   * How many times a person redrove this body back to the donations queue (`npm run dlq -- redrive`). Set on the
   * redriven message itself, so that a body that fails again can be recognised as one that loops.
   */
  RedriveCount: "RedriveCount",
} as const;

export type DeadLetterAttributeName = (typeof DeadLetterAttribute)[keyof typeof DeadLetterAttribute];

/** SST bindings: `Config.Secret`/`Config.Parameter` names, seen by handlers as `SST_Secret_value_<NAME>` etc. */
export const ConfigName = {
  AirtableToken: "AIRTABLE_TOKEN",
  AirtableBaseId: "AIRTABLE_BASE_ID",
  AirtableTableName: "AIRTABLE_TABLE_NAME",
} as const;

/** Plain environment variables the stack (or the local runtime) sets beside the SST bindings. */
export const EnvName = {
  /** Unset on AWS (the client defaults to api.airtable.com); the local runtime points it at the emulator. */
  AirtableEndpointUrl: "AIRTABLE_ENDPOINT_URL",
  AirtableRequestTimeoutMs: "AIRTABLE_REQUEST_TIMEOUT_MS",
  /** The pipeline's share of the base's requests per second (the stage setting `airtableRequestsPerSecond`). */
  AirtableRequestsPerSecond: "AIRTABLE_REQUESTS_PER_SECOND",
  /**
   * How long the writer treats the base as locked after a 429 (unset: Airtable's 30 s). Never set on AWS: only the
   * local runtime's tests, which shorten the Wait states, shorten it with them.
   */
  AirtableRateLimitPenaltyMs: "AIRTABLE_RATE_LIMIT_PENALTY_MS",
} as const;
