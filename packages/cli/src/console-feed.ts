/**
 * The console's executions read through the Step Functions API (a deployed stage's, or the local runtime's), fed to
 * the console's `History` as if the runtime were in this process: AWS's history events turned back into the
 * interpreter's (`StateEntered`, `StateFailed`, `StateRetried`, `StateCaught`, `StateExited`, `MapIteration…`), so
 * the page reads them as it reads the local ones.
 *
 * Paced for AWS's throttling (Step Functions' token buckets, us-east-1: ListExecutions 100 with 2 refills a second,
 * GetExecutionHistory 250 with 5 a second; "Quotas related to API action throttling"): one ListExecutions a poll,
 * GetExecutionHistory only for executions not read yet or still running (newest events first, stopping at the last
 * one read), and never more history pages a poll than 5 for each second between polls (its refill rate).
 */
import {
  type ExecutionListItem,
  GetExecutionHistoryCommand,
  type HistoryEvent as SfnHistoryEvent,
  ListExecutionsCommand,
  type SFNClient,
} from "@aws-sdk/client-sfn";
import type { DrainSummary } from "@fundraise-sync/local/workflow";
import { countDrain } from "./drain-history";

export const FEED_DEFAULTS = {
  /** Between two polls (ms): ListExecutions once each, 0.2 calls a second of its 2 refilled. */
  pollMs: 5000,
  /** The executions listed (ListExecutions' first page, newest first) and followed. */
  executions: 50,
  /** History pages read at most a second of poll interval: GetExecutionHistory's refill rate (5/s), never more (25 per 5 s poll). */
  historyCallsPerSecond: 5,
} as const;

/** What the feed hands each execution's events to (the console's `History` has this shape). */
export interface FeedSink {
  record(executionArn: string, raw: unknown, soFar?: DrainSummary): void;
  finish(summary: DrainSummary): void;
}

interface StateRules {
  type?: string;
  Retry?: { ErrorEquals?: string[]; IntervalSeconds?: number }[];
  Catch?: { ErrorEquals?: string[]; Next?: string }[];
}

/** Every state of a definition by name, inside Maps (Iterator / ItemProcessor) and Parallels too. */
export function statesOf(definition: unknown): Map<string, StateRules> {
  const found = new Map<string, StateRules>();
  const visit = (machine: unknown) => {
    const states = (machine as { States?: Record<string, Record<string, unknown>> } | undefined)?.States ?? {};
    for (const [name, state] of Object.entries(states)) {
      found.set(name, { type: state.Type as string, Retry: state.Retry as StateRules["Retry"], Catch: state.Catch as StateRules["Catch"] });
      visit(state.Iterator);
      visit(state.ItemProcessor);
      for (const branch of (state.Branches as unknown[] | undefined) ?? []) visit(branch);
    }
  };
  visit(definition);
  return found;
}

/** Step Functions' error matching: the error's own name, `States.ALL`, or `States.TaskFailed` for any but a timeout. */
function matches(errors: string[] | undefined, error: string): boolean {
  return (errors ?? []).some((name) => name === error || name === "States.ALL" || (name === "States.TaskFailed" && error !== "States.Timeout"));
}

