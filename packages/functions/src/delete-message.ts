import { SQSClient } from "@aws-sdk/client-sqs";
import { deleteMessage } from "@fundraise-sync/core/queue";
import type { DeleteMessageInput, DeleteMessageOutput } from "./contracts";

// Created lazily so the local runtime can set the endpoint and region before the first call.
let sqs: SQSClient | undefined;

/** DeleteMessage: removes a message from the source queue once it is written or dead-lettered. */
export async function handler(input: DeleteMessageInput): Promise<DeleteMessageOutput> {
  sqs ??= new SQSClient({});
  await deleteMessage(sqs, input.queueUrl, input.receiptHandle);
  return { messageId: input.messageId, outcome: input.outcome };
}
