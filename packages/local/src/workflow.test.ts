import { PurgeQueueCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME } from "@fundraise-sync/airtable-emulator";
import { SqsEventBus, sampleDonations } from "@fundraise-sync/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalPipeline, startLocalPipeline } from "./pipeline";

describe("the synthesized drain, executed locally", () => {
  let pipeline: LocalPipeline;
  beforeAll(async () => {
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      minWriteIntervalMs: 0,
    });
  });
  afterAll(() => pipeline?.close());

  it("writes a published donation to Airtable and deletes it from the queue", async () => {
    // Arrange
    const [donation] = sampleDonations(1);
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish([donation!]);

    // Act
    const summary = await pipeline.workflow.execute();

    // Assert
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 1, written: 1, deadLettered: 0 });
    const records = pipeline.emulator!.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME);
    expect(records.map((record) => record.fields.Id)).toEqual([donation!.Id]);
    const left = await pipeline.sqs.send(new ReceiveMessageCommand({ QueueUrl: pipeline.queueUrls.source, WaitTimeSeconds: 0 }));
    expect(left.Messages ?? []).toHaveLength(0);
  });
});
