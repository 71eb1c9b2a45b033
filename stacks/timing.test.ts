import { describe, expect, it } from "vitest";
import {
  type AslGraph,
  type AslRetrier,
  type AslState,
  longestPath,
  maxTaskAttempts,
  retrierWaitSeconds,
  worstCaseEvents,
  worstCaseGraphSeconds,
  worstCaseTaskSeconds,
} from "./timing";

describe("retrierWaitSeconds", () => {
  it.each<{ case: string; retrier: AslRetrier; seconds: number }>([
    { case: "exponential: 2 + 4 + 8", retrier: { ErrorEquals: ["X"], IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2 }, seconds: 14 },
    {
      case: "capped by MaxDelaySeconds: 2 + 4 + min(8, 5)",
      retrier: { ErrorEquals: ["X"], IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2, MaxDelaySeconds: 5 },
      seconds: 11,
    },
    {
      case: "a cap every wait hits: 3 × 1",
      retrier: { ErrorEquals: ["X"], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 3, MaxDelaySeconds: 1 },
      seconds: 3,
    },
    { case: "Step Functions' defaults (1 s, 3 attempts, rate 2): 1 + 2 + 4", retrier: { ErrorEquals: ["X"] }, seconds: 7 },
    {
      case: "the Airtable 429 rule: 30 + 45 + 67.5",
      retrier: { ErrorEquals: ["X"], IntervalSeconds: 30, MaxAttempts: 3, BackoffRate: 1.5, JitterStrategy: "NONE" },
      seconds: 142.5,
    },
    { case: "constant interval: 4 × 5", retrier: { ErrorEquals: ["X"], IntervalSeconds: 5, MaxAttempts: 4, BackoffRate: 1 }, seconds: 20 },
    { case: "MaxAttempts 0 (never retry)", retrier: { ErrorEquals: ["X"], IntervalSeconds: 5, MaxAttempts: 0 }, seconds: 0 },
    {
      case: "full jitter does not lower the worst case: 2 + 4",
      retrier: { ErrorEquals: ["X"], IntervalSeconds: 2, MaxAttempts: 2, BackoffRate: 2, JitterStrategy: "FULL" },
      seconds: 6,
    },
  ])("$case → $seconds s", ({ retrier, seconds }) => {
    // Act + Assert
    expect(retrierWaitSeconds(retrier)).toBeCloseTo(seconds, 10);
  });
});

describe("worstCaseTaskSeconds", () => {
  it.each<{ case: string; state: AslState; attempts: number; seconds: number }>([
    { case: "no retry: one attempt to its timeout", state: { Type: "Task", TimeoutSeconds: 10 }, attempts: 1, seconds: 10 },
    {
      case: "one retrier: 4 attempts × 10 s + (2 + 4 + 8) s of waits",
      state: { Type: "Task", TimeoutSeconds: 10, Retry: [{ ErrorEquals: ["A"], IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2 }] },
      attempts: 4,
      seconds: 54,
    },
    {
      case: "two retriers count separately: (1 + 3 + 1) × 10 s + 14 s + 30 s",
      state: {
        Type: "Task",
        TimeoutSeconds: 10,
        Retry: [
          { ErrorEquals: ["A"], IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2 },
          { ErrorEquals: ["B"], IntervalSeconds: 30, MaxAttempts: 1 },
        ],
      },
      attempts: 5,
      seconds: 94,
    },
    {
      case: "a retrier with defaults: 4 × 5 s + 7 s",
      state: { Type: "Task", TimeoutSeconds: 5, Retry: [{ ErrorEquals: ["States.ALL"] }] },
      attempts: 4,
      seconds: 27,
    },
  ])("$case", ({ state, attempts, seconds }) => {
    // Act + Assert
    expect(maxTaskAttempts(state)).toBe(attempts);
    expect(worstCaseTaskSeconds("T", state)).toBe(seconds);
  });

  it("throws for a Task without TimeoutSeconds, whose worst case is unbounded", () => {
    // Arrange
    const state: AslState = { Type: "Task", Retry: [{ ErrorEquals: ["A"] }] };

    // Act + Assert
    expect(() => worstCaseTaskSeconds("WriteToAirtable", state)).toThrow("Task WriteToAirtable has no TimeoutSeconds");
  });
});

/**
 * Validate (10 s) → IsCopy (Choice) → Write (20 s, 1 retry after 5 s; Catch → DeadLetter 30 s) → Delete (3 s);
 * IsCopy's other branch → DeleteCopy (3 s).
 */
