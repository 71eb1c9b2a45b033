/**
 * `npm run executions -- [--max N] [--status S] [--all] [--json] [--stage NAME | --sfn-port N]`: the recent drains,
 * newest first, with what each did, read through the Step Functions API (the local runtime's, or a stage's).
 */
import type { ExecutionStatus } from "@aws-sdk/client-sfn";
import { countDrain, type DrainCounts } from "./drain-history";
import { CLI_DEFAULTS, ENV, UsageError, parseCommandLine, parsePositiveInteger, runCommand } from "./options";
import { duration, executionHistory, listExecutions, when } from "./sfn-reading";
import { TARGET_FLAGS, resolveTarget } from "./sfn-target";

const STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"] as const;
const DEFAULT_MAX = 20;
/** The most --max takes: each execution is one history read (GetExecutionHistory refills 5 a second on AWS). */
const MAX_MAX = 500;

const USAGE = `Usage: npm run executions -- [options]

The recent drains, newest first: status, start, duration, messages received, records written, dead-lettered,
retried, and the execution's name. Read through the Step Functions API: the local runtime's (\`npm start\`), or a
deployed stage's.

  --max N             how many executions (default ${DEFAULT_MAX}, at most ${MAX_MAX})
  --status S          only ${STATUSES.join(", ")}
  --all               also the drains that found nothing to do (hidden by default)
  --json              as JSON, one object per execution
  --stage NAME        a deployed stage: its stack's outputs give the state machine (AWS credentials from the usual
                      chain: AWS_PROFILE, SSO, the AWS_* variables; never printed)
  --sfn-port N        the local Step Functions API's port (env ${ENV.sfnPort}; default ${CLI_DEFAULTS.sfnPort})
  -h, --help          show this help

Exit codes: 0 listed; 1 the API unreachable or refused; 2 bad input.
`;

interface Row extends DrainCounts {
  name: string;
  executionArn: string;
  status: string;
  startDate?: string;
  stopDate?: string;
  duration: string;
}

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    max: { type: "string" },
    status: { type: "string" },
    all: { type: "boolean" },
    json: { type: "boolean" },
    ...TARGET_FLAGS,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const max = values.max === undefined ? DEFAULT_MAX : parsePositiveInteger(values.max, "--max", MAX_MAX);
  const status = values.status?.toUpperCase();
  if (status !== undefined && !STATUSES.includes(status as (typeof STATUSES)[number])) throw new UsageError(`--status must be one of ${STATUSES.join(", ")}, not "${values.status}"`);
  const target = await resolveTarget(values);
  try {
    const rows: Row[] = [];
    let hidden = 0;
    // Idle drains are hidden unless --all: read a few more so that --max busy ones can show.
    const listed = await listExecutions(target, { max: values.all ? max : Math.min(MAX_MAX, max * 5), ...(status ? { status: status as ExecutionStatus } : {}) });
    for (const execution of listed) {
      const counts = countDrain(await executionHistory(target, execution.executionArn!));
      const idle = execution.status === "SUCCEEDED" && counts.received === 0 && counts.deadLettered === 0;
      if (idle && !values.all) {
        hidden++;
        continue;
      }
      rows.push({
        name: execution.name!,
        executionArn: execution.executionArn!,
        status: execution.status!,
        ...(execution.startDate ? { startDate: execution.startDate.toISOString() } : {}),
        ...(execution.stopDate ? { stopDate: execution.stopDate.toISOString() } : {}),
        duration: duration(execution.startDate, execution.stopDate),
        ...counts,
      });
      if (rows.length >= max) break;
    }
    if (values.json) {
      console.log(JSON.stringify(rows, null, 2));
      return 0;
    }
    if (rows.length === 0) {
      console.log(`no ${values.all ? "" : "busy "}executions in ${target.label}${hidden > 0 ? ` (${hidden} found nothing to do: --all shows them)` : ""}`);
      return 0;
    }
    const table = [
      ["STATUS", "STARTED", "DURATION", "RECEIVED", "WRITTEN", "DEAD-LETTERED", "RETRIED", "EXECUTION"],
      ...rows.map((row) => [
        row.status,
        when(row.startDate ? new Date(row.startDate) : undefined),
        row.duration,
        String(row.received),
        String(row.written),
        String(row.deadLettered),
        String(row.retried),
        row.name,
      ]),
    ];
    const widths = table[0]!.map((_, column) => Math.max(...table.map((line) => line[column]!.length)));
    console.log(`${target.label}:`);
    for (const line of table) console.log(line.map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  "));
    if (!values.all && hidden > 0) console.log(`(${hidden} drain${hidden === 1 ? "" : "s"} that found nothing to do not shown: --all shows them)`);
    return 0;
  } finally {
    target.sfn.destroy();
  }
}

runCommand(main, import.meta.url);
