import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import { stateActivity, normalizeEvent, annotate } from "@fundraise-sync/console/events";
import { AwsHistoryReader, statesOf } from "./console-feed";

/** A Map whose iterations Validate one message each: a Lambda error retried, an invalid body caught. */
const definition = {
  StartAt: "Each",
  States: {
    Each: {
      Type: "Map",
      End: true,
      ItemProcessor: {
        StartAt: "Validate",
        States: {
          Validate: {
            Type: "Task",
            Resource: "arn:aws:states:::lambda:invoke",
            Retry: [{ ErrorEquals: ["Lambda.ServiceException"], IntervalSeconds: 2 }],
            Catch: [{ ErrorEquals: ["InvalidDonationEventError"], Next: "DeadLetter" }],
            End: true,
          },
          DeadLetter: { Type: "Pass", End: true },
        },
      },
    },
  },
};

const message = (id: string) => JSON.stringify({ MessageId: id, Body: JSON.stringify({ Id: `evt-${id}` }) });

/**
 * Two iterations side by side, as AWS numbers them: each event chains to the one before it in its own branch
 * (`previousEventId`), not to the event before it in the list.
 */
const events: HistoryEvent[] = [
  { id: 1, previousEventId: 0, type: "ExecutionStarted", executionStartedEventDetails: { input: "{}" } },
  { id: 2, previousEventId: 1, type: "MapStateEntered", stateEnteredEventDetails: { name: "Each", input: `[${message("a")},${message("b")}]` } },
  { id: 3, previousEventId: 2, type: "MapStateStarted" },
  { id: 4, previousEventId: 3, type: "MapIterationStarted", mapIterationStartedEventDetails: { name: "Each", index: 0 } },
  { id: 5, previousEventId: 3, type: "MapIterationStarted", mapIterationStartedEventDetails: { name: "Each", index: 1 } },
  { id: 6, previousEventId: 4, type: "TaskStateEntered", stateEnteredEventDetails: { name: "Validate", input: message("a") } },
  { id: 7, previousEventId: 5, type: "TaskStateEntered", stateEnteredEventDetails: { name: "Validate", input: message("b") } },
  { id: 8, previousEventId: 6, type: "TaskScheduled" },
  { id: 9, previousEventId: 7, type: "TaskScheduled" },
  { id: 10, previousEventId: 8, type: "TaskFailed", taskFailedEventDetails: { error: "Lambda.ServiceException", cause: "busy" } },
  { id: 11, previousEventId: 9, type: "TaskFailed", taskFailedEventDetails: { error: "InvalidDonationEventError", cause: "no FundraiserId" } },
  { id: 12, previousEventId: 10, type: "TaskScheduled" },
  { id: 13, previousEventId: 11, type: "TaskStateExited", stateExitedEventDetails: { name: "Validate", output: "{}" } },
  { id: 14, previousEventId: 13, type: "PassStateEntered", stateEnteredEventDetails: { name: "DeadLetter", input: message("b") } },
  { id: 15, previousEventId: 12, type: "TaskSucceeded" },
  { id: 16, previousEventId: 15, type: "TaskStateExited", stateExitedEventDetails: { name: "Validate", output: "{}" } },
  { id: 17, previousEventId: 14, type: "PassStateExited", stateExitedEventDetails: { name: "DeadLetter", output: "{}" } },
  { id: 18, previousEventId: 16, type: "MapIterationSucceeded", mapIterationSucceededEventDetails: { name: "Each", index: 0 } },
  { id: 19, previousEventId: 17, type: "MapIterationSucceeded", mapIterationSucceededEventDetails: { name: "Each", index: 1 } },
  { id: 20, previousEventId: 19, type: "MapStateSucceeded" },
  { id: 21, previousEventId: 20, type: "MapStateExited", stateExitedEventDetails: { name: "Each", output: "[]" } },
  { id: 22, previousEventId: 21, type: "ExecutionSucceeded", executionSucceededEventDetails: { output: "[]" } },
].map((event, position) => ({ ...event, timestamp: new Date(1_700_000_000_000 + position) }) as HistoryEvent);

describe("AWS's history read as the interpreter's events", () => {
  it("a retry and a catch land on the iteration they happened in, following previousEventId", () => {
    // Arrange
    const reader = new AwsHistoryReader(statesOf(definition));

    // Act
    const raws = events.flatMap((event) => reader.read(event));
    const read = raws.map((raw, position) => annotate(normalizeEvent(raw, position + 1)));

    // Assert
    expect(read.filter((event) => event.state === "Validate" && event.type !== "StateEntered").map((event) => [event.type, event.messageIds?.[0], event.error])).toEqual([
      ["StateFailed", "a", "Lambda.ServiceException"],
      ["StateFailed", "b", "InvalidDonationEventError"],
      ["StateRetried", "a", undefined],
      ["StateCaught", "b", undefined],
      ["StateExited", "b", undefined],
      ["StateExited", "a", undefined],
    ]);
    expect(read.find((event) => event.type === "StateRetried")?.retry).toEqual({ attempt: 1, errors: ["Lambda.ServiceException"], intervalSeconds: 2 });
    expect(read.find((event) => event.type === "StateCaught")?.caught).toEqual({ errors: ["InvalidDonationEventError"], next: "DeadLetter" });
    expect(read.filter((event) => event.type === "MapIterationStarted").map((event) => [event.state, event.index])).toEqual([["Each", 0], ["Each", 1]]);
  });

  it("the graph's colours come out as for a local run: Validate failed once (caught), retried once, the Map passed", () => {
    // Arrange
    const reader = new AwsHistoryReader(statesOf(definition));

    // Act
    const activity = stateActivity(events.flatMap((event) => reader.read(event)).map((raw, position) => annotate(normalizeEvent(raw, position + 1))));

    // Assert
    expect(activity.Validate).toMatchObject({ status: "failed", entered: 2, passed: 1, failed: 1, retried: 1, inNow: 0, caughtTo: { DeadLetter: 1 } });
    expect(activity.Each).toMatchObject({ status: "succeeded", entered: 1, passed: 1, inNow: 0 });
    expect(activity.DeadLetter).toMatchObject({ status: "succeeded", passed: 1 });
  });
});