const graph: AslGraph = {
  StartAt: "Validate",
  States: {
    Validate: { Type: "Task", TimeoutSeconds: 10, Next: "IsCopy" },
    IsCopy: { Type: "Choice", Choices: [{ Next: "DeleteCopy" }], Default: "Write" },
    Write: {
      Type: "Task",
      TimeoutSeconds: 20,
      Retry: [{ ErrorEquals: ["A"], IntervalSeconds: 5, MaxAttempts: 1 }],
      Catch: [{ ErrorEquals: ["States.ALL"], Next: "DeadLetter" }],
      Next: "Delete",
    },
    DeadLetter: { Type: "Task", TimeoutSeconds: 30, Next: "Done" },
    Delete: { Type: "Task", TimeoutSeconds: 3, Next: "Done" },
    DeleteCopy: { Type: "Task", TimeoutSeconds: 3, End: true },
    Done: { Type: "Pass", End: true },
  },
};

describe("longestPath", () => {
  const seconds = (name: string, state: AslState) => (state.Type === "Task" ? worstCaseTaskSeconds(name, state) : 0);

  it("takes the Catch branch when it is the longest: Validate 10 + Write (2 × 20 + 5) + DeadLetter 30", () => {
    // Act + Assert
    expect(longestPath(graph, seconds)).toBe(85);
  });

  it("follows Next when the catcher is shorter", () => {
    // Arrange: a cheap catcher
    const cheap: AslGraph = { ...graph, States: { ...graph.States, DeadLetter: { Type: "Task", TimeoutSeconds: 1, Next: "Done" } } };

    // Act + Assert: 10 + 45 + max(Delete 3, DeadLetter 1)
    expect(longestPath(cheap, seconds)).toBe(58);
  });

  it("follows a Choice's rules and Default", () => {
    // Arrange: the copy branch becomes the slow one
    const slowCopy: AslGraph = { ...graph, States: { ...graph.States, DeleteCopy: { Type: "Task", TimeoutSeconds: 500, End: true } } };

    // Act + Assert
    expect(longestPath(slowCopy, seconds)).toBe(510);
  });

  it("counts states with any weight (events here: every state 1)", () => {
    // Act + Assert: Validate, IsCopy, Write, DeadLetter, Done
    expect(longestPath(graph, () => 1)).toBe(5);
  });

  it("refuses a graph that loops, and a transition to an unknown state", () => {
    // Arrange
    const loop: AslGraph = { StartAt: "A", States: { A: { Type: "Pass", Next: "B" }, B: { Type: "Pass", Next: "A" } } };
    const dangling: AslGraph = { StartAt: "A", States: { A: { Type: "Pass", Next: "Nowhere" } } };

    // Act + Assert
    expect(() => longestPath(loop, () => 1)).toThrow("loops");
    expect(() => longestPath(dangling, () => 1)).toThrow("Unknown state Nowhere");
  });
});

describe("graphs with Maps and Waits", () => {
  /** A Map of `graph` (85 s per item at worst, see above), its items in waves of `concurrency`. */
  const map = (concurrency: number): AslState => ({ Type: "Map", MaxConcurrency: concurrency, ItemProcessor: graph, End: true });
  const outer = (concurrency: number): AslGraph => ({
    StartAt: "Receive",
    States: { Receive: { Type: "Task", TimeoutSeconds: 7, Next: "Items" }, Items: map(concurrency) },
  });

  it.each<{ items: number; concurrency: number; waves: number }>([
    { items: 10, concurrency: 10, waves: 1 },
    { items: 10, concurrency: 5, waves: 2 },
    { items: 30, concurrency: 10, waves: 3 },
    { items: 1, concurrency: 5, waves: 1 },
  ])("$items items at concurrency $concurrency: $waves waves of the item's worst case", ({ items, concurrency, waves }) => {
    // Act + Assert
    expect(worstCaseGraphSeconds(outer(concurrency), { mapItems: { Items: items } })).toBe(7 + waves * 85);
  });

  it("takes a Wait at the bound it is given", () => {
    // Arrange
    const waiting: AslGraph = { StartAt: "Wait", States: { Wait: { Type: "Wait", TimestampPath: "$.at", End: true } } };

    // Act + Assert
    expect(worstCaseGraphSeconds(waiting, { mapItems: {}, waitSeconds: 30 })).toBe(30);
  });

  it("refuses a Map whose items are not bounded", () => {
    // Act + Assert
    expect(() => worstCaseGraphSeconds(outer(5), { mapItems: {} })).toThrow("Map Items has no bound on its items");
  });

  it("events: a Task adds entered + exited + 3 per attempt; any other state 2", () => {
    // Act + Assert: Write has 2 attempts
    expect(worstCaseEvents("Write", graph.States.Write!, { mapItems: {} })).toBe(2 + 3 * 2);
    expect(worstCaseEvents("IsCopy", graph.States.IsCopy!, { mapItems: {} })).toBe(2);
  });

  it("events of a Map: its own 4, and per item the iteration's 2 plus its longest path", () => {
    // Validate 5 + IsCopy 2 + Write 8 + DeadLetter 5 + Done 2 = 22 per item
    expect(worstCaseEvents("Items", map(3), { mapItems: { Items: 10 } })).toBe(4 + 10 * (2 + 22));
  });
});
