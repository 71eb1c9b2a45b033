import type { AslRetrier } from "../../../stacks/timing";

/**
 * The drain's graph, converted from the synthesized ASL definition (never a hand-kept copy): one node per state, a
 * Map's or Parallel's states nested inside it, an edge per transition labelled with what takes it (a Choice rule's
 * condition, a Catch's errors). Pure: no browser, no server. The page lays it out (elkjs) and draws it.
 */

/** The ASL this reads: the parts of a state that shape the graph. */
export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslStateLike>;
  Comment?: string;
}

export interface AslStateLike {
  Type: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Comment?: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  Arguments?: Record<string, unknown>;
  Choices?: AslChoiceRule[];
  Retry?: AslRetrier[];
  Catch?: { ErrorEquals: string[]; Next: string; ResultPath?: string | null }[];
  ItemProcessor?: AslDefinition;
  Iterator?: AslDefinition;
  Branches?: AslDefinition[];
  MaxConcurrency?: number;
  [key: string]: unknown;
}

export type AslChoiceRule = Record<string, unknown> & { Next?: string };

/** A Retry rule: the stack's own type, so the console and the worst-case arithmetic read retriers alike. */
export type { AslRetrier };

/** One retry rule as the graph shows it on its state. */
export interface RetryRule {
  errors: string[];
  /** e.g. "3 retries, 30 s then ×1.5" */
  text: string;
}

export interface GraphNode {
  /** The state's name (names are unique across a whole state machine); `Start` / `End` pseudo-nodes have ids below. */
  id: string;
  label: string;
  /** ASL type (`Task`, `Choice`, `Map`, …), or `Start` / `End`. */
  type: string;
  /** The Map or Parallel state this one runs inside, if any. */
  parent?: string;
  comment?: string;
  /** What a Task calls: the function name for `lambda:invoke`, else the service action (`sqs:receiveMessage`). */
  calls?: string;
  retry: RetryRule[];
  /** True for a Map/Parallel: its states are nested inside it. */
  compound: boolean;
}

export type EdgeKind = "next" | "choice" | "default" | "catch" | "start" | "end";

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
  /** A Choice rule's condition, `Default`, or a Catch's errors. */
  label?: string;
}

export interface StateGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** Ids of the pseudo-nodes that open and close the top-level flow (as the Step Functions console draws them). */
export const START_NODE = "__start__";
export const END_NODE = "__end__";

/**
 * Converts a definition to its graph.
 *
 * @example
 * const graph = definitionToGraph(workflow.definition);
 * graph.nodes.filter((node) => node.parent === "ProcessBatch"); // the Map's item processor
 */
export function definitionToGraph(definition: AslDefinition): StateGraph {
  const nodes: GraphNode[] = [
    { id: START_NODE, label: "Start", type: "Start", retry: [], compound: false },
    { id: END_NODE, label: "End", type: "End", retry: [], compound: false },
  ];
  const edges: GraphEdge[] = [];
  const edge = (source: string, target: string, kind: EdgeKind, label?: string) => {
    edges.push({ id: `${source}→${target}#${edges.length}`, source, target, kind, ...(label === undefined ? {} : { label }) });
  };

  const addScope = (scope: AslDefinition, parent: string | undefined) => {
    for (const [name, state] of Object.entries(scope.States)) {
      const nested = nestedScopes(state);
      nodes.push({
        id: name,
        label: name,
        type: state.Type,
        ...(parent === undefined ? {} : { parent }),
        ...(state.Comment ? { comment: state.Comment } : {}),
        ...(state.Type === "Task" ? { calls: taskCalls(state) } : {}),
        retry: (state.Retry ?? []).map(retryRule),
        compound: nested.length > 0,
      });
      if (state.Next) edge(name, state.Next, "next");
      for (const rule of state.Choices ?? []) if (rule.Next) edge(name, rule.Next, "choice", conditionText(rule));
      if (state.Default) edge(name, state.Default, "default", "Default");
      for (const catcher of state.Catch ?? []) edge(name, catcher.Next, "catch", `Catch ${catcher.ErrorEquals.join(", ")}`);
      // Only the outermost flow ends at the End node: a Map's iteration ending is not the execution ending.
      if (parent === undefined && isTerminal(state)) edge(name, END_NODE, "end");
      for (const child of nested) addScope(child, name);
    }
  };
  addScope(definition, undefined);
  edge(START_NODE, definition.StartAt, "start");
  return { nodes, edges };
}

