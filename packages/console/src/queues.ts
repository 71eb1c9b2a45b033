import { GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";

/** A queue's depth as SQS reports it (approximate numbers, read without touching any message). */
export interface QueueDepth {
  visible: number;
  inFlight: number;
  delayed: number;
}

export interface QueueDepths {
  source: QueueDepth;
  deadLetter: QueueDepth;
}

/** Reads both queues' depths; GetQueueAttributes never receives a message, so it moves none toward its limit. */
export async function readQueueDepths(sqs: SQSClient, urls: { source: string; deadLetter: string }): Promise<QueueDepths> {
  const [source, deadLetter] = await Promise.all([depth(sqs, urls.source), depth(sqs, urls.deadLetter)]);
  return { source, deadLetter };
}

async function depth(sqs: SQSClient, queueUrl: string): Promise<QueueDepth> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}
