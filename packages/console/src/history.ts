/**
 * The console's execution history: fed by the local runtime's raw events (`LocalWorkflow.observe`), kept in memory
 * for what is live and on disk under `.local/console/` so that it survives a restart of `npm start`.
 *
 * On disk: `executions.ndjson` (one line per change of an execution's entry; the last one wins), `events/<name>.ndjson`
 * (each execution's full events, appended as they come) and `actions.ndjson` (what was done from the console).
 */
import { EventEmitter } from "node:events";
import { appendFileSync, closeSync, openSync, writeSync } from "node:fs";
import { appendFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { DrainSummary, WorkflowObserver } from "@fundraise-sync/local/workflow";
import {
  ActivityCounter,
  annotate,
  type FoundRecord,
  type HistoryEvent,
  type LiteEvent,
  type StateActivity,
  eventIdOf,
  lite,
  messagesIn,
  normalizeEvent,
  recordsIn,
} from "./events";

export type ExecutionStatus = "RUNNING" | DrainSummary["status"] | "INTERRUPTED";

/** One execution as the list shows it. */
export interface ExecutionEntry {
  executionArn: string;
  /** The last part of the ARN: what the page and the URLs use. */
  name: string;
  status: ExecutionStatus;
  startedAt: number;
  endedAt?: number;
  summary?: DrainSummary;
  /** Received nothing and failed nothing: the list hides these unless asked. */
  idle: boolean;
  eventCount: number;
  /** Retries so far (the summary's count once it ends). */
  retried: number;
  messageIds: string[];
  eventIds: string[];
  records: FoundRecord[];
  error?: { name: string; cause: string };
  /** INTERRUPTED: how it ended (with `endedAt`, when): aborted by a second Ctrl-C, or npm start stopped under it. */
  interruption?: string;
}

/** Something done from the console (or on its behalf), with the CLI command that does the same. */
export interface ActionEntry {
  at: number;
  action: "redrive" | "resend" | "delete";
  command: string;
  ok: boolean;
  /** DLQ message ids acted on, and the DonationCreated Ids of their bodies. */
  messageIds: string[];
  eventIds: string[];
  detail: string;
}

export interface HistoryOptions {
  /** Folder for the files; in memory only when undefined (tests of pure behaviour). */
  dir?: string;
  /** Executions kept (oldest dropped first, with their events). */
  maxExecutions?: number;
  /** Of those, idle ones kept: a schedule every 10 s makes many. */
  maxIdle?: number;
}

export const HISTORY_DEFAULTS = { maxExecutions: 300, maxIdle: 20 } as const;

interface Live {
  entry: ExecutionEntry;
  events: HistoryEvent[];
  /** Message bodies seen in this execution, by event Id: a write's output may name only the event. */
  bodies: Map<string, string>;
  /** state|message of entries caught and not yet exited. */
  caught: Set<string>;
  /** Its events file, written synchronously: what a kill leaves on disk is every event seen. */
  fd?: number;
}

/** Events: `execution` (entry), `event` (executionName, LiteEvent), `activity` (), `action` (ActionEntry). */
export class History extends EventEmitter {
  readonly #dir: string | undefined;
  readonly #limits: { maxExecutions: number; maxIdle: number };
  readonly #entries = new Map<string, ExecutionEntry>();
  readonly #live = new Map<string, Live>();
  /** Full events of finished executions read back from disk, a few at a time. */
  readonly #cache = new Map<string, HistoryEvent[]>();
  readonly #actions: ActionEntry[] = [];
  /** What states did since this console started (all executions). */
  readonly #activity = new ActivityCounter();
  readonly startedAt = Date.now();
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(options: HistoryOptions) {
    super();
    this.#dir = options.dir;
    this.#limits = { ...HISTORY_DEFAULTS, ...options };
  }

  /** Opens (and creates) the history in `options.dir`; executions that were running when it closed are INTERRUPTED. */
  static async open(options: HistoryOptions = {}): Promise<History> {
    const history = new History(options);
    await history.#load();
    return history;
  }

  /** An observer for `LocalWorkflow.observe`. */
  observer(): WorkflowObserver {
    return { event: (arn, raw, soFar) => this.record(arn, raw, soFar), finished: (summary) => this.finish(summary) };
  }

  /**
   * Adds one raw event of the execution `executionArn`, with its summary counted so far (`soFar`): a running
   * execution's row counts as it goes, and a kill leaves its counts on disk.
   */
  record(executionArn: string, raw: unknown, soFar?: DrainSummary): void {
    const name = nameOf(executionArn);
    let live = this.#live.get(name);
    if (!live) {
      live = newLive(executionArn, Date.now());
      if (this.#dir) live.fd = openSync(this.#eventsFile(name), "a");
      this.#live.set(name, live);
      this.#entries.set(name, live.entry);
      this.#persistEntry(live.entry);
    }
    const event = normalizeEvent(raw, live.events.length + 1);
    absorb(live, event);
    if (live.fd !== undefined) writeSync(live.fd, `${JSON.stringify(event)}\n`);
    this.#activity.apply(event, name);
    this.emit("event", name, lite(event));
    const counted = soFar ? countsChanged(live.entry.summary, soFar) : false;
    if (soFar) live.entry.summary = { ...soFar, received: live.entry.messageIds.length };
    if (counted) this.#persistEntry(live.entry);
    if (counted || event.type === "ExecutionStarted" || event.type === "MapIterationStarted" || event.type === "StateRetried" || event.reported) {
      this.emit("execution", live.entry);
    }
  }

  /**
   * npm start is leaving while executions run (a second Ctrl-C aborts them): each is INTERRUPTED, saying `how`, and
   * written to disk before this returns, so that it is listed as such at the next start. Synchronous: the process
   * exits right after.
   */
  interrupt(how: string): void {
    const at = Date.now();
    for (const [name, live] of this.#live) {
      const entry = live.entry;
      Object.assign(entry, { status: "INTERRUPTED", endedAt: at, interruption: how, idle: false });
      if (live.fd !== undefined) closeSync(live.fd);
      this.#live.delete(name);
      this.#activity.end(name, "interrupted");
      if (this.#dir) {
        // Now, before the process leaves; and again after the writes already queued, so that it is the last line.
        appendFileSync(path.join(this.#dir, "executions.ndjson"), `${JSON.stringify(light(entry))}\n`);
        this.#persistEntry(entry);
      }
      this.emit("execution", entry);
    }
  }

  /** The execution's summary: it has ended. */
  finish(summary: DrainSummary): void {
    const name = nameOf(summary.executionArn);
    const live = this.#live.get(name);
    const entry = live?.entry ?? this.#entries.get(name);
    // Unknown, or already listed as interrupted (npm start is leaving): its end is not this summary's to tell.
    if (!entry || entry.status === "INTERRUPTED") return;
    entry.status = summary.status;
    entry.summary = summary;
    entry.endedAt = entry.startedAt + summary.durationMs;
    entry.retried = summary.retried;
    entry.idle = summary.status !== "FAILED" && summary.received === 0 && summary.deadLettered === 0 && summary.leftInQueue === 0;
    if (summary.error) entry.error = summary.error;
    this.#activity.end(name);
    if (live) {
      if (live.fd !== undefined) closeSync(live.fd);
      this.#live.delete(name);
      this.#cache.set(name, live.events);
      this.#trimCache();
    }
    this.#persistEntry(entry);
    this.emit("execution", entry);
    this.emit("activity");
    this.#prune();
  }

  /** Newest first. */
  list(): ExecutionEntry[] {
    return [...this.#entries.values()].sort((a, b) => b.startedAt - a.startedAt);
  }

  entry(name: string): ExecutionEntry | undefined {
    return this.#entries.get(name);
  }

  /** An execution's full events (input and output included), or undefined for an unknown one. */
  async events(name: string): Promise<HistoryEvent[] | undefined> {
    const live = this.#live.get(name) ?? undefined;
    if (live) return live.events;
    if (!this.#entries.has(name)) return undefined;
    const cached = this.#cache.get(name);
    if (cached) return cached;
    if (!this.#dir) return [];
    await this.#writes;
    const events = (await readLines(this.#eventsFile(name))) as HistoryEvent[];
    this.#cache.set(name, events);
    this.#trimCache();
    return events;
  }

  /** Per state: in flight now, passed, failed and retried since this console started. */
  activity(): Record<string, StateActivity> {
    return this.#activity.snapshot();
  }

  /** Records what an action did, for the message stories and the action log. */
  async recordAction(action: ActionEntry): Promise<void> {
    this.#actions.push(action);
    this.emit("action", action);
    if (this.#dir) await this.#queue(() => appendFile(path.join(this.#dir!, "actions.ndjson"), `${JSON.stringify(action)}\n`));
  }

  actions(): ActionEntry[] {
    return [...this.#actions];
  }

  /** Every Airtable write the executions reported, newest first, one per record (its latest write). */
  records(): (FoundRecord & { at?: number; executionName: string })[] {
    const latest = new Map<string, FoundRecord & { at?: number; executionName: string }>();
    for (const entry of [...this.#entries.values()].sort((a, b) => a.startedAt - b.startedAt)) {
      for (const record of entry.records) latest.set(record.recordId, { ...record, executionName: entry.name });
    }
    return [...latest.values()].reverse();
  }

  /**
   * What the history knows about one message, found by its event `Id` or an SQS `MessageId` (and `also` ids of the same
   * message): the executions that saw it with the events about it, its Airtable writes and the console's actions on it.
   */
  async story(query: string, also: { messageIds?: string[]; eventIds?: string[] } = {}): Promise<MessageStory> {
    const q = query.trim();
    // `also`: ids known to be the same message (a DLQ copy's source MessageId and body's event Id, say).
    const messageIds = new Set<string>([q, ...(also.messageIds ?? [])]);
    const eventIds = new Set<string>([q.toLowerCase(), ...(also.eventIds ?? []).map((id) => id.toLowerCase())]);
    // A MessageId leads to its event Id, and that to every delivery of it (a redrive is a new message); an action on
    // it (a resend of an edited body, say) joins the ids it acted on.
    for (let round = 0; round < 2; round++) {
      for (const action of this.#actions) {
        if (!action.messageIds.some((id) => messageIds.has(id)) && !action.eventIds.some((id) => eventIds.has(id))) continue;
        for (const id of action.messageIds) messageIds.add(id);
        for (const id of action.eventIds) eventIds.add(id);
      }
      for (const entry of this.#entries.values()) {
        if (!entry.messageIds.some((id) => messageIds.has(id)) && !entry.eventIds.some((id) => eventIds.has(id))) continue;
        for (const event of (await this.events(entry.name)) ?? []) {
          if (!mentions(event, messageIds, eventIds)) continue;
          if (event.messageIds?.length === 1) {
            messageIds.add(event.messageIds[0]!);
            for (const id of event.eventIds ?? []) eventIds.add(id);
          }
        }
      }
    }
    const executions: MessageStory["executions"] = [];
    for (const entry of this.list().reverse()) {
      if (!entry.messageIds.some((id) => messageIds.has(id)) && !entry.eventIds.some((id) => eventIds.has(id))) continue;
      const events = ((await this.events(entry.name)) ?? []).filter((event) => event.state !== undefined && mentions(event, messageIds, eventIds));
      executions.push({ name: entry.name, status: entry.status, startedAt: entry.startedAt, events: events.map(lite) });
    }
    const records = this.records().filter((record) => record.eventId !== undefined && eventIds.has(record.eventId));
    const actions = this.#actions.filter(
      (action) => action.messageIds.some((id) => messageIds.has(id)) || action.eventIds.some((id) => eventIds.has(id)),
    );
    eventIds.delete(q.toLowerCase());
    messageIds.delete(q);
    return {
      query: q,
      messageIds: [...messageIds],
      eventIds: [...eventIds],
      executions,
      records,
      actions,
    };
  }

  /** Waits for every file write. */
  async flush(): Promise<void> {
    await this.#writes;
  }

  async close(): Promise<void> {
    await this.#writes;
    for (const live of this.#live.values()) {
      if (live.fd !== undefined) closeSync(live.fd);
      live.fd = undefined;
    }
  }

  async #load(): Promise<void> {
    if (!this.#dir) return;
    await mkdir(path.join(this.#dir, "events"), { recursive: true });
    const lines = await readLines(path.join(this.#dir, "executions.ndjson"));
    for (const line of lines) {
      const entry = line as ExecutionEntry;
      if (entry?.name) this.#entries.set(entry.name, entry);
    }
    // Running when npm start went away: rebuilt from the events it left (every one was written as it came), so the
    // list counts what it did, Records has what it wrote and a story finds its messages.
    for (const entry of this.#entries.values()) {
      if (entry.status === "RUNNING" || entry.status === "INTERRUPTED") await this.#rebuild(entry);
    }
    this.#actions.push(...((await readLines(path.join(this.#dir, "actions.ndjson"))) as ActionEntry[]));
    // One line per execution from here on: the file does not grow with every change.
    await this.#rewriteEntries();
  }

  /** An interrupted execution's entry, from its events file: its messages, records, counts, when and how it ended. */
  async #rebuild(entry: ExecutionEntry): Promise<void> {
    const events = (await readLines(this.#eventsFile(entry.name))) as HistoryEvent[];
    const live = newLive(entry.executionArn, entry.startedAt);
    for (const event of events) absorb(live, event);
    const last = events.at(-1)?.at ?? entry.startedAt;
    const how =
      entry.interruption ?? `npm start stopped while it ran (killed, or it crashed): its last event was at ${new Date(last).toISOString()}`;
    const counts = entry.summary ?? emptyCounts(entry.executionArn);
    Object.assign(entry, {
      ...live.entry,
      status: "INTERRUPTED",
      idle: false,
      endedAt: entry.endedAt ?? last,
      interruption: how,
      summary: {
        ...counts,
        status: "FAILED",
        received: live.entry.messageIds.length,
        // What it wrote is in its events even if the last count did not reach the disk.
        written: Math.max(counts.written, live.entry.records.length),
        stateTransitions: events.filter((event) => event.type === "StateEntered" || event.type === "StateRetried").length,
        durationMs: (entry.endedAt ?? last) - entry.startedAt,
        error: { name: "Interrupted", cause: how },
      },
      error: { name: "Interrupted", cause: how },
    } satisfies Partial<ExecutionEntry>);
    this.#cache.set(entry.name, events);
    this.#trimCache();
  }

  #persistEntry(entry: ExecutionEntry): void {
    if (!this.#dir) return;
    // A running execution's line leaves out its (growing) lists: a restart rebuilds them from its events file.
    const line = `${JSON.stringify(entry.status === "RUNNING" || entry.status === "INTERRUPTED" ? light(entry) : entry)}\n`;
    void this.#queue(() => appendFile(path.join(this.#dir!, "executions.ndjson"), line));
  }

  #prune(): void {
    const finished = this.list().filter((entry) => !this.#live.has(entry.name));
    const idle = finished.filter((entry) => entry.idle);
    const drop = new Set([...idle.slice(this.#limits.maxIdle), ...finished.slice(this.#limits.maxExecutions)].map((entry) => entry.name));
    if (drop.size === 0) return;
    for (const name of drop) {
      this.#entries.delete(name);
      this.#cache.delete(name);
    }
    if (!this.#dir) return;
    void this.#queue(async () => {
      for (const name of drop) await rm(this.#eventsFile(name), { force: true });
    });
    void this.#rewriteEntries();
  }

  #rewriteEntries(): Promise<unknown> {
    const text = [...this.#entries.values()].map((entry) => `${JSON.stringify(entry)}\n`).join("");
    return this.#queue(() => writeFile(path.join(this.#dir!, "executions.ndjson"), text));
  }

  #trimCache(): void {
    // In memory only (a deployed stage's console): nothing to read back from, so every kept execution keeps its events.
    if (!this.#dir) return;
    while (this.#cache.size > 8) this.#cache.delete(this.#cache.keys().next().value!);
  }

  #eventsFile(name: string): string {
    return path.join(this.#dir!, "events", `${name.replace(/[^A-Za-z0-9_-]/g, "_")}.ndjson`);
  }

  /** File writes run one after another, so lines never interleave and a rewrite never races an append. */
  #queue<T>(write: () => Promise<T>): Promise<T> {
    const next = this.#writes.then(write, write);
    this.#writes = next.catch(() => undefined);
    return next;
  }
}

/** One message's story: see {@link History.story}. */
export interface MessageStory {
  query: string;
  /** Other MessageIds and event Ids that are the same message (its redeliveries and redrives). */
  messageIds: string[];
  eventIds: string[];
  executions: { name: string; status: ExecutionStatus; startedAt: number; events: LiteEvent[] }[];
  records: (FoundRecord & { executionName: string })[];
  actions: ActionEntry[];
}

function newLive(executionArn: string, startedAt: number): Live {
  const entry: ExecutionEntry = {
    executionArn,
    name: nameOf(executionArn),
    status: "RUNNING",
    startedAt,
    idle: true,
    eventCount: 0,
    retried: 0,
    messageIds: [],
    eventIds: [],
    records: [],
  };
  return { entry, events: [], bodies: new Map(), caught: new Set() };
}

/** Adds one normalized event to a live execution: what it mentions, its records, its counters. */
function absorb(live: Live, event: HistoryEvent): void {
  annotate(event);
  // After a Catch, the exit's output holds the caught error (its ResultPath): that error was a failure, not a report.
  const item = `${event.state}|${event.messageIds?.length === 1 ? event.messageIds[0] : ""}`;
  if (event.type === "StateCaught") live.caught.add(item);
  if (event.type === "StateExited" && live.caught.delete(item)) delete event.reported;
  if (event.type === "MapIterationStarted" || event.type === "StateEntered") {
    for (const message of messagesIn(event.input)) if (message.eventId) live.bodies.set(message.eventId, message.body);
  }
  const entry = live.entry;
  for (const id of event.messageIds ?? []) if (!entry.messageIds.includes(id)) entry.messageIds.push(id);
  for (const id of event.eventIds ?? []) if (!entry.eventIds.includes(id)) entry.eventIds.push(id);
  live.events.push(event);
  entry.eventCount = live.events.length;
  if (event.type === "ExecutionStarted") entry.startedAt = event.at;
  if (event.type === "StateRetried" || event.reported) entry.retried++;
  // Busy once it holds a message (a Map iteration alone says nothing: the receivers run one even on an empty queue).
  if (event.messageIds?.length) entry.idle = false;
  if (event.type === "StateExited") {
    for (const record of recordsIn(event.output, live.bodies)) {
      if (!entry.records.some((known) => known.recordId === record.recordId && known.eventId === record.eventId)) {
        entry.records.push({ ...record, at: event.at } as FoundRecord);
      }
    }
  }
}

/** A running execution's entry without its lists (rebuilt from its events file if it never finishes). */
function light(entry: ExecutionEntry): ExecutionEntry {
  return { ...entry, messageIds: [], eventIds: [], records: [] };
}

/** The counts a person reads in the list changed (not only the transitions, which change with every state). */
function countsChanged(before: DrainSummary | undefined, after: DrainSummary): boolean {
  if (!before) return true;
  return (["written", "updated", "copiesInBatch", "deadLettered", "leftInQueue", "held", "retried"] as const).some((key) => before[key] !== after[key]);
}

function emptyCounts(executionArn: string): DrainSummary {
  return {
    executionArn,
    status: "FAILED",
    continued: false,
    received: 0,
    written: 0,
    updated: 0,
    copiesInBatch: 0,
    deadLettered: 0,
    leftInQueue: 0,
    held: 0,
    retried: 0,
    stateTransitions: 0,
    durationMs: 0,
  };
}

function mentions(event: HistoryEvent, messageIds: Set<string>, eventIds: Set<string>): boolean {
  return (event.messageIds ?? []).some((id) => messageIds.has(id)) || (event.eventIds ?? []).some((id) => eventIds.has(id));
}

/** An execution's name: the last part of its ARN. */
export const nameOf = (executionArn: string) => executionArn.split(":").pop() ?? executionArn;

async function readLines(file: string): Promise<unknown[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
}

export { eventIdOf };