/** The state names of a definition, nested ones included, in definition order. */
export function stateNames(definition: AslDefinition): string[] {
  return Object.entries(definition.States).flatMap(([name, state]) => [name, ...nestedScopes(state).flatMap(stateNames)]);
}

function nestedScopes(state: AslStateLike): AslDefinition[] {
  if (state.Type === "Map") return [state.ItemProcessor ?? state.Iterator].filter((scope): scope is AslDefinition => !!scope);
  if (state.Type === "Parallel") return state.Branches ?? [];
  return [];
}

function isTerminal(state: AslStateLike): boolean {
  return state.End === true || state.Type === "Succeed" || state.Type === "Fail";
}

/** `Validate` for a Lambda invoke of the function Validate; `sqs:receiveMessage` for an SDK integration. */
function taskCalls(state: AslStateLike): string {
  const resource = state.Resource ?? "";
  const functionName = (state.Parameters ?? state.Arguments)?.FunctionName;
  if (resource.endsWith(":lambda:invoke") && typeof functionName === "string") return `λ ${functionName.split(":").pop()}`;
  const sdk = /^arn:aws:states:::aws-sdk:([^:]+):(.+)$/.exec(resource);
  if (sdk) return `${sdk[1]}:${sdk[2]}`;
  const optimized = /^arn:aws:states:::([^:]+):(.+)$/.exec(resource);
  if (optimized) return `${optimized[1]}:${optimized[2]}`;
  if (resource.startsWith("arn:aws:lambda:")) return `λ ${resource.split(":").pop()}`;
  return resource;
}

function retryRule(retrier: AslRetrier): RetryRule {
  const attempts = retrier.MaxAttempts ?? 3;
  const interval = retrier.IntervalSeconds ?? 1;
  const rate = retrier.BackoffRate ?? 2;
  const parts = [`${attempts} ${attempts === 1 ? "retry" : "retries"}`, `${interval} s`];
  if (rate !== 1) parts.push(`×${rate}`);
  if (retrier.MaxDelaySeconds !== undefined) parts.push(`≤ ${retrier.MaxDelaySeconds} s`);
  if (retrier.JitterStrategy === "FULL") parts.push("jitter");
  return { errors: retrier.ErrorEquals, text: parts.join(", ") };
}

/** Comparison operators of Choice rules, as symbols (the `…Path` forms compare with another path). */
const COMPARISONS: Record<string, string> = {
  Equals: "==",
  LessThan: "<",
  GreaterThan: ">",
  LessThanEquals: "<=",
  GreaterThanEquals: ">=",
};

/**
 * A Choice rule's condition as one readable line, e.g. `$.drain.batches < 15`, `$.batch.Messages[0] is present`,
 * `not ($.a == "x") and $.b > 2`. JSONata rules (`Condition`) are shown as written.
 */
export function conditionText(rule: Record<string, unknown>): string {
  if (typeof rule.Condition === "string") return rule.Condition;
  if (Array.isArray(rule.And)) return (rule.And as Record<string, unknown>[]).map((r) => group(r)).join(" and ");
  if (Array.isArray(rule.Or)) return (rule.Or as Record<string, unknown>[]).map((r) => group(r)).join(" or ");
  if (rule.Not && typeof rule.Not === "object") return `not ${group(rule.Not as Record<string, unknown>)}`;
  const variable = String(rule.Variable ?? "?");
  for (const [key, value] of Object.entries(rule)) {
    if (key === "Variable" || key === "Next" || key === "Comment") continue;
    const test = /^Is(Null|Present|Numeric|String|Boolean|Timestamp)$/.exec(key);
    if (test) return `${variable} ${value === false ? "is not" : "is"} ${test[1]!.toLowerCase()}`;
    if (key === "StringMatches") return `${variable} matches ${JSON.stringify(value)}`;
    const comparison = /^(String|Numeric|Boolean|Timestamp)(Equals|LessThan|GreaterThan|LessThanEquals|GreaterThanEquals)(Path)?$/.exec(key);
    if (comparison) {
      const operand = comparison[3] ? String(value) : JSON.stringify(value);
      return `${variable} ${COMPARISONS[comparison[2]!]} ${operand}`;
    }
  }
  return JSON.stringify(rule);
}

function group(rule: Record<string, unknown>): string {
  const text = conditionText(rule);
  return rule.And || rule.Or ? `(${text})` : text;
}
