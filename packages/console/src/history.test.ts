import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { ErrorName, SqsEventBus, sampleDonations } from "@fundraise-sync/core";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { donationRecords } from "@fundraise-sync/local/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stateActivity } from "./events";
import { type AslDefinition, definitionToGraph } from "./graph";
import { History } from "./history";
import { retryingStates, waitingStates } from "./test-support";

/**
 * The history as the console builds it from the real synthesized drain executed locally: real SQS server, real
 * emulator, real handlers. Retry waits are shortened for every state that retries (read from the definition).
 */
describe("History fed by the local runtime", () => {
  const workflow = inject("workflow");
  let pipeline: LocalPipeline;
  let dir: string;
  let history: History;
  let stop: () => void;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "console-history-"));
    pipeline = await startLocalPipeline({
      workflow,
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
      retryIntervalOverrides: retryingStates(workflow.definition as unknown as AslDefinition, 20),
      waitTimeOverrides: waitingStates(workflow.definition as unknown as AslDefinition, 20),
    });
    history = await History.open({ dir });
    stop = pipeline.workflow.observe(history.observer());
  });
  afterAll(async () => {
    stop?.();
    await history?.close();
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const invalidBody = JSON.stringify({ Id: "not-a-guid", DonationAmount: -5 });
  let valid: ReturnType<typeof sampleDonations>;
  let summary: Awaited<ReturnType<LocalPipeline["workflow"]["execute"]>>;
  let invalidMessageId: string;

  beforeAll(async () => {
    valid = sampleDonations(3);
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(valid);
    invalidMessageId = (await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: invalidBody }))).MessageId!;
    pipeline.emulator!.faults.failNext(1, { status: 429 });
    summary = await pipeline.workflow.execute();
  });

  it("lists the execution with its summary", () => {
    const [entry] = history.list();
    expect(entry).toMatchObject({ executionArn: summary.executionArn, status: "SUCCEEDED", idle: false, summary });
    expect(summary).toMatchObject({ received: 4, written: 3, deadLettered: 1, retried: 1 });
  });

  it("keeps every retry's error and the catch, with the Map iteration index", async () => {
    // Act
    const events = (await history.events(history.list()[0]!.name))!;

    // Assert: the one 429 shows once, whether the state machine retried it (StateFailed) or the state reported it in
    // its output and waited it out
    const failed = events.filter((event) => event.type === "StateFailed" && event.error === ErrorName.AirtableRateLimited);
    const reported = events.flatMap((event) => event.reported ?? []).filter((error) => error.error === ErrorName.AirtableRateLimited);
    expect(failed.length + reported.length).toBe(1);
    expect([...failed.map((event) => event.cause), ...reported.map((error) => error.cause)][0]).toContain("429");
    const caught = events.find((event) => event.type === "StateCaught")!;
    expect(caught.index).toBeTypeOf("number");
    expect(caught.messageIds).toEqual([invalidMessageId]);
    const failure = events.find((event) => event.type === "StateFailed" && event.state === caught.state && event.index === caught.index)!;
    expect(failure.error).toBe(ErrorName.InvalidDonationEvent);
    expect(failure.cause).toContain("DonationAmount");
  });

  it("counts what each state did, and the counters agree with the summary", async () => {
    const events = (await history.events(history.list()[0]!.name))!;
    const activity = stateActivity(events);
    const totals = Object.values(activity);
    expect(totals.every((state) => state.inNow === 0)).toBe(true);
    const retries = events.filter((event) => event.type === "StateRetried").length;
    expect(totals.reduce((sum, state) => sum + state.retried, 0)).toBe(retries);
    // Step Functions bills each state entered and each retry: the summary counts the same.
    expect(totals.reduce((sum, state) => sum + state.entered, 0) + retries).toBe(summary.stateTransitions);
    // The state that caught the invalid message failed once and passed the three valid ones.
    const caught = events.find((event) => event.type === "StateCaught")!;
    expect(activity[caught.state!]).toMatchObject({ status: "failed", failed: 1, passed: 3 });
  });

  it("finds the records the pipeline wrote in its own outputs, with their fields", () => {
    // Act
    const records = history.records();

    // Assert: the same records the emulator holds
    const stored = donationRecords(pipeline);
    expect(records.map((record) => record.recordId).sort()).toEqual(stored.map((record) => record.id).sort());
    for (const record of records) {
      const original = stored.find((candidate) => candidate.id === record.recordId)!;
      expect(record.eventId).toBe(original.fields.Id);
      expect(record.fields).toMatchObject(original.fields);
    }
  });

  it("tells a message's story by event Id and by MessageId", async () => {
    // Act
    const byEvent = await history.story(valid[0]!.Id);
    const byMessage = await history.story(invalidMessageId);

    // Assert
    expect(byEvent.executions).toHaveLength(1);
    expect(byEvent.records.map((record) => record.eventId)).toEqual([valid[0]!.Id]);
    expect(new Set(byEvent.executions[0]!.events.map((event) => event.state)).size).toBeGreaterThan(2);
    expect(byMessage.records).toEqual([]);
    expect(byMessage.executions[0]!.events.some((event) => event.type === "StateCaught")).toBe(true);
  });

  it("survives a restart: a new History on the same folder has the executions and their events", async () => {
    // Arrange
    await history.flush();
    const before = history.list()[0]!;

    // Act
    const reopened = await History.open({ dir });

    // Assert
    expect(reopened.list().map((entry) => entry.name)).toContain(before.name);
    const events = await reopened.events(before.name);
    expect(events).toHaveLength(before.eventCount);
    expect((await reopened.story(valid[1]!.Id)).records).toHaveLength(1);
    await reopened.close();
  });

  it("drops idle executions beyond its limit, keeping the busy ones", async () => {
    // Arrange
    const small = await History.open({ dir: await mkdtemp(path.join(tmpdir(), "console-history-idle-")), maxIdle: 2 });
    const unobserve = pipeline.workflow.observe(small.observer());

    // Act: four executions that find the queue empty
    for (let run = 0; run < 4; run++) await pipeline.workflow.execute();
    unobserve();

    // Assert
    expect(small.list().filter((entry) => entry.idle)).toHaveLength(2);
    await small.close();
  });

  it("marks failed only the state that raised a caught error, inside nested Maps, and the Catch edge it took", async () => {
    // Arrange: one message alone per execution, so a receive returns exactly one message (its entry holds none, its
    // exit holds one: the pairing that used to leave the receive, or the Map around it, "failed")
    const graph = definitionToGraph(workflow.definition as unknown as AslDefinition);
    const parentOf = new Map(graph.nodes.map((node) => [node.id, node.parent]));
    const ancestors = (state: string): string[] => {
      const parent = parentOf.get(state);
      return parent ? [parent, ...ancestors(parent)] : [];
    };
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: invalidBody }));
    const invalidRun = await pipeline.workflow.execute();
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(1));
    const validRun = await pipeline.workflow.execute();
    expect(invalidRun).toMatchObject({ received: 1, deadLettered: 1 });
    expect(validRun).toMatchObject({ received: 1, written: 1 });

    // Act
    const invalidEvents = (await history.events(invalidRun.executionArn.split(":").pop()!))!;
    const validEvents = (await history.events(validRun.executionArn.split(":").pop()!))!;
    const invalid = stateActivity(invalidEvents);
    const valid = stateActivity(validEvents);

    // Assert: the catch happened inside at least two Maps, and only its state is failed
    const caught = invalidEvents.find((event) => event.type === "StateCaught")!;
    const maps = ancestors(caught.state!);
    expect(maps.length).toBeGreaterThanOrEqual(2);
    const failed = (activity: typeof invalid) => Object.entries(activity).filter(([, state]) => state.status === "failed").map(([name]) => name);
    expect(failed(invalid)).toEqual([caught.state]);
    for (const map of maps) expect(invalid[map]).toMatchObject({ status: "succeeded", failed: 0 });
    expect(invalid[caught.state!]!.caughtTo).toEqual({ [caught.caught!.next]: 1 });
    // Every state entered also exited: nothing left in flight or counted twice
    for (const state of Object.values(invalid)) expect(state.passed + state.failed).toBe(state.entered);
    expect(failed(valid)).toEqual([]);
    for (const state of Object.values(valid)) expect(state.passed).toBe(state.entered);
  });

  it("keeps an execution that npm start left mid-way: INTERRUPTED, when and how, its counts, records and messages", async () => {
    // Arrange: a history that stops hearing the execution right after its first write to Airtable, as a kill -9 does
    const crashDir = await mkdtemp(path.join(tmpdir(), "console-history-crash-"));
    const crashed = await History.open({ dir: crashDir, maxIdle: 1 });
    let cut = false;
    const unobserve = pipeline.workflow.observe({
      event: (arn, raw, soFar) => {
        if (cut) return;
        crashed.record(arn, raw, soFar);
        if (crashed.list()[0]!.records.length > 0) cut = true;
      },
    });
    const donations = sampleDonations(3);
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(donations);
    await pipeline.workflow.execute();
    unobserve();
    expect(cut).toBe(true);
    await crashed.flush();
    const name = crashed.list()[0]!.name;

    // Act: the next npm start opens the same folder, then finds the queue empty a few times
    const reopened = await History.open({ dir: crashDir, maxIdle: 1 });
    const unobserveAgain = pipeline.workflow.observe(reopened.observer());
    for (let run = 0; run < 3; run++) await pipeline.workflow.execute();
    unobserveAgain();

    // Assert: its own status, not an empty run; when and how it ended; what it did
    const entry = reopened.entry(name)!;
    expect(entry).toMatchObject({ status: "INTERRUPTED", idle: false });
    expect(entry.interruption).toMatch(/npm start stopped while it ran/);
    expect(entry.endedAt).toBeGreaterThanOrEqual(entry.startedAt);
    expect(entry.summary).toMatchObject({ received: 3, written: 3 });
    expect(entry.summary!.stateTransitions).toBeGreaterThan(5);
    // Kept beyond the empty-run quota (1 here, 3 empty runs after it)
    expect(reopened.list().filter((candidate) => candidate.idle)).toHaveLength(1);
    // Its records in Records, its messages in a story
    expect(reopened.records().map((record) => record.eventId).sort()).toEqual(donations.map((donation) => donation.Id.toLowerCase()).sort());
    const story = await reopened.story(donations[0]!.Id);
    expect(story.executions.map((execution) => [execution.name, execution.status])).toEqual([[name, "INTERRUPTED"]]);
    expect(story.records).toHaveLength(1);
    await reopened.close();
    await crashed.close();
    await rm(crashDir, { recursive: true, force: true });
  });

  it("lists an execution aborted by a second Ctrl-C as INTERRUPTED, saying so, at the next start", async () => {
    // Arrange: npm start's abort marks what runs, then the process leaves (its execution's end is never heard)
    const abortDir = await mkdtemp(path.join(tmpdir(), "console-history-abort-"));
    const aborted = await History.open({ dir: abortDir });
    let interrupted = false;
    const unobserve = pipeline.workflow.observe({
      event: (arn, raw, soFar) => {
        if (interrupted) return;
        aborted.record(arn, raw, soFar);
        if (aborted.list()[0]!.records.length > 0) {
          aborted.interrupt("aborted: Ctrl-C twice stopped npm start while it ran");
          interrupted = true;
        }
      },
      finished: (summary) => aborted.finish(summary),
    });
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(2));
    await pipeline.workflow.execute();
    unobserve();
    const name = aborted.list()[0]!.name;
    expect(aborted.entry(name)!.status).toBe("INTERRUPTED");

    // Act
    const reopened = await History.open({ dir: abortDir });

    // Assert
    const entry = reopened.entry(name)!;
    expect(entry).toMatchObject({ status: "INTERRUPTED", idle: false, interruption: "aborted: Ctrl-C twice stopped npm start while it ran" });
    expect(entry.summary).toMatchObject({ received: 2, written: 2 });
    expect(entry.records).toHaveLength(2);
    await reopened.close();
    await aborted.close();
    await rm(abortDir, { recursive: true, force: true });
  });
});
