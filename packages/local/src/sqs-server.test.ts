import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type LocalSqsServer, startLocalSqs } from "./sqs-server";

/** One character of each range SQS accepts, the astral plane included (fixed by `patches/fauxqs+2.4.1.patch`). */
const EVERY_ACCEPTED_RANGE = "\t\n\r Zoë 🎉 \uD7FF \uE000 \uFFFD \u{10000} \u{10FFFF} 👩‍👩‍👧 𝔘𝔫𝔦𝔠𝔬𝔡𝔢";
const md5 = (text: string) => createHash("md5").update(text, "utf8").digest("hex");

describe("the local SQS server (fauxqs, patched)", () => {
  let dataDir: string;
  let server: LocalSqsServer;
  let sqs: SQSClient;
  let queueUrl: string;

  const start = async () => {
    server = await startLocalSqs({ port: 0, dataDir });
    sqs = new SQSClient({ endpoint: server.endpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    ({ QueueUrl: queueUrl } = (await sqs.send(new CreateQueueCommand({ QueueName: "Faithful", Attributes: { VisibilityTimeout: "60" } }))) as {
      QueueUrl: string;
    });
  };
  const stop = async () => {
    sqs.destroy();
    await server.close();
  };
  const receive = async () =>
    (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ["All"] }))).Messages ?? [];
  const depth = async () => {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
    );
    return { visible: Number(Attributes?.ApproximateNumberOfMessages), inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible) };
  };

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "fauxqs-"));
    await start();
  });
  afterEach(async () => {
    await stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("accepts every character SQS accepts, emoji included, and returns the body byte for byte with SQS's MD5", async () => {
    // Act
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: EVERY_ACCEPTED_RANGE }));
    const batch = await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: [{ Id: "astral", MessageBody: `batch ${EVERY_ACCEPTED_RANGE}` }] }),
    );
    const messages = await receive();

    // Assert
    expect(sent.MD5OfMessageBody).toBe(md5(EVERY_ACCEPTED_RANGE));
    expect(batch.Failed ?? []).toEqual([]);
    expect(messages.map((m) => Buffer.from(m.Body!, "utf8")).sort(Buffer.compare)).toEqual(
      [EVERY_ACCEPTED_RANGE, `batch ${EVERY_ACCEPTED_RANGE}`].map((body) => Buffer.from(body, "utf8")).sort(Buffer.compare),
    );
  });

  it.each([
    ["a NUL", "a\u0000b"],
    ["U+FFFE", "a\uFFFEb"],
    ["a lone surrogate", "a\uD83Db"],
  ])("refuses %s as SQS does, naming the accepted ranges", async (_, body) => {
    // Act
    const refused = sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));

    // Assert
    await expect(refused).rejects.toThrow(/Invalid characters found.*#x10000 to #x10FFFF/);
    expect(await depth()).toEqual({ visible: 0, inFlight: 0 });
  });

  describe("message size: the body and every attribute's name, type and value count (SQS: MessageAttributeValue)", () => {
    const MAX = 1024; // the smallest MaximumMessageSize SQS allows
    let smallQueueUrl: string;
    beforeEach(async () => {
      ({ QueueUrl: smallQueueUrl } = (await sqs.send(
        new CreateQueueCommand({ QueueName: "Small", Attributes: { MaximumMessageSize: String(MAX) } }),
      )) as { QueueUrl: string });
    });
    // "Note" (4) + "String" (6) + value: a message of exactly `total` bytes with one attribute.
    const withAttribute = (total: number, valueBytes = 100) => ({
      MessageBody: "b".repeat(total - 4 - 6 - valueBytes),
      MessageAttributes: { Note: { DataType: "String", StringValue: "v".repeat(valueBytes) } },
    });
    const TOO_LONG = `One or more parameters are invalid. Reason: Message must be shorter than ${MAX} bytes.`;

    it("accepts a message of exactly the queue's maximum, attributes included", async () => {
      const sent = await sqs.send(new SendMessageCommand({ QueueUrl: smallQueueUrl, ...withAttribute(MAX) }));
      expect(sent.MessageId).toBeDefined();
    });

    it("refuses SendMessage one byte over, counting the attribute, with SQS's InvalidParameterValue", async () => {
      // Arrange: the body alone is well under the maximum
      const message = withAttribute(MAX + 1);
      expect(Buffer.byteLength(message.MessageBody)).toBeLessThan(MAX);

      // Act
      const refused = sqs.send(new SendMessageCommand({ QueueUrl: smallQueueUrl, ...message }));

      // Assert
      await expect(refused).rejects.toMatchObject({ name: "InvalidParameterValue", message: TOO_LONG });
    });

    it("refuses that SendMessageBatch entry alone, sending the others", async () => {
      // Act
      const reply = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: smallQueueUrl,
          Entries: [
            { Id: "fits", ...withAttribute(MAX) },
            { Id: "over", ...withAttribute(MAX + 1) },
          ],
        }),
      );

      // Assert
      expect(reply.Successful?.map((entry) => entry.Id)).toEqual(["fits"]);
      expect(reply.Failed).toEqual([{ Id: "over", SenderFault: true, Code: "InvalidParameterValue", Message: TOO_LONG }]);
    });

    it("counts UTF-8 bytes, not characters, in names and values", async () => {
      // "é" is 2 bytes: MAX + 1 bytes in fewer than MAX characters
      const refused = sqs.send(
        new SendMessageCommand({
          QueueUrl: smallQueueUrl,
          MessageBody: "b".repeat(MAX - 4 - 6 - 100 * 2 + 1),
          MessageAttributes: { Note: { DataType: "String", StringValue: "é".repeat(100) } },
        }),
      );
      await expect(refused).rejects.toMatchObject({ name: "InvalidParameterValue", message: TOO_LONG });
    });

    it("counts a binary value by its bytes, not its base64 text", async () => {
      // 300 bytes are 400 base64 characters: counted as 300, this fits exactly
      const sent = await sqs.send(
        new SendMessageCommand({
          QueueUrl: smallQueueUrl,
          MessageBody: "b".repeat(MAX - 4 - 6 - 300),
          MessageAttributes: { Blob: { DataType: "Binary", BinaryValue: new Uint8Array(300).fill(7) } },
        }),
      );
      expect(sent.MessageId).toBeDefined();
    });
  });

  describe("empty attribute names, types and values are refused, as by SQS (MessageAttributeValue, SendMessage)", () => {
    it.each([
      ["an empty String value", { Reason: { DataType: "String", StringValue: "" } }, "Message (user) attribute 'Reason' must contain a non-empty value of type 'String'."],
      ["a missing String value", { Reason: { DataType: "String" } }, "Message (user) attribute 'Reason' must contain a non-empty value of type 'String'."],
      ["an empty Number value", { Count: { DataType: "Number", StringValue: "" } }, "Message (user) attribute 'Count' must contain a non-empty value of type 'Number'."],
      ["an empty Binary value", { Blob: { DataType: "Binary", BinaryValue: new Uint8Array(0) } }, "Message (user) attribute 'Blob' must contain a non-empty value of type 'Binary'."],
      ["an empty type", { Reason: { DataType: "", StringValue: "x" } }, "The message attribute 'Reason' must contain non-empty message attribute type."],
      ["an empty name", { "": { DataType: "String", StringValue: "x" } }, "The request must contain non-empty message attribute name."],
    ])("refuses %s with InvalidParameterValue, in SendMessage and per entry in SendMessageBatch", async (_, attributes, message) => {
      // Act
      const single = sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "body", MessageAttributes: attributes }));
      await expect(single).rejects.toMatchObject({ name: "InvalidParameterValue", message });
      const batch = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: [
            { Id: "bad", MessageBody: "body", MessageAttributes: attributes },
            { Id: "good", MessageBody: "body", MessageAttributes: { Reason: { DataType: "String", StringValue: "x" } } },
          ],
        }),
      );

      // Assert: nothing of the bad one is queued
      expect(batch.Failed).toEqual([{ Id: "bad", SenderFault: true, Code: "InvalidParameterValue", Message: message }]);
      expect(batch.Successful?.map((entry) => entry.Id)).toEqual(["good"]);
      expect(await depth()).toEqual({ visible: 1, inFlight: 0 });
    });
  });

  it("keeps a message whose visibility is changed to 0 with persistence on: visible at once, receive count kept", async () => {
    // Arrange
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "one" }));
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "two" }));
    const first = await receive();
    expect(first).toHaveLength(2);

    // Act: one released alone, one in a batch
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: first[0]!.ReceiptHandle!, VisibilityTimeout: 0 }));
    const batch = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: [{ Id: "0", ReceiptHandle: first[1]!.ReceiptHandle!, VisibilityTimeout: 0 }],
      }),
    );

    // Assert: both visible again at once, neither lost
    expect(batch.Failed ?? []).toEqual([]);
    expect(await depth()).toEqual({ visible: 2, inFlight: 0 });
    const again = await receive();
    expect(again.map((m) => m.Body).sort()).toEqual(["one", "two"]);
    expect(again.map((m) => m.Attributes?.ApproximateReceiveCount)).toEqual(["2", "2"]);
  });

  it("still holds a released message after a restart, ready to receive", async () => {
    // Arrange
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "Zoë 🎉" }));
    const [message] = await receive();
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message!.ReceiptHandle!, VisibilityTimeout: 0 }));

    // Act
    await stop();
    await start();

    // Assert
    expect(await depth()).toEqual({ visible: 1, inFlight: 0 });
    const [reloaded] = await receive();
    expect(reloaded?.Body).toBe("Zoë 🎉");
    expect(reloaded?.Attributes?.ApproximateReceiveCount).toBe("2");
  });
});
