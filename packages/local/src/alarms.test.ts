import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AIRTABLE_FAILING_ALARM_MS, airtableFailingAlarm, oldestDonationAlarm, oldestMessageAgeMs } from "./alarms";
import { type LocalSqsServer, startLocalSqs } from "./sqs-server";

describe("the local alarms", () => {
  it("AirtableFailingAlarm: OK while Airtable answers or has failed for less than 15 minutes, ALARM after", () => {
    // Arrange
    const now = Date.parse("2026-12-05T10:00:00Z");
    const since = (ms: number) => ({ failures: 9, failingSince: new Date(now - ms).toISOString() });

    // Act
    const states = [undefined, { failures: 0, failingSince: null }, since(AIRTABLE_FAILING_ALARM_MS - 1000), since(AIRTABLE_FAILING_ALARM_MS)].map(
      (circuit) => airtableFailingAlarm(circuit, now).state,
    );

    // Assert
    expect(states).toEqual(["OK", "OK", "OK", "ALARM"]);
    expect(airtableFailingAlarm(since(20 * 60_000), now).reason).toBe(
      "Airtable failing for 20 min (since 09:40:00 UTC, 9 attempts in a row): donations wait in the queue, none is dead-lettered",
    );
  });

  it("OldestDonationAlarm: ALARM once the oldest donation has waited the limit", () => {
    // Assert
    expect(oldestDonationAlarm(undefined).state).toBe("OK");
    expect(oldestDonationAlarm(59 * 60_000).state).toBe("OK");
    expect(oldestDonationAlarm(61 * 60_000)).toEqual({ name: "OldestDonationAlarm", state: "ALARM", reason: "the oldest donation has waited 61 min (limit 60 min)" });
  });
});

describe("the oldest message's age, read from the local SQS server without receiving", () => {
  let server: LocalSqsServer;
  let sqs: SQSClient;
  let queueUrl: string;
  beforeAll(async () => {
    server = await startLocalSqs({ port: 0 });
    sqs = new SQSClient({ endpoint: server.endpoint, region: "us-east-1", credentials: { accessKeyId: "l", secretAccessKey: "l" } });
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "AgeOfOldest" }))).QueueUrl!;
  });
  afterAll(async () => {
    sqs?.destroy();
    await server?.close();
  });

  it("counts waiting and in-flight messages, and is undefined for an empty queue", async () => {
    // Arrange
    const empty = await oldestMessageAgeMs(server.endpoint, "AgeOfOldest");
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "first" }));
    const sentAt = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "second" }));
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 600 }));

    // Act: both in flight now, 2 s on
    const inFlight = await oldestMessageAgeMs(server.endpoint, "AgeOfOldest", sentAt + 2000);
    for (const message of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    const deleted = await oldestMessageAgeMs(server.endpoint, "AgeOfOldest");

    // Assert
    expect(empty).toBeUndefined();
    expect(Messages).toHaveLength(2);
    expect(inFlight).toBeGreaterThanOrEqual(2000);
    expect(inFlight).toBeLessThan(3000);
    expect(deleted).toBeUndefined();
  });
});
