/**
 * Worst-case arithmetic over an ASL definition (JSONPath), used by the stack to size the queue's visibility timeout
 * and the drain cap, and by the tests to check both against the synthesized definition.
 */

export interface AslRetrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
  JitterStrategy?: "FULL" | "NONE";
}

export interface AslState {
  Type: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: { Next: string }[];
  Catch?: { ErrorEquals: string[]; Next: string }[];
  Retry?: AslRetrier[];
  TimeoutSeconds?: number;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  MaxConcurrency?: number;
  ItemProcessor?: AslGraph;
  Iterator?: AslGraph;
  [key: string]: unknown;
}

export interface AslGraph {
  StartAt: string;
  States: Record<string, AslState>;
}

// Step Functions' defaults when a retrier leaves a field out.
const DEFAULT_INTERVAL_SECONDS = 1;
const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_BACKOFF_RATE = 2;

/** The longest a retrier can wait in total across all its retries (jitter only ever shortens a wait). */
export function retrierWaitSeconds(retrier: AslRetrier): number {
  const attempts = retrier.MaxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const interval = retrier.IntervalSeconds ?? DEFAULT_INTERVAL_SECONDS;
  const rate = retrier.BackoffRate ?? DEFAULT_BACKOFF_RATE;
  let total = 0;
  for (let retry = 0; retry < attempts; retry++) {
    const wait = interval * rate ** retry;
    total += retrier.MaxDelaySeconds === undefined ? wait : Math.min(wait, retrier.MaxDelaySeconds);
  }
  return total;
}

/** How many times a Task can run at most: once, plus every retrier's attempts (each retrier counts separately). */
export function maxTaskAttempts(state: AslState): number {
  return 1 + (state.Retry ?? []).reduce((sum, retrier) => sum + (retrier.MaxAttempts ?? DEFAULT_MAX_ATTEMPTS), 0);
}

/** The longest one Task can take: every attempt running to its timeout, plus every retry wait. */
export function worstCaseTaskSeconds(name: string, state: AslState): number {
  if (state.TimeoutSeconds === undefined) {
    throw new Error(`Task ${name} has no TimeoutSeconds: its worst case is unbounded`);
  }
  const waits = (state.Retry ?? []).reduce((sum, retrier) => sum + retrierWaitSeconds(retrier), 0);
  return maxTaskAttempts(state) * state.TimeoutSeconds + waits;
}

function successors(state: AslState): string[] {
  return [
    ...(state.Next ? [state.Next] : []),
    ...(state.Default ? [state.Default] : []),
    ...(state.Choices ?? []).map((choice) => choice.Next),
    ...(state.Catch ?? []).map((catcher) => catcher.Next),
  ];
}

/**
 * The longest path through an acyclic graph (a Map's item processor), weighting each state by `weight`. A Catch is
 * taken only after every retry has failed, so a Task's full worst case precedes its catcher.
 */
export function longestPath(graph: AslGraph, weight: (name: string, state: AslState) => number): number {
  const memo = new Map<string, number>();
  const visit = (name: string, trail: Set<string>): number => {
    const cached = memo.get(name);
    if (cached !== undefined) return cached;
    if (trail.has(name)) throw new Error(`The graph loops through ${name}: no worst case`);
    const state = graph.States[name];
    if (!state) throw new Error(`Unknown state ${name}`);
    const next = successors(state).map((successor) => visit(successor, new Set([...trail, name])));
    const total = weight(name, state) + Math.max(0, ...next);
    memo.set(name, total);
    return total;
  };
  return visit(graph.StartAt, new Set());
}

/**
 * How far a graph's Map and Wait states can reach, which the graph alone does not say: the most items each Map gets
 * (by state name) and the longest any Wait state waits.
 */
export interface GraphBounds {
  mapItems: Record<string, number>;
  waitSeconds?: number;
}

function mapItems(name: string, bounds: GraphBounds): number {
  const items = bounds.mapItems[name];
  if (items === undefined) throw new Error(`Map ${name} has no bound on its items`);
  return items;
}

/**
 * The longest an acyclic graph can take: Tasks at their worst case, Wait states at `bounds.waitSeconds`, and each Map
 * as waves of its MaxConcurrency, every item at the longest path through its item processor.
 */
export function worstCaseGraphSeconds(graph: AslGraph, bounds: GraphBounds): number {
  return longestPath(graph, (name, state) => worstCaseStateSeconds(name, state, bounds));
}

export function worstCaseStateSeconds(name: string, state: AslState, bounds: GraphBounds): number {
  if (state.Type === "Task") return worstCaseTaskSeconds(name, state);
  if (state.Type === "Wait") return bounds.waitSeconds ?? Number(state.Seconds ?? 0);
  const processor = state.ItemProcessor ?? state.Iterator;
  if (state.Type === "Map" && processor) {
    const items = mapItems(name, bounds);
    const waves = state.MaxConcurrency ? Math.ceil(items / state.MaxConcurrency) : 1;
    return waves * worstCaseGraphSeconds(processor, bounds);
  }
  return 0;
}

/**
 * Events one state adds to an execution's history at most. A Task: entered + exited, and scheduled, started and
 * succeeded/failed/timed out for each attempt. A Map: entered, started, succeeded and exited, plus each item's
 * iteration started + ended and its longest path. Any other state: entered + exited.
 */
export function worstCaseEvents(name: string, state: AslState, bounds: GraphBounds): number {
  if (state.Type === "Task") return 2 + 3 * maxTaskAttempts(state);
  const processor = state.ItemProcessor ?? state.Iterator;
  if (state.Type === "Map" && processor) {
    return 4 + mapItems(name, bounds) * (2 + longestPath(processor, (n, s) => worstCaseEvents(n, s, bounds)));
  }
  return 2;
}
