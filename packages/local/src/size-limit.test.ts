import { ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import {
  DEAD_LETTER_ATTRIBUTE_BOUNDS,
  DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES,
  DeadLetterAttribute,
  type DeadLetterAttributeName,
  DonationField,
  DONATIONS_QUEUE_MAX_MESSAGE_BYTES,
  ErrorName,
  MAX_ERROR_CAUSE_BYTES,
  MAX_EVENT_BYTES,
  type MessageAttributeInput,
  sampleDonation,
  serializeDonationEvent,
  SqsEventBus,
  sqsMessageBytes,
} from "@fundraise-sync/core";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { listDeadLetters, redriveDeadLetters, resolveDeadLetterQueues, type DeadLetterQueues } from "./dead-letters";
import { type LocalPipeline, startLocalPipeline } from "./pipeline";
import { donationRecords, queueDepth, readDeadLetters } from "./testing";

/**
 * The size budget (packages/core/src/limits.ts) against the real local SQS server, which counts attributes as SQS
 * does, with the queues created from the synthesized template and the real synthesized definition: a body at the
 * producer's limit goes through the whole cycle.
 */

/** A body of exactly `bytes` UTF-8 bytes: `fields` with DonorDisplayName padded, in 4-byte characters where it can. */
function bodyOfBytes(bytes: number, fields: Record<string, unknown>): string {
  const base = Buffer.byteLength(JSON.stringify({ ...fields, DonorDisplayName: "" }));
  const room = bytes - base;
  const pad = "🎉".repeat(Math.floor(room / 4)) + "x".repeat(room % 4);
  const body = JSON.stringify({ ...fields, DonorDisplayName: pad });
  expect(Buffer.byteLength(body, "utf8")).toBe(bytes);
  return body;
}

const atBounds = (names: readonly DeadLetterAttributeName[]): Record<string, MessageAttributeInput> =>
  Object.fromEntries(
    names.map((name) => {
      const { dataType, maxValueBytes } = DEAD_LETTER_ATTRIBUTE_BOUNDS[name];
      return [name, { DataType: dataType, StringValue: (dataType === "Number" ? "9" : "é").repeat(dataType === "Number" ? maxValueBytes : maxValueBytes / 2) }];
    }),
  );

describe("a body at the producer's limit, through the whole cycle (real SQS server, real definition)", () => {
  let pipeline: LocalPipeline;
  let queues: DeadLetterQueues;
  let bus: SqsEventBus;

  beforeAll(async () => {
    pipeline = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, emulator: { port: 0, rateLimit: false }, airtableRequestsPerSecond: 5 });
    queues = await resolveDeadLetterQueues(pipeline.sqs, pipeline.queueUrls.source);
    bus = new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source);
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("is dead-lettered with its reasons, listed, redriven with RedriveCount and dead-lettered again, body intact", async () => {
    // Arrange: an invalid event of exactly MAX_EVENT_BYTES, sent through the producer's own size check
    const body = bodyOfBytes(MAX_EVENT_BYTES, { ...JSON.parse(serializeDonationEvent(sampleDonation())), Id: "not-a-guid" });
    const published = await bus.publishRaw([{ id: "at-the-limit", body }]);
    expect(published.failed).toEqual([]);

    // Act 1: a drain dead-letters it
    const first = await pipeline.workflow.execute();

    // Assert 1: in the DLQ with every reason attribute, body byte for byte
    expect(first).toMatchObject({ status: "SUCCEEDED", deadLettered: 1 });
    const { letters } = await listDeadLetters(queues);
    expect(letters).toHaveLength(1);
    const [letter] = letters;
    expect(letter).toMatchObject({ errorName: ErrorName.InvalidDonationEvent, failedState: "Validate", redriveCount: 0, body, verdict: { valid: false } });
    for (const field of ["rawCause", "executionArn", "receiveCount", "sourceMessageId"] as const) expect(letter![field]).toBeTruthy();
    expect(Buffer.byteLength(letter!.rawCause!, "utf8")).toBeLessThanOrEqual(MAX_ERROR_CAUSE_BYTES);

    // Act 2: redriven (forced: it can never pass), then drained again
    const redriven = await redriveDeadLetters(queues, { force: true });
    expect(redriven).toMatchObject({ failed: [], redriven: [{ redriveCount: 1 }] });
    const second = await pipeline.workflow.execute();

    // Assert 2: dead-lettered again, RedriveCount kept beside the reasons, body still intact
    expect(second).toMatchObject({ status: "SUCCEEDED", deadLettered: 1 });
    const again = await readDeadLetters(pipeline.sqs, pipeline.queueUrls.deadLetter);
    expect(again).toHaveLength(1);
    expect(again[0]!.body).toBe(body);
    expect(again[0]!.attributes).toMatchObject({
      [DeadLetterAttribute.ErrorName]: ErrorName.InvalidDonationEvent,
      [DeadLetterAttribute.FailedState]: "Validate",
      [DeadLetterAttribute.RedriveCount]: "1",
    });
    for (const name of Object.values(DeadLetterAttribute)) expect(again[0]!.attributes[name], name).toBeTruthy();
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(0);
  });

  it("writes a valid body at the limit to Airtable", async () => {
    // Arrange
    const event = sampleDonation();
    const body = bodyOfBytes(MAX_EVENT_BYTES, JSON.parse(serializeDonationEvent(event)));
    expect((await bus.publishRaw([{ id: event.Id, body }])).failed).toEqual([]);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", written: 1, deadLettered: 0 });
    const record = donationRecords(pipeline).find((candidate) => candidate.fields.Id === event.Id);
    expect(record?.fields[DonationField.DonorDisplayName]).toBe(JSON.parse(body).DonorDisplayName);
  });
});

