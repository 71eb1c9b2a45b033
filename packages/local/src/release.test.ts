import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { SqsEventBus, sampleDonations, serializeDonationEvent } from "@fundraise-sync/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalPipeline, startLocalPipeline } from "./pipeline";
import { releaseExecutionMessages, releaseMessages } from "./release";
import { DEFAULT_HANDLERS } from "./workflow";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `condition` holds; fails after `limitMs` (a bound, not a measured duration). */
async function until(condition: () => boolean, limitMs = 20_000): Promise<void> {
  for (const deadline = Date.now() + limitMs; !condition(); await sleep(50)) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
  }
}

describe("releasing the messages of an aborted execution", () => {
  let pipeline: LocalPipeline;
  let bus: SqsEventBus;
  // WriteToAirtable waits at this gate: the execution holds its messages until the test opens it.
  let gate: Promise<void> = Promise.resolve();
  beforeAll(async () => {
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      handlers: { WriteToAirtable: async (payload, context) => (await gate, DEFAULT_HANDLERS.WriteToAirtable!(payload, context)) },
    });
    bus = new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source);
  });
  afterAll(() => pipeline?.close());

  it("makes the messages an execution holds visible again at once, instead of after the visibility timeout", async () => {
    // Arrange: an execution that holds its messages (its write waits at the gate)
    const donations = sampleDonations(3);
    await bus.publish(donations);
    let open = () => undefined as void;
    gate = new Promise((resolve) => (open = resolve));
    const execution = pipeline.workflow.execute();
    await until(() => pipeline.workflow.receivedReceipts().length === 3);

    // Act
    const result = await releaseExecutionMessages(pipeline.workflow, pipeline.sqs);

    // Assess: every one is back in the queue, long before the visibility timeout (tens of minutes), and the
    // execution, still running, takes none of them again
    expect(result).toEqual({ released: 3, gone: 0 });
    const bodies: string[] = [];
    for (let attempt = 0; attempt < 5 && bodies.length < 3; attempt++) {
      const { Messages = [] } = await pipeline.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: pipeline.queueUrls.source, MaxNumberOfMessages: 10, WaitTimeSeconds: 2, VisibilityTimeout: 600 }),
      );
      bodies.push(...Messages.map((message) => message.Body!));
    }
    expect(bodies.sort()).toEqual(donations.map(serializeDonationEvent).sort());
    open();
    await execution;
  });

  it("counts the messages an execution already deleted as gone, and releases none of them", async () => {
    // Arrange
    await bus.publish(sampleDonations(2));
    const summary = await pipeline.workflow.execute();
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 2, written: 2 });

    // Act
    const result = await releaseMessages(pipeline.sqs, pipeline.workflow.receivedReceipts());

    // Assess
    expect(result).toEqual({ released: 0, gone: 2 });
  });
});
