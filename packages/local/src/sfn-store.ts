/**
 * The local runtime's executions and their histories, as the Step Functions API serves them (`sfn-api.ts`): fed by
 * `LocalWorkflow.observe`, kept in memory for what runs and on disk (when given a folder) so that they outlive a
 * restart of `npm start`, as AWS keeps a closed execution's history for 90 days.
 *
 * On disk: `executions.ndjson` (one line per change of an execution; the last one wins) and `events/<name>.ndjson`
 * (each execution's events, appended as they come).
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { appendFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { AslGraph } from "../../../stacks/timing";
import type { ExecutionStatus } from "./aws-semantics";
import { HistoryTranslator, type SfnHistoryEvent } from "./sfn-history";
import { type StartedExecution, type WorkflowObserver, taskStates } from "./workflow";

/** One execution as DescribeExecution describes it (dates in epoch ms). */
export interface StoredExecution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate?: number;
  /** JSON text, as the API carries it. */
  input: string;
  output?: string;
  error?: string;
  cause?: string;
}

export interface ExecutionStoreOptions {
  /** The definition executed: the history names each Task's resource from it. */
  definition: AslGraph;
  /** Folder for the files; in memory only when undefined. */
  dir?: string;
  /** Executions kept (oldest dropped first, with their events). */
  maxExecutions?: number;
}

/** How many executions the store keeps by default: days of a 5-minute schedule, hours of the local 10 s one. */
export const STORE_DEFAULTS = { maxExecutions: 1000 } as const;

interface Live {
  translator: HistoryTranslator;
  events: SfnHistoryEvent[];
  file?: WriteStream;
}

/** The executions, newest first, with their histories. */
export class ExecutionStore {
  readonly #dir: string | undefined;
  readonly #max: number;
  readonly #resources: Record<string, string | undefined>;
  readonly #executions = new Map<string, StoredExecution>();
  readonly #live = new Map<string, Live>();
  /** Events of finished executions, a few at a time. */
  readonly #cache = new Map<string, SfnHistoryEvent[]>();
  /** StopExecution's error and cause, for the ExecutionAborted event. */
  readonly #stopReasons = new Map<string, { error?: string; cause?: string }>();
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(options: ExecutionStoreOptions) {
    this.#dir = options.dir;
    this.#max = options.maxExecutions ?? STORE_DEFAULTS.maxExecutions;
    this.#resources = Object.fromEntries(taskStates(options.definition).map(([name, state]) => [name, state.Resource]));
  }

  /** Opens (and creates) the store; executions that were running when it closed are ABORTED (their process ended). */
  static async open(options: ExecutionStoreOptions): Promise<ExecutionStore> {
    const store = new ExecutionStore(options);
    await store.#load();
    return store;
  }

  /** An observer for `LocalWorkflow.observe`. */
  observer(): WorkflowObserver {
    return {
      started: (execution) => this.#started(execution),
      event: (arn, raw) => this.#event(arn, raw),
      stopped: (arn, status) => this.#stopped(arn, status),
    };
  }

