import { DeleteItemCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { PurgeQueueCommand } from "@aws-sdk/client-sqs";
import { DEFAULT_BASE_ID, startAirtableEmulator } from "@fundraise-sync/airtable-emulator";
import { ErrorName, SqsEventBus, sampleDonations } from "@fundraise-sync/core";
import { handler as writeToAirtable } from "@fundraise-sync/functions/write-to-airtable";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { LEASE_KEY, MAX_MESSAGES_PER_ROUND, StateName } from "../../../stacks/drain-definition";
import { MAX_ROUNDS_PER_EXECUTION } from "../../../stacks/settings";
import type { AslGraph } from "../../../stacks/timing";
import { type LocalPipeline, type LocalPipelineOptions, startLocalPipeline } from "./pipeline";
import { releaseExecutionMessages } from "./release";
import { accountFor, queueDepth } from "./testing";
import type { DrainSummary } from "./workflow";

/**
 * One drain at a time, through the real synthesized definition in the local runtime, its lease on a real
 * DynamoDB-protocol server (dynalite) and DescribeExecution lagging like AWS's: what the lease promises is that at most one
 * execution writes, whatever the lag, and that a lease left behind stops the drain for one schedule period at most.
 */
const SHORT_RETRIES = { [StateName.WriteToAirtable]: 20, [StateName.ReceiveBatch]: 20 };
const SHORT_WAITS = { [StateName.WaitForAirtable]: 20, [StateName.WaitOutAirtableLock]: 20 };
const LEASE = { [LEASE_KEY.name]: { S: LEASE_KEY.value } };

const start = (options: Partial<LocalPipelineOptions> = {}) =>
  startLocalPipeline({
    workflow: inject("workflow"),
    sqsPort: 0,
    emulator: { port: 0, rateLimit: false },
    airtableRequestsPerSecond: 5,
    retryIntervalOverrides: SHORT_RETRIES,
    waitTimeOverrides: SHORT_WAITS,
    ...options,
  });

/** Who holds the lease now (a strongly consistent read of the real table), if anyone. */
async function leaseHolder(pipeline: LocalPipeline): Promise<string | undefined> {
  const { Item } = await pipeline.dynamodb.send(new GetItemCommand({ TableName: pipeline.tableNames[0], Key: LEASE, ConsistentRead: true }));
  return Item?.holder?.S;
}

/** The states each execution entered, in order, by execution ARN. */
function watchStates(pipeline: LocalPipeline): Map<string, string[]> {
  const entered = new Map<string, string[]>();
  pipeline.workflow.observe({
    event(executionArn, event) {
      const { type, state } = event as { type: string; state?: { name: string } };
      if (type !== "StateEntered" || !state) return;
      entered.set(executionArn, [...(entered.get(executionArn) ?? []), state.name]);
    },
  });
  return entered;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once an execution is in progress and holds the lease; returns its ARN. */
async function holdingExecution(pipeline: LocalPipeline): Promise<string> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const [running] = pipeline.workflow.runningExecutions();
    if (running && (await leaseHolder(pipeline)) === running) return running;
    await sleep(10);
  }
  throw new Error("No execution took the lease");
}

