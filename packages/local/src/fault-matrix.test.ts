import { SendMessageCommand } from "@aws-sdk/client-sqs";
import {
  type DonationCreatedEvent,
  EnvName,
  ErrorName,
  EventTooLargeError,
  MAX_EVENT_BYTES,
  SqsEventBus,
  sampleDonation,
  sampleDonations,
  DonationWriter,
  WritePolicy,
  type Round,
  serializeDonationEvent,
  writeRound,
} from "@fundraise-sync/core";
import { readAirtableTarget } from "@fundraise-sync/functions/config";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { StateName } from "../../../stacks/drain-definition";
import { type LocalPipeline, startLocalPipeline } from "./pipeline";
import { accountFor, donationRecords, drainUntilEmpty, queueDepth } from "./testing";
import type { DrainSummary } from "./workflow";

/**
 * End-to-end fault matrix: the real synthesized definition, the local SQS server and the Airtable emulator, with
 * faults injected. For every case: each message ends as exactly one Airtable record or in the DLQ with its original
 * body and a reason, and no execution fails because of one bad message.
 */

const CRASH_MARKER = "Crashes The Handler";

/** Bodies a real queue receives that are not valid DonationCreated events. */
function malformedBodies(): Record<string, string> {
  const valid = () => JSON.parse(serializeDonationEvent(sampleDonation())) as Record<string, unknown>;
  const without = (field: string) => {
    const event = valid();
    delete event[field];
    return JSON.stringify(event);
  };
  return {
    "not JSON": "{\"Id\": \"0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17\", DonationAmount: 25",
    "a JSON array": "[1, 2, 3]",
    "amount as a string": JSON.stringify({ ...valid(), DonationAmount: "25.50" }),
    "Id as a number": JSON.stringify({ ...valid(), Id: 42 }),
    "missing FundraiserId": without("FundraiserId"),
    "missing CreationDate": without("CreationDate"),
    "zero amount": JSON.stringify({ ...valid(), DonationAmount: 0 }),
    "negative amount": JSON.stringify({ ...valid(), DonationAmount: -10 }),
    "non-finite amount (1e400)": serializeDonationEvent(sampleDonation()).replace(/"DonationAmount":[^,]+/, '"DonationAmount":1e400'),
    "NaN as Newtonsoft writes it": JSON.stringify({ ...valid(), DonationAmount: "NaN" }),
    "empty body": " ",
  };
}

interface Scenario {
  name: string;
  /** Puts messages on the queue and injects faults; returns what was published. */
  arrange(pipeline: LocalPipeline): Promise<{ validIds: string[]; invalidBodies: string[] }>;
  /** Extra expectations beyond the invariant. */
  check?(pipeline: LocalPipeline, summaries: DrainSummary[], outcome: Awaited<ReturnType<typeof accountFor>>): void | Promise<void>;
}

const publish = async (pipeline: LocalPipeline, events: DonationCreatedEvent[]) => {
  const report = await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(events);
  expect(report.failed).toEqual([]);
  return events.map((event) => event.Id);
};
const sendRaw = (pipeline: LocalPipeline, body: string) =>
  pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: body }));
const totalRetries = (summaries: DrainSummary[]) => summaries.reduce((sum, summary) => sum + summary.retried, 0);