  /** Every execution, newest first. */
  list(): StoredExecution[] {
    return [...this.#executions.values()].sort((a, b) => b.startDate - a.startDate);
  }

  get(executionArn: string): StoredExecution | undefined {
    return this.#executions.get(executionArn);
  }

  /** Remembers why a person stopped an execution, for its ExecutionAborted event. */
  stopping(executionArn: string, reason: { error?: string; cause?: string }): void {
    this.#stopReasons.set(executionArn, reason);
  }

  /** An execution's events in order, or undefined for an unknown one. */
  async events(executionArn: string): Promise<SfnHistoryEvent[] | undefined> {
    const execution = this.#executions.get(executionArn);
    if (!execution) return undefined;
    const live = this.#live.get(executionArn);
    if (live) return [...live.events];
    const cached = this.#cache.get(executionArn);
    if (cached) return cached;
    if (!this.#dir) return [];
    await this.#writes;
    const text = await readFile(this.#eventsFile(execution.name), "utf8").catch(() => "");
    const events = parseLines(text) as SfnHistoryEvent[];
    this.#remember(executionArn, events);
    return events;
  }

  async close(): Promise<void> {
    for (const live of this.#live.values()) {
      const file = live.file;
      if (file) void this.#queue(() => new Promise<void>((resolve) => file.end(resolve)));
    }
    await this.#writes;
  }

  #started(execution: StartedExecution): void {
    const stored: StoredExecution = {
      executionArn: execution.executionArn,
      stateMachineArn: execution.stateMachineArn,
      name: execution.name,
      status: "RUNNING",
      startDate: execution.startDate,
      input: JSON.stringify(execution.input ?? {}),
    };
    this.#executions.set(execution.executionArn, stored);
    this.#liveOf(stored);
    this.#persist(stored);
    this.#prune();
  }

  #liveOf(execution: StoredExecution): Live {
    let live = this.#live.get(execution.executionArn);
    if (!live) {
      live = { translator: new HistoryTranslator(this.#resources), events: [] };
      if (this.#dir) live.file = createWriteStream(this.#eventsFile(execution.name), { flags: "a" });
      this.#live.set(execution.executionArn, live);
    }
    return live;
  }

  #append(live: Live, events: Omit<SfnHistoryEvent, "id" | "previousEventId">[]): void {
    for (const event of events) {
      const id = live.events.length + 1;
      const numbered = { ...event, id, previousEventId: id - 1 } as SfnHistoryEvent;
      live.events.push(numbered);
      live.file?.write(`${JSON.stringify(numbered)}\n`);
    }
  }

  #event(executionArn: string, raw: unknown): void {
    const execution = this.#executions.get(executionArn);
    if (!execution) return;
    const live = this.#liveOf(execution);
    const events = live.translator.translate(raw);
    for (const event of events) {
      if (event.type === "ExecutionSucceeded") execution.output = String(event.executionSucceededEventDetails?.output ?? "");
      if (event.type === "ExecutionFailed") {
        execution.error = String(event.executionFailedEventDetails?.error ?? "");
        execution.cause = String(event.executionFailedEventDetails?.cause ?? "");
      }
      if (event.type === "ExecutionAborted") {
        const reason = this.#stopReasons.get(executionArn) ?? {};
        event.executionAbortedEventDetails = { ...reason };
        Object.assign(execution, reason);
      }
    }
    this.#append(live, events);
  }

  #stopped(executionArn: string, status: Exclude<ExecutionStatus, "RUNNING">): void {
    const execution = this.#executions.get(executionArn);
    if (!execution) return;
    const live = this.#live.get(executionArn);
    // An execution stopped before it ran (or whose end the interpreter did not log) still ends its history.
    if (live && !live.events.some((event) => /^Execution(Succeeded|Failed|Aborted|TimedOut)$/.test(event.type))) {
      const reason = this.#stopReasons.get(executionArn) ?? {};
      if (status === "ABORTED") {
        this.#append(live, [{ timestamp: Date.now(), type: "ExecutionAborted", executionAbortedEventDetails: { ...reason } }]);
        Object.assign(execution, reason);
      }
    }
    this.#stopReasons.delete(executionArn);
    execution.status = status;
    execution.stopDate = Date.now();
    if (live) {
      const file = live.file;
      if (file) void this.#queue(() => new Promise<void>((resolve) => file.end(resolve)));
      this.#live.delete(executionArn);
      this.#remember(executionArn, live.events);
    }
    this.#persist(execution);
  }

  async #load(): Promise<void> {
    if (!this.#dir) return;
    await mkdir(path.join(this.#dir, "events"), { recursive: true });
    const text = await readFile(path.join(this.#dir, "executions.ndjson"), "utf8").catch(() => "");
    for (const line of parseLines(text) as StoredExecution[]) {
      if (line?.executionArn) this.#executions.set(line.executionArn, line);
    }
    for (const execution of this.#executions.values()) {
      if (execution.status !== "RUNNING") continue;
      Object.assign(execution, { status: "ABORTED", stopDate: execution.stopDate ?? Date.now(), cause: "npm start stopped while it ran" });
    }
    // One line per execution from here on.
    await this.#rewrite();
  }

  #persist(execution: StoredExecution): void {
    if (!this.#dir) return;
    const line = `${JSON.stringify(execution)}\n`;
    void this.#queue(() => appendFile(path.join(this.#dir!, "executions.ndjson"), line));
  }

  #prune(): void {
    const finished = this.list().filter((execution) => !this.#live.has(execution.executionArn));
    const excess = this.#executions.size - this.#max;
    if (excess <= 0) return;
    const drop = finished.slice(-excess);
    for (const execution of drop) {
      this.#executions.delete(execution.executionArn);
      this.#cache.delete(execution.executionArn);
    }
    if (!this.#dir || drop.length === 0) return;
    void this.#queue(async () => {
      for (const execution of drop) await rm(this.#eventsFile(execution.name), { force: true });
    });
    void this.#rewrite();
  }

  #rewrite(): Promise<unknown> {
    const text = this.list()
      .reverse()
      .map((execution) => `${JSON.stringify(execution)}\n`)
      .join("");
    return this.#queue(() => writeFile(path.join(this.#dir!, "executions.ndjson"), text));
  }

  #remember(executionArn: string, events: SfnHistoryEvent[]): void {
    this.#cache.set(executionArn, events);
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

function parseLines(text: string): unknown[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return []; // a line cut short by a crash
      }
    });
}
