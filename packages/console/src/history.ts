/**
 * The console's execution history: fed by the local runtime's raw events (`LocalWorkflow.observe`), kept in memory
 * for what is live and on disk under `.local/console/` so that it survives a restart of `npm start`.
 *
 * On disk: `executions.ndjson` (one line per change of an execution's entry; the last one wins), `events/<name>.ndjson`
 * (each execution's full events, appended as they come) and `actions.ndjson` (what was done from the console).
 */
import { EventEmitter } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
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
  file?: WriteStream;
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
    return { event: (arn, raw) => this.record(arn, raw), finished: (summary) => this.finish(summary) };
  }

  /** Adds one raw event of the execution `executionArn`. */
  record(executionArn: string, raw: unknown): void {
    const name = nameOf(executionArn);
    let live = this.#live.get(name);
    if (!live) {
      const entry: ExecutionEntry = {
        executionArn,
        name,
        status: "RUNNING",
        startedAt: Date.now(),
        idle: true,
        eventCount: 0,
        retried: 0,
        messageIds: [],
        eventIds: [],
        records: [],
      };
      live = { entry, events: [], bodies: new Map(), caught: new Set() };
      if (this.#dir) live.file = createWriteStream(this.#eventsFile(name), { flags: "a" });
      this.#live.set(name, live);
      this.#entries.set(name, entry);
      this.#persistEntry(entry);
    }
    const event = normalizeEvent(raw, live.events.length + 1);
    this.#mentions(live, event);
    live.events.push(event);
    live.entry.eventCount = live.events.length;
    if (event.type === "ExecutionStarted") live.entry.startedAt = event.at;
    if (event.type === "StateRetried" || event.reported) live.entry.retried++;
    // Busy once it holds a message (a Map iteration alone says nothing: the receivers run one even on an empty queue).
    if (event.messageIds?.length) live.entry.idle = false;
    if (event.type === "StateExited") {
      for (const record of recordsIn(event.output, live.bodies)) {
        if (!live.entry.records.some((known) => known.recordId === record.recordId && known.eventId === record.eventId)) {
          live.entry.records.push({ ...record, at: event.at } as FoundRecord);
        }
      }
    }
    live.file?.write(`${JSON.stringify(event)}\n`);
    this.#activity.apply(event, name);
    this.emit("event", name, lite(event));
    if (event.type === "ExecutionStarted" || event.type === "MapIterationStarted" || event.type === "StateRetried" || event.reported) {
      this.emit("execution", live.entry);
    }
  }

  /** The execution's summary: it has ended. */
  finish(summary: DrainSummary): void {
    const name = nameOf(summary.executionArn);
    const live = this.#live.get(name);
    const entry = live?.entry ?? this.#entries.get(name);
    if (!entry) return;
    entry.status = summary.status;
    entry.summary = summary;
    entry.endedAt = entry.startedAt + summary.durationMs;
    entry.retried = summary.retried;
    entry.idle = summary.status !== "FAILED" && summary.received === 0 && summary.deadLettered === 0 && summary.leftInQueue === 0;
    if (summary.error) entry.error = summary.error;
    this.#activity.end(name);
    if (live) {
      live.file?.end();
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
    const text = await readFile(this.#eventsFile(name), "utf8").catch(() => "");
    const events = text
      .split("\n")
      .filter((line) => line.trim() !== "")
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as HistoryEvent];
        } catch {
          return []; // a line cut short by a crash
        }
      });
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
   * What the history knows about one message, found by its event `Id` or an SQS `MessageId`: the executions that saw
   * it with the events about it, its Airtable writes and the console's actions on it.
   */
  async story(query: string): Promise<MessageStory> {
    const q = query.trim();
    const messageIds = new Set<string>([q]);
    const eventIds = new Set<string>([q.toLowerCase()]);
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
    for (const live of this.#live.values()) live.file?.end();
    await this.#writes;
  }

  #mentions(live: Live, event: HistoryEvent): void {
    annotate(event);
    // After a Catch, the exit's output holds the caught error (its ResultPath): that error was a failure, not a report.
    const item = `${event.state}|${event.messageIds?.length === 1 ? event.messageIds[0] : ""}`;
    if (event.type === "StateCaught") live.caught.add(item);
    if (event.type === "StateExited" && live.caught.delete(item)) delete event.reported;
    if (event.type === "MapIterationStarted" || event.type === "StateEntered") {
      for (const message of messagesIn(event.input)) if (message.eventId) live.bodies.set(message.eventId, message.body);
    }
    for (const id of event.messageIds ?? []) if (!live.entry.messageIds.includes(id)) live.entry.messageIds.push(id);
    for (const id of event.eventIds ?? []) if (!live.entry.eventIds.includes(id)) live.entry.eventIds.push(id);
  }

  async #load(): Promise<void> {
    if (!this.#dir) return;
    await mkdir(path.join(this.#dir, "events"), { recursive: true });
    const lines = await readLines(path.join(this.#dir, "executions.ndjson"));
    for (const line of lines) {
      const entry = line as ExecutionEntry;
      if (entry?.name) this.#entries.set(entry.name, entry);
    }
    for (const entry of this.#entries.values()) {
      if (entry.status === "RUNNING") entry.status = "INTERRUPTED";
    }
    this.#actions.push(...((await readLines(path.join(this.#dir, "actions.ndjson"))) as ActionEntry[]));
    // One line per execution from here on: the file does not grow with every change.
    await this.#rewriteEntries();
  }

  #persistEntry(entry: ExecutionEntry): void {
    if (!this.#dir) return;
    const line = `${JSON.stringify(entry)}\n`;
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
