import { SQSClient } from "@aws-sdk/client-sqs";
import { deleteMessages, releaseMessages } from "@fundraise-sync/core/queue";
import type { DeleteMessagesInput, DeleteMessagesOutput } from "./contracts";

// Created lazily so the local runtime can set the endpoint and region before the first call.
let sqs: SQSClient | undefined;

/**
 * DeleteMessages: removes messages that are safely somewhere (written, or dead-lettered) from the source queue, 10
 * per call, makes the ones left for redelivery visible again when the Airtable base unlocks, and keeps a held round's
 * messages hidden for the execution that takes it on.
 */
export async function handler(input: DeleteMessagesInput): Promise<DeleteMessagesOutput> {
  sqs ??= new SQSClient({});
  const deleted = await deleteMessages(sqs, input.queueUrl, input.delete);
  const toRelease = input.release ?? [];
  // At least 1 s: a message is back in the queue for the next receive either way.
  const seconds = Math.max(1, Math.ceil((Date.parse(input.releaseAt ?? "") - Date.now()) / 1000) || 0);
  const none = { succeeded: [], failed: [] };
  const released = toRelease.length > 0 ? await releaseMessages(sqs, input.queueUrl, toRelease, seconds) : none;
  // Extending visibility is a ChangeMessageVisibility too: the same call, a longer time.
  const toKeep = input.keepHidden ?? [];
  const kept = toKeep.length > 0 ? await releaseMessages(sqs, input.queueUrl, toKeep, input.keepHiddenSeconds ?? 0) : none;
  return {
    deleted: deleted.succeeded.length,
    released: released.succeeded.length,
    keptHidden: kept.succeeded.length,
    failed: [...deleted.failed, ...released.failed, ...kept.failed].map(({ MessageId }) => MessageId),
  };
}
