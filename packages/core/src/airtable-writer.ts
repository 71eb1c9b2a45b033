import Airtable from "airtable";
import type { DonationCreatedEvent } from "./donation-event";
import { MERGE_FIELD, toAirtableFields } from "./donation-fields";
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
   * After Airtable answers, each write holds its Map slot this much longer, so that the Map's concurrent writers
   * together stay under Airtable's per-base rate. See `writeIntervalMs` in `pacing.ts`.
   */
  minWriteIntervalMs: number;
}

/** The outcome of one upsert. */
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes donations to Airtable as upserts keyed on the event `Id`, so a redelivered message updates its record and
 * never duplicates it. Every failure becomes one of the project's named errors (see `errors.ts`).
 *
 * @example
 * const writer = new DonationWriter(target);
 * const { recordId, created } = await writer.upsert(event);
 */
export class DonationWriter {
  readonly #base: Airtable.Base;

  constructor(private readonly target: AirtableTarget) {
    this.#base = new Airtable({
      apiKey: target.token,
      endpointUrl: target.endpointUrl,
      requestTimeout: target.requestTimeoutMs,
      // airtable.js would otherwise retry 429s forever; the state machine owns retries and their 30 s spacing.
      noRetryIfRateLimited: true,
    }).base(target.baseId);
  }

  /** Upserts one donation. @throws one of the Airtable errors in `errors.ts`. */
  async upsert(event: DonationCreatedEvent): Promise<WriteResult> {
    try {
      // makeRequest rather than table.update: airtable.js drops createdRecords/updatedRecords from its reply.
      const response = await this.#base.makeRequest({
        method: "PATCH",
        path: `/${encodeURIComponent(this.target.tableName)}`,
        body: {
          performUpsert: { fieldsToMergeOn: [MERGE_FIELD] },
          records: [{ fields: toAirtableFields(event) }],
        },
      });
      const reply = response.body as UpsertReply;
      const recordId = reply.records[0]?.id;
      if (!recordId) {
        throw new AirtableUnavailableError("Airtable answered the upsert without a record", response.statusCode, undefined);
      }
      return { recordId, created: reply.createdRecords?.includes(recordId) ?? false };
    } catch (error) {
      throw toNamedError(error, this.target);
    } finally {
      // Counted from the answer (or failure), not the send: see pacing.ts for why that needs no margin.
      if (this.target.minWriteIntervalMs > 0) await sleep(this.target.minWriteIntervalMs);
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
  return new AirtableRecordRejectedError(`Airtable rejected the record (${status} ${type}): ${message}`, status, type);
}
