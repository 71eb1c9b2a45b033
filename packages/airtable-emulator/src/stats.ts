/** Counters of what the emulator served: for tests and for watching a local run. Admin requests are not counted. */

export interface BaseStats {
  requests: number;
  byStatus: Record<string, number>;
}

export interface Stats {
  /** Airtable API requests answered (hung requests are counted in `hung` only). */
  requests: number;
  byStatus: Record<string, number>;
  /** Keyed by the base id in the request path (unknown bases included, as requested). */
  byBase: Record<string, BaseStats>;
  /** 429s from the rate limiter. */
  rateLimited: number;
  /** 429s from fault rules. */
  injected429: number;
  /** Every reply decided by a fault rule (any status). */
  injectedFaults: number;
  /** Requests left hanging by a fault rule. */
  hung: number;
  records: { created: number; updated: number; deleted: number };
}

export function emptyStats(): Stats {
  return {
    requests: 0,
    byStatus: {},
    byBase: {},
    rateLimited: 0,
    injected429: 0,
    injectedFaults: 0,
    hung: 0,
    records: { created: 0, updated: 0, deleted: 0 },
  };
}

export function countResponse(stats: Stats, baseId: string | undefined, status: number): void {
  const key = String(status);
  stats.requests++;
  stats.byStatus[key] = (stats.byStatus[key] ?? 0) + 1;
  if (baseId !== undefined) {
    const base = (stats.byBase[baseId] ??= { requests: 0, byStatus: {} });
    base.requests++;
    base.byStatus[key] = (base.byStatus[key] ?? 0) + 1;
  }
}

export function cloneStats(stats: Stats): Stats {
  return structuredClone(stats);
}
