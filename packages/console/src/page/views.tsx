/// <reference lib="dom" />
/** The console's tabs: executions and their history, the DLQ with its actions, a message's story, records, actions. */
import { Fragment, useEffect, useMemo, useRef, useState } from "react";
import { type CommandContext, Commands, type Selection } from "../commands";
import type { DeadLetterEntry, Verdict } from "../dlq-actions";
import type { HistoryEvent, LiteEvent } from "../events";
import type { ActionEntry, ExecutionEntry, MessageStory } from "../history";
import type { BaseRecord, QueuedMessage } from "../whereabouts";
import { api } from "./store";

export const formatTime = (ms: number) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// --- Executions -------------------------------------------------------------------------------------------------

export function ExecutionsView({ executions, selected, onSelect }: { executions: ExecutionEntry[]; selected?: string; onSelect: (name: string) => void }) {
  const [showIdle, setShowIdle] = useState(false);
  const shown = executions.filter((entry) => showIdle || !entry.idle || entry.name === selected);
  const idle = executions.filter((entry) => entry.idle).length;
  return (
    <div>
      <div className="toolbar">
        <label>
          <input type="checkbox" checked={showIdle} onChange={(event) => setShowIdle(event.target.checked)} /> show the {idle} runs that found the queue
          empty
        </label>
      </div>
      {shown.length === 0 ? <p className="muted">No execution has received anything yet. `npm run publish` puts sample donations on the queue.</p> : null}
      <div className="table-wrap">
        <table className="executions" aria-label="Executions">
          <thead>
            <tr>
              <th>Status</th>
              <th>Started</th>
              <th>Duration</th>
              <th title="messages received">Received</th>
              <th title="records written (created or updated)">Written</th>
              <th title="of those, updated (the event was already there)">Updated</th>
              <th title="copies of an event in the same batch (deleted without a write)">Copies</th>
              <th>Dead-lettered</th>
              <th title="retries of any state">Retried</th>
              <th title="billable state transitions">Transitions</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((entry) => {
              const summary = entry.summary;
              const cell = (value: number | undefined) => (value === undefined ? "…" : value);
              return (
                <tr
                  key={entry.name}
                  data-execution={entry.name}
                  data-status={entry.status}
                  className={entry.name === selected ? "selected" : ""}
                  onClick={() => onSelect(entry.name)}
                  tabIndex={0}
                  onKeyDown={(event) => (event.key === "Enter" ? onSelect(entry.name) : undefined)}
                >
                  <td title={entry.interruption}>
                    <span className={`pill status-${entry.status}`}>{entry.status}</span>
                    {entry.status === "INTERRUPTED" && entry.endedAt ? <div className="small muted">at {formatTime(entry.endedAt)}</div> : null}
                  </td>
                  <td>{formatTime(entry.startedAt)}</td>
                  <td>{entry.endedAt ? seconds(entry.endedAt - entry.startedAt) : "running"}</td>
                  <td>{cell(summary?.received)}</td>
                  <td>{cell(summary?.written)}</td>
                  <td>{cell(summary?.updated)}</td>
                  <td>{cell(summary?.copiesInBatch)}</td>
                  <td className={summary && summary.deadLettered > 0 ? "bad" : ""}>{cell(summary?.deadLettered)}</td>
                  <td className={entry.retried > 0 ? "warn" : ""}>{entry.retried}</td>
                  <td>{cell(summary?.stateTransitions)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}

/** What a history event says, in words. */
function describe(event: LiteEvent): string {
  switch (event.type) {
    case "StateFailed":
      return `${event.error}: ${readable(event.cause)}`;
    case "StateRetried":
      return `retry ${event.retry?.attempt} (rule ${event.retry?.errors.join(", ")}, ${event.retry?.intervalSeconds ?? "?"} s interval)`;
    case "StateCaught":
      return `caught (${event.caught?.errors.join(", ")}) → ${event.caught?.next}`;
    case "ExecutionFailed":
    case "MapIterationFailed":
      return `${event.error}: ${readable(event.cause)}`;
    default:
      return (event.reported ?? []).map((error) => `reported ${error.error}: ${readable(error.cause)}`).join("; ");
  }
}

/** Lambda's error JSON made readable: its `errorMessage`. */
function readable(cause: string | undefined): string {
  if (!cause) return "";
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    if (typeof parsed.errorMessage === "string") return parsed.errorMessage;
  } catch {
    // plain text
  }
  return cause;
}

export function ExecutionDetail({ entry, events, onStory }: { entry: ExecutionEntry; events: LiteEvent[]; onStory: (query: string) => void }) {
  const [open, setOpen] = useState<number>();
  const [full, setFull] = useState<Record<number, HistoryEvent>>({});
  const [onlyFailures, setOnlyFailures] = useState(false);
  const start = events[0]?.at ?? entry.startedAt;
  const failures = events.filter((event) => event.type === "StateFailed" || event.reported).length;
  const shown = onlyFailures ? events.filter((event) => /Failed|Retried|Caught/.test(event.type) || event.reported) : events;
  const toggle = async (seq: number) => {
    if (open === seq) return setOpen(undefined);
    setOpen(seq);
    if (!full[seq]) {
      const { data } = await api<{ events: HistoryEvent[] }>(`/api/executions/${encodeURIComponent(entry.name)}/events`);
      setFull(Object.fromEntries(data.events.map((event) => [event.seq, event])));
    }
  };
  return (
    <div className="detail" aria-label="Execution history">
      <h3>
        Execution <code title={entry.executionArn}>{entry.name}</code>
      </h3>
      {entry.status === "INTERRUPTED" ? (
        <p className="warn-box" data-interruption>
          Interrupted{entry.endedAt ? ` at ${formatTime(entry.endedAt)}` : ""}: {entry.interruption ?? "npm start stopped while it ran"}. What it
          did before is below; messages it held reappear in the queue after their visibility timeout (or at once after a
          second Ctrl-C) and the next execution takes them.
        </p>
      ) : entry.error ? (
        <p className="error">
          {entry.error.name}: {readable(entry.error.cause)}
        </p>
      ) : null}
      <Timeline events={events} start={start} />
      <div className="toolbar">
        <span>
          {events.length} events, {failures} failed attempts or reported errors
        </span>
        <label>
          <input type="checkbox" checked={onlyFailures} onChange={(event) => setOnlyFailures(event.target.checked)} /> only failures, retries and catches
        </label>
      </div>
      <div className="table-wrap events-wrap">
        <table className="events" aria-label="Event history">
          <thead>
            <tr>
              <th>#</th>
              <th>+time</th>
              <th>Event</th>
              <th>State</th>
              <th title="the message the event is about (its SQS MessageId), when there is one">Message</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((event) => (
              <Fragment key={event.seq}>
                <tr className={`event-${event.type}${event.reported ? " reported" : ""}`} data-event-type={event.type} onClick={() => void toggle(event.seq)}>
                  <td>{event.seq}</td>
                  <td>{seconds(event.at - start)}</td>
                  <td>{event.type}</td>
                  <td>{event.state ?? ""}</td>
                  <td>{event.messageIds?.length === 1 ? <code>{event.messageIds[0]!.slice(0, 8)}</code> : event.messageIds ? `${event.messageIds.length} messages` : ""}</td>
                  <td className="detail-cell">
                    {describe(event)}
                    {event.eventIds?.length === 1 ? (
                      <button className="link" onClick={(click) => (click.stopPropagation(), onStory(event.eventIds![0]!))}>
                        story
                      </button>
                    ) : null}
                  </td>
                </tr>
                {open === event.seq ? (
                  <tr className="io">
                    <td colSpan={6}>
                      {full[event.seq] ? (
                        <div className="io-grid">
                          <div>
                            <strong>Input</strong>
                            <pre>{JSON.stringify(full[event.seq]!.input, null, 2) ?? "—"}</pre>
                          </div>
                          <div>
                            <strong>Output</strong>
                            <pre>{JSON.stringify(full[event.seq]!.output, null, 2) ?? "—"}</pre>
                          </div>
                        </div>
                      ) : (
                        <span className="muted">loading…</span>
                      )}
                    </td>
                  </tr>
                ) : null}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted small">Click an event to see the state's input and output.</p>
    </div>
  );
}

/** One bar per state entry (a state in one Map item), with a mark for every failed attempt and its error. */
function Timeline({ events, start }: { events: LiteEvent[]; start: number }) {
  const bars = useMemo(() => {
    type Bar = { state: string; index?: number; item: string; from: number; to?: number; failures: { at: number; error: string }[]; failed: boolean };
    const open = new Map<string, Omit<Bar, "failed" | "to">>();
    const done: Bar[] = [];
    for (const event of events) {
      if (!event.state || !event.type.startsWith("State")) continue;
      const item = event.messageIds?.length === 1 ? event.messageIds[0]! : "";
      const key = `${event.state}|${event.index ?? ""}|${item}`;
      if (event.type === "StateEntered") open.set(key, { state: event.state, index: event.index, item, from: event.at, failures: [] });
      const bar = open.get(key);
      if (!bar) continue;
      if (event.type === "StateFailed") bar.failures.push({ at: event.at, error: `${event.error}: ${readable(event.cause)}` });
      for (const error of event.reported ?? []) bar.failures.push({ at: event.at, error: `${error.error}: ${readable(error.cause)}` });
      if (event.type === "StateExited") {
        open.delete(key);
        const caught = events.some(
          (other) => other.type === "StateCaught" && other.state === bar.state && (other.messageIds?.[0] ?? "") === bar.item && other.at >= bar.from && other.at <= event.at,
        );
        done.push({ ...bar, to: event.at, failed: caught });
      }
    }
    for (const bar of open.values()) done.push({ ...bar, failed: false });
    return done.sort((a, b) => a.from - b.from);
  }, [events]);
  if (bars.length === 0) return null;
  const end = Math.max(...events.map((event) => event.at), start + 1);
  const span = end - start;
  const pct = (at: number) => `${((at - start) / span) * 100}%`;
  return (
    <div className="timeline" aria-label="Timeline">
      {bars.map((bar, index) => (
        <div className="tl-row" key={index}>
          <span className="tl-name">
            {bar.state}
            {bar.item ? ` · ${bar.item.slice(0, 8)}` : bar.index !== undefined ? ` #${bar.index}` : ""}
          </span>
          <span className="tl-track">
            <span
              className={`tl-bar${bar.to === undefined ? " running" : bar.failed ? " failed" : ""}`}
              style={{ left: pct(bar.from), width: `max(2px, calc(${pct(bar.to ?? end)} - ${pct(bar.from)}))` }}
              title={`${bar.state}${bar.index !== undefined ? ` item ${bar.index}` : ""}: ${seconds((bar.to ?? end) - bar.from)}`}
            />
            {bar.failures.map((failure, at) => (
              <span key={at} className="tl-fail" style={{ left: pct(failure.at) }} title={failure.error} data-error={failure.error}>
                ✗
              </span>
            ))}
          </span>
          <span className="tl-errors">{bar.failures.map((failure) => failure.error.split(":")[0]).join(", ")}</span>
        </div>
      ))}
      <div className="tl-axis">
        <span>0 s</span>
        <span>{seconds(span)}</span>
      </div>
    </div>
  );
}

/**
 * On a deployed stage, a change asks first in a dialog naming the stage (what `npm run dlq -- … --stage` asks on the
 * terminal); locally it goes ahead. True: go ahead.
 */
function askOnStage(commands: CommandContext, what: string): boolean {
  return commands.stage === undefined || window.confirm(`On stage ${commands.stage}: ${what}?`);
}

/** What a change's request says to name the stage it is meant for (the server refuses it otherwise). */
const onStage = (commands: CommandContext) => (commands.stage === undefined ? {} : { stage: commands.stage });

// --- Dead letters -----------------------------------------------------------------------------------------------

export function DeadLetterView({
  entries,
  error,
  commands,
  onExecution,
  onStory,
}: {
  entries: DeadLetterEntry[];
  error?: string;
  commands: CommandContext;
  onExecution: (name: string) => void;
  onStory: (query: string) => void;
}) {
  const [filter, setFilter] = useState<string>();
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  /** "select all shown" was ticked: the action applies to the whole group (or the whole DLQ), not to a list of ids. */
  const [wholeGroup, setWholeGroup] = useState(false);
  const [force, setForce] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ActionEntry | { error: string }>();
  const groups = useMemo(() => {
    const counts = new Map<string, number>();
    for (const entry of entries) counts.set(entry.errorName ?? "(no reason)", (counts.get(entry.errorName ?? "(no reason)") ?? 0) + 1);
    return [...counts];
  }, [entries]);
  const visible = entries.filter((entry) => filter === undefined || (entry.errorName ?? "(no reason)") === filter);
  const selectedIds = visible.filter((entry) => chosen.has(entry.messageId)).map((entry) => entry.messageId);
  // Gone from the DLQ (redriven, deleted): no longer chosen.
  useEffect(() => {
    setChosen((old) => new Set([...old].filter((id) => entries.some((entry) => entry.messageId === id))));
  }, [entries]);
  const allChosen = visible.length > 0 && selectedIds.length === visible.length;
  const group = wholeGroup && allChosen;
  const selection: Selection | undefined =
    selectedIds.length === 0 ? undefined : group && filter === undefined ? { all: true } : group && filter && filter !== "(no reason)" ? { errorName: filter } : { ids: selectedIds };
  const redriveSelection = selection && "errorName" in selection ? { ids: selectedIds } : selection;
  const invalidChosen = visible.filter((entry) => chosen.has(entry.messageId) && entry.verdict?.valid === false).length;

  const run = async (path: string, body: unknown, what: string) => {
    if (!askOnStage(commands, what)) return setConfirmDelete(false);
    setBusy(true);
    setResult(undefined);
    try {
      const { data } = await api<ActionEntry>(path, { ...(body as object), ...onStage(commands) });
      setResult(data);
    } catch (failure) {
      setResult({ error: (failure as Error).message });
    } finally {
      setBusy(false);
      setConfirmDelete(false);
    }
  };
  return (
    <div className="dlq">
      {error ? <p className="error">The DLQ could not be read: {error}</p> : null}
      <p className="muted small">
        Looking never consumes a message: each list hides the messages for a moment and gives them back (the DLQ has no receive limit).
      </p>
      <div className="filters" role="group" aria-label="Filter by ErrorName">
        <button className={filter === undefined ? "active" : ""} onClick={() => (setFilter(undefined), setWholeGroup(false))}>
          All ({entries.length})
        </button>
        {groups.map(([name, count]) => (
          <button key={name} className={filter === name ? "active" : ""} onClick={() => (setFilter(name), setWholeGroup(false))} data-error-group={name}>
            {name} ({count})
          </button>
        ))}
      </div>
      <div className="toolbar actions">
        <label>
          <input
            type="checkbox"
            aria-label="Select all shown"
            checked={allChosen}
            onChange={(event) => {
              setWholeGroup(event.target.checked);
              setChosen(event.target.checked ? new Set(visible.map((entry) => entry.messageId)) : new Set());
            }}
          />{" "}
          select all shown
        </label>
        <button disabled={busy || !redriveSelection} onClick={() => void run("/api/dlq/redrive", { ...("all" in (redriveSelection ?? {}) ? { all: true } : { ids: selectedIds }), force }, `move ${selectedIds.length} dead letter(s) back to the donations queue`)}>
          Redrive
        </button>
        <label title="Bodies that can never pass Validate are left in the DLQ unless forced (they would be dead-lettered again)">
          <input type="checkbox" checked={force} onChange={(event) => setForce(event.target.checked)} /> also those that cannot pass Validate
        </label>
        {confirmDelete ? (
          <span className="confirm">
            Delete {selectedIds.length} for good?{" "}
            <button className="danger" disabled={busy} onClick={() => void run("/api/dlq/delete", selection && "ids" in selection ? { ids: selectedIds } : selection, `delete ${selectedIds.length} dead letter(s) for good`)}>
              Confirm delete
            </button>
            <button onClick={() => setConfirmDelete(false)}>Cancel</button>
          </span>
        ) : (
          <button className="danger" disabled={busy || !selection} onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
        )}
        <span className="muted">{selectedIds.length} selected</span>
      </div>
      {redriveSelection ? (
        <div className="cli" aria-label="CLI commands for the selection">
          <div>
            <span className="muted">same from a terminal:</span> <code>{Commands.redrive(commands, redriveSelection, force)}</code>
          </div>
          <div>
            <span className="muted">and:</span> <code>{Commands.delete(commands, selection!)}</code>
          </div>
        </div>
      ) : (
        <div className="cli muted small">
          Select messages to redrive or delete them. From a terminal: <code>{Commands.list(commands)}</code>
        </div>
      )}
      {invalidChosen > 0 && !force ? (
        <p className="warn small">
          {invalidChosen} selected {invalidChosen === 1 ? "body" : "bodies"} can never pass Validate: Redrive leaves {invalidChosen === 1 ? "it" : "them"} in the DLQ. Use Edit and
          resend to fix {invalidChosen === 1 ? "it" : "them"}, or tick "also those that cannot pass Validate".
        </p>
      ) : null}
      {result ? <ActionResult result={result} /> : null}
      {visible.length === 0 ? <p className="muted">The dead-letter queue is empty.</p> : null}
      <ul className="letters">
        {visible.map((entry) => (
          <DeadLetterCard
            key={entry.messageId}
            entry={entry}
            commands={commands}
            chosen={chosen.has(entry.messageId)}
            onChoose={(on) => {
              setWholeGroup(false);
              setChosen((old) => new Set(on ? [...old, entry.messageId] : [...old].filter((id) => id !== entry.messageId)));
            }}
            onExecution={onExecution}
            onStory={onStory}
            onResult={setResult}
          />
        ))}
      </ul>
    </div>
  );
}

function ActionResult({ result }: { result: ActionEntry | { error: string } }) {
  if ("error" in result) return <p className="error" role="status">{result.error}</p>;
  return (
    <div className={result.ok ? "result ok" : "result bad"} role="status" data-action={result.action} data-ok={result.ok}>
      <strong>{result.action}</strong>: {result.detail}
      <div>
        <span className="muted">CLI:</span> <code>{result.command}</code>
      </div>
    </div>
  );
}

function DeadLetterCard({
  entry,
  commands,
  chosen,
  onChoose,
  onExecution,
  onStory,
  onResult,
}: {
  entry: DeadLetterEntry;
  commands: CommandContext;
  chosen: boolean;
  onChoose: (on: boolean) => void;
  onExecution: (name: string) => void;
  onStory: (query: string) => void;
  onResult: (result: ActionEntry | { error: string }) => void;
}) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(entry.body);
  const [verdict, setVerdict] = useState<{ body: string; verdict: Verdict }>();
  const [busy, setBusy] = useState(false);
  const execution = entry.executionArn?.split(":").pop();
  const check = async () => {
    setBusy(true);
    try {
      const { data } = await api<Verdict>("/api/dlq/validate", { body: draft });
      setVerdict({ body: draft, verdict: data });
    } finally {
      setBusy(false);
    }
  };
  const send = async () => {
    if (!askOnStage(commands, `send the edited body to the donations queue and delete dead letter ${entry.messageId}`)) return;
    setBusy(true);
    try {
      const { status, data } = await api<ActionEntry & { verdict?: Verdict }>("/api/dlq/resend", { id: entry.messageId, body: draft, ...onStage(commands) });
      if (status === 422) setVerdict({ body: draft, verdict: data.verdict! });
      else {
        onResult(data);
        setEditing(false);
      }
    } catch (failure) {
      onResult({ error: (failure as Error).message });
    } finally {
      setBusy(false);
    }
  };
  const checked = verdict && verdict.body === draft ? verdict.verdict : undefined;
  return (
    <li className="letter" data-message-id={entry.messageId} data-error-name={entry.errorName ?? ""}>
      <div className="letter-head">
        <input type="checkbox" aria-label={`Select ${entry.messageId}`} checked={chosen} onChange={(event) => onChoose(event.target.checked)} />
        <span className="pill status-FAILED">{entry.errorName ?? "no reason (moved by the queue's redrive policy)"}</span>
        {entry.failedState ? (
          <span>
            in <strong>{entry.failedState}</strong>
          </span>
        ) : null}
        {entry.verdict?.valid === false ? <span className="badge bad">cannot pass Validate</span> : <span className="badge ok">passes Validate now</span>}
        {entry.redriveCount ? <span className="badge warn">redriven {entry.redriveCount}×</span> : null}
      </div>
      {entry.cause ? <p className="cause" data-cause>{entry.cause}</p> : null}
      <dl className="facts">
        <dt title="the id of this copy in the DLQ: what npm run dlq -- --id takes">MessageId (DLQ copy)</dt>
        <dd>
          <code>{entry.messageId}</code>{" "}
          <button className="link" onClick={() => onStory(entry.messageId)}>
            story
          </button>
        </dd>
        <dt title="the id it had in the source queue: what executions show">Source MessageId</dt>
        <dd data-source-message-id={entry.sourceMessageId ?? ""}>{entry.sourceMessageId ? <code>{entry.sourceMessageId}</code> : "?"}</dd>
        {entry.eventId ? (
          <>
            <dt>Event Id (its body's)</dt>
            <dd>
              <code>{entry.eventId}</code>
            </dd>
          </>
        ) : null}
        <dt>Receive count</dt>
        <dd>{entry.receiveCount ?? "?"}</dd>
        <dt>Execution</dt>
        <dd>
          {execution ? (
            <button className="link" onClick={() => onExecution(execution)}>
              {execution.slice(0, 8)}
            </button>
          ) : (
            "?"
          )}
        </dd>
        <dt>In the DLQ since</dt>
        <dd>{entry.sentAt ? formatTime(Date.parse(entry.sentAt)) : "?"}</dd>
      </dl>
      <pre className="body">{entry.body}</pre>
      {editing ? (
        <div className="editor">
          <label>
            Edited body
            <textarea aria-label="Edited body" value={draft} onChange={(event) => setDraft(event.target.value)} rows={8} spellCheck={false} />
          </label>
          <div className="toolbar">
            <button disabled={busy} onClick={() => void check()}>
              Check with Validate
            </button>
            <button disabled={busy || !checked?.valid} onClick={() => void send()} title={checked?.valid ? "" : "Check the edited body first: only a body that passes is sent"}>
              Send edited body
            </button>
            <button onClick={() => setEditing(false)}>Cancel</button>
          </div>
          {checked ? (
            <p className={checked.valid ? "ok" : "bad"} role="status" data-verdict={checked.valid ? "valid" : "invalid"}>
              {checked.valid ? `Validate passes it (event ${checked.eventId}). Sending replaces this dead letter.` : `Validate refuses it: ${checked.problems?.join("; ")}`}
            </p>
          ) : (
            <p className="muted small">Nothing is sent until Validate has passed the edited body.</p>
          )}
          <div className="cli">
            <span className="muted">same from a terminal (body saved in edited.json):</span> <code>{Commands.resend(commands, entry.messageId)}</code>
          </div>
        </div>
      ) : (
        <button onClick={() => (setDraft(editable(entry.body)), setVerdict(undefined), setEditing(true))}>Edit and resend</button>
      )}
    </li>
  );
}

/** A JSON body laid out for editing (the edit is a new body anyway); anything else as it is. */
function editable(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

// --- A message's story ------------------------------------------------------------------------------------------

type StoryReply = MessageStory & {
  deadLetters: DeadLetterEntry[];
  /** Undefined: the console could not look (not the local SQS server; a real Airtable is not read). */
  inQueue?: QueuedMessage[];
  inBase?: BaseRecord[];
};

export function StoryView({ initial, version, onExecution }: { initial: string; version: number; onExecution: (name: string) => void }) {
  const [query, setQuery] = useState(initial);
  const [asked, setAsked] = useState(initial);
  const [story, setStory] = useState<StoryReply>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    setQuery(initial);
    setAsked(initial);
  }, [initial]);
  useEffect(() => {
    if (!asked) return;
    api<StoryReply>(`/api/story?q=${encodeURIComponent(asked)}`).then(
      ({ data }) => (setStory(data), setError(undefined)),
      (failure: Error) => setError(failure.message),
    );
    // Stays current: asked again whenever the stream brings something.
  }, [asked, Math.floor(version / 20)]);
  const ended = story ? storyEnd(story) : undefined;
  return (
    <div className="story">
      <form
        className="toolbar"
        onSubmit={(event) => {
          event.preventDefault();
          setAsked(query.trim());
        }}
      >
        <input aria-label="Event Id or SQS MessageId" placeholder="event Id or SQS MessageId" value={query} onChange={(event) => setQuery(event.target.value)} size={44} />
        <button type="submit">Find</button>
      </form>
      {error ? <p className="error">{error}</p> : null}
      {story ? (
        <div data-story={story.query}>
          {ended ? (
            <p className={`ended ${ended.kind}`} data-ended={ended.kind}>
              {ended.text}
            </p>
          ) : null}
          {story.executions.length === 0 && story.deadLetters.length === 0 && story.records.length === 0 && !story.inQueue?.length && !story.inBase?.length ? (
            <p className="muted" data-ended="none">
              “{story.query}” is in no execution this console saw, no record
              {story.inBase === undefined ? " it wrote" : " of the base"}, not in the DLQ
              {story.inQueue === undefined ? "" : " and not in the queue"}.
            </p>
          ) : null}
          {(story.inQueue ?? []).map((message) => (
            <div key={message.messageId} className="record-card" data-in-queue={message.state}>
              <strong>In the queue</strong> ({message.state}) as <code>{message.messageId}</code>
              {message.state === "in flight" ? ": a receive holds it; it is written or dead-lettered, or reappears when its visibility timeout ends." : ": the next execution takes it."}
            </div>
          ))}
          {(story.inBase ?? [])
            .filter((record) => !story.records.some((known) => known.recordId === record.recordId))
            .map((record) => (
              <div key={record.recordId} className="record-card" data-in-base={record.recordId}>
                <strong>In Airtable: record {record.recordId}</strong> (written by an execution this console did not see)
                <Fields fields={record.fields} />
              </div>
            ))}
          {story.records.map((record) => (
            <div key={record.recordId} className="record-card">
              <strong>Airtable record {record.recordId}</strong> {record.created === false ? "(updated)" : "(created)"}
              <Fields fields={record.fields} />
            </div>
          ))}
          {story.deadLetters.map((letter) => (
            <div key={letter.messageId} className="record-card bad">
              <strong>In the DLQ</strong> as {letter.messageId}: {letter.errorName} in {letter.failedState}: {letter.cause}
            </div>
          ))}
          <h4>Executions that saw it</h4>
          <ol className="story-executions">
            {story.executions.map((execution) => (
              <li key={execution.name}>
                <button className="link" onClick={() => onExecution(execution.name)}>
                  {execution.name.slice(0, 8)}
                </button>{" "}
                {formatTime(execution.startedAt)} <span className={`pill status-${execution.status}`}>{execution.status}</span>
                <div className="path">
                  {pathOf(execution.events).map((step, index) => (
                    <span key={index} className={`step ${step.outcome}`} title={step.detail}>
                      {step.state}
                      {step.detail ? <em> {step.detail}</em> : null}
                    </span>
                  ))}
                </div>
              </li>
            ))}
          </ol>
          {story.actions.length > 0 ? (
            <>
              <h4>Redrives and other actions</h4>
              <ul>
                {story.actions.map((action, index) => (
                  <li key={index}>
                    {formatTime(action.at)} <strong>{action.action}</strong>: {action.detail} <code>{action.command}</code>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </div>
      ) : (
        <p className="muted">Find a donation by its event Id (the body's Id) or by an SQS MessageId: every execution that saw it, its path, and where it ended.</p>
      )}
    </div>
  );
}

/** Where the message ended: its newest record, or a DLQ entry, whichever came last. */
function storyEnd(story: StoryReply): { kind: "written" | "dead-lettered" | "queued" | "in-progress"; text: string } | undefined {
  const letter = story.deadLetters[0];
  const record = story.records[0];
  const queued = story.inQueue?.[0];
  const based = story.inBase?.[0];
  if (letter) return { kind: "dead-lettered", text: `Ended in the DLQ: ${letter.errorName ?? "no reason"}: ${letter.cause ?? ""}` };
  if (queued) return { kind: "queued", text: `In the queue (${queued.state}): not settled yet.` };
  if (record) return { kind: "written", text: `Ended in Airtable: record ${record.recordId} (${record.created === false ? "updated" : "created"})` };
  if (based) return { kind: "written", text: `In Airtable: record ${based.recordId}` };
  if (story.executions.length > 0) return { kind: "in-progress", text: "Not written and not in the DLQ (yet): see the executions below." };
  return undefined;
}

/** The states a message went through in one execution, each with how it went. */
function pathOf(events: LiteEvent[]): { state: string; outcome: string; detail?: string }[] {
  const steps: { state: string; outcome: string; detail?: string }[] = [];
  for (const event of events) {
    if (!event.state) continue;
    if (event.type === "StateEntered") steps.push({ state: event.state, outcome: "running" });
    const last = [...steps].reverse().find((step) => step.state === event.state);
    if (!last) {
      if (event.type === "StateExited") steps.push({ state: event.state, outcome: "ok" });
      continue;
    }
    if (event.type === "StateExited" && last.outcome === "running") last.outcome = "ok";
    if (event.type === "StateFailed") last.detail = [last.detail, event.error].filter(Boolean).join(", ");
    if (event.type === "StateRetried") last.outcome = "retried";
    if (event.type === "StateCaught") last.outcome = "failed";
  }
  return steps;
}

function Fields({ fields }: { fields?: Record<string, unknown> }) {
  if (!fields) return null;
  return (
    <dl className="facts">
      {Object.entries(fields).map(([name, value]) => (
        <Fragment key={name}>
          <dt>{name}</dt>
          <dd>{String(value)}</dd>
        </Fragment>
      ))}
    </dl>
  );
}

// --- Records ----------------------------------------------------------------------------------------------------

interface RecordRow {
  recordId: string;
  created?: boolean;
  eventId?: string;
  fields?: Record<string, unknown>;
  at?: number;
  executionName: string;
}

export function RecordsView({ version, onStory }: { version: number; onStory: (query: string) => void }) {
  const [records, setRecords] = useState<RecordRow[]>([]);
  const [search, setSearch] = useState("");
  const wrap = useRef<HTMLDivElement>(null);
  useEffect(() => {
    void api<{ records: RecordRow[] }>("/api/records").then(({ data }) => setRecords(data.records));
  }, [version]);
  const needle = search.trim().toLowerCase();
  const shown = needle ? records.filter((record) => JSON.stringify(record).toLowerCase().includes(needle)) : records;
  const columns = [...new Set(records.flatMap((record) => Object.keys(record.fields ?? {})))];
  const matches = (value: unknown) => needle !== "" && String(value ?? "").toLowerCase().includes(needle);
  // The column that holds what was searched scrolls into view inside the table (the page itself does not move).
  useEffect(() => {
    const element = wrap.current;
    const cell = element?.querySelector<HTMLElement>("td.match");
    if (!element || !cell) return;
    const sticky = element.querySelector<HTMLElement>("th.sticky")?.offsetWidth ?? 0;
    if (cell.offsetLeft < element.scrollLeft + sticky || cell.offsetLeft + cell.offsetWidth > element.scrollLeft + element.clientWidth) {
      element.scrollLeft = Math.max(0, cell.offsetLeft - sticky - 16);
    }
  }, [needle, shown.length]);
  return (
    <div>
      <p className="muted small">What the pipeline wrote, from its own executions' outputs: reading this spends none of Airtable's request budget.</p>
      <div className="toolbar">
        <input aria-label="Search records" placeholder="search any field (name, amount, id…)" value={search} onChange={(event) => setSearch(event.target.value)} size={40} />
        <span className="muted">
          {shown.length} of {records.length}
        </span>
      </div>
      <div className="table-wrap" ref={wrap} data-records-wrap>
        <table className="records" aria-label="Records">
          <thead>
            <tr>
              <th className="sticky">Record</th>
              <th>Write</th>
              <th>When</th>
              {columns.map((column) => (
                <th key={column}>{column}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((record) => (
              <tr key={record.recordId} data-record={record.recordId} onClick={() => record.eventId && onStory(record.eventId)}>
                <td className={`sticky${matches(record.recordId) ? " match" : ""}`}>
                  <code>{record.recordId}</code>
                </td>
                <td>{record.created === false ? "updated" : "created"}</td>
                <td>{record.at ? formatTime(record.at) : ""}</td>
                {columns.map((column) => (
                  <td key={column} className={matches(record.fields?.[column]) ? "match" : undefined} data-column={column}>
                    {String(record.fields?.[column] ?? "")}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

// --- Actions ----------------------------------------------------------------------------------------------------

export function ActionsView({ actions }: { actions: ActionEntry[] }) {
  if (actions.length === 0) return <p className="muted">Nothing was done from the console yet. Every action here lists the CLI command that does the same.</p>;
  return (
    <ul className="action-log">
      {[...actions].reverse().map((action, index) => (
        <li key={index} className={action.ok ? "" : "bad"}>
          {formatTime(action.at)} <strong>{action.action}</strong> {action.ok ? "" : "(failed) "}
          {action.detail}
          <div>
            <code>{action.command}</code>
          </div>
        </li>
      ))}
    </ul>
  );
}
