import { PurgeQueueCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { DEFAULT_BASE_ID, startAirtableEmulator } from "@fundraise-sync/airtable-emulator";
import {
  DeadLetterAttribute,
  ErrorName,
  SqsEventBus,
  WritePolicy,
  sampleDonation,
  sampleDonations,
  serializeDonationEvent,
} from "@fundraise-sync/core";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { MAX_MESSAGES_PER_ROUND, StateName } from "../../../stacks/drain-definition";
import { MAX_ROUNDS_PER_EXECUTION } from "../../../stacks/settings";
import { LAMBDA_UNKNOWN, SANDBOX_TIMEDOUT } from "./aws-semantics";
import { type LocalPipeline, startLocalPipeline } from "./pipeline";
import { accountFor, donationRecords, queueDepth, readDeadLetters } from "./testing";

/**
 * The synthesized definition itself, executed by aws-local-stepfunctions: every Task runs the real handler code or a
 * real SQS call against a local SQS server, writing to the Airtable emulator. Retry waits are shortened.
 */
const SHORT_RETRIES = { [StateName.WriteToAirtable]: 20, [StateName.ReceiveBatch]: 20 };
const SHORT_WAITS = { [StateName.WaitForAirtable]: 20, [StateName.WaitOutAirtableLock]: 20 };

describe("the synthesized drain, executed locally", () => {
  let pipeline: LocalPipeline;
  let bus: SqsEventBus;
  beforeAll(async () => {
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
      retryIntervalOverrides: SHORT_RETRIES,
      waitTimeOverrides: SHORT_WAITS,
    });
    bus = new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source);
  });
  afterEach(async () => {
    // Each test starts from empty queues: some leave messages queued or dead-lettered on purpose.
    await pipeline.emulator!.reset();
    for (const queueUrl of [pipeline.queueUrls.source, pipeline.queueUrls.deadLetter]) {
      await pipeline.sqs.send(new PurgeQueueCommand({ QueueUrl: queueUrl }));
    }
  });
  afterAll(() => pipeline?.close());

  const sendRaw = (body: string) => pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: body }));

  it("writes published donations to Airtable and deletes them from the queue", async () => {
    // Arrange
    const donations = sampleDonations(3);
    await bus.publish(donations);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary.error).toBeUndefined();
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 3, written: 3, deadLettered: 0 });
    const records = donationRecords(pipeline);
    expect(records.map((record) => record.fields.Id).sort()).toEqual(donations.map((donation) => donation.Id).sort());
    const first = records.find((record) => record.fields.Id === donations[0]!.Id)!;
    expect(first.fields).toMatchObject({ "Donation Amount": donations[0]!.DonationAmount, "Fundraiser Id": donations[0]!.FundraiserId });
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(0);
  });

  it("dead-letters an invalid message with its original body and a reason, and still writes the others", async () => {
    // Arrange
    const valid = sampleDonation();
    const invalidBody = JSON.stringify({ ...JSON.parse(serializeDonationEvent(sampleDonation())), DonationAmount: -5 });
    await bus.publish([valid]);
    await sendRaw(invalidBody);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 2, written: 1, deadLettered: 1 });
    const [letter, ...others] = await readDeadLetters(pipeline.sqs, pipeline.queueUrls.deadLetter);
    expect(others).toHaveLength(0);
    expect(letter!.body).toBe(invalidBody);
    expect(letter!.attributes[DeadLetterAttribute.ErrorName]).toBe(ErrorName.InvalidDonationEvent);
    // As Step Functions reports a function's error: Lambda's JSON, the message in errorMessage
    const cause = JSON.parse(letter!.attributes[DeadLetterAttribute.ErrorCause]!);
    expect(cause).toMatchObject({ errorType: ErrorName.InvalidDonationEvent, trace: expect.any(Array) });
    expect(cause.errorMessage).toContain("DonationAmount: must be greater than 0, got -5");
    expect(letter!.attributes[DeadLetterAttribute.FailedState]).toBe(StateName.Validate);
    expect(letter!.attributes[DeadLetterAttribute.ReceiveCount]).toBe("1");
    expect(letter!.attributes[DeadLetterAttribute.ExecutionArn]).toBe(summary.executionArn);
    expect(donationRecords(pipeline).map((record) => record.fields.Id)).toEqual([valid.Id]);
  });

  it("keeps a redriven message's RedriveCount when it is dead-lettered again, from Validate and from WriteToAirtable", async () => {
    // Arrange: an invalid body and a refused donation, both redriven twice before
    const invalidBody = JSON.stringify({ ...JSON.parse(serializeDonationEvent(sampleDonation())), DonationAmount: 0 });
    const refused = sampleDonation({ DonorDisplayName: "Refused Again" });
    pipeline.emulator!.faults.failWhen({ field: "Donor Display Name", equals: "Refused Again" }, { status: 422 });
    const redriven = { [DeadLetterAttribute.RedriveCount]: { DataType: "Number", StringValue: "2" } };
    for (const body of [invalidBody, serializeDonationEvent(refused)]) {
      await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: body, MessageAttributes: redriven }));
    }

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", deadLettered: 2 });
    const letters = await readDeadLetters(pipeline.sqs, pipeline.queueUrls.deadLetter);
    expect(letters.map((letter) => [letter.attributes[DeadLetterAttribute.FailedState], letter.attributes[DeadLetterAttribute.RedriveCount]]).sort()).toEqual([
      [StateName.Validate, "2"],
      [StateName.WriteToAirtable, "2"],
    ]);
  });

  it("retries a 429 and then writes the record", async () => {
    // Arrange
    const donation = sampleDonation();
    pipeline.emulator!.faults.failNext(1, { status: 429 });
    await bus.publish([donation]);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", written: 1, deadLettered: 0 });
    expect(summary.retried).toBeGreaterThanOrEqual(1);
    expect(pipeline.emulator!.stats().injected429).toBe(1);
    expect(donationRecords(pipeline).map((record) => record.fields.Id)).toEqual([donation.Id]);
  });

  it("writes a round 10 records per request: 30 donations, 3 requests", async () => {
    // Arrange
    const donations = sampleDonations(MAX_MESSAGES_PER_ROUND);
    await bus.publish(donations);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 30, written: 30, deadLettered: 0, retried: 0 });
    expect(pipeline.emulator!.stats().requests).toBe(3);
    expect(donationRecords(pipeline)).toHaveLength(30);
  });

  it("isolates one record Airtable refuses: it alone is dead-lettered with Airtable's error, its neighbours written once", async () => {
    // Arrange: ten donations in one request, the seventh refused by the base
    const donations = sampleDonations(10);
    const refused = sampleDonation({ DonorDisplayName: "Refused By The Base" });
    donations.splice(6, 1, refused);
    pipeline.emulator!.faults.failWhen(
      { field: "Donor Display Name", equals: refused.DonorDisplayName },
      { status: 422, type: "INVALID_VALUE_FOR_COLUMN", message: 'Field "Donor Display Name" cannot accept the provided value' },
    );
    await bus.publish(donations);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 10, written: 9, updated: 0, deadLettered: 1 });
    const outcome = await accountFor(pipeline, { validIds: donations.filter((d) => d !== refused).map((d) => d.Id), invalidBodies: [] });
    expect(outcome).toMatchObject({ missing: [], duplicated: [], leftInSourceQueue: 0 });
    expect(outcome.records.map((record) => record.fields.Id)).not.toContain(refused.Id);
    const [letter, ...others] = outcome.deadLetters;
    expect(others).toHaveLength(0);
    expect(letter!.body).toBe(serializeDonationEvent(refused));
    expect(letter!.attributes[DeadLetterAttribute.ErrorName]).toBe(ErrorName.AirtableRecordRejected);
    expect(letter!.attributes[DeadLetterAttribute.FailedState]).toBe(StateName.WriteToAirtable);
    expect(letter!.attributes[DeadLetterAttribute.ErrorCause]).toContain("INVALID_VALUE_FOR_COLUMN");
    expect(letter!.attributes[DeadLetterAttribute.ErrorCause]).toContain("npm run airtable -- check");
    // 1 refused request of 10, then halves until the record stands alone: every request within the share.
    expect(pipeline.emulator!.stats().requests).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(10)));
  });

  it("holds a round while Airtable stays locked (429 on every attempt), receives nothing else, and writes it once the base answers", async () => {
    // Arrange: two executions' worth of 429s; two more donations wait in the queue meanwhile
    const donations = sampleDonations(3);
    pipeline.emulator!.faults.failNext(2 * WritePolicy.maxAttempts, { status: 429 });
    await bus.publish(donations);
    const first = await pipeline.workflow.execute();
    const later = sampleDonations(2);
    await bus.publish(later);

    // Act: the held round is handed on twice; the second continuation finds the base answering
    const held = await pipeline.workflow.execute();
    const healed = await pipeline.workflow.execute();

    // Assert: one request per attempt (a 429 stops the attempt); nothing received while the base failed
    expect(first).toMatchObject({ status: "SUCCEEDED", received: 3, written: 0, deadLettered: 0, continued: true });
    expect(held).toMatchObject({ status: "SUCCEEDED", received: 0, written: 0, deadLettered: 0, continued: true });
    expect(healed).toMatchObject({ status: "SUCCEEDED", received: 2, written: 5, deadLettered: 0, continued: false });
    expect(pipeline.emulator!.stats().injected429).toBe(2 * WritePolicy.maxAttempts);
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(0);
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.deadLetter)).toBe(0);
    expect(donationRecords(pipeline).map((r) => r.fields.Id).sort()).toEqual([...donations, ...later].map((d) => d.Id).sort());
  });

  it("dead-letters a record Airtable rejects with 422", async () => {
    // Arrange
    const rejected = sampleDonation({ DonorDisplayName: "Rejected By Airtable" });
    pipeline.emulator!.faults.failWhen({ field: "Donor Display Name", equals: "Rejected By Airtable" }, { status: 422 });
    await bus.publish([rejected]);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", written: 0, deadLettered: 1, retried: 0 });
    const [letter] = await readDeadLetters(pipeline.sqs, pipeline.queueUrls.deadLetter);
    expect(letter!.body).toBe(serializeDonationEvent(rejected));
    expect(letter!.attributes[DeadLetterAttribute.ErrorName]).toBe(ErrorName.AirtableRecordRejected);
    expect(letter!.attributes[DeadLetterAttribute.FailedState]).toBe(StateName.WriteToAirtable);
    expect(donationRecords(pipeline)).toHaveLength(0);
  });

  it("writes an event delivered twice as one record, in one batch or across executions", async () => {
    // Arrange: two copies in one batch, then a third copy later (a redelivery)
    const donation = sampleDonation();
    const body = serializeDonationEvent(donation);
    await sendRaw(body);
    await sendRaw(body);

    // Act
    const first = await pipeline.workflow.execute();
    await sendRaw(body);
    const second = await pipeline.workflow.execute();

    // Assert
    expect(first).toMatchObject({ written: 1, copiesInBatch: 1, deadLettered: 0 });
    expect(second).toMatchObject({ written: 1, updated: 1 });
    expect(donationRecords(pipeline).filter((record) => record.fields.Id === donation.Id)).toHaveLength(1);
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(0);
  });

  it("drains a backlog of 35 messages in one execution", async () => {
    // Arrange
    const donations = sampleDonations(35);
    await bus.publish(donations);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 35, written: 35 });
    const outcome = await accountFor(pipeline, { validIds: donations.map((donation) => donation.Id), invalidBodies: [] });
    expect(outcome).toMatchObject({ missing: [], duplicated: [], leftInSourceQueue: 0 });
  });

  it("continues a backlog beyond its round cap in a new execution, instead of waiting for the next schedule", async () => {
    // Arrange: five messages more than one execution may take
    const cap = MAX_ROUNDS_PER_EXECUTION * MAX_MESSAGES_PER_ROUND;
    const donations = sampleDonations(cap + 5);
    await bus.publish(donations);

    // Act
    const first = await pipeline.workflow.execute();
    const continuation = await pipeline.workflow.execute();

    // Assert
    expect(first).toMatchObject({ status: "SUCCEEDED", received: cap, written: cap, continued: true });
    expect(continuation).toMatchObject({ status: "SUCCEEDED", received: 5, written: 5, continued: false });
    const outcome = await accountFor(pipeline, { validIds: donations.map((donation) => donation.Id), invalidBodies: [] });
    expect(outcome).toMatchObject({ missing: [], duplicated: [], leftInSourceQueue: 0 });
  });
});

