import { SendMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { type DonationCreatedEvent, serializeDonationEvent } from "./donation-event";
import { EventTooLargeError } from "./errors";
import { MAX_EVENT_BYTES, SQS_MAX_MESSAGES_PER_RECEIVE } from "./limits";
import { utf8Bytes } from "./message-size";

/** What a publish did: every event is in exactly one of the two lists. */
export interface PublishReport {
  published: { eventId: string; messageId: string }[];
  failed: { eventId: string; code: string; reason: string }[];
}

/** Publishes integration events. The web application has one in .NET; this is the TypeScript side. */
export interface EventBus {
  /**
   * Publishes `DonationCreated` events in the producer's wire format.
   * @throws {EventTooLargeError} before anything is sent, if any event exceeds the queue's message size.
   */
  publish(events: readonly DonationCreatedEvent[]): Promise<PublishReport>;
}

/** A message to send as is: its body is not checked, so tests and tools can put malformed messages on a queue. */
export interface RawMessage {
  /** Reported back in {@link PublishReport}; the event Id when there is one. */
  id: string;
  body: string;
}

/**
 * An {@link EventBus} on Amazon SQS: batches of up to 10 (`SendMessageBatch`), partial failures reported per event.
 *
 * @example
 * const bus = new SqsEventBus(new SQSClient({}), queueUrl);
 * const { failed } = await bus.publish(events);
 */
/**
 * Checks every message against the queue's size limit before anything is sent.
 * @throws {EventTooLargeError} naming the first message over the limit.
 */
export function assertFitsQueue(messages: readonly RawMessage[], maxEventBytes = MAX_EVENT_BYTES): void {
  for (const { id, body } of messages) {
    const bytes = utf8Bytes(body);
    if (bytes > maxEventBytes) throw new EventTooLargeError(id, bytes, maxEventBytes);
  }
}

export class SqsEventBus implements EventBus {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly maxEventBytes = MAX_EVENT_BYTES,
  ) {}

  publish(events: readonly DonationCreatedEvent[]): Promise<PublishReport> {
    return this.publishRaw(events.map((event) => ({ id: event.Id, body: serializeDonationEvent(event) })));
  }

  /** Sends bodies unchecked except for size (an oversized message would fail at SQS or later, never usefully). */
  async publishRaw(messages: readonly RawMessage[]): Promise<PublishReport> {
    assertFitsQueue(messages, this.maxEventBytes);
    const report: PublishReport = { published: [], failed: [] };
    for (let start = 0; start < messages.length; start += SQS_MAX_MESSAGES_PER_RECEIVE) {
      const chunk = messages.slice(start, start + SQS_MAX_MESSAGES_PER_RECEIVE);
      // Batch entry ids must be unique within a request and match [A-Za-z0-9_-]: use positions, map back to events.
      const entries = chunk.map((message, position) => ({ Id: String(position), MessageBody: message.body }));
      try {
        const reply = await this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
        for (const ok of reply.Successful ?? []) {
          report.published.push({ eventId: chunk[Number(ok.Id)]!.id, messageId: ok.MessageId ?? "" });
        }
        for (const failure of reply.Failed ?? []) {
          report.failed.push({
            eventId: chunk[Number(failure.Id)]!.id,
            code: failure.Code ?? "Unknown",
            reason: failure.Message ?? "SQS gave no reason",
          });
        }
      } catch (error) {
        // The whole request failed (network, permissions): every event in it is unpublished.
        const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        for (const message of chunk) report.failed.push({ eventId: message.id, code: "RequestFailed", reason });
      }
    }
    return report;
  }
}
