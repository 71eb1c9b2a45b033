import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { servedQueueUrl, startLocalPipeline } from "./pipeline";

describe("queues kept in a data folder, served on another port", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "fundraise-pipeline-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("names the queue URLs at the port it serves, not the port the queues were created on, messages kept", async () => {
    // Arrange: a first start creates the queues and leaves a message in them
    const first = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, sqsDataDir: dir, emulator: { port: 0, rateLimit: false } });
    await first.sqs.send(new SendMessageCommand({ QueueUrl: first.queueUrls.source, MessageBody: "kept" }));
    await first.close();

    // Act: the next start on another (free) port
    const second = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, sqsDataDir: dir, emulator: { port: 0, rateLimit: false } });
    try {
      const { Messages } = await second.sqs.send(new ReceiveMessageCommand({ QueueUrl: second.queueUrls.source, WaitTimeSeconds: 1 }));

      // Assert
      expect(first.sqsEndpoint).not.toBe(second.sqsEndpoint);
      expect(second.queueUrls.source.startsWith(`${second.sqsEndpoint}/`)).toBe(true);
      expect(second.queueUrls.deadLetter.startsWith(`${second.sqsEndpoint}/`)).toBe(true);
      expect(Messages?.map(({ Body }) => Body)).toEqual(["kept"]);
    } finally {
      await second.close();
    }
  });

  it("keeps the queue's path and takes the server's origin", () => {
    // Act / Assert
    expect(servedQueueUrl("http://127.0.0.1:9324/000000000000/FundraiseDonations", "http://127.0.0.1:9424")).toBe(
      "http://127.0.0.1:9424/000000000000/FundraiseDonations",
    );
  });
});