describe("the drain with a wrong Airtable token", () => {
  it("fails the execution loudly and leaves every message in the queue, none dead-lettered", async () => {
    // Arrange: an emulator that accepts another token than the one the pipeline holds
    const emulator = await startAirtableEmulator({ port: 0, rateLimit: false, token: "patTheRightToken.x" });
    const pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      airtable: { endpointUrl: emulator.url, token: "patAWrongToken.x", baseId: DEFAULT_BASE_ID },
      airtableRequestsPerSecond: 5,
      retryIntervalOverrides: SHORT_RETRIES,
      waitTimeOverrides: SHORT_WAITS,
    });
    try {
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(4));

      // Act
      const summary = await pipeline.workflow.execute();

      // Assert
      expect(summary.status).toBe("FAILED");
      expect(summary.error?.name).toBe(ErrorName.AirtableConfiguration);
      expect(summary.error?.cause).toContain("401");
      expect(summary.error?.cause).not.toContain("patAWrongToken");
      expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(4);
      expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.deadLetter)).toBe(0);
      expect(emulator.records(DEFAULT_BASE_ID, "Donations")).toHaveLength(0);
    } finally {
      await pipeline.close();
      await emulator.close();
    }
  });

  it("fails as AirtableMisconfigured when the token is revoked in a later round: nothing dead-lettered, the rest queued", async () => {
    // Arrange: 45 donations (two rounds); the token is refused from the second round on
    const pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
      retryIntervalOverrides: SHORT_RETRIES,
      waitTimeOverrides: SHORT_WAITS,
    });
    try {
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(45));
      pipeline.workflow.observe({
        event(_arn, event) {
          const { type, state } = event as { type: string; state?: { name: string } };
          if (type === "StateEntered" && state?.name === StateName.CountRound) pipeline.emulator!.faults.add({ status: 401, operation: "write" });
        },
      });

      // Act
      const summary = await pipeline.workflow.execute();

      // Assert
      expect(summary).toMatchObject({ status: "FAILED", written: 30, deadLettered: 0 });
      expect(summary.error?.name).toBe(ErrorName.AirtableConfiguration);
      expect(donationRecords(pipeline)).toHaveLength(30);
      expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(15);
      expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.deadLetter)).toBe(0);
    } finally {
      await pipeline.close();
    }
  });
});

