/**
 * `npm run run-once -- [--json]`: one execution of the drain now, against the servers `npm start` runs (or the
 * configured ones). Starts no server of its own.
 */
import { DrainControlError, DrainLock, requestDrain } from "@fundraise-sync/local/drain-lock";
import type { DrainSummary } from "@fundraise-sync/local/workflow";
import { summaryLine } from "./format";
import { DescribeExecutionCommand, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { countDrain } from "./drain-history";
import {
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  UsageError,
  parseCommandLine,
  runCommand,
} from "./options";
import { call, duration, executionHistory } from "./sfn-reading";
import { resolveTarget } from "./sfn-target";
import { loadPipeline } from "./load-pipeline";
import { SERVER_FLAGS, effectiveSqsEndpoint, emulatorUrl, localServersFrom, probe } from "./servers";

const USAGE = `Usage: npm run run-once -- [options]

Runs one execution of the drain state machine now, against the SQS server and Airtable emulator that
\`npm start\` runs (it starts neither). Nothing listening → one line saying so, exit 1.

  --json              print the execution's summary as JSON
  --sqs-port N        the local SQS server's port (env ${ENV.sqsPort}; default ${CLI_DEFAULTS.sqsPort})
  --airtable-port N   the Airtable emulator's port (env ${ENV.airtablePort}; default ${CLI_DEFAULTS.airtablePort})
  --token TOKEN       the emulator's token (env ${ENV.localToken}; default ${CLI_DEFAULTS.localToken})
  --table NAME        the Airtable table (default ${CLI_DEFAULTS.table})
  --airtable-rps N    the pipeline's share of the base's 5 requests/s, 1-5 (env ${ENV.airtableRequestsPerSecond}; default 4)
  --stage NAME        on a deployed stage instead: starts a drain through Step Functions' StartExecution (the
                      stack's StateMachineArn output; AWS credentials from the usual chain, never printed), waits
                      for it to end and prints what it did; the stage's drain lease keeps it from running beside
                      another drain (it then ends as AnotherDrainIsRunning)
  --no-wait           with --stage: print the execution's ARN and return at once
  -h, --help          show this help

Environment: ${ENV.sqsEndpoint} (another SQS server instead of the local port);
${ENV.airtableToken} + ${ENV.airtableBaseId} (+ ${ENV.airtableEndpointUrl}) write to the real Airtable instead of the emulator.
One drain at a time: while \`npm start\` drains the same queue, this asks it to drain now and prints that
execution's summary (\`npm start\`'s own settings apply); while another run-once drains it, this says so in one
line and exits 0.

Exit codes: 0 the execution succeeded (or found nothing to do, or another run-once is draining); 1 a server
unreachable or the execution FAILED; 2 bad input.
`;

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    json: { type: "boolean" },
    stage: { type: "string" },
    "no-wait": { type: "boolean" },
    ...SERVER_FLAGS,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.stage !== undefined) {
    const local = Object.keys(SERVER_FLAGS).find((flag) => (values as Record<string, unknown>)[flag] !== undefined);
    if (local) throw new UsageError(`--${local} is for the local runtime, not --stage`);
    return runOnStage(values.stage, { json: values.json ?? false, wait: !values["no-wait"] });
  }
  if (values["no-wait"]) throw new UsageError("--no-wait goes with --stage");
  const { choice, airtablePort, token, tableName, airtableRequestsPerSecond } = localServersFrom(values);
  const sqsEndpoint = effectiveSqsEndpoint(choice);
  const localAirtable = { endpointUrl: emulatorUrl(airtablePort), token, baseId: CLI_DEFAULTS.baseId };
  const airtable = choice.realAirtable ?? localAirtable;

  await probe(sqsEndpoint, "SQS", choice.sqsEndpoint ? `check ${ENV.sqsEndpoint}` : "run `npm start` first");
  if (!choice.realAirtable) await probe(localAirtable.endpointUrl, "Airtable emulator", "run `npm start` first");

  const report = (summary: DrainSummary) => {
    console.log(values.json ? JSON.stringify(summary, null, 2) : summaryLine(summary));
    return summary.status === "FAILED" ? 1 : 0;
  };

  // Never a second drain beside one running on the same queue (`npm start`'s, or another run-once's).
  const drainLock = new DrainLock(sqsEndpoint);
  let holder = drainLock.tryAcquire({ command: "npm run run-once" });
  if (holder?.control) {
    if (!values.json) console.log(`npm start (pid ${holder.pid}) drains this queue: asked it to drain now`);
    try {
      return report(await requestDrain(holder.control));
    } catch (error) {
      if (!(error instanceof DrainControlError)) throw error;
      if (!error.unreachable) throw new CommandFailure(`npm start (pid ${holder.pid}) did not drain: ${error.message}`);
      drainLock.breakStale(holder);
      holder = drainLock.tryAcquire({ command: "npm run run-once" });
    }
  }
  if (holder) {
    console.log(`a drain is already running on this queue (${holder.command}, pid ${holder.pid}): not starting another`);
    return 0;
  }

  try {
    const { startLocalPipeline, synthesizeWorkflowCached } = await loadPipeline();
    const workflow = await synthesizeWorkflowCached();
    // sqsEndpoint and airtable given: startLocalPipeline starts nothing, it only wires the state machine to them.
    const pipeline = await startLocalPipeline({
      workflow,
      sqsEndpoint,
      airtable,
      tableName,
      airtableRequestsPerSecond,
    });
    try {
      return report(await pipeline.workflow.execute());
    } finally {
      await pipeline.close();
    }
  } finally {
    drainLock.release();
  }
}

/** How often `run-once --stage` asks whether its execution has ended (DescribeExecution refills 20 a second). */
const POLL_MS = 2000;

/**
 * One drain on a deployed stage, started as the schedule starts one (StartExecution with `{}`): the stage's lease
 * keeps it from running beside another. Exit 1 if it failed.
 */
async function runOnStage(stage: string, options: { json: boolean; wait: boolean }): Promise<number> {
  const target = await resolveTarget({ stage });
  try {
    const started = await call(target, () => target.sfn.send(new StartExecutionCommand({ stateMachineArn: target.stateMachineArn, input: "{}" })));
    if (!options.json) console.log(`started ${started.executionArn} on ${target.label}`);
    if (!options.wait) {
      if (options.json) console.log(JSON.stringify({ executionArn: started.executionArn, startDate: started.startDate }, null, 2));
      return 0;
    }
    for (;;) {
      const execution = await call(target, () => target.sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn })));
      if (execution.status !== "RUNNING") {
        const counts = countDrain(await executionHistory(target, started.executionArn!));
        const summary = {
          executionArn: started.executionArn,
          status: execution.status,
          ...counts,
          durationMs: (execution.stopDate?.getTime() ?? Date.now()) - (execution.startDate?.getTime() ?? Date.now()),
          ...(execution.error ? { error: { name: execution.error, cause: execution.cause ?? "" } } : {}),
        };
        if (options.json) console.log(JSON.stringify(summary, null, 2));
        else {
          console.log(
            `${execution.status} received ${counts.received}, written ${counts.written}, dead-lettered ${counts.deadLettered}, retried ${counts.retried}, ${duration(execution.startDate, execution.stopDate)}` +
              (execution.error ? ` (${execution.error})` : ""),
          );
        }
        return execution.status === "SUCCEEDED" ? 0 : 1;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    target.sfn.destroy();
  }
}

runCommand(main, import.meta.url);
