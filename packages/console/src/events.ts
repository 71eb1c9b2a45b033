/**
 * Execution history as the console keeps it: aws-local-stepfunctions' raw events normalized, what each state did in
 * one execution, and which messages, events and Airtable records an event mentions. Pure (the page uses it too).
 */

import { type DonationCreatedEvent, parseDonationEvent } from "@fundraise-sync/core/donation-event";
import { toAirtableFields } from "@fundraise-sync/core/donation-fields";

/** One event of an execution's history. */
export interface HistoryEvent {
  /** 1, 2, … within its execution. */
  seq: number;
  /** Epoch ms. */
  at: number;
  /** ExecutionStarted/Succeeded/Failed, StateEntered/Exited/Failed/Retried/Caught, MapIterationStarted/Succeeded/Failed. */
  type: string;
  state?: string;
  stateType?: string;
  /** The Map iteration (the message's position in its batch) for events inside a Map. */
  index?: number;
  input?: unknown;
  output?: unknown;
  error?: string;
  cause?: string;
  /** StateRetried: the attempt number and the retrier that matched. */
  retry?: { attempt: number; errors: string[]; intervalSeconds?: number };
  /** StateCaught: the catcher that matched. */
  caught?: { errors: string[]; next: string };
  /** The SQS messages and DonationCreated event Ids this event is about (what its input holds, else its output). */
  messageIds?: string[];
  eventIds?: string[];
  /**
   * Errors a state reports in its output without failing (`{ Error, Cause }` objects that were not in its input), e.g.
   * a write that met a 429 and returns when to try again: every such error shows, like a retry's.
   */
  reported?: { error: string; cause: string }[];
}

/** An event without its (possibly large) input and output: what the live stream carries. */
export type LiteEvent = Omit<HistoryEvent, "input" | "output">;

export const lite = ({ input: _input, output: _output, ...rest }: HistoryEvent): LiteEvent => rest;

/** Turns one raw event of aws-local-stepfunctions into a {@link HistoryEvent} (without mentions). */
export function normalizeEvent(raw: unknown, seq: number): HistoryEvent {
  const event = (raw ?? {}) as Record<string, any>;
  const normalized: HistoryEvent = { seq, at: Number(event.timestamp ?? Date.now()), type: String(event.type ?? "Unknown") };
  if (event.state) {
    normalized.state = String(event.state.name);
    normalized.stateType = String(event.state.type);
    if ("input" in event.state) normalized.input = event.state.input;
    if ("output" in event.state) normalized.output = event.state.output;
  } else if (event.parentState) {
    normalized.state = String(event.parentState.name);
    normalized.stateType = String(event.parentState.type);
    if ("input" in event) normalized.input = event.input;
    if ("output" in event) normalized.output = event.output;
  } else {
    if ("input" in event) normalized.input = event.input;
    if ("output" in event) normalized.output = event.output;
  }
  if (typeof event.index === "number") normalized.index = event.index;
  if (event.Error !== undefined) normalized.error = String(event.Error);
  if (event.Cause !== undefined) normalized.cause = typeof event.Cause === "string" ? event.Cause : JSON.stringify(event.Cause);
  if (event.retry) {
    const retrier = event.retry.retrier ?? {};
    normalized.retry = { attempt: Number(event.retry.attempt), errors: retrier.ErrorEquals ?? [], intervalSeconds: retrier.IntervalSeconds };
  }
  if (event.catch) {
    const catcher = event.catch.catcher ?? {};
    normalized.caught = { errors: catcher.ErrorEquals ?? [], next: String(catcher.Next ?? "") };
  }
  return normalized;
}

/** An SQS message found in a state's data: what Step Functions' receive returns and the Map hands each iteration. */
export interface FoundMessage {
  messageId: string;
  body: string;
  /** The body's DonationCreated `Id`, when the body is JSON with one. */
  eventId?: string;
}

/** A write to Airtable found in a state's output. */
export interface FoundRecord {
  recordId: string;
  created?: boolean;
  eventId?: string;
  fields?: Record<string, unknown>;
}

const MAX_DEPTH = 8;

function walk(value: unknown, visit: (object: Record<string, unknown>) => void, depth = 0): void {
  if (depth > MAX_DEPTH || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visit, depth + 1);
    return;
  }
  visit(value as Record<string, unknown>);
  for (const child of Object.values(value)) walk(child, visit, depth + 1);
}

/** The DonationCreated `Id` of a message body, if it has one (lower case, as the pipeline normalizes it). */
export function eventIdOf(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { Id?: unknown } | null)?.Id;
    return typeof id === "string" && id !== "" ? id.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/** Every SQS message (an object with a string `MessageId` and `Body`) in a value, once each. */
export function messagesIn(value: unknown): FoundMessage[] {
  const found = new Map<string, FoundMessage>();
  walk(value, (object) => {
    if (typeof object.MessageId === "string" && typeof object.Body === "string" && !found.has(object.MessageId)) {
      const eventId = eventIdOf(object.Body);
      found.set(object.MessageId, { messageId: object.MessageId, body: object.Body, ...(eventId ? { eventId } : {}) });
    }
  });
  return [...found.values()];
}

