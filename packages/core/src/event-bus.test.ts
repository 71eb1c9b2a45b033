import type { AddressInfo } from "node:net";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type DonationCreatedEvent, serializeDonationEvent } from "./donation-event";
import { ErrorName, EventTooLargeError } from "./errors";
import { SqsEventBus } from "./event-bus";
import { MAX_EVENT_BYTES } from "./limits";
import { sampleDonation, sampleDonations } from "./sample-donations";

/** A real SQS-protocol server (fauxqs, in memory) on a free loopback port. */
async function startSqsServer() {
  const { buildApp } = await import("fauxqs");
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, close: () => app.close() };
}

describe("SqsEventBus against a local SQS server", () => {
  // fauxqs itself (the SQS server `@fundraise-sync/local` wraps), on loopback: core sits below local and imports nothing of it.
  let server: Awaited<ReturnType<typeof startSqsServer>>;
  let sqs: SQSClient;
  let queueUrl: string;
  let queueCount = 0;

  beforeAll(async () => {
    server = await startSqsServer();
    sqs = new SQSClient({
      endpoint: server.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
  });
  afterAll(async () => {
    sqs?.destroy();
    await server?.close();
  });
  beforeEach(async () => {
    // A fresh queue per test: nothing left over from another test can satisfy an assertion.
    const created = await sqs.send(new CreateQueueCommand({ QueueName: `donations-${++queueCount}` }));
    queueUrl = created.QueueUrl!;
  });

  /** Receives until the queue answers empty. */
  async function drain(url: string): Promise<Message[]> {
    const messages: Message[] = [];
    for (;;) {
      const reply = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!reply.Messages?.length) return messages;
      messages.push(...reply.Messages);
    }
  }

  const queuedCount = async (url: string) => {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages"] }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages);
  };

  it("publishes 23 events (three batches) in the producer's wire format", async () => {
    // Arrange
    const events = sampleDonations(23);
    const bus = new SqsEventBus(sqs, queueUrl);

    // Act
    const report = await bus.publish(events);

    // Assert: every event reported published, once, with a message id
    expect(report.failed).toEqual([]);
    expect(report.published.map((p) => p.eventId).sort()).toEqual(events.map((e) => e.Id).sort());
    expect(new Set(report.published.map((p) => p.messageId)).size).toBe(23);
    expect(report.published.every((p) => p.messageId.length > 0)).toBe(true);
    // ... and the queue holds exactly those bodies, byte for byte
    const bodies = (await drain(queueUrl)).map((m) => m.Body);
    expect(bodies.sort()).toEqual(events.map(serializeDonationEvent).sort());
  });

  it("publishes nothing for an empty list", async () => {
    // Act
    const report = await new SqsEventBus(sqs, queueUrl).publish([]);

    // Assert
    expect(report).toEqual({ published: [], failed: [] });
    expect(await queuedCount(queueUrl)).toBe(0);
  });

  describe("refuses an event larger than the queue accepts, before sending anything", () => {
    /** An event whose serialized body is exactly `bytes` long, padded with `char` in the donor name. */
    const eventOfBytes = (bytes: number, char = "x"): DonationCreatedEvent => {
      const base = sampleDonation({ DonorDisplayName: "" });
      const room = bytes - Buffer.byteLength(serializeDonationEvent(base), "utf8");
      const charBytes = Buffer.byteLength(char, "utf8");
      const name = char.repeat(Math.floor(room / charBytes)) + "x".repeat(room % charBytes);
      const event = { ...base, DonorDisplayName: name };
      expect(Buffer.byteLength(serializeDonationEvent(event), "utf8")).toBe(bytes);
      return event;
    };

    it.each<{ case: string; bytes: number; char: string }>([
      { case: "one byte over, in ASCII", bytes: MAX_EVENT_BYTES + 1, char: "x" },
      // Fewer characters than the limit, more bytes: the limit is in UTF-8 bytes, as SQS counts it.
      { case: "one byte over, in 3-byte characters", bytes: MAX_EVENT_BYTES + 1, char: "李" },
      { case: "far over", bytes: 4 * MAX_EVENT_BYTES, char: "x" },
    ])("$case", async ({ bytes, char }) => {
      // Arrange: a valid event first, so a partial send would show on the queue
      const big = eventOfBytes(bytes, char);
      const bus = new SqsEventBus(sqs, queueUrl);

      // Act
      const outcome = await bus.publish([sampleDonation(), big]).then(
        () => undefined,
        (error: unknown) => error,
      );

      // Assert
      expect(outcome).toBeInstanceOf(EventTooLargeError);
      const error = outcome as EventTooLargeError;
      expect(error.name).toBe(ErrorName.EventTooLarge);
      expect(error).toMatchObject({ eventId: big.Id, bytes, limitBytes: MAX_EVENT_BYTES });
      expect(error.message).toContain(big.Id);
      expect(await queuedCount(queueUrl)).toBe(0);
    });

    it("accepts an event of exactly the limit", async () => {
      // Arrange
      const event = eventOfBytes(MAX_EVENT_BYTES, "李");

      // Act
      const report = await new SqsEventBus(sqs, queueUrl).publish([event]);

      // Assert
      expect(report.failed).toEqual([]);
      expect((await drain(queueUrl)).map((m) => m.Body)).toEqual([serializeDonationEvent(event)]);
    });
  });

  it("reports every event as failed, with a reason, when the queue does not exist", async () => {
    // Arrange: 12 events, so both of the two batch requests fail
    const events = sampleDonations(12);
    const missing = queueUrl.replace(/[^/]+$/, "no-such-queue");
    const bus = new SqsEventBus(sqs, missing);

    // Act
    const report = await bus.publish(events);

    // Assert
    expect(report.published).toEqual([]);
    expect(report.failed.map((f) => f.eventId).sort()).toEqual(events.map((e) => e.Id).sort());
    for (const failure of report.failed) {
      expect(failure.code).not.toBe("");
      expect(failure.reason).toMatch(/QueueDoesNotExist|does not exist/i);
    }
    expect(await queuedCount(queueUrl)).toBe(0);
  });
});
