import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import { StateName } from "../../../stacks/drain-definition";
import { countDrain, messageSteps, readableCause } from "./drain-history";
import { parseWindow } from "./sfn-reading";
import { parseStage, stackName, targetFromOutputs } from "./sfn-target";

/** A drain's history in AWS's shapes, reduced to what the reading looks at. */
let id = 0;
const at = new Date("2025-01-01T10:00:00Z");
const event = (type: string, details: Partial<HistoryEvent> = {}): HistoryEvent => ({ id: ++id, type: type as never, timestamp: at, ...details });
const exited = (name: string, output: unknown) => event("TaskStateExited", { stateExitedEventDetails: { name, output: JSON.stringify(output) } });
const entered = (name: string, input: unknown) => event("TaskStateEntered", { stateEnteredEventDetails: { name, input: JSON.stringify(input) } });
const body = (eventId: string) => JSON.stringify({ Id: eventId, FundraiserId: "f" });
const failure = { Error: "InvalidDonationEventError", Cause: JSON.stringify({ errorType: "InvalidDonationEventError", errorMessage: "DonationAmount: must be greater than 0" }) };

const HISTORY: HistoryEvent[] = [
  event("ExecutionStarted"),
  entered(StateName.ReceiveBatch, {}),
  event("TaskScheduled"),
  exited(StateName.ReceiveBatch, { Messages: [{ MessageId: "m1", Body: body("EVT-1") }, { MessageId: "m2", Body: body("evt-2") }] }),
  entered(StateName.DeadLetterInvalidMessage, { message: { MessageId: "m2", Body: body("evt-2") }, failure }),
  event("TaskScheduled"),
  exited(StateName.InvalidMessageDeadLettered, {}),
  entered(StateName.WriteToAirtable, {}),
  event("TaskScheduled"),
  exited(StateName.WriteToAirtable, { round: { retryAt: "2025-01-01T10:00:30Z", written: [] } }),
  entered(StateName.WriteToAirtable, {}),
  event("TaskScheduled"),
  event("TaskFailed"),
  event("TaskScheduled"), // a retry: scheduled again without a new entry
  exited(StateName.WriteToAirtable, { round: { retryAt: null, written: [{ MessageId: "m1", eventId: "evt-1", outcome: "created", recordId: "recA" }], release: [] } }),
  event("ExecutionSucceeded"),
];

describe("reading a drain's history", () => {
  it("counts what it received, wrote, dead-lettered and retried", () => {
    // Act / Assert: 4 Tasks entered, 5 scheduled (one retry), one wait for Airtable
    expect(countDrain(HISTORY)).toEqual({ received: 2, written: 1, deadLettered: 1, retried: 2 });
  });

  it("follows a donation by its event Id, whatever its case, to its record", () => {
    // Act
    const steps = messageSteps(HISTORY, { eventId: "evt-1" });

    // Assert
    expect(steps.map((step) => [step.what, step.messageId, step.record?.recordId])).toEqual([
      ["received", "m1", undefined],
      ["written", "m1", "recA"],
    ]);
  });

  it("follows a message by its MessageId to the DLQ, with its reason", () => {
    // Act
    const steps = messageSteps(HISTORY, { messageId: "m2" });

    // Assert
    expect(steps.map((step) => step.what)).toEqual(["received", "dead-lettered"]);
    expect(steps[1]?.reason?.error).toBe("InvalidDonationEventError");
    expect(readableCause(steps[1]!.reason!.cause)).toBe("DonationAmount: must be greater than 0");
  });

  it("finds nothing for a message the execution never saw", () => {
    expect(messageSteps(HISTORY, { eventId: "evt-9" })).toEqual([]);
  });
});

describe("a stage and a window", () => {
  it("reads the state machine, its region and the queues from the stack's outputs", () => {
    // Act
    const target = targetFromOutputs("prod", [
      { OutputKey: "StateMachineArn", OutputValue: "arn:aws:states:eu-west-1:123456789012:stateMachine:prod-fundraise-sync-DrainDonations" },
      { OutputKey: "QueueUrl", OutputValue: "https://sqs.eu-west-1.amazonaws.com/123456789012/prod-FundraiseDonations" },
    ]);

    // Assert
    expect(stackName("prod")).toBe("prod-fundraise-sync-Workflow");
    expect(target).toMatchObject({ region: "eu-west-1", queueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/prod-FundraiseDonations" });
    expect(() => targetFromOutputs("prod", [])).toThrow(/has no StateMachineArn output: deploy this version first/);
    expect(() => parseStage("prod;rm")).toThrow(/--stage must be a stage name/);
  });

  it("reads durations such as 30m, 24h and 7d", () => {
    expect([parseWindow("30m"), parseWindow("24h"), parseWindow("7d"), parseWindow("soon"), parseWindow("0h")]).toEqual([
      1_800_000,
      86_400_000,
      604_800_000,
      undefined,
      undefined,
    ]);
  });
});