const scenarios: Scenario[] = [
  {
    name: "an Airtable 429 storm",
    async arrange(pipeline) {
      // One 429 fewer than would make the round give up (and wait out Airtable's real 30 s lock).
      pipeline.emulator!.faults.failNext(WritePolicy.maxAttempts - 1, { status: 429 });
      return { validIds: await publish(pipeline, sampleDonations(25)), invalidBodies: [] };
    },
    check(pipeline, summaries) {
      expect(pipeline.emulator!.stats().injected429).toBe(WritePolicy.maxAttempts - 1);
      // Requests already in flight when the first 429 came back may draw one too; nothing is sent after it.
      expect(totalRetries(summaries)).toBeGreaterThanOrEqual(1);
      expect(summaries.reduce((sum, summary) => sum + summary.deadLettered, 0)).toBe(0);
    },
  },
  {
    name: "Airtable 503 with Retry-After, and 500/502",
    async arrange(pipeline) {
      pipeline.emulator!.faults.failNext(2, { status: 503, retryAfterSeconds: 1 });
      pipeline.emulator!.faults.failNext(1, { status: 500 });
      pipeline.emulator!.faults.failNext(1, { status: 502 });
      return { validIds: await publish(pipeline, sampleDonations(6)), invalidBodies: [] };
    },
    check(pipeline, summaries) {
      // Every fault met, none blamed on a record: a 5xx halves a request (it might follow a record) until the base
      // fails for other records too, then the attempt stops and waits.
      expect(pipeline.emulator!.stats().injectedFaults).toBe(4);
      expect(summaries.reduce((sum, summary) => sum + summary.deadLettered, 0)).toBe(0);
    },
  },
  {
    name: "Airtable down (503) through two executions' attempts: the round is held and handed on, nothing else received",
    async arrange(pipeline) {
      // Down until the second execution ends.
      const outage = pipeline.emulator!.faults.add({ status: 503, operation: "write" });
      let ended = 0;
      const stop = pipeline.workflow.observe({
        finished() {
          if (++ended < 2) return;
          pipeline.emulator!.faults.remove(outage.id);
          stop();
        },
      });
      const validIds = await publish(pipeline, sampleDonations(8));
      return { validIds, invalidBodies: [] };
    },
    check(_pipeline, summaries) {
      // The first receives and holds; the second only retries the held round (receives nothing); the third writes.
      expect(summaries.slice(0, 2).map((s) => [s.received, s.held, s.continued])).toEqual([
        [8, 8, true],
        [0, 8, true],
      ]);
      expect(summaries.reduce((sum, summary) => sum + summary.deadLettered, 0)).toBe(0);
      expect(summaries[1]!.airtableFailingSince).toBe(summaries[0]!.airtableFailingSince);
    },
  },
  {
    name: "a record Airtable answers 500 to alone: its neighbours are written, it alone is dead-lettered with the reason",
    async arrange(pipeline) {
      const poison = sampleDonation({ DonorDisplayName: "Breaks The Base" });
      pipeline.emulator!.faults.failWhen({ field: "Donor Display Name", equals: "Breaks The Base" }, { status: 500 });
      const validIds = await publish(pipeline, sampleDonations(12));
      await publish(pipeline, [poison]);
      return { validIds, invalidBodies: [serializeDonationEvent(poison)] };
    },
    check(_pipeline, _summaries, outcome) {
      expect(outcome.deadLetters.map((letter) => letter.attributes.ErrorName)).toEqual([ErrorName.AirtableUnavailable]);
      expect(outcome.deadLetters[0]!.attributes.ErrorCause).toContain("failed on this record alone");
      expect(outcome.deadLetters[0]!.attributes.FailedState).toBe(StateName.WriteToAirtable);
    },
  },
  {
    name: "hanging Airtable requests (timeouts)",
    async arrange(pipeline) {
      pipeline.emulator!.faults.add({ hang: true, times: 2 });
      return { validIds: await publish(pipeline, sampleDonations(4)), invalidBodies: [] };
    },
    check(pipeline, summaries) {
      expect(pipeline.emulator!.stats().hung).toBe(2);
      expect(summaries.reduce((sum, summary) => sum + summary.deadLettered, 0)).toBe(0);
    },
  },
  {
    name: "a writer that crashes on one record: its neighbours are written, it alone is dead-lettered",
    async arrange(pipeline) {
      const crashing = sampleDonation({ DonorDisplayName: CRASH_MARKER });
      const validIds = await publish(pipeline, sampleDonations(5));
      await publish(pipeline, [crashing]);
      return { validIds, invalidBodies: [serializeDonationEvent(crashing)] };
    },
    check(_pipeline, _summaries, outcome) {
      expect(outcome.deadLetters.map((letter) => letter.attributes.ErrorName)).toEqual(["TypeError"]);
      expect(outcome.deadLetters[0]!.attributes.FailedState).toBe(StateName.WriteToAirtable);
    },
  },
  {
    name: "the same message delivered twice in one batch",
    async arrange(pipeline) {
      const donation = sampleDonation();
      await sendRaw(pipeline, serializeDonationEvent(donation));
      await sendRaw(pipeline, serializeDonationEvent(donation));
      return { validIds: [donation.Id], invalidBodies: [] };
    },
    check(_pipeline, summaries) {
      expect(summaries[0]).toMatchObject({ written: 1, copiesInBatch: 1 });
    },
  },
  {
    name: "a message redelivered while its first copy is still being processed",
    async arrange(pipeline) {
      // Slow Airtable: the first execution is still writing when a second copy arrives and a second run starts.
      const donation = sampleDonation();
      pipeline.emulator!.faults.addLatency(400, { times: 1 });
      await sendRaw(pipeline, serializeDonationEvent(donation));
      const first = pipeline.workflow.execute();
      await new Promise((resolve) => setTimeout(resolve, 150));
      await sendRaw(pipeline, serializeDonationEvent(donation));
      const overlapping = await pipeline.workflow.execute();
      // No second drain races the first: it finds the copy already taken (the peek sees an empty queue) or the lease held.
      expect(overlapping).toMatchObject({ received: 0, written: 0 });
      expect(overlapping.status).not.toBe("FAILED");
      // The first drain takes the copy too: in the same round (a copy, not written) or the next (an update).
      const drained = await first;
      expect(drained.received).toBe(2);
      expect(drained.written - drained.updated).toBe(1);
      return { validIds: [donation.Id], invalidBodies: [] };
    },
  },
  {
    name: "malformed JSON, wrong types, missing fields, zero, negative and non-finite amounts",
    async arrange(pipeline) {
      const bodies = Object.values(malformedBodies());
      for (const body of bodies) await sendRaw(pipeline, body);
      return { validIds: await publish(pipeline, sampleDonations(3)), invalidBodies: bodies };
    },
    check(_pipeline, _summaries, { deadLetters }) {
      expect(new Set(deadLetters.map((letter) => letter.attributes.ErrorName))).toEqual(new Set([ErrorName.InvalidDonationEvent]));
      expect(deadLetters.every((letter) => letter.attributes.FailedState === StateName.Validate)).toBe(true);
    },
  },
  {
    name: "unicode donor names",
    async arrange(pipeline) {
      const names = ["Zoë Ø'Brien", "李华", "Amélie \"Mimi\" Poulain", "Ωμέγα ✓", "Nnamdi O\\backslash", "Zoë 🎉"];
      return { validIds: await publish(pipeline, names.map((name) => sampleDonation({ DonorDisplayName: name }))), invalidBodies: [] };
    },
    check(pipeline) {
      const names = donationRecords(pipeline).map((record) => record.fields["Donor Display Name"]);
      expect(names.sort()).toEqual(["Zoë Ø'Brien", "李华", "Amélie \"Mimi\" Poulain", "Ωμέγα ✓", "Nnamdi O\\backslash", "Zoë 🎉"].sort());
    },
  },
];

