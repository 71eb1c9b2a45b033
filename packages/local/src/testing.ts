import { GetQueueAttributesCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME, type EmulatorRecord } from "@fundraise-sync/airtable-emulator";
import { DeadLetterAttribute } from "@fundraise-sync/core";
import type { LocalPipeline } from "./pipeline";
import type { DrainSummary } from "./workflow";

/** Test support: reads what a drain left behind, through the same real servers. */

export interface DeadLetter {
  body: string;
  attributes: Record<string, string>;
}

/** Every message in the DLQ with its reason attributes (consumes them: they stay hidden for 60 s). */
export async function readDeadLetters(sqs: SQSClient, queueUrl: string): Promise<DeadLetter[]> {
  const letters = new Map<string, DeadLetter>();
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ["All"], VisibilityTimeout: 60 }),
    );
    if (Messages.length === 0) return [...letters.values()];
    for (const message of Messages) {
      const attributes = Object.fromEntries(
        Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue ?? ""]),
      );
      letters.set(message.MessageId!, { body: message.Body!, attributes });
    }
  }
}

/** Messages still in a queue, visible or in flight. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/** The Donations table's records in the pipeline's emulator. */
export function donationRecords(pipeline: LocalPipeline): EmulatorRecord[] {
  return pipeline.emulator!.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME);
}

/**
 * Runs executions until one receives nothing (bounded), returning every summary. A skipped execution (the drain
 * lease named a holder DescribeExecution still showed running) is run again once that view has caught up:
 * DescribeExecution lags (see aws-semantics.ts), so a holder that ended a moment ago still looks running. On AWS the
 * next schedule does this.
 */
export async function drainUntilEmpty(pipeline: LocalPipeline, maxExecutions = 10): Promise<DrainSummary[]> {
  const summaries: DrainSummary[] = [];
  const { listExecutionsLagMs, describeExecutionLagMs } = pipeline.workflow.semantics;
  for (let run = 0; run < maxExecutions; run++) {
    const summary = await pipeline.workflow.execute();
    summaries.push(summary);
    if (summary.status === "SKIPPED") {
      await new Promise((resolve) => setTimeout(resolve, Math.max(listExecutionsLagMs, describeExecutionLagMs) + 50));
      continue;
    }
    // A continuation (a held round, a backlog past the cap) runs at once, as on AWS.
    if (summary.status !== "SUCCEEDED" || (summary.received === 0 && !summary.continued)) return summaries;
  }
  throw new Error(`The queue was not drained in ${maxExecutions} executions`);
}

/**
 * The pipeline's promise, checked message by message: every published body ends as exactly one Airtable record (if
 * it is a valid event) or in the DLQ with its original body and a reason — and the source queue is empty.
 */
export async function accountFor(pipeline: LocalPipeline, published: { validIds: string[]; invalidBodies: string[] }) {
  const records = donationRecords(pipeline);
  const deadLetters = await readDeadLetters(pipeline.sqs, pipeline.queueUrls.deadLetter);
  const recordsPerId = new Map<string, number>();
  for (const record of records) {
    const id = String(record.fields.Id);
    recordsPerId.set(id, (recordsPerId.get(id) ?? 0) + 1);
  }
  return {
    records,
    deadLetters,
    missing: published.validIds.filter((id) => !recordsPerId.has(id)),
    duplicated: [...recordsPerId].filter(([, count]) => count > 1).map(([id]) => id),
    invalidNotDeadLettered: published.invalidBodies.filter((body) => !deadLetters.some((letter) => letter.body === body)),
    deadLettersWithoutReason: deadLetters.filter(
      (letter) => !letter.attributes[DeadLetterAttribute.ErrorName] || !letter.attributes[DeadLetterAttribute.ErrorCause],
    ),
    leftInSourceQueue: await queueDepth(pipeline.sqs, pipeline.queueUrls.source),
  };
}