/** Every `{ Error, Cause }` object (Step Functions' error shape) in a value, as JSON text, once each. */
function errorsIn(value: unknown): Map<string, { error: string; cause: string }> {
  const found = new Map<string, { error: string; cause: string }>();
  walk(value, (object) => {
    if (typeof object.Error !== "string" || !("Cause" in object)) return;
    const cause = typeof object.Cause === "string" ? object.Cause : JSON.stringify(object.Cause);
    found.set(JSON.stringify([object.Error, cause]), { error: object.Error, cause });
  });
  return found;
}

/**
 * Adds what an event is about: the messages (and their event Ids) its input holds (else its output), and the errors
 * its output reports that its input did not hold. Reading the data rather than the Map iteration index keeps this
 * right inside nested Maps, where aws-local-stepfunctions gives every state event the outermost index.
 */
export function annotate(event: HistoryEvent): HistoryEvent {
  let messages = messagesIn(event.input);
  if (messages.length === 0 && event.output !== undefined) messages = messagesIn(event.output);
  if (messages.length > 0) {
    event.messageIds = messages.map((message) => message.messageId);
    const eventIds = [...new Set(messages.map((message) => message.eventId).filter((id): id is string => id !== undefined))];
    if (eventIds.length > 0) event.eventIds = eventIds;
  }
  if (event.type === "StateExited" && event.output !== undefined) {
    const before = errorsIn(event.input);
    const reported = [...errorsIn(event.output)].filter(([key]) => !before.has(key)).map(([, error]) => error);
    if (reported.length > 0) event.reported = reported;
  }
  return event;
}

/** A parsed DonationCreated event: an object with an `Id`, a `FundraiserId` and a `DonationAmount`. */
function isDonationEvent(object: Record<string, unknown>): boolean {
  return typeof object.Id === "string" && "FundraiserId" in object && "DonationAmount" in object;
}

/** Every DonationCreated event (parsed, as Validate returns it) in a value, by Id. */
export function donationEventsIn(value: unknown): Map<string, Record<string, unknown>> {
  const found = new Map<string, Record<string, unknown>>();
  walk(value, (object) => {
    if (isDonationEvent(object)) found.set(String(object.Id).toLowerCase(), object);
  });
  return found;
}

/**
 * Every Airtable write reported in a value: objects with a string `recordId` (`rec…`). Paired with its event by an
 * `Id`/`eventId` beside it, else by the one event the value holds. Its fields are the event's, mapped as the writer
 * maps them; the event comes from the value, else from `bodies` (message bodies by event Id, seen earlier).
 */
export function recordsIn(value: unknown, bodies: ReadonlyMap<string, string> = new Map()): FoundRecord[] {
  const events = donationEventsIn(value);
  const records: FoundRecord[] = [];
  walk(value, (object) => {
    if (typeof object.recordId !== "string" || !object.recordId.startsWith("rec")) return;
    const own = [object.eventId, object.Id, object.id].find((candidate) => typeof candidate === "string") as string | undefined;
    const eventId = own?.toLowerCase() ?? (events.size === 1 ? [...events.keys()][0] : undefined);
    const event = (eventId ? events.get(eventId) : undefined) ?? parsedBody(eventId ? bodies.get(eventId) : undefined);
    // The fields as Airtable holds them: the same mapping the writer applies.
    const fields = (object.fields as Record<string, unknown> | undefined) ?? (event ? toAirtableFields(event as unknown as DonationCreatedEvent) : undefined);
    const created = typeof object.created === "boolean" ? object.created : object.outcome === "created" ? true : object.outcome === "updated" ? false : undefined;
    records.push({
      recordId: object.recordId,
      ...(created === undefined ? {} : { created }),
      ...(eventId ? { eventId } : {}),
      ...(fields ? { fields } : {}),
    });
  });
  return records;
}

