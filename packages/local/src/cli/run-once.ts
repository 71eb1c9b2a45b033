/**
 * `npm run run-once -- [--json]`: one execution of the drain now, against the servers `npm start` runs (or the
 * configured ones). Starts no server of its own.
 */
import { summaryLine } from "./format";
import {
  CLI_DEFAULTS,
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
  -h, --help          show this help

Environment: ${ENV.sqsEndpoint} (another SQS server instead of the local port);
${ENV.airtableToken} + ${ENV.airtableBaseId} (+ ${ENV.airtableEndpointUrl}) write to the real Airtable instead of the emulator.
Exit codes: 0 the execution succeeded (or found nothing to do); 1 a server unreachable or the execution FAILED;
2 bad input.
`;

async function main(argv: string[]): Promise<number> {
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
    const summary = await pipeline.workflow.execute();
    console.log(values.json ? JSON.stringify(summary, null, 2) : summaryLine(summary));
    return summary.status === "FAILED" ? 1 : 0;
  } finally {
    await pipeline.close();
  }
}

runCommand(main);