describe("the queues the stack creates hold the worst case of the size budget, and no more (real SQS server)", () => {
  let pipeline: LocalPipeline;
  beforeAll(async () => {
    pipeline = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, emulator: { port: 0, rateLimit: false } });
  });
  afterAll(async () => {
    await pipeline?.close();
  });
  beforeEach(async () => {
    // Nothing of one case may be left for the next.
    for (const url of Object.values(pipeline.queueUrls)) {
      for (;;) {
        const { Messages = [] } = await pipeline.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
        if (Messages.length === 0) break;
      }
    }
  });
  const send = (queueUrl: string, body: string, attributes: Record<string, MessageAttributeInput>) =>
    pipeline.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, MessageAttributes: attributes }));

  it("donations queue: a body at the producer's limit with the largest RedriveCount, and not a byte more", async () => {
    const redrive = atBounds([DeadLetterAttribute.RedriveCount]);
    expect(sqsMessageBytes("x".repeat(MAX_EVENT_BYTES), redrive)).toBe(DONATIONS_QUEUE_MAX_MESSAGE_BYTES);
    await expect(send(pipeline.queueUrls.source, "x".repeat(MAX_EVENT_BYTES), redrive)).resolves.toHaveProperty("MessageId");
    await expect(send(pipeline.queueUrls.source, "x".repeat(MAX_EVENT_BYTES + 1), redrive)).rejects.toMatchObject({
      name: "InvalidParameterValue",
      message: `One or more parameters are invalid. Reason: Message must be shorter than ${DONATIONS_QUEUE_MAX_MESSAGE_BYTES} bytes.`,
    });
  });

  it("dead-letter queue: a body at the donations queue's maximum with every reason attribute at its bound", async () => {
    const reasons = atBounds(Object.values(DeadLetterAttribute));
    const body = "x".repeat(DONATIONS_QUEUE_MAX_MESSAGE_BYTES);
    expect(sqsMessageBytes(body, reasons)).toBeLessThanOrEqual(DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES);
    await expect(send(pipeline.queueUrls.deadLetter, body, reasons)).resolves.toHaveProperty("MessageId");
    // ...and the DLQ's maximum is really in force: the slack above the worst case, plus one byte, is refused
    const slack = DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES - sqsMessageBytes(body, reasons);
    await expect(send(pipeline.queueUrls.deadLetter, body + "x".repeat(slack + 1), reasons)).rejects.toMatchObject({ name: "InvalidParameterValue" });
  });
});