/** A body parsed and normalized as Validate does it (the writer writes what Validate returned). */
function parsedBody(body: string | undefined): Record<string, unknown> | undefined {
  if (body === undefined) return undefined;
  try {
    return parseDonationEvent(body) as unknown as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** What one state did in one execution: the graph colours its node from this. */
export interface StateActivity {
  /**
   * `running` while any entry of it is in flight; else `failed` if any entry failed (caught or not); else
   * `interrupted` if the execution was stopped (aborted, or npm start ended) while an entry was in it; else `succeeded`.
   */
  status: "running" | "succeeded" | "failed" | "interrupted";
  entered: number;
  /** Entries in it right now (for a state inside a Map: messages). */
  inNow: number;
  passed: number;
  failed: number;
  retried: number;
  /** Entries cut off in it: the execution was stopped while they ran. */
  interrupted: number;
  /** Errors reported in its output without failing (see {@link HistoryEvent.reported}). */
  errors: number;
  /** The Catch edges taken from it: entries caught, by the state the catcher goes `Next` to. */
  caughtTo: Record<string, number>;
}

/**
 * Counts what states do, event by event: per state, entries in flight now, passed, failed (caught or not), retried.
 * One counter can follow many executions at once (`scope` keeps them apart).
 */
export class ActivityCounter {
  readonly #activity: Record<string, StateActivity> = {};
  /**
   * In flight, by scope|state|index|message: the entries (more than one when keys collide, e.g. parallel iterations of
   * a nested Map, which share the outer index), each with whether its attempt failed and whether that was caught.
   */
  readonly #open = new Map<string, { state: string; scope: string; failed: boolean; caught: boolean }[]>();

  apply(event: Pick<HistoryEvent, "type" | "state" | "index" | "messageIds" | "reported" | "caught">, scope = ""): void {
    if (/^Execution(Succeeded|Failed|Aborted|Timeout|TimedOut)$/.test(event.type)) {
      this.end(scope, event.type === "ExecutionSucceeded" ? "succeeded" : event.type === "ExecutionAborted" ? "interrupted" : "failed");
      return;
    }
    if (!event.state || !event.type.startsWith("State")) return;
    const item = event.messageIds?.length === 1 ? event.messageIds[0] : "";
    const base = `${scope}|${event.state}|${event.index ?? ""}|`;
    let key = `${base}${item}`;
    // A state whose input holds no message but whose output does (a receive: it entered with none and exits with
    // the one it received) pairs its exit with the entry that had none: else that entry stays open and is counted
    // failed at the end, and a Map around a caught error turns red.
    if (event.type !== "StateEntered" && item !== "" && !this.#open.has(key) && this.#open.has(base)) key = base;
    const state = this.#of(event.state);
    const entries = this.#open.get(key) ?? [];
    switch (event.type) {
      case "StateEntered":
        state.entered++;
        state.inNow++;
        entries.push({ state: event.state, scope, failed: false, caught: false });
        this.#open.set(key, entries);
        break;
      case "StateFailed": {
        const entry = entries.find((candidate) => !candidate.failed);
        if (entry) entry.failed = true;
        break;
      }
      case "StateRetried": {
        state.retried++;
        const entry = entries.find((candidate) => candidate.failed && !candidate.caught);
        if (entry) entry.failed = false;
        break;
      }
      case "StateCaught": {
        const entry = entries.find((candidate) => candidate.failed && !candidate.caught);
        if (entry) entry.caught = true;
        if (event.caught?.next) state.caughtTo[event.caught.next] = (state.caughtTo[event.caught.next] ?? 0) + 1;
        break;
      }
      case "StateExited": {
        // The entries that did not fail leave first: a failed one exits only once its Catch has run.
        const index = Math.max(0, entries.findIndex((candidate) => !candidate.failed || candidate.caught));
        const [entry] = entries.splice(index, 1);
        if (entries.length === 0) this.#open.delete(key);
        if (!entry) break;
        state.inNow--;
        if (entry.caught) state.failed++;
        else {
          state.passed++;
          state.errors += event.reported?.length ?? 0;
        }
        break;
      }
    }
    this.#refresh(state);
  }

  /**
   * The execution `scope` ended: whatever is still in flight in it did not exit. It failed there if the execution
   * failed or timed out, and was cut off if it was aborted or npm start stopped (`interrupted`); an execution that
   * succeeded failed nowhere, so an entry whose exit was not paired (which should not happen) counts as passed rather
   * than painting a state red.
   */
  end(scope = "", how: "succeeded" | "failed" | "interrupted" = "failed"): void {
    for (const [key, entries] of this.#open) {
      if (!entries[0] || entries[0].scope !== scope) continue;
      this.#open.delete(key);
      const state = this.#of(entries[0].state);
      state.inNow -= entries.length;
      if (how === "succeeded") state.passed += entries.length;
      else if (how === "interrupted") state.interrupted += entries.length;
      else state.failed += entries.length;
      this.#refresh(state);
    }
  }

  snapshot(): Record<string, StateActivity> {
    return structuredClone(this.#activity);
  }

  #of(name: string): StateActivity {
    return (this.#activity[name] ??= { status: "running", entered: 0, inNow: 0, passed: 0, failed: 0, retried: 0, interrupted: 0, errors: 0, caughtTo: {} });
  }

  #refresh(state: StateActivity): void {
    state.status = state.inNow > 0 ? "running" : state.failed > 0 ? "failed" : state.interrupted > 0 ? "interrupted" : "succeeded";
  }
}

/**
 * Per state, what it did in one execution, from its events in order. A state missing from the result never ran.
 *
 * @example
 * stateActivity(events)["Validate"]; // { status: "failed", entered: 10, passed: 9, failed: 1, retried: 0, inNow: 0 }
 */
export function stateActivity(
  events: readonly Pick<HistoryEvent, "type" | "state" | "index" | "messageIds" | "reported" | "caught">[],
  /** The execution was interrupted: its history stops without an end, and what was in flight was cut off. */
  interrupted = false,
): Record<string, StateActivity> {
  const counter = new ActivityCounter();
  for (const event of events) counter.apply(event);
  if (interrupted) counter.end("", "interrupted");
  return counter.snapshot();
}
