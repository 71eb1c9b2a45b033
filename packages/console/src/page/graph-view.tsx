/// <reference lib="dom" />
/**
 * The state machine's graph, laid out by elkjs (layered, top to bottom, a Map's states inside the Map) and drawn as
 * HTML nodes over an SVG of edges. Each node carries `data-state` and `data-status` (a contract: tests and scripts key
 * on them).
 */
import ELK, { type ElkExtendedEdge, type ElkNode } from "elkjs/lib/elk.bundled.js";
import { useEffect, useMemo, useRef, useState } from "react";
import type { StateActivity } from "../events";
import { END_NODE, type GraphEdge, type GraphNode, START_NODE, type StateGraph } from "../graph";

/** `not-run` for a state the shown execution has not entered. */
export type NodeStatus = StateActivity["status"] | "not-run";

interface Laid {
  width: number;
  height: number;
  nodes: Map<string, { x: number; y: number; width: number; height: number }>;
  edges: Map<string, { points: { x: number; y: number }[]; label?: { x: number; y: number; width: number; height: number } }>;
}

/** Below this the node text is too small to read: the panel scrolls instead. */
const MIN_FIT = 0.7;
const CHAR = 7.2; // px per character of the 12 px UI font, for sizing before the browser has drawn anything
const LABEL_CHAR = 6.3;

/** One line per Retry rule: its first error (and how many more), then its attempts and interval. */
export function retryLine(rule: { errors: string[]; text: string }): string {
  const errors = rule.errors.length > 1 ? `${rule.errors[0]} +${rule.errors.length - 1}` : rule.errors[0] ?? "";
  return `↻ ${errors}: ${rule.text}`;
}

function nodeSize(node: GraphNode): { width: number; height: number } {
  if (node.type === "Start" || node.type === "End") return { width: 64, height: 28 };
  const lines = [node.label, node.calls ?? node.type, ...node.retry.map(retryLine)];
  const width = Math.min(280, Math.max(150, ...lines.map((line, index) => line.length * (index === 0 ? CHAR + 0.8 : LABEL_CHAR) + 22)));
  return { width, height: 60 + 15 * node.retry.length };
}

/**
 * The nodes in the order the flow reaches them (breadth first from Start, a Map's states right after the Map). ELK
 * keeps this order when it breaks cycles, so a loop's edge back (wait and write again, receive again) points up,
 * and the flow reads top to bottom from Start.
 */
function flowOrder(graph: StateGraph): GraphNode[] {
  const next = new Map<string, string[]>();
  for (const edge of graph.edges) next.set(edge.source, [...(next.get(edge.source) ?? []), edge.target]);
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const firstChild = new Map<string, string>();
  for (const node of graph.nodes) if (node.parent && !firstChild.has(node.parent)) firstChild.set(node.parent, node.id);
  const seen = new Set<string>();
  const queue = [START_NODE];
  const order: GraphNode[] = [];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (seen.has(id) || !byId.has(id)) continue;
    seen.add(id);
    order.push(byId.get(id)!);
    const child = firstChild.get(id);
    queue.push(...(child ? [child] : []), ...(next.get(id) ?? []));
  }
  // Unreachable states (if any) keep their place at the end, End last of all.
  const rest = graph.nodes.filter((node) => !seen.has(node.id) && node.id !== END_NODE);
  return [...order.filter((node) => node.id !== END_NODE), ...rest, byId.get(END_NODE)!].filter(Boolean);
}