const parse = (text: string | undefined): unknown => {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

/** Where a chain of events is: the state entered last, its input, and its attempt's failure if it failed. */
interface Context {
  name: string;
  type: string;
  input: unknown;
  attempt: number;
  failed?: { error: string; cause: string };
}

const FAILURES: Record<string, string> = {
  TaskFailed: "taskFailedEventDetails",
  TaskTimedOut: "taskTimedOutEventDetails",
  TaskStartFailed: "taskStartFailedEventDetails",
  TaskSubmitFailed: "taskSubmitFailedEventDetails",
  LambdaFunctionFailed: "lambdaFunctionFailedEventDetails",
  LambdaFunctionTimedOut: "lambdaFunctionTimedOutEventDetails",
  LambdaFunctionStartFailed: "lambdaFunctionStartFailedEventDetails",
  LambdaFunctionScheduleFailed: "lambdaFunctionScheduleFailedEventDetails",
  MapStateFailed: "",
};

/**
 * Reads one execution's AWS history events, in order (across polls), into the interpreter's raw events. Which state
 * a `TaskFailed` or a second `TaskScheduled` (AWS's retry) belongs to follows `previousEventId`: AWS chains each
 * event to the one before it in the same branch, so Map iterations running side by side stay apart.
 */
export class AwsHistoryReader {
  readonly #contexts = new Map<number, Context>();
  /** States entered and not exited, by name: a Map's exit chains to its last iteration, not to its entry. */
  readonly #open = new Map<string, Context[]>();

  constructor(private readonly states: ReadonlyMap<string, StateRules>) {}

  read(event: SfnHistoryEvent): unknown[] {
    const timestamp = event.timestamp ? new Date(event.timestamp).getTime() : Date.now();
    const id = event.id ?? 0;
    const type = event.type ?? "";
    const inherited = this.#contexts.get(event.previousEventId ?? -1);
    const state = (context: Context, withInput = true) => ({ name: context.name, type: context.type, ...(withInput ? { input: context.input } : {}) });
    switch (type) {
      case "ExecutionStarted":
        return [{ type, timestamp, input: parse(event.executionStartedEventDetails?.input) }];
      case "ExecutionSucceeded":
        return [{ type, timestamp, output: parse(event.executionSucceededEventDetails?.output) }];
      case "ExecutionFailed":
        return [{ type, timestamp, Error: event.executionFailedEventDetails?.error ?? "States.Runtime", Cause: event.executionFailedEventDetails?.cause ?? "" }];
      case "ExecutionAborted":
        return [{ type, timestamp, Error: "ExecutionAborted", Cause: event.executionAbortedEventDetails?.cause ?? "stopped (StopExecution)" }];
      case "ExecutionTimedOut":
        return [{ type: "ExecutionTimeout", timestamp, Error: "States.Timeout", Cause: event.executionTimedOutEventDetails?.cause ?? "" }];
      case "MapIterationStarted":
      case "MapIterationSucceeded":
      case "MapIterationFailed":
      case "MapIterationAborted": {
        if (inherited) this.#contexts.set(id, inherited);
        const details = event.mapIterationStartedEventDetails ?? event.mapIterationSucceededEventDetails ?? event.mapIterationFailedEventDetails ?? event.mapIterationAbortedEventDetails;
        return [{ type, timestamp, parentState: { name: details?.name ?? inherited?.name ?? "", type: "Map" }, index: details?.index ?? 0 }];
      }
    }
    const entered = /^(\w+)StateEntered$/.exec(type);
    if (entered) {
      const name = event.stateEnteredEventDetails?.name ?? "";
      const context: Context = { name, type: entered[1]!, input: parse(event.stateEnteredEventDetails?.input), attempt: 0 };
      this.#contexts.set(id, context);
      this.#open.set(name, [...(this.#open.get(name) ?? []), context]);
      return [{ type: "StateEntered", timestamp, state: state(context) }];
    }
    const exited = /^(\w+)StateExited$/.exec(type);
    if (exited) {
      const name = event.stateExitedEventDetails?.name ?? "";
      const open = this.#open.get(name) ?? [];
      const context = inherited?.name === name && open.includes(inherited) ? inherited : open[0];
      if (context) this.#open.set(name, open.filter((candidate) => candidate !== context));
      const own = context ?? { name, type: exited[1]!, input: undefined, attempt: 0 };
      const raws: unknown[] = [];
      if (own.failed) {
        // AWS has no event for a Catch: a failed state that exits was caught.
        const catcher = this.states.get(name)?.Catch?.find((rule) => matches(rule.ErrorEquals, own.failed!.error));
        raws.push({ type: "StateCaught", timestamp, state: state(own), catch: { catcher: { ErrorEquals: catcher?.ErrorEquals ?? [], Next: catcher?.Next ?? "" } } });
        own.failed = undefined;
      }
      raws.push({ type: "StateExited", timestamp, state: { ...state(own), output: parse(event.stateExitedEventDetails?.output) } });
      return raws;
    }
    if (type in FAILURES) {
      const context = type === "MapStateFailed" && inherited?.type !== "Map" ? this.#lastOpen("Map") : inherited;
      if (context) this.#contexts.set(id, context);
      if (!context) return [];
      const details = (FAILURES[type] ? (event as unknown as Record<string, unknown>)[FAILURES[type]] : undefined) as { error?: string; cause?: string } | undefined;
      const error = details?.error ?? (type.endsWith("TimedOut") ? "States.Timeout" : "States.TaskFailed");
      context.failed = { error, cause: details?.cause ?? "" };
      return [{ type: "StateFailed", timestamp, state: state(context), Error: error, Cause: context.failed.cause }];
    }
    if (inherited) this.#contexts.set(id, inherited);
    if ((type === "TaskScheduled" || type === "LambdaFunctionScheduled") && inherited?.failed) {
      // AWS shows a retry as the Task scheduled again after its failure.
      const retrier = this.states.get(inherited.name)?.Retry?.find((rule) => matches(rule.ErrorEquals, inherited.failed!.error));
      inherited.failed = undefined;
      inherited.attempt++;
      return [{ type: "StateRetried", timestamp, state: state(inherited), retry: { attempt: inherited.attempt, retrier: retrier ?? { ErrorEquals: [] } } }];
    }
    return [];
  }

  #lastOpen(type: string): Context | undefined {
    return [...this.#open.values()].flat().filter((context) => context.type === type).at(-1);
  }
}

/** A finished execution's summary, from its whole history (what `npm run executions` counts). */
export function summaryOf(executionArn: string, events: readonly SfnHistoryEvent[], running = false): DrainSummary {
  const counts = countDrain(events);
  const last = events.at(-1);
  const first = events[0];
  const failed = events.find((event) => /^Execution(Failed|Aborted|TimedOut)$/.test(event.type ?? ""));
  const failure = failed?.executionFailedEventDetails ?? failed?.executionAbortedEventDetails ?? failed?.executionTimedOutEventDetails;
  const at = (event: SfnHistoryEvent | undefined) => (event?.timestamp ? new Date(event.timestamp).getTime() : Date.now());
  return {
    executionArn,
    status: failed ? "FAILED" : "SUCCEEDED",
    continued: false,
    received: counts.received,
    written: counts.written,
    updated: 0,
    copiesInBatch: 0,
    deadLettered: counts.deadLettered,
    leftInQueue: 0,
    held: 0,
    retried: counts.retried,
    stateTransitions: events.filter((event) => /StateEntered$/.test(event.type ?? "")).length,
    durationMs: (running ? Date.now() : at(last)) - at(first),
    ...(failed
      ? { error: { name: (failure as { error?: string } | undefined)?.error ?? failed.type!.replace(/^Execution/, "Execution "), cause: (failure as { cause?: string } | undefined)?.cause ?? "" } }
      : {}),
  };
}

interface Followed {
  reader: AwsHistoryReader;
  events: SfnHistoryEvent[];
  lastId: number;
  done: boolean;
}

export interface ExecutionFeedOptions {
  sfn: SFNClient;
  stateMachineArn: string;
  /** The deployed definition (DescribeStateMachine): which Retry and Catch rules a retry and a catch followed. */
  definition: unknown;
  sink: FeedSink;
  pollMs?: number;
  executions?: number;
  /** Default: {@link FEED_DEFAULTS.historyCallsPerSecond} for each second of `pollMs`. */
  historyCallsPerPoll?: number;
  /** A poll failed (throttled, credentials expired, the API gone): the console says so and polls on. */
  onError?: (error: unknown) => void;
}

/**
 * Follows a state machine's executions through ListExecutions and GetExecutionHistory, handing their events to the
 * sink as they come. `poll()` runs one round (the first lists and reads the latest executions); `start()` polls on.
 */
export class ExecutionFeed {
  readonly #followed = new Map<string, Followed>();
  readonly #states: Map<string, StateRules>;
  readonly #options: Required<Omit<ExecutionFeedOptions, "onError">> & Pick<ExecutionFeedOptions, "onError">;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  /** ListExecutions and GetExecutionHistory calls made (what the pacing is measured by). */
  readonly calls = { listExecutions: 0, getExecutionHistory: 0 };

  constructor(options: ExecutionFeedOptions) {
    const pollMs = options.pollMs ?? FEED_DEFAULTS.pollMs;
    const historyCallsPerPoll = Math.max(1, Math.floor((FEED_DEFAULTS.historyCallsPerSecond * pollMs) / 1000));
    this.#options = { pollMs, executions: FEED_DEFAULTS.executions, historyCallsPerPoll, ...options };
    this.#states = statesOf(options.definition);
  }

  /** Polls now and every `pollMs` after, one poll at a time. */
  start(): void {
    const tick = () => {
      this.#polling ??= this.poll()
        .catch((error: unknown) => this.#options.onError?.(error))
        .finally(() => (this.#polling = undefined));
    };
    tick();
    this.#timer = setInterval(tick, this.#options.pollMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#polling;
  }

  /** One round: the latest executions, then the histories of those new or still running (running first, then newest). */
  async poll(): Promise<void> {
    const { sfn, stateMachineArn } = this.#options;
    this.calls.listExecutions++;
    const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: Math.min(1000, this.#options.executions) }));
    const todo = (page.executions ?? []).filter((item) => !this.#followed.get(item.executionArn ?? "")?.done);
    todo.sort((a, b) => Number(b.status === "RUNNING") - Number(a.status === "RUNNING"));
    let budget = this.#options.historyCallsPerPoll;
    for (const item of todo) {
      if (budget <= 0) break;
      budget -= await this.#read(item, budget);
    }
  }

  /** Reads what is new in one execution's history (newest first, back to the last event read); returns the calls made. */
  async #read(item: ExecutionListItem, budget: number): Promise<number> {
    const arn = item.executionArn!;
    let followed = this.#followed.get(arn);
    if (!followed) {
      followed = { reader: new AwsHistoryReader(this.#states), events: [], lastId: 0, done: false };
      this.#followed.set(arn, followed);
    }
    const fresh: SfnHistoryEvent[] = [];
    let nextToken: string | undefined;
    let calls = 0;
    do {
      if (calls >= budget) return calls; // the rest next poll: nothing was handed on yet, so nothing is read twice
      calls++;
      this.calls.getExecutionHistory++;
      const page = await this.#options.sfn.send(
        new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, maxResults: 1000, ...(nextToken ? { nextToken } : {}) }),
      );
      const events = page.events ?? [];
      const older = events.findIndex((event) => (event.id ?? 0) <= followed.lastId);
      fresh.push(...(older === -1 ? events : events.slice(0, older)));
      nextToken = older === -1 ? page.nextToken : undefined;
    } while (nextToken);
    fresh.reverse();
    if (fresh.length === 0) return calls;
    const terminal = fresh.some((event) => /^Execution(Succeeded|Failed|Aborted|TimedOut)$/.test(event.type ?? ""));
    followed.events.push(...fresh);
    followed.lastId = fresh.at(-1)!.id ?? followed.lastId;
    const soFar = summaryOf(arn, followed.events, !terminal);
    fresh.forEach((event, position) => {
      for (const raw of followed.reader.read(event)) this.#options.sink.record(arn, raw, position === fresh.length - 1 && !terminal ? soFar : undefined);
    });
    if (terminal) {
      followed.done = true;
      this.#options.sink.finish(soFar);
      followed.events = []; // the console keeps them from here
    }
    return calls;
  }
}
