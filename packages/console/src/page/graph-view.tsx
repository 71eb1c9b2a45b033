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

/** The zoom the graph opens at and follows the running state with: every name legible. */
const FOLLOW_SCALE = 0.9;
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
/** Widest an edge label or a retry line gets before it wraps (labels) or is cut (retry lines: whole on hover). */
const LABEL_MAX = 180;
const RETRY_MAX = 330;

let measure: CanvasRenderingContext2D | null | undefined;
/** The width the browser draws `text` in `font` (measured before layout, so no name is cut). */
function textWidth(text: string, font: string): number {
  measure ??= typeof document === "undefined" ? null : document.createElement("canvas").getContext("2d");
  if (!measure) return text.length * 7.5;
  measure.font = font;
  return measure.measureText(text).width;
}

/** One line per Retry rule: its first error (and how many more), then its attempts and interval. */
export function retryLine(rule: { errors: string[]; text: string }): string {
  const errors = rule.errors.length > 1 ? `${rule.errors[0]} +${rule.errors.length - 1}` : rule.errors[0] ?? "";
  return `↻ ${errors}: ${rule.text}`;
}

function nodeSize(node: GraphNode): { width: number; height: number } {
  if (node.type === "Start" || node.type === "End") return { width: 64, height: 28 };
  const widths = [
    textWidth(node.label, `600 13px ${FONT}`),
    textWidth(node.calls ?? node.type, `11px ${FONT}`),
    ...node.retry.map((rule) => Math.min(RETRY_MAX, textWidth(retryLine(rule), `10.5px ${FONT}`))),
    130, // the counters
  ];
  return { width: Math.ceil(Math.max(...widths) + 24), height: 60 + 15 * node.retry.length };
}