async function layout(graph: StateGraph): Promise<Laid> {
  const elk = new ELK();
  const children = new Map<string | undefined, ElkNode[]>();
  for (const node of flowOrder(graph)) {
    const elkNode: ElkNode = node.compound
      ? { id: node.id, layoutOptions: { "elk.padding": "[top=40,left=18,bottom=18,right=18]" } }
      : { id: node.id, ...nodeSize(node) };
    const siblings = children.get(node.parent) ?? [];
    siblings.push(elkNode);
    children.set(node.parent, siblings);
  }
  const attach = (node: ElkNode) => {
    const inner = children.get(node.id);
    if (inner) {
      node.children = inner;
      inner.forEach(attach);
    }
  };
  const root: ElkNode = {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.hierarchyHandling": "INCLUDE_CHILDREN",
      "elk.edgeRouting": "ORTHOGONAL",
      "elk.layered.spacing.nodeNodeBetweenLayers": "46",
      "elk.spacing.nodeNode": "34",
      "elk.spacing.edgeLabel": "4",
      "elk.spacing.edgeNode": "18",
      "elk.layered.spacing.edgeNodeBetweenLayers": "18",
      "elk.edgeLabels.placement": "CENTER",
      "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
      "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
      "elk.layered.cycleBreaking.strategy": "MODEL_ORDER",
      "elk.json.edgeCoords": "ROOT",
      "elk.json.shapeCoords": "ROOT",
    },
    children: children.get(undefined) ?? [],
    edges: graph.edges.map(
      (edge): ElkExtendedEdge => ({
        id: edge.id,
        sources: [edge.source],
        targets: [edge.target],
        ...(edge.label ? { labels: [{ text: edge.label, width: edge.label.length * LABEL_CHAR + 10, height: 16 }] } : {}),
      }),
    ),
  };
  (children.get(undefined) ?? []).forEach(attach);
  const result = await elk.layout(root);
  const nodes: Laid["nodes"] = new Map();
  const visit = (node: ElkNode) => {
    if (node.id !== "root") nodes.set(node.id, { x: node.x ?? 0, y: node.y ?? 0, width: node.width ?? 0, height: node.height ?? 0 });
    node.children?.forEach(visit);
  };
  visit(result);
  const edges: Laid["edges"] = new Map();
  const collect = (node: ElkNode) => {
    for (const edge of (node.edges ?? []) as ElkExtendedEdge[]) {
      const section = edge.sections?.[0];
      if (!section) continue;
      const label = edge.labels?.[0];
      edges.set(edge.id, {
        points: [section.startPoint, ...(section.bendPoints ?? []), section.endPoint],
        ...(label ? { label: { x: label.x ?? 0, y: label.y ?? 0, width: label.width ?? 0, height: label.height ?? 0 } } : {}),
      });
    }
    node.children?.forEach(collect);
  };
  collect(result);
  return { width: result.width ?? 0, height: result.height ?? 0, nodes, edges };
}

export interface GraphViewProps {
  graph: StateGraph;
  /** What each state did in the shown execution. */
  statuses: Record<string, StateActivity>;
  /** Since the console started, all executions. */
  totals: Record<string, StateActivity>;
  executionDone: boolean;
}