describe("the drain lease, executed locally", () => {
  let pipeline: LocalPipeline;
  let bus: SqsEventBus;
  let entered: Map<string, string[]>;
  const LAG_MS = 2500;
  beforeAll(async () => {
    pipeline = await start({ semantics: { describeExecutionLagMs: LAG_MS } });
    bus = new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source);
    entered = watchStates(pipeline);
  });
  afterEach(async () => {
    await pipeline.emulator!.reset();
    for (const queueUrl of [pipeline.queueUrls.source, pipeline.queueUrls.deadLetter]) {
      await pipeline.sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl }));
    }
    await pipeline.dynamodb.send(new DeleteItemCommand({ TableName: pipeline.tableNames[0], Key: LEASE }));
  });
  afterAll(() => pipeline?.close());

  it("gives the lease up when a drain completes", async () => {
    // Arrange
    await bus.publish(sampleDonations(3));

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", written: 3 });
    expect(entered.get(summary.executionArn)).toEqual(expect.arrayContaining([StateName.TakeLease, StateName.ReleaseLease]));
    expect(await leaseHolder(pipeline)).toBeUndefined();
  });

  it("takes over a lease left by an aborted execution, after one skipped drain while DescribeExecution still lags", async () => {
    // Arrange: an execution that holds the lease (writing to a slow Airtable) is stopped where it is, as StopExecution
    // does: it releases nothing. Its messages are handed back as `npm start` does on an abort.
    pipeline.emulator!.faults.addLatency(2 * LAG_MS, { times: 1 });
    const held = sampleDonations(2);
    await bus.publish(held);
    const aborted = pipeline.workflow.execute();
    const holder = await holdingExecution(pipeline);
    await sleep(LAG_MS); // DescribeExecution has seen it start
    pipeline.workflow.abort(holder);
    expect(await aborted).toMatchObject({ status: "FAILED" });
    await releaseExecutionMessages(pipeline.workflow, pipeline.sqs);
    expect(await leaseHolder(pipeline)).toBe(holder);
    const donations = [...held, ...sampleDonations(4)];
    await bus.publish(donations.slice(held.length));

    // Act: the next schedule comes while DescribeExecution still shows the holder RUNNING, the one after that later
    const tooSoon = await pipeline.workflow.execute();
    await sleep(LAG_MS);
    const next = await pipeline.workflow.execute();

    // Assert
    expect(tooSoon).toMatchObject({ status: "SKIPPED", received: 0 });
    expect(entered.get(tooSoon.executionArn)).toEqual([
      StateName.IsContinuation,
      StateName.PeekQueue,
      StateName.AnyWaiting,
      StateName.TakeLease,
      StateName.ReadLease,
      StateName.IsLeaseStillHeld,
      StateName.DescribeLeaseHolder,
      StateName.HasLeaseHolderEnded,
      StateName.AnotherDrainIsRunning,
    ]);
    expect(next).toMatchObject({ status: "SUCCEEDED", received: 6 });
    expect(entered.get(next.executionArn)).toContain(StateName.TakeOverStaleLease);
    expect(await leaseHolder(pipeline)).toBeUndefined();
    const outcome = await accountFor(pipeline, { validIds: donations.map((d) => d.Id), invalidBodies: [] });
    expect(outcome).toMatchObject({ missing: [], duplicated: [], leftInSourceQueue: 0 });
  });

  it("keeps the lease across a continuation: the predecessor ends holding it, its continuation takes it and gives it up", async () => {
    // Arrange
    const cap = MAX_ROUNDS_PER_EXECUTION * MAX_MESSAGES_PER_ROUND;
    await bus.publish(sampleDonations(cap + 5));

    // Act
    const first = await pipeline.workflow.execute();
    const heldBetween = await leaseHolder(pipeline);
    const continuation = await pipeline.workflow.execute();

    // Assert
    expect(first).toMatchObject({ status: "SUCCEEDED", received: cap, continued: true });
    expect(heldBetween).toBe(first.executionArn);
    expect(continuation).toMatchObject({ status: "SUCCEEDED", received: 5, written: 5 });
    expect(entered.get(continuation.executionArn)!.slice(0, 4)).toEqual([
      StateName.IsContinuation,
      StateName.TakeLeaseFromPredecessor,
      StateName.HasHeldRound,
      StateName.ResumeDrain,
    ]);
    expect(await leaseHolder(pipeline)).toBeUndefined();
  });

  it("has teeth: a continuation whose predecessor's lease was taken over meanwhile does not drain beside the new holder", async () => {
    // Arrange: between the two, another drain took the lease over (written here as that drain would)
    const cap = MAX_ROUNDS_PER_EXECUTION * MAX_MESSAGES_PER_ROUND;
    await bus.publish(sampleDonations(cap + 5));
    const first = await pipeline.workflow.execute();
    expect(first.continued).toBe(true);
    const other = first.executionArn.replace(/[^:]+$/, "another-drain");
    await pipeline.dynamodb.send(
      new PutItemCommand({ TableName: pipeline.tableNames[0], Item: { ...LEASE, holder: { S: other }, since: { S: new Date().toISOString() } } }),
    );

    // Act
    const continuation = await pipeline.workflow.execute();

    // Assert
    expect(continuation).toMatchObject({ status: "SKIPPED", received: 0 });
    expect(await leaseHolder(pipeline)).toBe(other);
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(5);
  });

  it("releases only its own lease: a release whose condition fails leaves the other holder's lease and still succeeds", async () => {
    // Arrange: Airtable slow enough to change the holder while the drain writes
    pipeline.emulator!.faults.addLatency(300, { times: 1 });
    await bus.publish(sampleDonations(2));
    const running = pipeline.workflow.execute();
    const holder = await holdingExecution(pipeline);
    const other = holder.replace(/[^:]+$/, "another-drain");
    await pipeline.dynamodb.send(
      new PutItemCommand({ TableName: pipeline.tableNames[0], Item: { ...LEASE, holder: { S: other }, since: { S: new Date().toISOString() } } }),
    );

    // Act
    const summary = await running;

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", written: 2, retried: 0 });
    expect(entered.get(summary.executionArn)!.slice(-2)).toEqual([StateName.ReleaseLease, StateName.DrainComplete]);
    expect(await leaseHolder(pipeline)).toBe(other);
  });
});