describe("fault matrix: nothing lost, nothing written twice", () => {
  let pipeline: LocalPipeline;
  beforeAll(async () => {
    process.env[EnvName.AirtableRequestTimeoutMs] = "300"; // hung requests surface quickly as timeouts
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
      retryIntervalOverrides: { [StateName.WriteToAirtable]: 10, [StateName.ReceiveBatch]: 10 },
      waitTimeOverrides: { [StateName.WaitForAirtable]: 10, [StateName.WaitOutAirtableLock]: 10 },
      handlers: {
        // The real writer, except that a request carrying the marked donation crashes as a bug would.
        WriteToAirtable: async (round: Round) => {
          const target = await readAirtableTarget();
          const real = new DonationWriter(target);
          const writer = {
            upsert: async (events: readonly DonationCreatedEvent[]) => {
              if (events.some((event) => event.DonorDisplayName === CRASH_MARKER)) {
                throw new TypeError("Cannot read properties of undefined (reading 'id')");
              }
              return real.upsert(events);
            },
          };
          return writeRound(round, { writer, target, deadline: Date.now() + 30_000 });
        },
      },
    });
  });
  afterEach(async () => {
    await drainUntilEmpty(pipeline); // leave nothing for the next case (dead letters were consumed by accountFor)
    await pipeline.emulator!.reset();
  });
  afterAll(async () => {
    delete process.env[EnvName.AirtableRequestTimeoutMs];
    await pipeline?.close();
  });

  it.each(scenarios)("$name", async (scenario) => {
    // Arrange
    const published = await scenario.arrange(pipeline);

    // Act
    const summaries = await drainUntilEmpty(pipeline);

    // Assert
    expect(summaries.every((summary) => summary.status !== "FAILED")).toBe(true);
    const outcome = await accountFor(pipeline, published);
    expect(outcome).toMatchObject({
      missing: [],
      duplicated: [],
      invalidNotDeadLettered: [],
      deadLettersWithoutReason: [],
      leftInSourceQueue: 0,
    });
    expect(outcome.records).toHaveLength(published.validIds.length);
    expect(outcome.deadLetters).toHaveLength(published.invalidBodies.length);
    await scenario.check?.(pipeline, summaries, outcome);
  });

  it("refuses an oversized event at publish time, before anything reaches the queue", async () => {
    // Arrange
    const oversized = sampleDonation({ DonorDisplayName: "x".repeat(MAX_EVENT_BYTES) });
    const bus = new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source);

    // Act
    const publishing = bus.publish([sampleDonation(), oversized]);

    // Assert
    await expect(publishing).rejects.toThrow(EventTooLargeError);
    await expect(publishing).rejects.toThrow(`accepts at most ${MAX_EVENT_BYTES} bytes`);
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(0);
    const summary = await pipeline.workflow.execute();
    expect(summary.status).not.toBe("FAILED");
  });
});