export function GraphView({ graph, statuses, totals, executionDone }: GraphViewProps) {
  const [laid, setLaid] = useState<Laid>();
  const [error, setError] = useState<string>();
  const box = useRef<HTMLDivElement>(null);
  const [fitScale, setFitScale] = useState(1);
  /** undefined: fit the panel's width (but never below {@link MIN_FIT} so text stays legible); else a chosen zoom. */
  const [zoom, setZoom] = useState<number>();
  useEffect(() => {
    layout(graph).then(setLaid, (reason: unknown) => setError(String(reason)));
  }, [graph]);
  useEffect(() => {
    if (!laid || !box.current) return;
    const observer = new ResizeObserver(() => {
      const width = box.current?.clientWidth ?? laid.width;
      setFitScale(Math.max(MIN_FIT, Math.min(1, (width - 16) / laid.width)));
    });
    observer.observe(box.current);
    return () => observer.disconnect();
  }, [laid]);
  const scale = zoom ?? fitScale;
  // Open on the top of the flow: its Start node in the middle of the panel.
  const centred = useRef(false);
  useEffect(() => {
    const start = laid?.nodes.get(START_NODE);
    if (!start || !box.current || centred.current) return;
    centred.current = true;
    box.current.scrollLeft = Math.max(0, (start.x + start.width / 2) * scale - box.current.clientWidth / 2);
  }, [laid, scale]);

  const byId = useMemo(() => new Map(graph.nodes.map((node) => [node.id, node])), [graph]);
  const ran = (id: string) => {
    if (id === START_NODE) return Object.keys(statuses).length > 0;
    if (id === END_NODE) return executionDone && Object.keys(statuses).length > 0;
    return statuses[id] !== undefined;
  };
  const edgeLit = (edge: GraphEdge) => {
    if (!ran(edge.source) || !ran(edge.target)) return false;
    // A Catch edge was taken only if that catcher caught something (a state may have several Catch edges).
    if (edge.kind === "catch") return (statuses[edge.source]?.caughtTo[edge.target] ?? 0) > 0;
    if (edge.target === END_NODE) return byId.get(edge.source)?.parent === undefined;
    return true;
  };

  if (error) return <p className="error">The graph could not be laid out: {error}</p>;
  if (!laid) return <p className="muted">Laying out the graph…</p>;
  const compound = graph.nodes.filter((node) => node.compound);
  const plain = graph.nodes.filter((node) => !node.compound);
  return (
    <div className="graph-box" ref={box}>
      <div className="graph-tools" role="group" aria-label="Zoom">
        <button onClick={() => setZoom(Math.max(0.3, scale - 0.1))} aria-label="Zoom out">
          −
        </button>
        <button onClick={() => setZoom(undefined)} className={zoom === undefined ? "active" : ""}>
          fit
        </button>
        <button onClick={() => setZoom(1)} className={zoom === 1 ? "active" : ""}>
          100%
        </button>
        <button onClick={() => setZoom(Math.min(2, scale + 0.1))} aria-label="Zoom in">
          +
        </button>
        <span className="muted">{Math.round(scale * 100)}% · scroll to pan</span>
      </div>
      <div className="graph-scale" style={{ width: laid.width * scale, height: laid.height * scale }}>
        <div className="graph" style={{ width: laid.width, height: laid.height, transform: `scale(${scale})` }}>
          {compound.map((node) => {
            const at = laid.nodes.get(node.id)!;
            const status = statuses[node.id]?.status ?? "not-run";
            return (
              <div
                key={node.id}
                className={`compound status-${status}`}
                data-state={node.id}
                data-status={status}
                style={{ left: at.x, top: at.y, width: at.width, height: at.height }}
                title={node.comment}
              >
                <div className="compound-head">
                  <strong>{node.label}</strong> <span className="muted">{node.type}: each item runs the states inside</span>
                  <Counters activity={totals[node.id]} />
                </div>
              </div>
            );
          })}
          <svg className="edges" width={laid.width} height={laid.height}>
            <defs>
              <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                <path d="M 0 0 L 10 5 L 0 10 z" className="arrowhead" />
              </marker>
              <marker id="arrow-lit" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                <path d="M 0 0 L 10 5 L 0 10 z" className="arrowhead lit" />
              </marker>
            </defs>
            {graph.edges.map((edge) => {
              const route = laid.edges.get(edge.id);
              if (!route) return null;
              const lit = edgeLit(edge);
              return (
                <path
                  key={edge.id}
                  data-edge={`${edge.source}→${edge.target}`}
                  data-kind={edge.kind}
                  data-lit={lit}
                  className={`edge edge-${edge.kind}${lit ? " lit" : ""}`}
                  d={route.points.map((point, index) => `${index === 0 ? "M" : "L"} ${point.x} ${point.y}`).join(" ")}
                  markerEnd={`url(#${lit ? "arrow-lit" : "arrow"})`}
                />
              );
            })}
          </svg>
          {graph.edges.map((edge) => {
            const label = laid.edges.get(edge.id)?.label;
            if (!label || !edge.label) return null;
            return (
              <div key={edge.id} className={`edge-label edge-${edge.kind}`} style={{ left: label.x, top: label.y, minWidth: label.width }} title={edge.label}>
                {edge.label}
              </div>
            );
          })}
          {plain.map((node) => {
            const at = laid.nodes.get(node.id)!;
            const status: NodeStatus = node.type === "Start" || node.type === "End" ? (ran(node.id) ? "succeeded" : "not-run") : statuses[node.id]?.status ?? "not-run";
            const shown = statuses[node.id];
            return (
              <div
                key={node.id}
                className={`node type-${node.type.toLowerCase()} status-${status}`}
                data-state={node.type === "Start" || node.type === "End" ? undefined : node.id}
                data-status={status}
                style={{ left: at.x, top: at.y, width: at.width, height: at.height }}
                title={node.comment}
              >
                {node.type === "Start" || node.type === "End" ? (
                  <span>{node.label}</span>
                ) : (
                  <>
                    <div className="node-name">{node.label}</div>
                    <div className="node-kind">
                      {node.calls ?? node.type}
                      {shown && shown.retried > 0 ? <span className="badge retry"> ↻ {shown.retried} retried here</span> : null}
                      {shown && shown.errors > 0 ? <span className="badge retry"> ⚠ {shown.errors} {shown.errors === 1 ? "error" : "errors"} here</span> : null}
                    </div>
                    {node.retry.map((rule, index) => (
                      <div key={index} className="node-retry" title={`Retry on ${rule.errors.join(", ")}: ${rule.text}`} data-retry={rule.errors.join(",")}>
                        {retryLine(rule)}
                      </div>
                    ))}
                    <Counters activity={totals[node.id]} />
                  </>
                )}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}

/** Since the console started: in the state now, passed, failed (caught or not), retried. */
const NONE: StateActivity = { status: "succeeded", entered: 0, inNow: 0, passed: 0, failed: 0, retried: 0, interrupted: 0, errors: 0, caughtTo: {} };

function Counters({ activity = NONE }: { activity?: StateActivity }) {
  return (
    <div className="counters" title="Since the console started: in it now · passed · failed · retries">
      <span className={activity.inNow > 0 ? "now" : ""}>▶ {activity.inNow}</span>
      <span className="ok">✓ {activity.passed}</span>
      <span className={activity.failed > 0 ? "bad" : ""}>✗ {activity.failed}</span>
      {activity.retried > 0 ? <span className="warn">↻ {activity.retried}</span> : null}
      {activity.errors > 0 ? <span className="warn" title="errors reported in its output (e.g. a 429 it will wait out)">⚠ {activity.errors}</span> : null}
    </div>
  );
}
