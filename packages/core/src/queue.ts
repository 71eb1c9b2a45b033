import { DeleteMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";

/** A message as Step Functions' `sqs:receiveMessage` SDK integration returns it. */
export interface ReceivedMessage {
  MessageId: string;
  ReceiptHandle: string;
  Body: string;
  MD5OfBody?: string;
  Attributes?: Record<string, string>;
}

/**
 * Deletes a message from a queue. Called only once the message is safely somewhere: written to Airtable, or copied
 * to the dead-letter queue.
 */
export async function deleteMessage(sqs: SQSClient, queueUrl: string, receiptHandle: string): Promise<void> {
  await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }));
}
