/**
 * What a drain did, read from its Step Functions history (`GetExecutionHistory`, the SDK's `HistoryEvent`s): the same
 * reading for a deployed stage and for the local runtime's API. Pure.
 *
 * It reads the states' data as the definition shapes it: the receives' `Messages`, WriteToAirtable's `round`
 * (`written`, `deadLetter`, `release`, `retryAt`), and the dead-letter states' input (the message and its `{Error,
 * Cause}`).
 */
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { StateName } from "../../../stacks/drain-definition";

/** One drain's counts. */
export interface DrainCounts {
  /** Messages received (distinct MessageIds of every receive). */
  received: number;
  /** Records written (created or updated), copies of a written event not counted. */
  written: number;
  deadLettered: number;
  /** Task attempts after a failure (a retry is the Task scheduled again), and WriteToAirtable's waits for Airtable. */
  retried: number;
}

/** A message as the receive returns it. */
interface FoundMessage {
  messageId: string;
  body: string;
  /** Its DonationCreated `Id` (lower case), when the body has one. */
  eventId?: string;
}

const MAX_DEPTH = 10;

function walk(value: unknown, visit: (object: Record<string, unknown>) => void, depth = 0): void {
  if (depth > MAX_DEPTH || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visit, depth + 1);
    return;
  }
  visit(value as Record<string, unknown>);
  for (const child of Object.values(value)) walk(child, visit, depth + 1);
}