describe("two drains started at once", () => {
  it.each([
    {
      view: "DescribeExecution does not show the holder yet",
      describeExecutionLagMs: 60_000,
      skippedVia: [StateName.DescribeLeaseHolder, StateName.AnotherDrainIsRunning],
    },
    {
      view: "DescribeExecution shows the holder RUNNING",
      describeExecutionLagMs: 0,
      skippedVia: [StateName.DescribeLeaseHolder, StateName.HasLeaseHolderEnded, StateName.AnotherDrainIsRunning],
    },
  ])("exactly one writes, the other skips: $view", async ({ describeExecutionLagMs, skippedVia }) => {
    // Arrange
    const pipeline = await start({ semantics: { describeExecutionLagMs } });
    const entered = watchStates(pipeline);
    try {
      const donations = sampleDonations(30);
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(donations);
      pipeline.emulator!.faults.addLatency(200, { times: 3 });

      // Act
      const summaries = await Promise.all([pipeline.workflow.execute(), pipeline.workflow.execute()]);

      // Assert
      expect(summaries.map((s) => s.status).sort()).toEqual(["SKIPPED", "SUCCEEDED"]);
      expect(summaries.filter((s) => s.written > 0)).toHaveLength(1);
      const skipped = summaries.find((s) => s.status === "SKIPPED")!;
      expect(entered.get(skipped.executionArn)!.slice(-skippedVia.length)).toEqual(skippedVia);
      const outcome = await accountFor(pipeline, { validIds: donations.map((d) => d.Id), invalidBodies: [] });
      expect(outcome).toMatchObject({ missing: [], duplicated: [], leftInSourceQueue: 0 });
      expect(await leaseHolder(pipeline)).toBeUndefined();
    } finally {
      await pipeline.close();
    }
  });

  it("has teeth: without the lease's condition both drain, two writers on the base", async () => {
    // Arrange: the same definition with TakeLease's put made unconditional
    const workflow = structuredClone(inject("workflow"));
    const parameters = (workflow.definition as AslGraph).States[StateName.TakeLease]!.Parameters as Record<string, unknown>;
    delete parameters.ConditionExpression;
    delete parameters.ExpressionAttributeNames;
    const pipeline = await start({ workflow, semantics: { describeExecutionLagMs: 60_000 } });
    try {
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(60));
      pipeline.emulator!.faults.addLatency(200, { times: 6 });

      // Act
      const summaries: DrainSummary[] = await Promise.all([pipeline.workflow.execute(), pipeline.workflow.execute()]);

      // Assert
      expect(summaries.map((s) => s.status)).toEqual(["SUCCEEDED", "SUCCEEDED"]);
      expect(summaries.every((s) => s.written > 0)).toBe(true);
    } finally {
      await pipeline.close();
    }
  });
});

