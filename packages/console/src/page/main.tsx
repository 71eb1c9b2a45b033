/// <reference lib="dom" />
/** The console page: the live graph beside tabs for executions, the DLQ, a message's story, records and actions. */
import { useEffect, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import { stateActivity } from "../events";
import { GraphView } from "./graph-view";
import { type ConsoleState, type Dispatch, api, eventsOf, useConsole } from "./store";
import { DeadLetterView, ExecutionDetail, ExecutionsView, RecordsView, ActionsView, StoryView, formatTime } from "./views";
import "./style.css";

type Tab = "executions" | "dlq" | "story" | "records" | "actions";

function App() {
  const [state, dispatch] = useConsole();
  const [tab, setTab] = useState<Tab>("executions");
  /** The execution the graph and the detail show; undefined: follow the live one. */
  const [pinned, setPinned] = useState<string>();
  const [storyQuery, setStoryQuery] = useState("");
  const snapshot = state.snapshot;

  const live = useMemo(() => {
    const executions = snapshot?.executions ?? [];
    return executions.find((entry) => entry.status === "RUNNING" && !entry.idle) ?? executions.find((entry) => !entry.idle) ?? executions[0];
  }, [snapshot?.executions]);
  const shown = pinned ? snapshot?.executions.find((entry) => entry.name === pinned) : live;
  useLoadEvents(state, dispatch, shown?.name);

  if (!snapshot) {
    return (
      <div className="app" data-connection={state.connection}>
        <Header state={state} />
        <p className="muted pad">Connecting to the pipeline…</p>
      </div>
    );
  }
  const statuses = stateActivity(eventsOf(state, shown?.name), shown?.status === "INTERRUPTED");
  const openStory = (query: string) => {
    setStoryQuery(query);
    setTab("story");
  };
  const tabs: [Tab, string][] = [
    ["executions", `Executions (${snapshot.executions.filter((entry) => !entry.idle).length})`],
    ["dlq", `Dead letters (${snapshot.deadLetters.length})`],
    ["story", "Message story"],
    ["records", "Records"],
    ["actions", `Actions (${snapshot.actions.length})`],
  ];
  return (
    <div className="app" data-connection={state.connection} data-version={state.version}>
      <Header state={state} />
      <main>
        <section className="graph-panel" aria-label="State machine graph">
          <div className="panel-head">
            <h2>Drain state machine</h2>
            <div className="shown" data-shown-execution={shown?.name ?? ""}>
              {shown ? (
                <>
                  {pinned ? "Showing" : "Following live:"} execution <code>{shown.name.slice(0, 8)}</code>{" "}
                  <span className={`pill status-${shown.status}`}>{shown.status}</span> started {formatTime(shown.startedAt)}
                  {pinned ? (
                    <button className="link" onClick={() => setPinned(undefined)}>
                      follow live
                    </button>
                  ) : null}
                </>
              ) : (
                <span className="muted">No execution yet: publish donations with `npm run publish`.</span>
              )}
            </div>
            <Legend />
          </div>
          <GraphView graph={snapshot.graph} statuses={statuses} totals={snapshot.activity} executionDone={!!shown && shown.status !== "RUNNING"} />
        </section>
        <section className="side">
          <nav className="tabs" role="tablist">
            {tabs.map(([id, label]) => (
              <button key={id} role="tab" aria-selected={tab === id} className={tab === id ? "active" : ""} onClick={() => setTab(id)}>
                {label}
              </button>
            ))}
          </nav>
          <div className="tab-body">
            {tab === "executions" ? (
              <>
                <ExecutionsView executions={snapshot.executions} selected={shown?.name} onSelect={(name) => setPinned(name)} />
                {shown ? <ExecutionDetail entry={shown} events={eventsOf(state, shown.name)} onStory={openStory} /> : null}
              </>
            ) : null}
            {tab === "dlq" ? (
              <DeadLetterView
                entries={snapshot.deadLetters}
                error={snapshot.deadLetterError}
                commands={snapshot.commands}
                onExecution={(name) => {
                  setPinned(name);
                  setTab("executions");
                }}
                onStory={openStory}
              />
            ) : null}
            {tab === "story" ? <StoryView initial={storyQuery} version={state.version} onExecution={(name) => { setPinned(name); setTab("executions"); }} /> : null}
            {tab === "records" ? <RecordsView version={snapshot.executions.length} onStory={openStory} /> : null}
            {tab === "actions" ? <ActionsView actions={snapshot.actions} /> : null}
          </div>
        </section>
      </main>
    </div>
  );
}

/** Fetches the shown execution's events once (the live stream adds the rest). */
function useLoadEvents(state: ConsoleState, dispatch: Dispatch, name: string | undefined) {
  const needed = !!name && !state.loaded[name];
  useEffect(() => {
    if (!needed || !name) return;
    api<{ events: [] }>(`/api/executions/${encodeURIComponent(name)}/events?lite=1`).then(
      ({ data }) => dispatch({ type: "events", name, events: data.events }),
      () => dispatch({ type: "events", name, events: [] }),
    );
  }, [needed, name, dispatch]);
}

function Header({ state }: { state: ConsoleState }) {
  const snapshot = state.snapshot;
  const queues = snapshot?.queues;
  return (
    <header>
      <h1>
        fundraise-sync{" "}
        {snapshot?.commands.stage !== undefined ? (
          <span className="stage" data-stage={snapshot.commands.stage} title="A deployed stage, read through the Step Functions and SQS APIs">
            stage {snapshot.commands.stage}
          </span>
        ) : (
          <span className="muted">local console</span>
        )}
      </h1>
      <div className="queues" aria-label="Queues">
        {queues ? (
          <>
            <QueueChip name="source" label="Donations queue" depth={queues.source} />
            <QueueChip name="dead-letter" label="DLQ" depth={queues.deadLetter} />
            <span className="chip" data-rate={snapshot?.rate.writtenPerSecond ?? 0} title={`Airtable records written per second over the last ${snapshot?.rate.windowSeconds} s`}>
              drain: <strong>{(snapshot?.rate.writtenPerSecond ?? 0).toFixed(2)}</strong> records/s
            </span>
          </>
        ) : (
          <span className="muted">{snapshot?.queueError ? `queues unreachable: ${snapshot.queueError}` : "reading queues…"}</span>
        )}
      </div>
      <Alarms alarms={snapshot?.alarms ?? []} />
      <span className={`connection ${state.connection}`} title="Updates arrive by themselves: no need to reload">
        {state.connection === "live" ? "● live" : state.connection === "connecting" ? "○ connecting" : "○ reconnecting…"}
      </span>
    </header>
  );
}

/**
 * The stack's alarms, named as on AWS: a red chip for each in ALARM, an amber one while Airtable fails but the alarm
 * has not fired yet, nothing more when all is well (one quiet "alarms OK" chip whose title lists them).
 */
function Alarms({ alarms }: { alarms: { name: string; state: "OK" | "ALARM"; reason: string }[] }) {
  if (alarms.length === 0) return null;
  const firing = alarms.filter((alarm) => alarm.state === "ALARM");
  const warming = alarms.filter((alarm) => alarm.state === "OK" && alarm.name === "AirtableFailingAlarm" && alarm.reason.startsWith("Airtable failing"));
  return (
    <div className="alarms" aria-label="Alarms">
      {firing.map((alarm) => (
        <span key={alarm.name} className="chip alarm" data-alarm={alarm.name} data-state="ALARM" title={alarm.reason}>
          ⚠ {alarm.name}: {alarm.reason}
        </span>
      ))}
      {warming.map((alarm) => (
        <span key={alarm.name} className="chip warning" data-alarm={alarm.name} data-state="OK" title={alarm.reason}>
          {alarm.reason}
        </span>
      ))}
      {firing.length === 0 && warming.length === 0 && (
        <span className="chip muted" data-state="OK" title={alarms.map((alarm) => `${alarm.name}: ${alarm.reason}`).join("\n")}>
          alarms OK
        </span>
      )}
    </div>
  );
}

function QueueChip({ name, label, depth }: { name: string; label: string; depth: { visible: number; inFlight: number; delayed: number } }) {
  return (
    <span
      className="chip"
      data-queue={name}
      data-visible={depth.visible}
      data-in-flight={depth.inFlight}
      data-delayed={depth.delayed}
      title="waiting: visible to a receive; in flight: received and hidden (being processed, or being listed by the console); delayed: not yet visible"
    >
      {label}: <strong>{depth.visible}</strong> waiting · <strong>{depth.inFlight}</strong> in flight · <strong>{depth.delayed}</strong> delayed
    </span>
  );
}

function Legend() {
  return (
    <div className="legend" aria-label="Legend">
      <span className="swatch status-running">running</span>
      <span className="swatch status-succeeded">succeeded</span>
      <span className="swatch status-failed">failed (caught or not)</span>
      <span className="swatch status-interrupted">interrupted</span>
      <span className="swatch status-not-run">not run</span>
      <span className="muted">counters since the console started: ▶ in it now · ✓ passed · ✗ failed · ↻ retries</span>
    </div>
  );
}

createRoot(document.getElementById("root")!).render(<App />);