function parse(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The DonationCreated `Id` of a body, lower case, if it has one. */
export function eventIdOf(body: string): string | undefined {
  const id = (parse(body) as { Id?: unknown } | null | undefined)?.Id;
  return typeof id === "string" && id !== "" ? id.toLowerCase() : undefined;
}

/** Every SQS message (`MessageId` + `Body`) in a value, once each. */
function messagesIn(value: unknown): FoundMessage[] {
  const found = new Map<string, FoundMessage>();
  walk(value, (object) => {
    if (typeof object.MessageId !== "string" || typeof object.Body !== "string" || found.has(object.MessageId)) return;
    const eventId = eventIdOf(object.Body);
    found.set(object.MessageId, { messageId: object.MessageId, body: object.Body, ...(eventId ? { eventId } : {}) });
  });
  return [...found.values()];
}

/** The first `{ Error, Cause }` in a value. */
function failureIn(value: unknown): { error: string; cause: string } | undefined {
  let failure: { error: string; cause: string } | undefined;
  walk(value, (object) => {
    if (failure || typeof object.Error !== "string" || !("Cause" in object)) return;
    failure = { error: object.Error, cause: typeof object.Cause === "string" ? object.Cause : JSON.stringify(object.Cause) };
  });
  return failure;
}

/** A Lambda Cause is JSON with `errorMessage`: the words a person reads. */
export function readableCause(cause: string): string {
  const message = (parse(cause) as { errorMessage?: unknown } | undefined)?.errorMessage;
  return typeof message === "string" ? message : cause;
}

const entered = (event: HistoryEvent) => event.stateEnteredEventDetails;
const exited = (event: HistoryEvent) => event.stateExitedEventDetails;

interface RoundOutput {
  round?: {
    retryAt?: string | null;
    written?: { MessageId: string; eventId?: string; outcome: string; recordId: string }[];
    deadLetter?: { message: { MessageId: string }; failure: { Error: string; Cause: string } }[];
    release?: { MessageId: string }[];
    releaseAt?: string | null;
  };
}

/** A drain's counts, from its whole history (in order). */
export function countDrain(events: readonly HistoryEvent[]): DrainCounts {
  const received = new Set<string>();
  let written = 0;
  let deadLettered = 0;
  let scheduled = 0;
  let taskEntries = 0;
  let writeWaits = 0;
  for (const event of events) {
    if (event.type === "TaskScheduled") scheduled++;
    if (event.type === "TaskStateEntered") taskEntries++;
    const left = exited(event);
    if (!left) continue;
    if (left.name === StateName.ReceiveBatch) for (const message of messagesIn(parse(left.output))) received.add(message.messageId);
    if (left.name === StateName.InvalidMessageDeadLettered || left.name === StateName.DeleteUnwritableMessage) deadLettered++;
    if (left.name === StateName.WriteToAirtable) {
      const round = (parse(left.output) as RoundOutput | undefined)?.round;
      if (!round) continue;
      if (round.retryAt) {
        writeWaits++;
        continue;
      }
      written += (round.written ?? []).filter((message) => message.outcome !== "copy").length;
    }
  }
  return { received: received.size, written, deadLettered, retried: scheduled - taskEntries + writeWaits };
}

/** What became of a message in one execution, in order. */
export interface MessageStep {
  at: Date;
  what: "received" | "written" | "dead-lettered" | "left-for-redelivery" | "left-queued";
  messageId: string;
  eventId?: string;
  /** `written`: the record and whether it was created, updated or a copy of one written in the same round. */
  record?: { recordId: string; outcome: string };
  /** `dead-lettered`: why (the DLQ entry's ErrorName and ErrorCause). */
  reason?: { error: string; cause: string };
  state?: string;
}

/** The states that send a message to the DLQ; their input holds the message and the failure. */
const DEAD_LETTER_STATES: readonly string[] = [
  StateName.DeadLetterInvalidMessage,
  StateName.DeadLetterRedrivenInvalidMessage,
  StateName.DeadLetterUnwritableMessage,
  StateName.DeadLetterRedrivenUnwritableMessage,
];
const KEPT_QUEUED_STATES: readonly string[] = [StateName.KeepInvalidMessageQueued, StateName.KeepUnvalidatedMessageQueued, StateName.KeepUnwritableMessageQueued];

/**
 * The steps of one message in one execution's history: found by its event `Id` (any delivery of it) or its SQS
 * `MessageId`. Empty when the execution never saw it.
 */
export function messageSteps(events: readonly HistoryEvent[], query: { eventId?: string; messageId?: string }): MessageStep[] {
  const eventId = query.eventId?.toLowerCase();
  const ids = new Set<string>(query.messageId ? [query.messageId] : []);
  const matches = (message: { messageId: string; eventId?: string }) =>
    ids.has(message.messageId) || (eventId !== undefined && message.eventId === eventId);
  const eventIds = new Map<string, string | undefined>();
  const steps: MessageStep[] = [];
  for (const event of events) {
    const at = event.timestamp ?? new Date(0);
    const left = exited(event);
    const into = entered(event);
    if (left?.name === StateName.ReceiveBatch) {
      for (const message of messagesIn(parse(left.output))) {
        if (!matches(message)) continue;
        ids.add(message.messageId);
        eventIds.set(message.messageId, message.eventId);
        steps.push({ at, what: "received", messageId: message.messageId, ...(message.eventId ? { eventId: message.eventId } : {}) });
      }
    }
    if (into && DEAD_LETTER_STATES.includes(into.name ?? "")) {
      const input = parse(into.input);
      const message = messagesIn(input).find(matches);
      if (message) {
        steps.push({ at, what: "dead-lettered", messageId: message.messageId, state: into.name, ...optionalEventId(message.eventId), reason: failureIn(input) ?? { error: "", cause: "" } });
      }
    }
    if (into && KEPT_QUEUED_STATES.includes(into.name ?? "")) {
      const message = messagesIn(parse(into.input)).find(matches);
      if (message) steps.push({ at, what: "left-queued", messageId: message.messageId, state: into.name, ...optionalEventId(message.eventId), ...failureAsReason(parse(into.input)) });
    }
    if (left?.name === StateName.WriteToAirtable) {
      const round = (parse(left.output) as RoundOutput | undefined)?.round;
      if (!round || round.retryAt) continue;
      for (const written of round.written ?? []) {
        if (!ids.has(written.MessageId) && written.eventId?.toLowerCase() !== eventId) continue;
        steps.push({ at, what: "written", messageId: written.MessageId, ...optionalEventId(written.eventId ?? eventIds.get(written.MessageId)), record: { recordId: written.recordId, outcome: written.outcome } });
      }
      for (const released of round.release ?? []) {
        if (ids.has(released.MessageId)) steps.push({ at, what: "left-for-redelivery", messageId: released.MessageId, ...optionalEventId(eventIds.get(released.MessageId)) });
      }
    }
  }
  return steps;
}

const optionalEventId = (eventId: string | undefined) => (eventId ? { eventId } : {});
const failureAsReason = (input: unknown) => {
  const failure = failureIn(input);
  return failure ? { reason: failure } : {};
};
