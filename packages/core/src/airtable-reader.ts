import Airtable from "airtable";
import { toNamedError } from "./airtable-writer";
import { DONATION_TABLE_FIELDS } from "./donation-fields";
import { AirtableRateLimitedError, AirtableUnavailableError } from "./errors";
import { AIRTABLE_RATE_LIMIT_PENALTY_SECONDS } from "./limits";
import type { BaseRecord } from "./reconcile";
import { type BudgetClock, RequestBudget } from "./request-budget";

/** Airtable's largest page: 100 records per list request. */
export const AIRTABLE_MAX_PAGE_SIZE = 100;

/** Where and how fast to read. The token is never logged. */
export interface AirtableReadTarget {
  token: string;
  baseId: string;
  tableName: string;
  /** Defaults to https://api.airtable.com. */
  endpointUrl?: string;
  /** The reader's share of the base's 5 requests per second (a whole number ≥ 1). */
  requestsPerSecond: number;
  requestTimeoutMs?: number;
  /** How long a 429 locks the base (Airtable: 30 s); only tests shorten it. */
  rateLimitPenaltyMs?: number;
  /** Attempts per page when Airtable fails (5xx, timeout, network) before giving up. */
  attempts?: number;
}

/** What happened while reading, for progress lines. */
export interface ReadProgress {
  pages: number;
  records: number;
  /** 429s Airtable answered (each one waited out). */
  rateLimited: number;
  /** Set while waiting out a lock: until when (epoch ms). */
  waitingUntil?: number;
}

export const AIRTABLE_READ_DEFAULTS = {
  requestTimeoutMs: 30_000,
  attempts: 5,
  /** Waits between attempts after a 5xx or a timeout: 2, 4, 8, 16 s (as the writer's). */
  firstBackoffMs: 2000,
} as const;

/**
 * Lists the Donations table page by page (100 records a request), within a share of the base's budget: never more
 * than `requestsPerSecond` requests in any second as Airtable counts them ({@link RequestBudget}), and after a 429
 * nothing until the base's 30 s lock has passed, then the same page again. Only the pipeline's fields are asked
 * for. Each page is yielded as it arrives, so memory does not grow with the base.
 *
 * @throws {AirtableConfigurationError} for a refused token, base or table (401/403/404);
 *   {@link AirtableUnavailableError} after the attempts; {@link AirtableRecordRejectedError} for a 422 (a field
 *   missing from the table: `npm run airtable -- check`).
 * @example
 * for await (const page of readBase(target, { onProgress })) for (const record of page) reconciliation.addBaseRecord(record);
 */
export async function* readBase(
  target: AirtableReadTarget,
  options: { onProgress?: (progress: ReadProgress) => void; signal?: AbortSignal; clock?: BudgetClock } = {},
): AsyncGenerator<BaseRecord[]> {
  const base = new Airtable({
    apiKey: target.token,
    endpointUrl: target.endpointUrl,
    requestTimeout: target.requestTimeoutMs ?? AIRTABLE_READ_DEFAULTS.requestTimeoutMs,
    // airtable.js would retry 429s with its own backoff, and keep the base locked; the budget waits them out.
    noRetryIfRateLimited: true,
  }).base(target.baseId);
  const clock = options.clock ?? { now: () => Date.now(), sleep: (ms: number) => sleep(ms, options.signal) };
  const budget = new RequestBudget(target.requestsPerSecond, { recentAnswers: [] }, clock);
  const penaltyMs = target.rateLimitPenaltyMs ?? AIRTABLE_RATE_LIMIT_PENALTY_SECONDS * 1000;
  const attempts = target.attempts ?? AIRTABLE_READ_DEFAULTS.attempts;
  const progress: ReadProgress = { pages: 0, records: 0, rateLimited: 0 };
  const qs: Record<string, unknown> = { pageSize: AIRTABLE_MAX_PAGE_SIZE, fields: DONATION_TABLE_FIELDS.map((field) => field.name) };
  let offset: string | undefined;
  do {
    let failures = 0;
    let records: BaseRecord[];
    for (;;) {
      options.signal?.throwIfAborted();
      const locked = budget.lockedUntil();
      if (locked !== undefined) options.onProgress?.({ ...progress, waitingUntil: locked });
      const answered = await budget.take();
      options.signal?.throwIfAborted();
      try {
        const response = await base.makeRequest({
          method: "GET",
          path: `/${encodeURIComponent(target.tableName)}`,
          qs: offset === undefined ? qs : { ...qs, offset },
        });
        answered();
        const body = response.body as { records?: BaseRecord[]; offset?: string };
        records = body.records ?? [];
        offset = body.offset;
        break;
      } catch (caught) {
        answered();
        const error = toNamedError(caught, target);
        if (error instanceof AirtableRateLimitedError) {
          // Airtable locks the base for everyone: send nothing until the lock has passed, then ask again.
          progress.rateLimited++;
          budget.lock(clock.now() + penaltyMs);
          continue;
        }
        if (error instanceof AirtableUnavailableError && ++failures < attempts) {
          await clock.sleep(AIRTABLE_READ_DEFAULTS.firstBackoffMs * 2 ** (failures - 1));
          continue;
        }
        throw error;
      }
    }
    progress.pages++;
    progress.records += records.length;
    options.onProgress?.({ ...progress });
    yield records;
  } while (offset !== undefined);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
