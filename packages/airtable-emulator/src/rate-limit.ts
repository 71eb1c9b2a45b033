/**
 * Airtable's per-base rate limit: at most `requestsPerSecond` requests in any sliding one-second window. The request
 * over the limit gets a 429, and from then on the base answers 429 to everything for `penaltyMs` (30 s on Airtable).
 * Requests refused during the penalty do not extend it.
 */

export interface RateLimitOptions {
  requestsPerSecond: number;
  penaltyMs: number;
}

export interface Clock {
  /** Milliseconds since the epoch (or any monotonic origin); tests inject one to move time by hand. */
  now(): number;
}

const WINDOW_MS = 1000;

export class RateLimiter {
  private readonly windows = new Map<string, number[]>();
  private readonly penaltyUntil = new Map<string, number>();

  constructor(
    private readonly options: RateLimitOptions,
    private readonly clock: Clock,
  ) {}

  /** Records a request to `baseId`; returns false when it must be answered with a 429. */
  admit(baseId: string): boolean {
    const now = this.clock.now();
    const until = this.penaltyUntil.get(baseId);
    if (until !== undefined) {
      if (now < until) return false;
      this.penaltyUntil.delete(baseId);
    }
    let window = this.windows.get(baseId);
    if (!window) {
      window = [];
      this.windows.set(baseId, window);
    }
    while (window.length > 0 && (window[0] as number) <= now - WINDOW_MS) window.shift();
    if (window.length >= this.options.requestsPerSecond) {
      this.penaltyUntil.set(baseId, now + this.options.penaltyMs);
      window.length = 0;
      return false;
    }
    window.push(now);
    return true;
  }

  /** Milliseconds left of the base's penalty (0 when it is not limited). */
  penaltyRemainingMs(baseId: string): number {
    const until = this.penaltyUntil.get(baseId);
    return until === undefined ? 0 : Math.max(0, until - this.clock.now());
  }

  reset(): void {
    this.windows.clear();
    this.penaltyUntil.clear();
  }
}