describe("the drain with a function that runs past its timeout", () => {
  /** The synthesized workflow with Validate's timeout cut to 1 s, and a Validate that takes 1.5 s. */
  const withShortValidate = () => {
    const workflow = structuredClone(inject("workflow"));
    const logicalId = Object.keys(workflow.constructIds).find((id) => workflow.constructIds[id] === "Validate")!;
    workflow.template.Resources[logicalId].Properties.Timeout = 1;
    return workflow;
  };
  const slowValidate = () => new Promise((resolve) => setTimeout(resolve, 1500));

  it.each([
    [SANDBOX_TIMEDOUT, {}],
    [LAMBDA_UNKNOWN, { functionTimeoutError: LAMBDA_UNKNOWN }],
  ] as const)("reports Validate's timeout as %s", async (expected, semantics) => {
    // Arrange
    const pipeline = await startLocalPipeline({
      workflow: withShortValidate(),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      retryIntervalOverrides: { ...SHORT_RETRIES, [StateName.Validate]: 20 },
      waitTimeOverrides: SHORT_WAITS,
      handlers: { Validate: slowValidate },
      semantics,
    });
    const failures: string[] = [];
    pipeline.workflow.observe({
      event: (_arn, event) => {
        const { type, state, Error: error } = event as { type: string; state?: { name: string }; Error?: string };
        if (type === "StateFailed" && state?.name === StateName.Validate) failures.push(error!);
      },
    });
    try {
      await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish([sampleDonation()]);

      // Act
      await pipeline.workflow.execute();

      // Assert: every failed attempt is named as AWS names it
      expect(failures.length).toBeGreaterThanOrEqual(1);
      expect(new Set(failures)).toEqual(new Set([expected]));
    } finally {
      await pipeline.close();
    }
  });
});
