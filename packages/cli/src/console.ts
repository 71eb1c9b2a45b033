/**
 * `npm run console -- [--stage NAME | --sfn-port N] [--port N] [--poll S]`: the web console on a deployed stage (or on
 * a running `npm start`), read through the Step Functions and SQS APIs: the stage's own definition
 * (DescribeStateMachine), its executions and their events (ListExecutions, GetExecutionHistory), its DLQ with the
 * same actions as `npm run dlq -- --stage`, and its queues' depths (GetQueueAttributes). The history is Step
 * Functions' own: kept in memory while the console runs, never written to disk.
 */
import { DescribeStateMachineCommand } from "@aws-sdk/client-sfn";
import { History, type ConsoleServer, startConsole } from "@fundraise-sync/console";
import { readQueueDepths } from "@fundraise-sync/console/queues";
import { watchInterrupts } from "@fundraise-sync/core/interrupt";
import { localDeadLetterActions } from "@fundraise-sync/local/dead-letter-actions";
import { resolveDeadLetterQueues } from "@fundraise-sync/local/dead-letters";
import { ExecutionFeed, FEED_DEFAULTS } from "./console-feed";
import {
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  ensureAwsEnvironment,
  isConnectionRefused,
  localQueueUrl,
  localSqsEndpoint,
  parseCommandLine,
  parsePort,
  parsePositiveInteger,
  parsePositiveSeconds,
  runCommand,
  sqsClient,
  sqsEndpointFor,
  sqsPortFrom,
  UsageError,
} from "./options";
import { call } from "./sfn-reading";
import { type SfnTarget, TARGET_FLAGS, resolveTarget, stackName } from "./sfn-target";

/** Beside `npm start`'s own console (9326) and Step Functions API (9327). */
export const CONSOLE_COMMAND_PORT = 9328;
/** At least this long between polls: slower is fine, faster would spend Step Functions' throttling budget. */
const MIN_POLL_SECONDS = 2;

const USAGE = `Usage: npm run console -- [options]

The web console on a deployed stage, or on a running \`npm start\`, read through the Step Functions and SQS APIs:
the state machine's graph from its deployed definition, its executions and their events, the dead-letter queue with
its actions (the same as \`npm run dlq\`; on a stage each asks first, naming the stage), and the queues' depths.

  --stage NAME        a deployed stage: its stack's outputs give the state machine and the queues (AWS credentials
                      from the usual chain: AWS_PROFILE, SSO, the AWS_* variables; never printed or stored)
  --sfn-port N        without --stage: the local Step Functions API's port (env ${ENV.sfnPort}; default ${CLI_DEFAULTS.sfnPort})
  --sqs-port N        without --stage: the local SQS server's port (env ${ENV.sqsPort}; default ${CLI_DEFAULTS.sqsPort})
  --port N            the console's port on 127.0.0.1 (default ${CONSOLE_COMMAND_PORT}; 0 = any free port)
  --poll S            seconds between polls (default ${FEED_DEFAULTS.pollMs / 1000}, at least ${MIN_POLL_SECONDS}): one ListExecutions, a
                      GetExecutionHistory per new or running execution, two GetQueueAttributes
  --executions N      how many of the latest executions to show (default ${FEED_DEFAULTS.executions}, at most 1000)
  -h, --help          show this help

Ctrl-C stops it. Exit codes: 0 stopped; 1 the stage or the APIs unreachable; 2 bad input.
`;

export interface StageConsoleOptions {
  target: SfnTarget;
  /** The donations queue; the DLQ is given or read from its RedrivePolicy. */
  queueUrl: string;
  deadLetterQueueUrl?: string;
  port: number;
  pollMs?: number;
  executions?: number;
  /** Locally: the flags `npm run dlq` needs to reach these queues (e.g. `--sqs-port 9400`); a stage's is `--stage NAME`. */
  connection?: string;
}

/** A console reading a state machine through its APIs, and the feed that follows its executions. */
export interface StageConsole extends ConsoleServer {
  history: History;
  feed: ExecutionFeed;
}

/**
 * Starts the console on a target: reads its definition, then serves the page while the feed polls its executions.
 * Rejects with a {@link CommandFailure} when the state machine or the queues cannot be read.
 */