describe("a drain that fails", () => {
  it("gives the lease up on the way to WriteFailed, keeping the writer's error; the next drain is not held up", async () => {
    // Arrange: the writer fails once, unexpectedly
    let failures = 1;
    const pipeline = await start({
      handlers: {
        WriteToAirtable: async (payload, context) => {
          if (failures-- > 0) throw new RangeError("the writer broke");
          return writeToAirtable(payload, context as never);
        },
      },
    });
    try {
      const donations = sampleDonations(3);
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(donations);

      // Act
      const failed = await pipeline.workflow.execute();
      const holderAfter = await leaseHolder(pipeline);
      await pipeline.sqs.send(new PurgeQueueCommand({ QueueUrl: pipeline.queueUrls.source }));
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(donations);
      const next = await pipeline.workflow.execute();

      // Assert
      expect(failed).toMatchObject({ status: "FAILED", error: { name: "RangeError" } });
      expect(failed.error!.cause).toContain("the writer broke");
      expect(holderAfter).toBeUndefined();
      expect(next).toMatchObject({ status: "SUCCEEDED", written: 3 });
    } finally {
      await pipeline.close();
    }
  });

  it("has teeth: a Fail reached without the release leaves the lease held, and the next drain skips", async () => {
    // Arrange: the same definition with the release on the way to WriteFailed doing nothing
    const workflow = structuredClone(inject("workflow"));
    (workflow.definition as AslGraph).States[StateName.ReleaseLeaseOnWriteFailure] = { Type: "Pass", Next: StateName.WriteFailed };
    let failures = 1;
    const pipeline = await start({
      workflow,
      handlers: {
        WriteToAirtable: async (payload, context) => {
          if (failures-- > 0) throw new RangeError("the writer broke");
          return writeToAirtable(payload, context as never);
        },
      },
    });
    try {
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(3));

      // Act: the failed round stays hidden; a new donation gives the next drain something to take
      const failed = await pipeline.workflow.execute();
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(1));
      const next = await pipeline.workflow.execute();

      // Assert
      expect(failed.status).toBe("FAILED");
      expect(await leaseHolder(pipeline)).toBe(failed.executionArn);
      expect(next.status).toBe("SKIPPED"); // DescribeExecution still shows it RUNNING (the default lag)
    } finally {
      await pipeline.close();
    }
  });

  it("gives the lease up on the way to AirtableMisconfigured, keeping its error and cause", async () => {
    // Arrange: an emulator that accepts another token than the one the pipeline holds
    const emulator = await startAirtableEmulator({ port: 0, rateLimit: false, token: "patTheRightToken.x" });
    const pipeline = await start({ airtable: { endpointUrl: emulator.url, token: "patAWrongToken.x", baseId: DEFAULT_BASE_ID } });
    try {
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(2));

      // Act
      const summary = await pipeline.workflow.execute();

      // Assert
      expect(summary).toMatchObject({ status: "FAILED", error: { name: ErrorName.AirtableConfiguration } });
      expect(summary.error!.cause).toContain("401");
      expect(await leaseHolder(pipeline)).toBeUndefined();
      expect(emulator.records(DEFAULT_BASE_ID, "Donations")).toHaveLength(0);
    } finally {
      await pipeline.close();
      await emulator.close();
    }
  });
});
