import { PurgeQueueCommand } from "@aws-sdk/client-sqs";
import { SqsEventBus, sampleDonation, sampleDonations } from "@fundraise-sync/core";
import { handler as validate } from "@fundraise-sync/functions/validate";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { StateName } from "../../../stacks/drain-definition";
import { type LocalPipeline, startLocalPipeline } from "./pipeline";
import { donationRecords, queueDepth, readDeadLetters } from "./testing";

/**
 * Only an invalid event is dead-lettered as invalid. A Validate that fails for any other reason (Lambda throttling a
 * round's 30 invokes, a timeout, a broken bundle, a breakpoint under `sst dev`) says nothing about the donation: it is
 * retried, then the message stays queued for redelivery. Run through the synthesized definition.
 */
const FAILING_DONOR = "Validate Cannot Run";

describe("a Validate that fails for a reason that is not the message's", () => {
  let pipeline: LocalPipeline;
  let failWith: string;
  let calls = 0;
  beforeAll(async () => {
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
      retryIntervalOverrides: { [StateName.Validate]: 5, [StateName.WriteToAirtable]: 5, [StateName.ReceiveBatch]: 5 },
      handlers: {
        // The real Validate, except that for the marked donation the invoke itself fails as Lambda reports it.
        Validate: async (input) => {
          const body = (input as { message: { Body: string } }).message.Body;
          if (body.includes(FAILING_DONOR)) {
            calls++;
            throw Object.assign(new Error(`${failWith} (simulated)`), { name: failWith });
          }
          return validate(input);
        },
      },
    });
  });
  afterEach(async () => {
    calls = 0;
    await pipeline.emulator!.reset();
    for (const queueUrl of [pipeline.queueUrls.source, pipeline.queueUrls.deadLetter]) {
      await pipeline.sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl }));
    }
  });
  afterAll(() => pipeline?.close());

  it.each([
    // Lambda's service errors: retried 6 times with backoff (the round fires 30 invokes at once on a new account).
    { error: "Lambda.TooManyRequestsException", attempts: 7 },
    { error: "Lambda.ServiceException", attempts: 7 },
    // A timeout, as current runtimes and older ones name it: once more.
    { error: "Sandbox.Timedout", attempts: 2 },
    { error: "Lambda.Unknown", attempts: 2 },
    // A broken bundle, or anything else: once more.
    { error: "Runtime.ImportModuleError", attempts: 2 },
    { error: "Error", attempts: 2 },
  ])("$error: retried ($attempts calls), then left queued, named, never dead-lettered", async ({ error, attempts }) => {
    // Arrange
    failWith = error;
    const others = sampleDonations(2);
    const stuck = sampleDonation({ DonorDisplayName: FAILING_DONOR });
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish([...others, stuck]);
    const leftFor: string[] = [];
    const stop = pipeline.workflow.observe({
      event: (_, event) => {
        const { type, state } = event as { type: string; state?: { name: string; output?: { error?: string } } };
        if (type === "StateExited" && state?.name === StateName.KeepUnvalidatedMessageQueued) leftFor.push(state.output?.error ?? "");
      },
    });

    // Act
    const summary = await pipeline.workflow.execute();
    stop();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 3, written: 2, deadLettered: 0, leftInQueue: 1 });
    expect(calls).toBe(attempts);
    expect(leftFor).toEqual([error]);
    expect(await readDeadLetters(pipeline.sqs, pipeline.queueUrls.deadLetter)).toEqual([]);
    expect(donationRecords(pipeline).map((record) => record.fields.Id).sort()).toEqual(others.map((d) => d.Id).sort());
    // Still in the queue (in flight until its visibility timeout), to be validated again on redelivery.
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(1);
  });
});