/** An edge label in lines no wider than {@link LABEL_MAX}: breaks after spaces, commas and dots. */
export function labelLines(text: string): string[] {
  const font = `10.5px ${FONT}`;
  const lines: string[] = [];
  let line = "";
  for (const token of text.split(/(?<=[ ,.])/)) {
    if (line !== "" && textWidth(line + token, font) > LABEL_MAX) {
      lines.push(line.trimEnd());
      line = token;
    } else line += token;
  }
  if (line !== "") lines.push(line.trimEnd());
  return lines;
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

const inPort = (id: string) => `${id}::in`;

type Box = { x: number; y: number; width: number; height: number };

/**
 * A label moved onto its edge: ELK reserves its space beside the route; centred on the nearest point of the route, it
 * reads as the edge's (its white background keeps it legible over the line).
 */
function onEdge(label: Box, points: { x: number; y: number }[]): Box {
  const centre = { x: label.x + label.width / 2, y: label.y + label.height / 2 };
  let best = { x: centre.x, y: centre.y, distance: Infinity };
  for (let index = 1; index < points.length; index++) {
    const a = points[index - 1]!;
    const b = points[index]!;
    const length = (b.x - a.x) ** 2 + (b.y - a.y) ** 2;
    const t = length === 0 ? 0 : Math.max(0, Math.min(1, ((centre.x - a.x) * (b.x - a.x) + (centre.y - a.y) * (b.y - a.y)) / length));
    const x = a.x + t * (b.x - a.x);
    const y = a.y + t * (b.y - a.y);
    const distance = (x - centre.x) ** 2 + (y - centre.y) ** 2;
    if (distance < best.distance) best = { x, y, distance };
  }
  return { ...label, x: best.x - label.width / 2, y: best.y - label.height / 2 };
}

function labelBox(text: string): { text: string; width: number; height: number } {
  const lines = labelLines(text);
  return { text, width: Math.ceil(Math.max(...lines.map((line) => textWidth(line, `10.5px ${FONT}`))) + 10), height: 14 * lines.length + 4 };
}

async function layout(graph: StateGraph): Promise<Laid> {
  const elk = new ELK();
  const children = new Map<string | undefined, ElkNode[]>();
  for (const node of flowOrder(graph)) {
    // Every edge into a state enters through one port on its top side: the flow reads downwards into each box,
    // a Map's included.
    const ports = node.id === START_NODE ? [] : [{ id: inPort(node.id), layoutOptions: { "elk.port.side": "NORTH" } }];
    const headWidth = textWidth(node.label, `600 13px ${FONT}`) + 200;
    const elkNode: ElkNode = node.compound
      ? {
          id: node.id,
          ports,
          layoutOptions: {
            "elk.padding": "[top=44,left=18,bottom=18,right=18]",
            "elk.portConstraints": "FIXED_SIDE",
            "elk.nodeSize.constraints": "MINIMUM_SIZE",
            "elk.nodeSize.minimum": `(${Math.ceil(headWidth)}, 80)`,
          },
        }
      : { id: node.id, ports, layoutOptions: { "elk.portConstraints": "FIXED_SIDE" }, ...nodeSize(node) };
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
      "elk.edgeLabels.inline": "true",
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
        targets: [inPort(edge.target)],
        ...(edge.label ? { labels: [labelBox(edge.label)] } : {}),
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
      const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
      edges.set(edge.id, {
        points,
        ...(label ? { label: onEdge({ x: label.x ?? 0, y: label.y ?? 0, width: label.width ?? 0, height: label.height ?? 0 }, points) } : {}),
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
  /**
   * `follow`: the running state in the middle of the panel, at a legible zoom (the live view); `whole`: the whole
   * graph in the panel; `manual`: where the person zoomed or scrolled to.
   */
  const [mode, setMode] = useState<"follow" | "whole" | "manual">("follow");
  const [zoom, setZoom] = useState(FOLLOW_SCALE);
  const [wholeScale, setWholeScale] = useState(0.3);
  const [selected, setSelected] = useState<string>();
  useEffect(() => {
    layout(graph).then(setLaid, (reason: unknown) => setError(String(reason)));
  }, [graph]);
  useEffect(() => {
    if (!laid || !box.current) return;
    const observer = new ResizeObserver(() => {
      const element = box.current;
      if (!element) return;
      setWholeScale(Math.min(1, (element.clientWidth - 20) / laid.width, (element.clientHeight - 20) / laid.height));
    });
    observer.observe(box.current);
    return () => observer.disconnect();
  }, [laid]);
  const scale = mode === "whole" ? wholeScale : zoom;
  // The state to follow: of those running now, the one furthest down the flow (the Map around it is running too).
  const runningNow = laid
    ? graph.nodes
        .filter((node) => !node.compound && statuses[node.id]?.status === "running" && laid.nodes.has(node.id))
        .sort((a, b) => laid.nodes.get(b.id)!.y - laid.nodes.get(a.id)!.y)[0]?.id
    : undefined;
  // Opens on Start; then follows the running state, and stays where it was when nothing runs.
  const opened = useRef(false);
  const focus = runningNow ?? (opened.current ? undefined : START_NODE);
  useEffect(() => {
    const at = focus ? laid?.nodes.get(focus) : undefined;
    const element = box.current;
    if (!at || !element || mode !== "follow") return;
    const left = Math.max(0, (at.x + at.width / 2) * scale - element.clientWidth / 2);
    // Start sits at the top; a running state a third of the way down, so what comes next shows below it.
    const top = focus === START_NODE ? 0 : Math.max(0, (at.y + at.height / 2) * scale - element.clientHeight / 3);
    element.scrollTo({ left, top, behavior: focus === START_NODE ? "auto" : "smooth" });
    opened.current = true;
  }, [laid, focus, mode, scale]);
  /** A click on a state: its details; from the whole graph, also a legible zoom centred on it. */
  const [centreOn, setCentreOn] = useState<string>();
  const choose = (id: string) => {
    setSelected(id);
    if (mode !== "whole") return;
    setZoom(FOLLOW_SCALE);
    setMode("manual");
    setCentreOn(id);
  };
  useEffect(() => {
    const at = centreOn ? laid?.nodes.get(centreOn) : undefined;
    const element = box.current;
    if (!at || !element) return;
    element.scrollTo({ left: (at.x + at.width / 2) * scale - element.clientWidth / 2, top: (at.y + at.height / 2) * scale - element.clientHeight / 3 });
    setCentreOn(undefined);
  }, [centreOn, laid, scale]);
  const zoomTo = (next: number) => {
    setZoom(Math.min(2, Math.max(0.2, Math.round(next * 100) / 100)));
    setMode((current) => (current === "whole" ? "manual" : current));
  };

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
    <div className="graph-frame">
      <div className="graph-tools" role="group" aria-label="Zoom">
        <button onClick={() => setMode("follow")} className={mode === "follow" ? "active" : ""} data-mode-button="follow" title="Keep the running state in view">
          follow running
        </button>
        <button onClick={() => setMode("whole")} className={mode === "whole" ? "active" : ""} data-mode-button="whole" title="The whole state machine in the panel">
          whole graph
        </button>
        <button onClick={() => (setZoom(1), setMode("manual"))}>100%</button>
        <button onClick={() => zoomTo(scale - 0.1)} aria-label="Zoom out">
          −
        </button>
        <button onClick={() => zoomTo(scale + 0.1)} aria-label="Zoom in">
          +
        </button>
        <span className="muted">
          {Math.round(scale * 100)}% · {mode === "whole" ? "click a state to zoom to it" : "scroll to pan · click a state for its details"}
        </span>
      </div>
      <div
        className="graph-box"
        ref={box}
        data-mode={mode}
        data-following={mode === "follow" ? focus ?? "" : ""}
        // A person scrolling takes over from following.
        onWheel={() => setMode((current) => (current === "follow" ? "manual" : current))}
      >
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
                  title={node.comment ? `${node.label}: ${node.comment}` : node.label}
                >
                  <div className="compound-head" onClick={() => choose(node.id)}>
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
                    data-edge-id={edge.id}
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
                <div
                  key={edge.id}
                  className={`edge-label edge-${edge.kind}`}
                  data-label-of={edge.id}
                  style={{ left: label.x, top: label.y, width: label.width, height: label.height }}
                  title={edge.label}
                >
                  {labelLines(edge.label).map((line, index) => (
                    <div key={index}>{line}</div>
                  ))}
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
                  className={`node type-${node.type.toLowerCase()} status-${status}${selected === node.id ? " selected" : ""}`}
                  data-state={node.type === "Start" || node.type === "End" ? undefined : node.id}
                  data-status={status}
                  style={{ left: at.x, top: at.y, width: at.width, height: at.height }}
                  title={node.comment ? `${node.label}: ${node.comment}` : node.label}
                  onClick={() => (node.type === "Start" || node.type === "End" ? undefined : choose(node.id))}
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
      {selected && byId.get(selected) ? (
        <StateDetails node={byId.get(selected)!} shown={statuses[selected]} total={totals[selected]} onClose={() => setSelected(undefined)} />
      ) : null}
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

/** The side panel of one state: its whole name, what it calls, its comment, its Retry rules, what it did. */
function StateDetails({ node, shown, total, onClose }: { node: GraphNode; shown?: StateActivity; total?: StateActivity; onClose: () => void }) {
  return (
    <aside className="state-details" aria-label="State details" data-selected-state={node.id}>
      <button className="link close" onClick={onClose} aria-label="Close the state's details">
        ×
      </button>
      <h3>{node.label}</h3>
      <p className="muted">
        {node.type}
        {node.calls ? ` · calls ${node.calls}` : ""}
        {node.parent ? ` · inside ${node.parent}` : ""}
      </p>
      {node.comment ? <p>{node.comment}</p> : null}
      {node.retry.length > 0 ? (
        <>
          <h4>Retry rules</h4>
          <ul>
            {node.retry.map((rule, index) => (
              <li key={index}>
                {rule.errors.join(", ")}: {rule.text}
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <h4>In the shown execution</h4>
      <p>{shown ? `${shown.status}: entered ${shown.entered}, passed ${shown.passed}, failed ${shown.failed}, retried ${shown.retried}` : "not run"}</p>
      <h4>Since the console started</h4>
      <Counters activity={total} />
    </aside>
  );
}
