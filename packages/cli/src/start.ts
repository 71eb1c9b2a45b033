/**
 * `npm start`: the whole pipeline on this machine. A local SQS server with the stack's two queues, the Airtable
 * emulator, and the synthesized drain state machine executed on a schedule, never two executions at once.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import type { LocalPipeline } from "@fundraise-sync/local/pipeline";
import type { DrainSummary } from "@fundraise-sync/local/workflow";
import { localDeadLetterActions } from "@fundraise-sync/local/dead-letter-actions";
import { localWhereabouts } from "@fundraise-sync/local/whereabouts";
import { watchLocalAlarms } from "@fundraise-sync/local/alarms";
import { releaseExecutionMessages } from "@fundraise-sync/local/release";
import { failureLine, idleLine, isIdle, progressLine, seconds, summaryLine, timestamp } from "./format";
import { watchInterrupts } from "@fundraise-sync/core/interrupt";
import {
  CLI_DEFAULTS,
  ENV,
  flagOrEnv,
  fromRoot,
  UsageError,
  parseCommandLine,
  parsePort,
  parsePositiveSeconds,
  runCommand,
} from "./options";
import { claimDataDir, DEFAULT_DATA_DIR, instanceDataDir, instancePaths } from "./instance";
import { loadPipeline } from "./load-pipeline";
import { SERVER_FLAGS, type ServerChoice, emulatorConfigFor, localServersFrom } from "./servers";
import { DrainLock, startDrainControl } from "@fundraise-sync/local/drain-lock";
import { startSfnApi } from "@fundraise-sync/local/sfn-api";
import { ExecutionStore } from "@fundraise-sync/local/sfn-store";

const DEFAULT_PATHS = instancePaths(DEFAULT_DATA_DIR);

const USAGE = `Usage: npm start -- [options]

Runs the pipeline locally on ${CLI_DEFAULTS.host}: an SQS server (queues ${CLI_DEFAULTS.sourceQueueName} and
${CLI_DEFAULTS.deadLetterQueueName}, persisted in ${DEFAULT_PATHS.sqsDataDir}), a DynamoDB server for the drain lease (in
memory, any free port), the Airtable emulator (records persisted in ${DEFAULT_PATHS.airtableDataFile}, Airtable's 5
requests/s limit on), and the drain state machine every few seconds. With other ports than the defaults, its state
is kept in a folder of its own, .local/ports-<sqs port>-<airtable port>/, so two starts never share it (and a folder
in use by another npm start is refused).

  --sqs-port N        SQS server port (env ${ENV.sqsPort}; default ${CLI_DEFAULTS.sqsPort}; 0 = any free port)
  --airtable-port N   Airtable emulator port (env ${ENV.airtablePort}; default ${CLI_DEFAULTS.airtablePort}; 0 = any free port)
  --token TOKEN       the emulator's bearer token (env ${ENV.localToken}; default ${CLI_DEFAULTS.localToken})
  --table NAME        the Airtable table (default ${CLI_DEFAULTS.table})
  --airtable-rps N    the pipeline's share of the base's 5 requests/s, 1-5 (env ${ENV.airtableRequestsPerSecond};
                      default: the stack's airtableRequestsPerSecond, 4)
  --every SECONDS     start an execution this often (env ${ENV.everySeconds}; default ${CLI_DEFAULTS.everySeconds});
                      a tick that comes while one still runs is skipped
  --console-port N    the web console's port (env ${ENV.consolePort}; default ${CLI_DEFAULTS.consolePort}; 0 = any free port);
                      its history is kept in ${DEFAULT_PATHS.consoleDataDir}
  --no-console        do not serve the web console
  --sfn-port N        the Step Functions API of the local state machine (env ${ENV.sfnPort}; default ${CLI_DEFAULTS.sfnPort};
                      0 = any free port): what \`npm run executions\`, \`npm run story\` and the AWS CLI
                      (--endpoint-url) talk to; its executions are kept in ${DEFAULT_PATHS.sfnDataDir}
  --no-sfn            do not serve the Step Functions API
  -h, --help          show this help

Environment:
  ${ENV.sqsEndpoint}        use that SQS server instead of starting one
  ${ENV.airtableToken} + ${ENV.airtableBaseId}  write to the real Airtable (no emulator); ${ENV.airtableEndpointUrl} overrides its URL

Ctrl-C (or SIGTERM) stops scheduling, lets the execution in flight finish (up to its batch cap), closes the servers
and exits 0. A second Ctrl-C aborts it: the messages it still held are visible in the queue again at once (those
already written are upserted again on redelivery, which changes nothing), and the exit code is 130.
`;

/** The queue's depth, visible + in flight; undefined if it cannot be read just now. */
async function queueDepth(pipeline: LocalPipeline): Promise<number | undefined> {
  try {
    const { Attributes } = await pipeline.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: pipeline.queueUrls.source,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  } catch {
    return undefined;
  }
}