export async function startStageConsole(options: StageConsoleOptions): Promise<StageConsole> {
  const { target } = options;
  const pollMs = options.pollMs ?? FEED_DEFAULTS.pollMs;
  const described = await call(target, () => target.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: target.stateMachineArn })));
  let definition: unknown;
  try {
    definition = JSON.parse(described.definition ?? "");
  } catch {
    throw new CommandFailure(`${target.label}: DescribeStateMachine returned no readable definition`);
  }
  const endpoint = sqsEndpointFor(options.queueUrl);
  ensureAwsEnvironment(endpoint, options.queueUrl);
  const sqs = sqsClient(endpoint);
  let queues: Awaited<ReturnType<typeof resolveDeadLetterQueues>>;
  try {
    queues = await resolveDeadLetterQueues(sqs, options.queueUrl, options.deadLetterQueueUrl);
  } catch (error) {
    sqs.destroy();
    if (isConnectionRefused(error)) throw new CommandFailure(`cannot reach the SQS server at ${endpoint}: is \`npm start\` running?`);
    throw new CommandFailure(`${target.label}: cannot read the queues: ${(error as Error).message.split("\n")[0]}`);
  }
  // In memory only: a stage's history is Step Functions' own.
  const history = await History.open({});
  const feed = new ExecutionFeed({
    sfn: target.sfn,
    stateMachineArn: target.stateMachineArn,
    definition,
    sink: history,
    pollMs,
    ...(options.executions ? { executions: options.executions } : {}),
    onError: (error) => console.error(`${new Date().toISOString()} ${target.label}: reading executions failed (${(error as Error).name}); polling on`),
  });
  const stage = target.stage;
  let server: ConsoleServer;
  try {
    server = await startConsole({
      port: options.port,
      history,
      definition: definition as never,
      queueDepths: () => readQueueDepths(sqs, { source: queues.sourceUrl, deadLetter: queues.deadLetterUrl }),
      deadLetters: localDeadLetterActions(queues),
      commands: stage === undefined ? { connection: options.connection ?? "" } : { connection: `--stage ${stage}`, stage },
      pollMs,
    });
  } catch (error) {
    sqs.destroy();
    throw error;
  }
  feed.start();
  return {
    ...server,
    history,
    feed,
    close: async () => {
      await feed.stop();
      await server.close();
      await history.close();
      sqs.destroy();
    },
  };
}

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    ...TARGET_FLAGS,
    "sqs-port": { type: "string" },
    port: { type: "string" },
    poll: { type: "string" },
    executions: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const port = values.port === undefined ? CONSOLE_COMMAND_PORT : parsePort(values.port, "--port");
  const pollSeconds = values.poll === undefined ? FEED_DEFAULTS.pollMs / 1000 : parsePositiveSeconds(values.poll, "--poll");
  if (pollSeconds < MIN_POLL_SECONDS) throw new UsageError(`--poll must be at least ${MIN_POLL_SECONDS} seconds, not "${values.poll}"`);
  const executions = values.executions === undefined ? FEED_DEFAULTS.executions : parsePositiveInteger(values.executions, "--executions", 1000);
  if (values.stage !== undefined && values["sqs-port"] !== undefined) throw new UsageError("--sqs-port is for the local runtime, not --stage");
  const target = await resolveTarget(values);
  let queueUrl: string;
  let deadLetterQueueUrl: string | undefined;
  let connection = "";
  if (target.stage !== undefined) {
    if (!target.queueUrl || !target.deadLetterQueueUrl) throw new CommandFailure(`stack ${stackName(target.stage)} has no QueueUrl or DeadLetterQueueUrl output`);
    queueUrl = target.queueUrl;
    deadLetterQueueUrl = target.deadLetterQueueUrl;
  } else {
    const sqsPort = sqsPortFrom(values["sqs-port"]);
    queueUrl = localQueueUrl(localSqsEndpoint(sqsPort), CLI_DEFAULTS.sourceQueueName);
    if (sqsPort !== CLI_DEFAULTS.sqsPort) connection = `--sqs-port ${sqsPort}`;
  }
  let server: StageConsole;
  try {
    server = await startStageConsole({ target, queueUrl, ...(deadLetterQueueUrl ? { deadLetterQueueUrl } : {}), port, pollMs: pollSeconds * 1000, executions, connection });
  } catch (error) {
    target.sfn.destroy();
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") throw new CommandFailure(`port ${port} is taken: --port N picks another`);
    throw error;
  }
  console.log(`console:  ${server.url} on ${target.label}`);
  console.log(`  polls every ${pollSeconds} s: ListExecutions, GetExecutionHistory of new or running executions, GetQueueAttributes; Ctrl-C stops`);
  await new Promise<void>((resolve) => {
    const stop = watchInterrupts(() => {
      stop();
      resolve();
    });
  });
  await server.close();
  target.sfn.destroy();
  return 0;
}

runCommand(main, import.meta.url);
