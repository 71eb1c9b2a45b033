import { describe, expect, it } from "vitest";
import { AIRTABLE_RATE_WINDOW_MS } from "./limits";
import { type BudgetClock, RequestBudget } from "./request-budget";

/** A clock that only moves when someone sleeps on it: runs are exact and instant. */
function manualClock(start = 1_000_000): BudgetClock & { sleeps: number[] } {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += Math.max(0, ms);
    },
  };
}

/** Sends `count` requests one after another, each answered `latencyMs` after it leaves; returns send/answer times. */
async function sendSequentially(budget: RequestBudget, clock: ReturnType<typeof manualClock>, count: number, latencyMs: number) {
  const requests: { sent: number; answered: number }[] = [];
  for (let i = 0; i < count; i++) {
    const answered = await budget.take();
    const sent = clock.now();
    await clock.sleep(latencyMs);
    answered();
    requests.push({ sent, answered: clock.now() });
  }
  return requests;
}

/** The most requests Airtable could count in one window, wherever between send and answer each one arrived. */
function worstWindow(requests: { sent: number; answered: number }[]): number {
  // A later request's earliest arrival (its send) against an earlier one's latest (its answer).
  return Math.max(
    ...requests.map((last, index) => requests.slice(0, index + 1).filter((earlier) => earlier.answered > last.sent - AIRTABLE_RATE_WINDOW_MS).length),
  );
}

describe("RequestBudget", () => {
  it.each([1, 3, 4, 5])("never lets %i requests/s become more, wherever each request lands between send and answer", async (rps) => {
    // Arrange
    const clock = manualClock();
    const budget = new RequestBudget(rps, undefined, clock);

    // Act
    const requests = await sendSequentially(budget, clock, 25, 37);

    // Assert
    expect(worstWindow(requests)).toBeLessThanOrEqual(rps);
  });

  it("lets a full share leave at once, then waits for the oldest answer to age out of the window", async () => {
    // Arrange
    const clock = manualClock();
    const budget = new RequestBudget(4, undefined, clock);

    // Act
    const requests = await sendSequentially(budget, clock, 5, 10);

    // Assert: four back to back (10 ms apart), the fifth one window after the first answer
    expect(requests.slice(0, 4).map((r) => r.sent - requests[0]!.sent)).toEqual([0, 10, 20, 30]);
    expect(requests[4]!.sent).toBe(requests[0]!.answered + AIRTABLE_RATE_WINDOW_MS);
  });

  it("carries the budget across invocations through its state", async () => {
    // Arrange: one invocation spends the whole share, the next starts from its state
    const clock = manualClock();
    const first = new RequestBudget(2, undefined, clock);
    const earlier = await sendSequentially(first, clock, 2, 5);

    // Act
    const second = new RequestBudget(2, first.state(), clock);
    const [next] = await sendSequentially(second, clock, 1, 5);

    // Assert
    expect(next!.sent).toBeGreaterThanOrEqual(earlier[0]!.answered + AIRTABLE_RATE_WINDOW_MS);
  });

  it("counts requests in flight: concurrent takers never exceed the share", async () => {
    // Arrange
    const clock = manualClock();
    const budget = new RequestBudget(3, undefined, clock);
    let inFlight = 0;
    let most = 0;

    // Act: six lanes, each holding its place until released by the test
    const releases: (() => void)[] = [];
    const lanes = Array.from({ length: 6 }, async () => {
      const answered = await budget.take();
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise<void>((resolve) => releases.push(resolve));
      inFlight--;
      answered();
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const admittedFirst = releases.length;
    while (releases.length > 0) releases.shift()!();
    await new Promise((resolve) => setTimeout(resolve, 10));
    while (releases.length > 0) releases.shift()!();
    await Promise.all(lanes);

    // Assert
    expect(admittedFirst).toBe(3);
    expect(most).toBe(3);
  });

  it("forgets answers older than a window, and gives back a place that was not used", async () => {
    // Arrange
    const clock = manualClock();
    const budget = new RequestBudget(1, { recentAnswers: [clock.now() - AIRTABLE_RATE_WINDOW_MS] }, clock);

    // Act
    const unused = await budget.take();
    unused({ sent: false });
    const used = await budget.take();
    used();

    // Assert
    expect(clock.sleeps).toEqual([]);
    expect(budget.state().recentAnswers).toEqual([clock.now()]);
  });

  it("lets nothing leave before a lock carried in its state ends, and forgets the lock once it is over", async () => {
    // Arrange: the previous invocation saw a 429; this one starts 600 ms before the base unlocks
    const clock = manualClock();
    const budget = new RequestBudget(4, { recentAnswers: [], lockedUntil: clock.now() + 600 }, clock);

    // Act
    const answered = await budget.take();
    const sentAt = clock.now();
    answered();

    // Assert
    expect(clock.sleeps).toEqual([600]);
    expect(sentAt).toBe(1_000_600);
    expect(budget.state()).toEqual({ recentAnswers: [sentAt] });
  });

  it("carries a lock it learns of into its state", () => {
    // Arrange
    const clock = manualClock();
    const budget = new RequestBudget(4, undefined, clock);

    // Act
    budget.lock(clock.now() + 30_000);

    // Assert
    expect(budget.state().lockedUntil).toBe(clock.now() + 30_000);
    expect(budget.lockedUntil()).toBe(clock.now() + 30_000);
  });

  it.each([0, 1.5, -2])("refuses a share of %s", (rps) => {
    // Act + Assert
    expect(() => new RequestBudget(rps)).toThrow(RangeError);
  });
});
