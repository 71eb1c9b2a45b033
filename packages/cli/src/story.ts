/**
 * `npm run story -- --id EVENT_ID | --message-id ID [--since 24h] [--json] [--stage NAME | --sfn-port N]`: one
 * donation's story, from the executions' own histories (the Step Functions API, local or a stage's): every
 * execution in the window that saw it, what each did with it, and where it ended: an Airtable record, or a DLQ entry
 * with its reason.
 */
import { type MessageStep, messageSteps, readableCause } from "./drain-history";
import { CLI_DEFAULTS, ENV, UsageError, parseCommandLine, parsePositiveInteger, runCommand } from "./options";
import { executionHistory, listExecutions, parseWindow, when } from "./sfn-reading";
import { TARGET_FLAGS, resolveTarget } from "./sfn-target";

const DEFAULT_SINCE = "24h";
/** Executions read at most (each is one history read): a day of the deployed 5-minute schedule is 288. */
const DEFAULT_MAX_EXECUTIONS = 500;

const USAGE = `Usage: npm run story -- --id EVENT_ID | --message-id ID [options]

One donation's story, read from the executions' histories through the Step Functions API (the local runtime's,
or a deployed stage's): every execution in the window that saw it, what it did with it (received, written to
Airtable as a new or updated record, dead-lettered with its reason, left for redelivery), and where it ended.

  --id EVENT_ID       the DonationCreated event's Id (every delivery of it: a redriven copy is a new message)
  --message-id ID     an SQS MessageId (the source queue's; \`npm run dlq -- list\` shows it as SourceMessageId)
  --since DURATION    how far back to look: 30m, 24h, 7d (default ${DEFAULT_SINCE})
  --max-executions N  read at most N executions, newest first (default ${DEFAULT_MAX_EXECUTIONS})
  --json              as JSON
  --stage NAME        a deployed stage (AWS credentials from the usual chain; never printed)
  --sfn-port N        the local Step Functions API's port (env ${ENV.sfnPort}; default ${CLI_DEFAULTS.sfnPort})
  -h, --help          show this help

Exit codes: 0 found; 1 not seen in the window, or the API unreachable; 2 bad input.
`;

/** How a step reads. */
function describeStep(step: MessageStep): string {
  switch (step.what) {
    case "received":
      return `received as message ${step.messageId}`;
    case "written":
      return step.record!.outcome === "copy"
        ? `a copy of an event written in the same round (record ${step.record!.recordId}): deleted`
        : `written to Airtable: record ${step.record!.recordId} (${step.record!.outcome})`;
    case "dead-lettered":
      return `dead-lettered (${step.state}): ${step.reason!.error}: ${readableCause(step.reason!.cause)}`;
    case "left-for-redelivery":
      return "left for redelivery (Airtable was locked or failing): it comes back to the queue";
    case "left-queued":
      return `left queued (${step.state})${step.reason ? `: ${step.reason.error}` : ""}: it is received again later`;
  }
}

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    id: { type: "string" },
    "message-id": { type: "string" },
    since: { type: "string" },
    "max-executions": { type: "string" },
    json: { type: "boolean" },
    ...TARGET_FLAGS,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if ((values.id === undefined) === (values["message-id"] === undefined)) throw new UsageError("give --id EVENT_ID or --message-id ID (one of them)");
  const query = values.id !== undefined ? { eventId: values.id.trim() } : { messageId: values["message-id"]!.trim() };
  if ((query.eventId ?? query.messageId) === "") throw new UsageError(`${values.id !== undefined ? "--id" : "--message-id"} must not be empty`);
  const sinceText = values.since ?? DEFAULT_SINCE;
  const windowMs = parseWindow(sinceText);
  if (windowMs === undefined) throw new UsageError(`--since must be a duration such as 30m, 24h or 7d, not "${sinceText}"`);
  const maxExecutions = values["max-executions"] === undefined ? DEFAULT_MAX_EXECUTIONS : parsePositiveInteger(values["max-executions"], "--max-executions", 10_000);
  const target = await resolveTarget(values);
  try {
    const since = new Date(Date.now() - windowMs);
    const executions = await listExecutions(target, { max: maxExecutions, until: (execution) => (execution.startDate?.getTime() ?? 0) < since.getTime() });
    const seen: { name: string; executionArn: string; status: string; startDate?: Date; steps: MessageStep[] }[] = [];
    // Oldest first: the story in the order it happened.
    for (const execution of [...executions].reverse()) {
      const steps = messageSteps(await executionHistory(target, execution.executionArn!), query);
      if (steps.length > 0) seen.push({ name: execution.name!, executionArn: execution.executionArn!, status: execution.status!, ...(execution.startDate ? { startDate: execution.startDate } : {}), steps });
    }
    const ending = seen.flatMap((execution) => execution.steps).filter((step) => step.what !== "received").at(-1);
    const what = query.eventId !== undefined ? `event ${query.eventId}` : `message ${query.messageId}`;
    if (values.json) {
      console.log(JSON.stringify({ query, since: since.toISOString(), executionsRead: executions.length, executions: seen, ending: ending ?? null }, null, 2));
      return seen.length > 0 ? 0 : 1;
    }
    if (seen.length === 0) {
      console.log(`${what}: not seen by any of the ${executions.length} execution(s) of ${target.label} since ${since.toISOString()} (--since widens the window)`);
      return 1;
    }
    console.log(`${what} in ${target.label}, since ${since.toISOString()}:`);
    for (const execution of seen) {
      console.log(`${when(execution.startDate)}  ${execution.status.padEnd(9)}  execution ${execution.name}`);
      for (const step of execution.steps) console.log(`    ${when(step.at)}  ${describeStep(step)}`);
    }
    console.log(
      ending === undefined
        ? "ended: not yet settled (received, then nothing recorded about it: still in flight, or the execution stopped)"
        : ending.what === "written"
          ? `ended: in Airtable, record ${ending.record!.recordId}`
          : ending.what === "dead-lettered"
            ? `ended: in the DLQ (${ending.reason!.error}); see \`npm run dlq -- list${target.stage ? ` --stage ${target.stage}` : ""}\``
            : `ended: ${describeStep(ending)}`,
    );
    return 0;
  } finally {
    target.sfn.destroy();
  }
}

runCommand(main, import.meta.url);
