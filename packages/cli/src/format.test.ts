import { describe, expect, it } from "vitest";
import type { DrainSummary } from "@fundraise-sync/local/workflow";
import { idleLine, progressLine, summaryLine } from "./format";

const summary: DrainSummary = {
  executionArn: "arn:aws:states:us-east-1:123456789012:execution:x:1",
  status: "SUCCEEDED",
  continued: false,
  received: 10,
  written: 9,
  updated: 1,
  copiesInBatch: 0,
  deadLettered: 1,
  leftInQueue: 0,
  held: 0,
  retried: 2,
  stateTransitions: 87,
  durationMs: 3200,
};

describe("the words of npm start", () => {
  it("names the summary's leftovers 'left for redelivery' and the progress line's queue depth 'backlog', never the same", () => {
    // Act
    const line = summaryLine(summary);
    const progress = progressLine(50, 5);

    // Assess
    expect(line).toBe(
      "SUCCEEDED received 10, written 9 (1 updated), copies 0, retried 2, dead-lettered 1, left for redelivery 0, transitions 87, 3.2 s",
    );
    expect(progress).toBe("draining… backlog 50 (queued or in flight), 5 written so far");
    expect(line).not.toContain("backlog");
    expect(progress).not.toContain("left");
  });

  it("says how many donations are held while Airtable fails, and since when", () => {
    // Act
    const line = summaryLine({ ...summary, written: 0, updated: 0, deadLettered: 0, held: 30, continued: true, airtableFailingSince: "2026-12-05T08:31:02.120Z" });

    // Assert
    expect(line).toMatch(/, 30 held while Airtable fails \(since 08:31:02 UTC\), retrying in a new execution$/);
  });

  it("says once, quietly, that the queue is empty", () => {
    expect(idleLine(10)).toBe("queue empty; checking every 10 s (executions that find nothing print nothing)");
  });

  it("adds the failure's readable cause under a failed execution", () => {
    // Act
    const line = summaryLine({ ...summary, status: "FAILED", error: { name: "AirtableConfigurationError", cause: '{"errorMessage":"bad token"}' } });

    // Assess
    expect(line.split("\n")[1]).toBe("  AirtableConfigurationError: bad token");
  });
});
