import { CreateQueueCommand, GetQueueAttributesCommand, PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DeadLetterAttribute, ErrorName, sampleDonation, serializeDonationEvent } from "@fundraise-sync/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  checkBody,
  type DeadLetterQueues,
  DeadLetterQueueError,
  deleteDeadLetters,
  listDeadLetters,
  redriveDeadLetters,
  resolveDeadLetterQueues,
  sendEditedBody,
} from "./dead-letters";
import { type LocalSqsServer, startLocalSqs } from "./sqs-server";

const VALID = serializeDonationEvent(sampleDonation({ DonorDisplayName: "Zoë  «spaces»  " }));
const INVALID = '{"Id":"not-a-guid","DonationAmount":-5}';

describe("checkBody", () => {
  it("passes a valid event and names its Id as the pipeline writes it", () => {
    // Arrange
    const event = sampleDonation();
    const body = serializeDonationEvent({ ...event, Id: event.Id.toUpperCase() });

    // Act
    const verdict = checkBody(body);

    // Assess
    expect(verdict).toEqual({ valid: true, eventId: event.Id.toLowerCase() });
  });

  it("gives Validate's error name and every problem for a body that can never pass", () => {
    // Act
    const verdict = checkBody(INVALID);

    // Assess
    expect(verdict.valid).toBe(false);
    if (verdict.valid) return;
    expect(verdict.errorName).toBe(ErrorName.InvalidDonationEvent);
    expect(verdict.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^Id: must be a Guid/), expect.stringMatching(/^DonationAmount: must be greater than 0/)]));
    expect(verdict.reason).toMatch(/^Not a valid DonationCreated event: /);
  });

  it("calls a body that is not JSON invalid rather than throwing", () => {
    expect(checkBody("{oops")).toMatchObject({ valid: false, problems: [expect.stringMatching(/^the body is not JSON/)] });
  });
});