/** Records the emulator has written (created + updated) since it started; undefined on the real Airtable. */
function recordsWritten(pipeline: LocalPipeline): number | undefined {
  const records = pipeline.emulator?.stats().records;
  return records === undefined ? undefined : records.created + records.updated;
}

/**
 * While an execution runs, rewrites one status line every second (TTY only: a log file gets summaries only).
 * `LocalWorkflow.execute()` reports only at its end, so progress is read from the queue and the emulator.
 */
function showProgress(pipeline: LocalPipeline): () => void {
  if (!process.stdout.isTTY) return () => undefined;
  const writtenBefore = recordsWritten(pipeline);
  let shown = false;
  let stopped = false;
  const timer = setInterval(async () => {
    const depth = await queueDepth(pipeline);
    const written = recordsWritten(pipeline);
    if (stopped || depth === undefined) return;
    // An execution that finds the queue empty ends within a second or two: no line for it.
    if (!shown && depth === 0 && (written ?? 0) === (writtenBefore ?? 0)) return;
    const writtenSoFar = written === undefined || writtenBefore === undefined ? undefined : written - writtenBefore;
    process.stdout.write(`\r\x1b[2K${progressLine(depth, writtenSoFar)}`);
    shown = true;
  }, CLI_DEFAULTS.progressIntervalMs);
  return () => {
    stopped = true;
    clearInterval(timer);
    if (shown) process.stdout.write("\r\x1b[2K");
  };
}

/**
 * The web console beside the pipeline (loaded only when wanted). A console that cannot start (its port taken by
 * another `npm start`, say) is said in one line, and the pipeline runs without it.
 */
async function startWebConsole(pipeline: LocalPipeline, definition: unknown, port: number, choice: ServerChoice, historyDir: string) {
  const { startPipelineConsole } = await import("@fundraise-sync/console");
  const connection =
    choice.sqsEndpoint !== undefined
      ? `--queue-url ${pipeline.queueUrls.source}`
      : choice.sqsPort !== CLI_DEFAULTS.sqsPort
        ? `--sqs-port ${new URL(pipeline.sqsEndpoint).port}`
        : "";
  try {
    return await startPipelineConsole({
      pipeline,
      deadLetters: localDeadLetterActions({ sqs: pipeline.sqs, sourceUrl: pipeline.queueUrls.source, deadLetterUrl: pipeline.queueUrls.deadLetter }),
      whereabouts: localWhereabouts(pipeline),
      alarms: watchLocalAlarms(pipeline).read,
      definition,
      port,
      dir: fromRoot(historyDir),
      commands: { connection },
    });
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === "EADDRINUSE" ? `port ${port} is taken (another \`npm start\`?)` : (error as Error).message;
    console.log(`console:  not started: ${reason}; --console-port N picks another port, --no-console goes without`);
    return undefined;
  }
}

/**
 * The local state machine's Step Functions API, its executions kept in `dataDir`. One that cannot start (its port
 * taken) is said in one line, and the pipeline runs without it.
 */
