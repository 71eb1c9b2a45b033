import Airtable from "airtable";
import type { DonationCreatedEvent } from "./donation-event";
import { MERGE_FIELD, toAirtableFields } from "./donation-fields";
import { AIRTABLE_MAX_RECORDS_PER_REQUEST } from "./limits";
import { fieldRejectionHint } from "./schema-hint";
import {
  AirtableConfigurationError,
  AirtableRateLimitedError,
  AirtableRecordRejectedError,
  AirtableUnavailableError,
} from "./errors";

/** Where and how to write. The token is a personal access token (`pat…`); it is never logged. */
export interface AirtableTarget {
  token: string;
  baseId: string;
  tableName: string;
  /** Defaults to https://api.airtable.com; the local runtime points it at the emulator. */
  endpointUrl?: string;
  /** Below the Lambda's timeout, so a hung request surfaces as a retryable error instead of a killed function. */
  requestTimeoutMs: number;
  /**
   * The pipeline's share of the base's requests per second (see `RequestBudget`): every request the writer sends,
   * retries and bisection included, fits it.
   */
  requestsPerSecond: number;
  /**
   * How long a 429 locks the base (Airtable: 30 s, the default). Nothing is sent to the base until it has passed.
   * Only the local runtime's tests shorten it, together with the Wait states they shorten.
   */
  rateLimitPenaltyMs?: number;
}

/** The outcome of one record's upsert, in the order the records were sent. */
export interface WriteResult {
  recordId: string;
  /** True when the record was new; false when a redelivered event updated its existing record. */
  created: boolean;
}

interface UpsertReply {
  records: { id: string }[];
  createdRecords?: string[];
  updatedRecords?: string[];
}

/** What airtable.js rejects with: not an Error subclass, and a null status for timeouts and network failures. */
interface AirtableClientError {
  error?: string;
  message?: string;
  statusCode?: number | null;
}

/**
 * Writes donations to Airtable as upserts keyed on the event `Id`, so a redelivered message updates its record and
 * never duplicates it. One request carries up to 10 events (Airtable's limit); every failure becomes one of the
 * project's named errors (see `errors.ts`). Pacing is the caller's (`RequestBudget`).
 *
 * @example
 * const writer = new DonationWriter(target);
 * const [{ recordId, created }] = await writer.upsert([event]);
 */
export class DonationWriter {
  readonly #base: Airtable.Base;

  constructor(private readonly target: AirtableTarget) {
    this.#base = new Airtable({
      apiKey: target.token,
      endpointUrl: target.endpointUrl,
      requestTimeout: target.requestTimeoutMs,
      // airtable.js would otherwise retry 429s forever; the pipeline owns retries and their 30 s spacing.
      noRetryIfRateLimited: true,
    }).base(target.baseId);
  }

  /**
   * Upserts up to 10 donations in one request. Airtable validates a request as a whole: one bad record refuses them
   * all (see `writeRound` for how the bad one is found).
   * @returns one result per event, in order.
   * @throws one of the Airtable errors in `errors.ts`.
   */
  async upsert(events: readonly DonationCreatedEvent[]): Promise<WriteResult[]> {
    if (events.length === 0 || events.length > AIRTABLE_MAX_RECORDS_PER_REQUEST) {
      throw new RangeError(`An upsert carries 1 to ${AIRTABLE_MAX_RECORDS_PER_REQUEST} records, got ${events.length}`);
    }
    try {
      // makeRequest rather than table.update: airtable.js drops createdRecords/updatedRecords from its reply.
      const response = await this.#base.makeRequest({
        method: "PATCH",
        path: `/${encodeURIComponent(this.target.tableName)}`,
        body: {
          performUpsert: { fieldsToMergeOn: [MERGE_FIELD] },
          records: events.map((event) => ({ fields: toAirtableFields(event) })),
        },
      });
      const reply = response.body as UpsertReply;
      if (reply.records?.length !== events.length) {
        throw new AirtableUnavailableError(
          `Airtable answered an upsert of ${events.length} records with ${reply.records?.length ?? 0}`,
          response.statusCode,
          undefined,
        );
      }
      const created = new Set(reply.createdRecords ?? []);
      return reply.records.map(({ id }) => ({ recordId: id, created: created.has(id) }));
    } catch (error) {
      throw toNamedError(error, this.target);
    }
  }
}

/** Maps whatever airtable.js rejected with to the named error that decides retry, dead-letter or stop. */
export function toNamedError(error: unknown, target: Pick<AirtableTarget, "baseId" | "tableName">): Error {
  if (error instanceof Error) return error; // already ours (or a bug worth seeing as is)
  const { statusCode, error: type, message = "no message" } = (error ?? {}) as AirtableClientError;
  const status = statusCode ?? undefined;
  const where = `base ${target.baseId}, table "${target.tableName}"`;
  if (status === undefined) {
    return new AirtableUnavailableError(`Airtable could not be reached or timed out (${message})`, undefined, type);
  }
  if (status === 401) {
    return new AirtableConfigurationError(
      `Airtable refused the token (401 ${type}): set a valid personal access token with \`sst secrets set AIRTABLE_TOKEN …\``,
      status,
      type,
    );
  }
  if (status === 403 || status === 404) {
    return new AirtableConfigurationError(
      `Airtable answered ${status} ${type} for ${where}: check the base id and table name parameters, and that the token has data.records:write on that base`,
      status,
      type,
    );
  }
  if (status === 429) {
    return new AirtableRateLimitedError(`Airtable rate limit reached for base ${target.baseId} (429)`, status, type);
  }
  if (status >= 500) {
    return new AirtableUnavailableError(`Airtable server error ${status} ${type}: ${message}`, status, type);
  }
  const hint = fieldRejectionHint(type, message);
  const reason = `Airtable rejected the record (${status} ${type}): ${message.replace(/\.$/, "")}`;
  return new AirtableRecordRejectedError(hint ? `${reason}; ${hint}` : reason, status, type);
}