describe("dead-letter operations against a real SQS server", () => {
  let server: LocalSqsServer;
  let sqs: SQSClient;
  let queues: DeadLetterQueues;

  /** Puts a message in the DLQ as the state machine does: the original body, the reason in attributes. */
  async function deadLetter(body: string, errorName: string, redriveCount?: number): Promise<string> {
    const attributes: Record<string, { DataType: string; StringValue: string }> = {
      [DeadLetterAttribute.ErrorName]: { DataType: "String", StringValue: errorName },
      [DeadLetterAttribute.ErrorCause]: { DataType: "String", StringValue: JSON.stringify({ errorType: errorName, errorMessage: "why" }) },
      [DeadLetterAttribute.FailedState]: { DataType: "String", StringValue: "Validate" },
    };
    if (redriveCount !== undefined) attributes[DeadLetterAttribute.RedriveCount] = { DataType: "Number", StringValue: String(redriveCount) };
    const { MessageId } = await sqs.send(new SendMessageCommand({ QueueUrl: queues.deadLetterUrl, MessageBody: body, MessageAttributes: attributes }));
    return MessageId!;
  }

  async function sourceMessages() {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queues.sourceUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"], VisibilityTimeout: 60 }),
    );
    return Messages.map((message) => ({ body: message.Body, redriveCount: message.MessageAttributes?.[DeadLetterAttribute.RedriveCount]?.StringValue }));
  }

  async function depth(queueUrl: string): Promise<number> {
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
    );
    return Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible);
  }

  beforeAll(async () => {
    server = await startLocalSqs({ port: 0 });
    sqs = new SQSClient({ endpoint: server.endpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    const { QueueUrl: dlq } = await sqs.send(new CreateQueueCommand({ QueueName: "letters-dlq" }));
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq!, AttributeNames: ["QueueArn"] }));
    const { QueueUrl: source } = await sqs.send(
      new CreateQueueCommand({
        QueueName: "letters",
        Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 3 }) },
      }),
    );
    queues = await resolveDeadLetterQueues(sqs, source!);
  });
  afterAll(async () => {
    sqs?.destroy();
    await server?.close();
  });
  beforeEach(async () => {
    await sqs.send(new PurgeQueueCommand({ QueueUrl: queues.sourceUrl }));
    await sqs.send(new PurgeQueueCommand({ QueueUrl: queues.deadLetterUrl }));
  });

  it("finds the DLQ from the donations queue's RedrivePolicy", () => {
    expect(queues.deadLetterUrl).toMatch(/\/letters-dlq$/);
  });

  it("lists every message with its reason, redrive count and verdict, and consumes none", async () => {
    // Arrange
    const validId = await deadLetter(VALID, ErrorName.AirtableRecordRejected, 2);
    const invalidId = await deadLetter(INVALID, ErrorName.InvalidDonationEvent);

    // Act: twice; the second list sees what the first gave back
    const first = await listDeadLetters(queues);
    const second = await listDeadLetters(queues);

    // Assess
    const byId = new Map(first.letters.map((letter) => [letter.messageId, letter]));
    expect(byId.get(validId)).toMatchObject({ errorName: ErrorName.AirtableRecordRejected, cause: "why", redriveCount: 2, body: VALID, verdict: { valid: true } });
    expect(byId.get(invalidId)).toMatchObject({ errorName: ErrorName.InvalidDonationEvent, redriveCount: 0, body: INVALID, verdict: { valid: false } });
    expect(second.letters.map((letter) => letter.messageId).sort()).toEqual([validId, invalidId].sort());
    expect(first.slowToReappear).toBe(0);
    expect(await depth(queues.deadLetterUrl)).toBe(2);
  });

  it("redrives valid bodies byte for byte with a redrive count, and keeps the ones that can never pass", async () => {
    // Arrange
    const validId = await deadLetter(VALID, ErrorName.AirtableUnavailable, 2);
    const invalidId = await deadLetter(INVALID, ErrorName.InvalidDonationEvent);

    // Act
    const result = await redriveDeadLetters(queues);

    // Assess
    expect(result.redriven).toEqual([{ messageId: validId, newMessageId: expect.any(String), redriveCount: 3 }]);
    expect(result.leftInvalid).toEqual([{ messageId: invalidId, problems: expect.arrayContaining([expect.stringMatching(/^Id: /)]) }]);
    expect(result.failed).toEqual([]);
    expect(await sourceMessages()).toEqual([{ body: VALID, redriveCount: "3" }]);
    expect((await listDeadLetters(queues)).letters.map((letter) => letter.messageId)).toEqual([invalidId]);
  });

  it("with force, redrives a body that can never pass too", async () => {
    // Arrange
    await deadLetter(INVALID, ErrorName.InvalidDonationEvent);

    // Act
    const result = await redriveDeadLetters(queues, { force: true });

    // Assess
    expect(result.redriven).toHaveLength(1);
    expect(await sourceMessages()).toEqual([{ body: INVALID, redriveCount: "1" }]);
    expect(await depth(queues.deadLetterUrl)).toBe(0);
  });

  it("redrives only the selected ids, and names the ids it did not find", async () => {
    // Arrange
    const chosen = await deadLetter(VALID, ErrorName.AirtableRecordRejected);
    const other = await deadLetter(serializeDonationEvent(sampleDonation()), ErrorName.AirtableRecordRejected);

    // Act
    const result = await redriveDeadLetters(queues, { selection: { ids: [chosen, "no-such-id"] } });

    // Assess
    expect(result.redriven.map((moved) => moved.messageId)).toEqual([chosen]);
    expect(result.notFound).toEqual(["no-such-id"]);
    expect((await listDeadLetters(queues)).letters.map((letter) => letter.messageId)).toEqual([other]);
  });

  it("redrives at most max", async () => {
    // Arrange
    for (let i = 0; i < 3; i++) await deadLetter(serializeDonationEvent(sampleDonation()), ErrorName.AirtableRecordRejected);

    // Act
    const result = await redriveDeadLetters(queues, { max: 2 });

    // Assess
    expect(result.redriven).toHaveLength(2);
    expect((await listDeadLetters(queues)).letters).toHaveLength(1);
  });

  it("deletes by id, by ErrorName and all, and leaves the rest", async () => {
    // Arrange
    const byId = await deadLetter(VALID, ErrorName.AirtableRecordRejected);
    const invalidA = await deadLetter(INVALID, ErrorName.InvalidDonationEvent);
    const invalidB = await deadLetter(`${INVALID} `, ErrorName.InvalidDonationEvent);
    const last = await deadLetter(VALID, ErrorName.AirtableUnavailable);

    // Act / Assess: by id
    const first = await deleteDeadLetters(queues, { ids: [byId, "gone"] });
    expect(first.deleted.map((letter) => letter.messageId)).toEqual([byId]);
    expect(first.notFound).toEqual(["gone"]);

    // by ErrorName
    const second = await deleteDeadLetters(queues, { errorName: ErrorName.InvalidDonationEvent });
    expect(second.deleted.map((letter) => letter.messageId).sort()).toEqual([invalidA, invalidB].sort());
    expect((await listDeadLetters(queues)).letters.map((letter) => letter.messageId)).toEqual([last]);

    // all
    const third = await deleteDeadLetters(queues, { all: true });
    expect(third.deleted.map((letter) => letter.messageId)).toEqual([last]);
    expect(await depth(queues.deadLetterUrl)).toBe(0);
    expect(await depth(queues.sourceUrl)).toBe(0);
  });

  it("sends an edited body in place of a dead letter only once it passes Validate", async () => {
    // Arrange
    const original = await deadLetter(INVALID, ErrorName.InvalidDonationEvent, 1);
    const fixed = serializeDonationEvent(sampleDonation());

    // Act: a still-invalid edit is refused, nothing moves
    const refused = await sendEditedBody(queues, original, '{"Id":"still-wrong"}');

    // Assess
    expect(refused).toMatchObject({ sent: false, verdict: { valid: false } });
    expect(await depth(queues.sourceUrl)).toBe(0);
    expect(await depth(queues.deadLetterUrl)).toBe(1);

    // Act: a valid edit replaces the dead letter
    const sent = await sendEditedBody(queues, original, fixed);

    // Assess
    expect(sent).toMatchObject({ sent: true, redriveCount: 2 });
    expect(await sourceMessages()).toEqual([{ body: fixed, redriveCount: "2" }]);
    expect(await depth(queues.deadLetterUrl)).toBe(0);
  });

  it("refuses to send an edited body for a message that is not in the DLQ, sending nothing", async () => {
    await expect(sendEditedBody(queues, "no-such-id", VALID)).rejects.toThrow(DeadLetterQueueError);
    expect(await depth(queues.sourceUrl)).toBe(0);
  });

  it("refuses to read a DLQ that has a redrive policy of its own", async () => {
    // Arrange: a queue whose messages would move on after 2 receives
    const { QueueUrl: target } = await sqs.send(new CreateQueueCommand({ QueueName: "elsewhere" }));
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: target!, AttributeNames: ["QueueArn"] }));
    const { QueueUrl: chained } = await sqs.send(
      new CreateQueueCommand({
        QueueName: "chained-dlq",
        Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 2 }) },
      }),
    );

    // Act / Assess
    await expect(listDeadLetters({ ...queues, deadLetterUrl: chained! })).rejects.toThrow(/RedrivePolicy of its own/);
  });
});