async function startLocalSfnApi(pipeline: LocalPipeline, port: number, dataDir: string, onStartRequested: (executionArn: string) => void) {
  const store = await ExecutionStore.open({ definition: pipeline.workflow.definition, dir: fromRoot(dataDir) });
  const stopObserving = pipeline.workflow.observe(store.observer());
  try {
    const api = await startSfnApi({ workflow: pipeline.workflow, store, port, onStartRequested });
    return {
      ...api,
      close: async () => {
        await api.close();
        stopObserving();
        await store.close();
      },
    };
  } catch (error) {
    stopObserving();
    await store.close();
    const reason = (error as NodeJS.ErrnoException).code === "EADDRINUSE" ? `port ${port} is taken (another \`npm start\`?)` : (error as Error).message;
    console.log(`Step Functions: not started: ${reason}; --sfn-port N picks another port`);
    return undefined;
  }
}

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    ...SERVER_FLAGS,
    every: { type: "string" },
    "console-port": { type: "string" },
    "no-console": { type: "boolean" },
    "sfn-port": { type: "string" },
    "no-sfn": { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { choice, airtablePort, token, tableName, airtableRequestsPerSecond } = localServersFrom(values);
  const everyText = flagOrEnv(values.every, ENV.everySeconds);
  if (values["no-console"] && values["console-port"] !== undefined) throw new UsageError("give --console-port or --no-console, not both");
  const consolePortText = flagOrEnv(values["console-port"], ENV.consolePort);
  const consolePort = values["no-console"]
    ? undefined
    : consolePortText === undefined
      ? CLI_DEFAULTS.consolePort
      : parsePort(consolePortText, values["console-port"] !== undefined ? "--console-port" : ENV.consolePort);
  const sfnPortText = flagOrEnv(values["sfn-port"], ENV.sfnPort);
  if (values["no-sfn"] && values["sfn-port"] !== undefined) throw new UsageError("give --sfn-port or --no-sfn, not both");
  const sfnPort = values["no-sfn"]
    ? undefined
    : sfnPortText === undefined
      ? CLI_DEFAULTS.sfnPort
      : parsePort(sfnPortText, values["sfn-port"] !== undefined ? "--sfn-port" : ENV.sfnPort);
  const everySeconds = everyText === undefined ? CLI_DEFAULTS.everySeconds : parsePositiveSeconds(everyText, values.every !== undefined ? "--every" : ENV.everySeconds);

  // Each instance its own state: other ports, another folder; a folder in use by another npm start, refused.
  const dataDir = instanceDataDir({ sqsPort: choice.sqsEndpoint ? undefined : choice.sqsPort, airtablePort: choice.realAirtable ? undefined : airtablePort });
  const paths = instancePaths(dataDir);
  claimDataDir(fromRoot(dataDir), dataDir);

  const { startLocalPipeline, synthesizeWorkflowCached } = await loadPipeline();
  const synthStarted = Date.now();
  const workflow = await synthesizeWorkflowCached();
  console.log(
    workflow.cached
      ? `workflow: the synthesized state machine, from the cache in .sst/local (${seconds(Date.now() - synthStarted)})`
      : `workflow: synthesized sst.config.ts in ${seconds(Date.now() - synthStarted)} (cached in .sst/local for the next start)`,
  );

  const dataFile = fromRoot(paths.airtableDataFile);
  if (!choice.realAirtable) await mkdir(path.dirname(dataFile), { recursive: true });
  const pipeline = await startLocalPipeline({
    workflow,
    sqsPort: choice.sqsPort,
    ...(choice.sqsEndpoint ? { sqsEndpoint: choice.sqsEndpoint } : { sqsDataDir: fromRoot(paths.sqsDataDir) }),
    emulator: { host: CLI_DEFAULTS.host, port: airtablePort, token, dataFile, config: emulatorConfigFor(tableName) },
    ...(choice.realAirtable ? { airtable: choice.realAirtable } : {}),
    tableName,
    airtableRequestsPerSecond,
    heldMessagesFile: fromRoot(paths.heldMessagesFile),
  });

  const { Attributes } = await pipeline.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: pipeline.queueUrls.source, AttributeNames: ["VisibilityTimeout"] }),
  );
  const visibility = Number(Attributes?.VisibilityTimeout);
  const visibilityTimeout = Number.isFinite(visibility) ? `${visibility} s, about ${Math.ceil(visibility / 60)} min` : "see the queue";

  console.log(`SQS:      ${pipeline.sqsEndpoint}${choice.sqsEndpoint ? ` (from ${ENV.sqsEndpoint})` : ` (data in ${paths.sqsDataDir})`}`);
  console.log(`  queue:  ${pipeline.queueUrls.source}`);
  console.log(`  DLQ:    ${pipeline.queueUrls.deadLetter}`);
  console.log(`DynamoDB: ${pipeline.dynamodbEndpoint} (in memory: the drain lease, table ${pipeline.tableNames.join(", ")})`);
  if (pipeline.emulator) {
    console.log(`Airtable: ${pipeline.airtable.endpointUrl} (emulator, 5 requests/s limit on, data in ${paths.airtableDataFile})`);
    console.log(`  base:   ${pipeline.airtable.baseId}`);
    console.log(`  table:  ${pipeline.airtable.tableName}`);
    console.log(`  token:  ${pipeline.airtable.token}`);
  } else {
    console.log(`Airtable: ${pipeline.airtable.endpointUrl} (${ENV.airtableToken} and ${ENV.airtableBaseId} set: no emulator)`);
    console.log(`  base:   ${pipeline.airtable.baseId}`);
    console.log(`  table:  ${pipeline.airtable.tableName}`);
    console.log(`  token:  (from ${ENV.airtableToken}, not shown)`);
  }
  console.log(`  share:  ${pipeline.requestsPerSecond} of the base's 5 requests/s (--airtable-rps), 10 records per request`);
  if (pipeline.recovered && pipeline.recovered.released > 0) {
    console.log(
      `recovered: ${pipeline.recovered.released} message(s) the last npm start held when it stopped without finishing are back in the queue now (not after the visibility timeout)`,
    );
  }
  const webConsole = consolePort === undefined ? undefined : await startWebConsole(pipeline, workflow.definition, consolePort, choice, paths.consoleDataDir);
  if (webConsole) console.log(`console:  ${webConsole.url} (history in ${paths.consoleDataDir})`);
  const sfnApi =
    sfnPort === undefined
      ? undefined
      : await startLocalSfnApi(pipeline, sfnPort, paths.sfnDataDir, (executionArn) => {
          console.log(`${timestamp()} execution ${executionArn.split(":").pop()} started through the Step Functions API`);
          setImmediate(tick);
        });
  if (sfnApi) console.log(`Step Functions: ${sfnApi.url} (state machine ${sfnApi.stateMachineArn}; executions in ${paths.sfnDataDir})`);
  console.log(
    `ready: draining ${pipeline.queueUrls.source} every ${everySeconds} s; publish with \`npm run publish\`, stop with Ctrl-C`,
  );

  let inFlight: Promise<DrainSummary> | undefined;
  let stopping = false;
  let waitingFor: number | undefined;

  let stopProgress = () => undefined as void;
  // A quiet line once per idle stretch, not one per empty execution.
  let saidIdle = false;

  // One drain at a time on this queue, across processes: `run-once` asks this process (the control call) instead
  // of draining beside it. The lock is taken before the first drain, or as soon as another holder lets go.
  const drainLock = new DrainLock(pipeline.sqsEndpoint);
  const drainNow = async (): Promise<DrainSummary> => {
    while (inFlight) await inFlight.catch(() => undefined); // a drain asked for now starts after the current one
    const started = tick();
    if (!started) throw new Error(stopping ? "npm start is stopping" : `another process drains ${pipeline.sqsEndpoint}`);
    console.log(`${timestamp()} drain requested by run-once`);
    return started;
  };
  const control = await startDrainControl(drainNow);

  /** Starts an execution unless one runs (here or in another process); returns it. */
  function tick(): Promise<DrainSummary> | undefined {
    if (stopping || inFlight) return undefined; // never two executions at once
    const holder = drainLock.tryAcquire({ command: "npm start", control: { url: control.url, token: control.token } });
    if (holder) {
      if (waitingFor !== holder.pid) console.log(`${timestamp()} waiting: ${holder.command} (pid ${holder.pid}) is draining this queue`);
      waitingFor = holder.pid;
      return undefined;
    }
    waitingFor = undefined;
    stopProgress = showProgress(pipeline);
    const execution = pipeline.workflow
      .execute()
      .then(
        (summary) => {
          stopProgress();
          if (summary.status === "FAILED" || !isIdle(summary)) {
            console.log(`${timestamp()} ${summaryLine(summary)}`);
            saidIdle = false;
          } else if (!saidIdle && !stopping) {
            console.log(`${timestamp()} ${idleLine(everySeconds)}`);
            saidIdle = true;
          }
          // It reached its batch cap and started a continuation, which AWS would run at once: so do we; and an
          // execution asked for through the Step Functions API runs as soon as none runs.
          if (summary.continued || pipeline.workflow.pendingExecutions > 0) setImmediate(tick);
          return summary;
        },
        (error: unknown) => {
          stopProgress();
          // execute() reports a failed execution in its summary; a throw is the runtime's own fault.
          console.error(`${timestamp()} execution could not run: ${failureLine({ name: (error as Error).name, cause: (error as Error).message })}`);
          throw error;
        },
      )
      .finally(() => {
        inFlight = undefined;
      });
    execution.catch(() => undefined); // reported above
    inFlight = execution;
    return execution;
  }
  const timer = setInterval(tick, everySeconds * 1000);
  tick();

  return new Promise<number>((resolve) => {
    const abort = async (what: string) => {
      stopProgress();
      console.log(`\n${what} again: aborting the execution in flight`);
      // The console lists it as interrupted, with when and how, at the next start.
      webConsole?.history.interrupt(`aborted: ${what} twice stopped npm start while it ran`);
      try {
        // Bounded: an abort must not hang on a server that stopped answering.
        const released = await Promise.race([
          inFlight ? releaseExecutionMessages(pipeline.workflow, pipeline.sqs) : { released: 0, gone: 0 },
          new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000)),
        ]);
        if (released === undefined) console.log(`the queue did not answer: its held messages reappear after the visibility timeout (${visibilityTimeout})`);
        else if (released.released > 0) console.log(`${released.released} message(s) it held are back in the queue now`);
        await Promise.race([pipeline.emulator?.flush(), new Promise((r) => setTimeout(r, 1000))]);
      } finally {
        drainLock.release();
        process.exit(130);
      }
    };
    const stopInterrupts = watchInterrupts((count, what) => {
      if (count === 2) void abort(what);
      else if (count > 2) process.exit(130); // the abort itself is stuck: leave now
      else stop(what);
    });
    const stop = (signal: string) => {
      stopping = true;
      clearInterval(timer);
      const waiting = inFlight;
      if (waiting) {
        console.log(`\n${signal}: waiting for the execution in flight to finish (Ctrl-C again to abort it)`);
      } else {
        console.log(`\n${signal}: stopping`);
      }
      void (async () => {
        await waiting?.catch(() => undefined);
        const backlog = await queueDepth(pipeline);
        if (backlog !== undefined && backlog > 0) console.log(`backlog ${backlog}: still in the queue, drained by the next start`);
        await control.close();
        drainLock.release();
        await webConsole?.close();
        await sfnApi?.close();
        await pipeline.close();
        const kept = [choice.sqsEndpoint ? undefined : "queued messages", choice.realAirtable ? undefined : "Airtable records"].filter(Boolean);
        console.log(`closed${kept.length > 0 ? `: ${kept.join(" and ")} are kept in ${dataDir}/ for the next start on these ports` : ""}`);
        stopInterrupts();
        resolve(0);
      })().catch((error: unknown) => {
        console.error(`error: while closing: ${(error as Error).message}`);
        process.exit(1);
      });
    };
  });
}

runCommand(main, import.meta.url);
