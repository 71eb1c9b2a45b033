import { readFile, rm } from "node:fs/promises";
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { SQS_MAX_MESSAGES_PER_RECEIVE } from "@fundraise-sync/core";
import type { LocalWorkflow, ReceivedReceipt } from "./workflow";

/** Seconds after which released messages are visible again: at once (fauxqs is patched for 0, see patches/). */
export const RELEASE_VISIBILITY_SECONDS = 0;

/**
 * Hands the messages an aborted execution held back to the queue: they are visible again after
 * {@link RELEASE_VISIBILITY_SECONDS} instead of the whole visibility timeout. Those it already deleted are refused by
 * SQS and counted as `gone`. Records it had written are upserted again on redelivery, which changes nothing.
 */
export async function releaseMessages(
  sqs: SQSClient,
  receipts: readonly ReceivedReceipt[],
  seconds = RELEASE_VISIBILITY_SECONDS,
): Promise<{ released: number; gone: number }> {
  let released = 0;
  let gone = 0;
  const byQueue = Map.groupBy(receipts, (receipt) => receipt.queueUrl);
  for (const [queueUrl, handles] of byQueue) {
    for (let start = 0; start < handles.length; start += SQS_MAX_MESSAGES_PER_RECEIVE) {
      const chunk = handles.slice(start, start + SQS_MAX_MESSAGES_PER_RECEIVE);
      const reply = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map(({ receiptHandle }, index) => ({ Id: String(index), ReceiptHandle: receiptHandle, VisibilityTimeout: seconds })),
        }),
      );
      released += reply.Successful?.length ?? 0;
      gone += reply.Failed?.length ?? 0;
    }
  }
  return { released, gone };
}

/**
 * An abort's hand-back: stops the execution receiving (what a receive still returns is released at once), then
 * releases every message it received. Returns how many are visible again, and how many it had already deleted.
 */
export async function releaseExecutionMessages(workflow: LocalWorkflow, sqs: SQSClient): Promise<{ released: number; gone: number }> {
  const total = { released: 0, gone: 0 };
  const add = ({ released, gone }: { released: number; gone: number }) => {
    total.released += released;
    total.gone += gone;
  };
  await workflow.stopReceiving(async (late) => add(await releaseMessages(sqs, late)));
  add(await releaseMessages(sqs, workflow.receivedReceipts()));
  return total;
}

/**
 * After a crash: gives back the messages a killed process's execution held, from the file it kept
 * (`LocalWorkflowOptions.heldMessagesFile`), then removes the file. Only receipts of `sqsEndpoint`'s queues are
 * used (the file may be from a run against another server); those already deleted are refused by SQS (`gone`). Best
 * effort: a queue that does not answer keeps its messages until their visibility timeout, as it would have anyway.
 * Returns undefined when there is no such file (the last run ended cleanly).
 */
export async function releaseHeldMessages(
  sqs: SQSClient,
  sqsEndpoint: string,
  file: string,
): Promise<{ released: number; gone: number } | undefined> {
  let receipts: ReceivedReceipt[];
  try {
    receipts = JSON.parse(await readFile(file, "utf8")) as ReceivedReceipt[];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    receipts = []; // unreadable: a write cut short; its messages come back after their visibility timeout
  }
  const ours = receipts.filter(({ queueUrl }) => queueUrl.startsWith(`${sqsEndpoint.replace(/\/$/, "")}/`));
  const result = await releaseMessages(sqs, ours).catch(() => ({ released: 0, gone: 0 }));
  await rm(file, { force: true });
  return result;
}
