import { AIRTABLE_RATE_WINDOW_MS } from "./limits";

/**
 * What a {@link RequestBudget} remembers between invocations. It travels in the execution's state (a few numbers),
 * so consecutive WriteToAirtable tasks, and a continuation execution, share one budget.
 */
export interface RequestBudgetState {
  /** When Airtable answered the most recent requests (epoch ms), oldest first; only those within the last window. */
  recentAnswers: number[];
  /**
   * Until when Airtable refuses every request of the base (epoch ms), after a 429. Absent when it is not locked. It
   * travels with the answers, so that whatever wakes the next invocation (a Wait state, which AWS ends up to 999 ms
   * early because it truncates timestamps to the second; a continuation; a redelivery) sends nothing before it.
   */
  lockedUntil?: number;
}

/** Milliseconds since the epoch; tests inject one to move time by hand. */
export interface BudgetClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: BudgetClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * The pipeline's share of an Airtable base: at most `requestsPerSecond` requests in any one-second window *as Airtable
 * sees them*, retries and bisection requests included.
 *
 * Airtable counts a request when it arrives, which is some time between our send and its answer. So a request holds
 * its place in the window from its send until one window after its answer: a new request may leave only while fewer
 * than `requestsPerSecond` requests are in flight or were answered within the last second. Then any request it could
 * share a window with at Airtable is one of those, whatever the network jitter: exact, with no safety margin, and
 * requests may still overlap in flight (a burst of `requestsPerSecond` leaves at once).
 *
 * @example
 * const budget = new RequestBudget(4, previousState);
 * const answered = await budget.take();
 * try { await send(); } finally { answered(); }
 * nextState = budget.state();
 */
export class RequestBudget {
  readonly #answers: number[];
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];
  #lockedUntil: number | undefined;

  constructor(
    readonly requestsPerSecond: number,
    state: RequestBudgetState = { recentAnswers: [] },
    private readonly clock: BudgetClock = realClock,
  ) {
    if (!(Number.isInteger(requestsPerSecond) && requestsPerSecond >= 1)) {
      throw new RangeError(`requestsPerSecond must be a whole number >= 1, got ${requestsPerSecond}`);
    }
    this.#answers = [...state.recentAnswers].sort((a, b) => a - b);
    this.#lockedUntil = state.lockedUntil;
  }

  /** Records that Airtable locked the base until `until` (epoch ms): {@link take} waits it out. */
  lock(until: number): void {
    this.#lockedUntil = Math.max(this.#lockedUntil ?? 0, until);
  }

  /** When the base unlocks (epoch ms), or undefined if it is not locked now. */
  lockedUntil(): number | undefined {
    return this.#lockedUntil !== undefined && this.#lockedUntil > this.clock.now() ? this.#lockedUntil : undefined;
  }

  /**
   * Waits until one more request fits the share, and reserves its place.
   * @returns a function to call once Airtable has answered (or the request failed): the place then ages out of the
   *   window one second later. Called with `{ sent: false }`, it gives the place back unused.
   */
  async take(): Promise<(outcome?: { sent: boolean }) => void> {
    for (;;) {
      const now = this.clock.now();
      // Never into a lock: the request would draw another 30 s lock, for every client of the base.
      const locked = this.lockedUntil();
      if (locked !== undefined) {
        await this.clock.sleep(locked - now);
        continue;
      }
      this.#forgetOlderThan(now);
      if (this.#inFlight + this.#answers.length < this.requestsPerSecond) break;
      if (this.#answers.length > 0) {
        // The oldest answer leaves the window at answer + window (Airtable forgets a request exactly one window on).
        await this.clock.sleep(this.#answers[0]! + AIRTABLE_RATE_WINDOW_MS - now);
      } else {
        // Every place is in flight: wait for an answer.
        await new Promise<void>((resolve) => this.#waiting.push(resolve));
      }
    }
    this.#inFlight++;
    let released = false;
    return ({ sent } = { sent: true }) => {
      if (released) return;
      released = true;
      this.#inFlight--;
      if (sent) this.#answers.push(this.clock.now());
      for (const wake of this.#waiting.splice(0)) wake();
    };
  }

  /** What the next invocation needs to carry on with the same budget. */
  state(): RequestBudgetState {
    this.#forgetOlderThan(this.clock.now());
    const lockedUntil = this.lockedUntil();
    return { recentAnswers: [...this.#answers], ...(lockedUntil !== undefined ? { lockedUntil } : {}) };
  }

  #forgetOlderThan(now: number) {
    while (this.#answers.length > 0 && this.#answers[0]! + AIRTABLE_RATE_WINDOW_MS <= now) this.#answers.shift();
  }
}
