/**
 * `npm run run-once -- [--json]`: one execution of the drain now, against the servers `npm start` runs (or the
 * configured ones). Starts no server of its own.
 */
import { DrainControlError, DrainLock, requestDrain } from "@fundraise-sync/local/drain-lock";
import type { DrainSummary } from "@fundraise-sync/local/workflow";
import { summaryLine } from "./format";
import {
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  parseCommandLine,
  runCommand,
} from "./options";
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
    ...SERVER_FLAGS,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
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

runCommand(main, import.meta.url);
