import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { SQS_MAX_ENTRIES_PER_BATCH_CALL } from "./limits";

/** A message as Step Functions' `sqs:receiveMessage` SDK integration returns it. */
export interface ReceivedMessage {
  MessageId: string;
  ReceiptHandle: string;
  Body: string;
  MD5OfBody?: string;
  Attributes?: Record<string, string>;
}

/** A message as the batch calls need it. */
export interface MessageHandle {
  MessageId: string;
  ReceiptHandle: string;
}

/** What a batch call did: SQS answers per entry, so some may fail while others succeed. */
export interface BatchCallResult {
  succeeded: string[];
  /** Message ids SQS refused, with its reason. */
  failed: { MessageId: string; reason: string }[];
}

/**
 * Deletes messages from a queue, 10 per `DeleteMessageBatch` call. Called only once they are safely somewhere:
 * written to Airtable, or copied to the dead-letter queue. One that fails to delete stays queued and is upserted
 * again on redelivery, harmlessly.
 */
export async function deleteMessages(sqs: SQSClient, queueUrl: string, messages: readonly MessageHandle[]): Promise<BatchCallResult> {
  return inBatches(messages, async (entries) => {
    const reply = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    return reply.Failed ?? [];
  });
}

/**
 * Makes messages visible again after `seconds` (for redelivery once a locked Airtable base unlocks), 10 per call.
 */
export async function releaseMessages(
  sqs: SQSClient,
  queueUrl: string,
  messages: readonly MessageHandle[],
  seconds: number,
): Promise<BatchCallResult> {
  return inBatches(messages, async (entries) => {
    const reply = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: entries.map((entry) => ({ ...entry, VisibilityTimeout: seconds })),
      }),
    );
    return reply.Failed ?? [];
  });
}

async function inBatches(
  messages: readonly MessageHandle[],
  call: (entries: { Id: string; ReceiptHandle: string }[]) => Promise<{ Id?: string; Message?: string; Code?: string }[]>,
): Promise<BatchCallResult> {
  const result: BatchCallResult = { succeeded: [], failed: [] };
  for (let start = 0; start < messages.length; start += SQS_MAX_ENTRIES_PER_BATCH_CALL) {
    const slice = messages.slice(start, start + SQS_MAX_ENTRIES_PER_BATCH_CALL);
    // Entry ids only need to be unique within one call: positions keep them valid whatever a MessageId looks like.
    const failed = await call(slice.map(({ ReceiptHandle }, index) => ({ Id: String(index), ReceiptHandle })));
    const failedIds = new Map(failed.map((entry) => [entry.Id, entry.Message ?? entry.Code ?? "failed"]));
    slice.forEach(({ MessageId }, index) => {
      const reason = failedIds.get(String(index));
      if (reason === undefined) result.succeeded.push(MessageId);
      else result.failed.push({ MessageId, reason });
    });
  }
  return result;
}
