/// <reference lib="dom" />
/** The page's state: one snapshot from the server, kept current by its live stream (server-sent events). */
import { useEffect, useReducer } from "react";
import type { CommandContext } from "../commands";
import type { DeadLetterEntry } from "../dlq-actions";
import type { LiteEvent, StateActivity } from "../events";
import type { StateGraph } from "../graph";
import type { ActionEntry, ExecutionEntry } from "../history";
import type { QueueDepths } from "../queues";
import type { ConsoleAlarm } from "../server";

export interface Snapshot {
  graph: StateGraph;
  startedAt: number;
  executions: ExecutionEntry[];
  activity: Record<string, StateActivity>;
  queues?: QueueDepths;
  queueError?: string;
  /** The stack's alarms as the local runtime computes them. */
  alarms?: ConsoleAlarm[];
  rate: { writtenPerSecond: number; windowSeconds: number };
  deadLetters: DeadLetterEntry[];
  deadLetterError?: string;
  actions: ActionEntry[];
  commands: CommandContext;
}

export interface ConsoleState {
  connection: "connecting" | "live" | "reconnecting";
  snapshot?: Snapshot;
  /** Events per execution name, by seq (the live stream and fetched histories merge here). */
  events: Record<string, Record<number, LiteEvent>>;
  /** Executions whose history was fetched: live events alone may start after the beginning. */
  loaded: Record<string, true>;
  /** Bumped on every change the stream brings: tests and people can tell the page is current. */
  version: number;
}

type Action =
  | { type: "connection"; connection: ConsoleState["connection"] }
  | { type: "hello"; snapshot: Snapshot }
  | { type: "execution"; entry: ExecutionEntry }
  | { type: "event"; name: string; event: LiteEvent }
  | { type: "events"; name: string; events: LiteEvent[] }
  | { type: "activity"; activity: Record<string, StateActivity> }
  | { type: "queues"; queues?: QueueDepths; error?: string; rate: Snapshot["rate"]; alarms?: ConsoleAlarm[] }
  | { type: "dlq"; entries: DeadLetterEntry[]; error?: string }
  | { type: "action"; action: ActionEntry };

function reduce(state: ConsoleState, action: Action): ConsoleState {
  const version = state.version + 1;
  if (action.type === "connection") return { ...state, connection: action.connection };
  if (action.type === "hello") return { ...state, connection: "live", snapshot: action.snapshot, version };
  if (action.type === "events" || action.type === "event") {
    const list = action.type === "events" ? action.events : [action.event];
    const known = { ...(state.events[action.name] ?? {}) };
    for (const event of list) known[event.seq] = event;
    const loaded = action.type === "events" ? { ...state.loaded, [action.name]: true as const } : state.loaded;
    return { ...state, events: { ...state.events, [action.name]: known }, loaded, version };
  }
  const snapshot = state.snapshot;
  if (!snapshot) return state;
  switch (action.type) {
    case "execution": {
      const others = snapshot.executions.filter((entry) => entry.name !== action.entry.name);
      const executions = [action.entry, ...others].sort((a, b) => b.startedAt - a.startedAt);
      return { ...state, snapshot: { ...snapshot, executions }, version };
    }
    case "activity":
      return { ...state, snapshot: { ...snapshot, activity: action.activity }, version };
    case "queues":
      return { ...state, snapshot: { ...snapshot, queues: action.queues, queueError: action.error, rate: action.rate, alarms: action.alarms }, version };
    case "dlq":
      return { ...state, snapshot: { ...snapshot, deadLetters: action.entries, deadLetterError: action.error }, version };
    case "action":
      return { ...state, snapshot: { ...snapshot, actions: [...snapshot.actions, action.action] }, version };
  }
}

export type Dispatch = (action: Action) => void;

/** Connects to the live stream; a reload or a reconnect starts from a fresh snapshot. */
export function useConsole(): [ConsoleState, Dispatch] {
  const [state, dispatch] = useReducer(reduce, { connection: "connecting", events: {}, loaded: {}, version: 0 });
  useEffect(() => {
    const source = new EventSource("/api/stream");
    const on = (name: string, handle: (data: any) => void) =>
      source.addEventListener(name, (message) => handle(JSON.parse((message as MessageEvent<string>).data)));
    on("hello", (snapshot: Snapshot) => dispatch({ type: "hello", snapshot }));
    on("execution", (entry: ExecutionEntry) => dispatch({ type: "execution", entry }));
    on("event", ({ name, event }: { name: string; event: LiteEvent }) => dispatch({ type: "event", name, event }));
    on("activity", (activity: Record<string, StateActivity>) => dispatch({ type: "activity", activity }));
    on("queues", (data: { queues?: QueueDepths; error?: string; rate: Snapshot["rate"]; alarms?: ConsoleAlarm[] }) => dispatch({ type: "queues", ...data }));
    on("dlq", (data: { entries: DeadLetterEntry[]; error?: string }) => dispatch({ type: "dlq", ...data }));
    on("action", (action: ActionEntry) => dispatch({ type: "action", action }));
    source.onerror = () => dispatch({ type: "connection", connection: "reconnecting" });
    return () => source.close();
  }, []);
  return [state, dispatch];
}

/**
 * A JSON request to the console's API; throws with the server's message on an error status: its `error`, or the
 * `detail` of an action that failed, so a person reads why rather than a bare status.
 */
export async function api<T>(path: string, body?: unknown): Promise<{ status: number; data: T }> {
  const response = await fetch(path, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const data = (await response.json()) as T & { error?: string; detail?: string };
  if (!response.ok && response.status !== 422) throw new Error(data.error ?? data.detail ?? `HTTP ${response.status}`);
  return { status: response.status, data };
}

/** The events of one execution in order. */
export function eventsOf(state: ConsoleState, name: string | undefined): LiteEvent[] {
  if (!name) return [];
  return Object.values(state.events[name] ?? {}).sort((a, b) => a.seq - b.seq);
}
