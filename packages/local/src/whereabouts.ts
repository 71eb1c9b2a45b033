/**
 * Where a donation is now, outside what the console's executions saw: in the source queue (waiting, delayed or held
 * by a receive) or in the base. The console's Message story asks these so that a donation no execution mentions (yet)
 * is still found. Both look without changing anything: the queue through the local SQS server's inspection endpoint
 * (a receive would count as a delivery), the base through the emulator's store (no Airtable request is spent).
 */
import type { LocalPipeline } from "./pipeline";

/** A message in the source queue. */
export interface QueuedMessage {
  messageId: string;
  /** The body's DonationCreated `Id` (lower case), when it has one. */
  eventId?: string;
  /** `in flight`: received and not yet deleted (an execution holds it, or held it and is gone). */
  state: "waiting" | "delayed" | "in flight";
}

/** A record in the base. */
export interface BaseRecord {
  recordId: string;
  eventId: string;
  fields: Record<string, unknown>;
}

export interface Whereabouts {
  /** Messages in the source queue with one of these MessageIds or event Ids; undefined when the server cannot be inspected. */
  inQueue(ids: { messageIds: string[]; eventIds: string[] }): Promise<QueuedMessage[] | undefined>;
  /** Records of the base holding one of these event Ids; undefined when the base is a real Airtable (not read). */
  inBase(eventIds: string[]): Promise<BaseRecord[] | undefined>;
}

interface InspectedMessage {
  messageId?: string;
  body?: string;
}

/** {@link Whereabouts} for a local pipeline (its SQS server and its Airtable emulator). */
export function localWhereabouts(pipeline: Pick<LocalPipeline, "sqsEndpoint" | "queueUrls" | "emulator" | "airtable">): Whereabouts {
  return {
    async inQueue({ messageIds, eventIds }) {
      const name = pipeline.queueUrls.source.split("/").pop()!;
      let inspected: { messages?: { ready?: InspectedMessage[]; delayed?: InspectedMessage[]; inflight?: { message?: InspectedMessage }[] } };
      try {
        const response = await fetch(`${pipeline.sqsEndpoint}/_fauxqs/queues/${encodeURIComponent(name)}`, { signal: AbortSignal.timeout(2000) });
        if (!response.ok) return undefined;
        inspected = (await response.json()) as typeof inspected;
      } catch {
        return undefined; // another kind of SQS server, or none: the story says it could not look
      }
      const wanted = (message: InspectedMessage | undefined) => {
        if (!message?.messageId) return undefined;
        const eventId = eventIdOf(message.body);
        return messageIds.includes(message.messageId) || (eventId !== undefined && eventIds.includes(eventId))
          ? { messageId: message.messageId, ...(eventId ? { eventId } : {}) }
          : undefined;
      };
      const found: QueuedMessage[] = [];
      const add = (message: InspectedMessage | undefined, state: QueuedMessage["state"]) => {
        const match = wanted(message);
        if (match) found.push({ ...match, state });
      };
      for (const message of inspected.messages?.ready ?? []) add(message, "waiting");
      for (const message of inspected.messages?.delayed ?? []) add(message, "delayed");
      for (const entry of inspected.messages?.inflight ?? []) add(entry.message, "in flight");
      return found;
    },
    async inBase(eventIds) {
      if (!pipeline.emulator) return undefined;
      return pipeline.emulator
        .records(pipeline.airtable.baseId, pipeline.airtable.tableName)
        .flatMap((record) => {
          const eventId = typeof record.fields.Id === "string" ? record.fields.Id.toLowerCase() : undefined;
          return eventId !== undefined && eventIds.includes(eventId) ? [{ recordId: record.id, eventId, fields: record.fields }] : [];
        });
    },
  };
}

function eventIdOf(body: string | undefined): string | undefined {
  try {
    const id = (JSON.parse(body ?? "") as { Id?: unknown } | null)?.Id;
    return typeof id === "string" && id !== "" ? id.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}
