import { MAX_ERROR_MESSAGE_BYTES } from "./limits";
import { boundedErrorText } from "./message-size";

/**
 * Every failure the pipeline can name. The state machine's Retry and Catch rules are built from {@link ErrorName}
 * (see `stacks/`), so a name here is a contract with the deployed definition: Lambda reports a thrown error's
 * `name` as its `errorType`, and Step Functions matches `ErrorEquals` against it.
 *
 * Names are string literals, not `constructor.name`, because minified bundles rename classes.
 */
export const ErrorName = {
  /** The message is not a valid DonationCreated event: dead-letter at once, never retry. */
  InvalidDonationEvent: "InvalidDonationEventError",
  /** Airtable answered 429: the base is locked for 30 s; retry no sooner than that. */
  AirtableRateLimited: "AirtableRateLimitedError",
  /** Airtable answered 5xx, timed out, or could not be reached: retry with backoff. */
  AirtableUnavailable: "AirtableUnavailableError",
  /** Airtable refused this record (422, 400, 413): dead-letter it, retrying cannot help. */
  AirtableRecordRejected: "AirtableRecordRejectedError",
  /** Airtable refused the token, base or table (401/403/404): stop the run, leave messages queued. */
  AirtableConfiguration: "AirtableConfigurationError",
  /** SSM (where SST keeps the token and parameters) could not be read: retry; only this invocation failed. */
  ConfigurationUnavailable: "ConfigurationUnavailableError",
  /** A setting the code needs (secret, parameter, queue URL) is missing or malformed. */
  PipelineConfiguration: "PipelineConfigurationError",
  /** An event was refused at publish time because it would not fit the queue's limits. */
  EventTooLarge: "EventTooLargeError",
} as const;

export type ErrorName = (typeof ErrorName)[keyof typeof ErrorName];

/** Base class of the project's errors: a stable `name` for Step Functions and a message a person can act on. */
export abstract class FundraiseSyncError extends Error {
  abstract override readonly name: ErrorName;
}

/**
 * The message body is not a valid DonationCreated event. `problems` lists each defect precisely; the message lists
 * them too, cut to {@link MAX_ERROR_MESSAGE_BYTES}, because it becomes the DLQ's ErrorCause: Lambda reports
 * `errorMessage` and the stack as `trace`, and a reason too long for the DLQ would fail the send. The stack is that
 * one line: the defect is in the data, and frames of the validator would say nothing about it.
 */
export class InvalidDonationEventError extends FundraiseSyncError {
  override readonly name = ErrorName.InvalidDonationEvent;
  constructor(readonly problems: readonly string[]) {
    super(boundedErrorText(`Not a valid DonationCreated event: ${problems.join("; ")}`, MAX_ERROR_MESSAGE_BYTES));
    this.stack = `${this.name}: ${this.message}`;
  }
}

/** Airtable answered an HTTP status; carried so logs and DLQ reasons can say which. */
abstract class AirtableResponseError extends FundraiseSyncError {
  constructor(
    message: string,
    /** HTTP status, or undefined for a timeout or a network failure. */
    readonly status: number | undefined,
    /** Airtable's error type, e.g. `INVALID_VALUE_FOR_COLUMN`. */
    readonly airtableType: string | undefined,
  ) {
    super(message);
  }
}

export class AirtableRateLimitedError extends AirtableResponseError {
  override readonly name = ErrorName.AirtableRateLimited;
}

export class AirtableUnavailableError extends AirtableResponseError {
  override readonly name = ErrorName.AirtableUnavailable;
}

export class AirtableRecordRejectedError extends AirtableResponseError {
  override readonly name = ErrorName.AirtableRecordRejected;
}

export class AirtableConfigurationError extends AirtableResponseError {
  override readonly name = ErrorName.AirtableConfiguration;
}

export class ConfigurationUnavailableError extends FundraiseSyncError {
  override readonly name = ErrorName.ConfigurationUnavailable;
}

export class PipelineConfigurationError extends FundraiseSyncError {
  override readonly name = ErrorName.PipelineConfiguration;
}

export class EventTooLargeError extends FundraiseSyncError {
  override readonly name = ErrorName.EventTooLarge;
  constructor(
    readonly eventId: string,
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`Event ${eventId} is ${bytes} bytes; the donations queue accepts at most ${limitBytes} bytes per message`);
  }
}
