/**
 * The benchmark's unattended scenarios (`npm run bench -- --scenario outage|flaky|revoked|crash|idle`): what the
 * pipeline does when nobody is watching. Airtable goes down for minutes, answers 500 at random, refuses a revoked
 * token, or `npm start` is killed mid-drain. Each prints its numbers and is written to the JSON with the others; none
 * is a timed test.
 */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME } from "@fundraise-sync/airtable-emulator";
import { type DonationCreatedEvent, ErrorName, SqsEventBus, sampleDonations } from "@fundraise-sync/core";
import { DrainLock } from "@fundraise-sync/local/drain-lock";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { accountFor } from "@fundraise-sync/local/testing";
import type { DrainSummary } from "@fundraise-sync/local/workflow";
import type { synthesizeWorkflowCached } from "../../../../stacks/synthesize";
import { instanceDataDir, instancePaths } from "../instance";
import { ROOT, spawnCommand } from "../run-cli";
import { ALARM_COUNT, AWS_PRICES, idleMonthCost } from "./cost";

type Workflow = Awaited<ReturnType<typeof synthesizeWorkflowCached>>;

export interface UnattendedScenario {
  name: string;
  what: string;
  count: number;
  targets: string;
  run(workflow: Workflow, count: number, options: { outageMinutes: number }): Promise<Record<string, unknown>>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits: number) => Number(value.toFixed(digits));
const seconds = (ms: number) => round(ms / 1000, 1);

/** Visible and in-flight messages of a queue. */
async function depth(pipeline: LocalPipeline, queueUrl: string): Promise<{ visible: number; hidden: number }> {
  const { Attributes = {} } = await pipeline.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
  );
  return { visible: Number(Attributes.ApproximateNumberOfMessages ?? 0), hidden: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

const recordCount = (pipeline: LocalPipeline) => pipeline.emulator!.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME).length;

async function withPipeline<T>(workflow: Workflow, run: (pipeline: LocalPipeline) => Promise<T>): Promise<T> {
  // Airtable's real limiter: 5 requests/s per base, a 30 s lock after a 429.
  const pipeline = await startLocalPipeline({ workflow, sqsPort: 0, emulator: { port: 0 } });
  try {
    return await run(pipeline);
  } finally {
    await pipeline.close();
  }
}

/** Publishes `count` donations and returns them. */
async function publish(pipeline: LocalPipeline, count: number): Promise<DonationCreatedEvent[]> {
  const donations = sampleDonations(count);
  await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(donations);
  return donations;
}

/**
 * Runs executions back to back, as the schedule and continuations would on AWS, until `done()` says so. A failed
 * execution is passed to `onFailure`, which decides whether the drain goes on.
 */
async function drain(
  pipeline: LocalPipeline,
  done: () => Promise<boolean>,
  onFailure: (summary: DrainSummary) => boolean = () => false,
): Promise<DrainSummary[]> {
  const summaries: DrainSummary[] = [];
  const started = performance.now();
  while (!(await done())) {
    const summary = await pipeline.workflow.execute();
    summaries.push(summary);
    if (summary.status === "FAILED" && !onFailure(summary)) throw new Error(`execution failed: ${summary.error?.name} ${summary.error?.cause}`);
    if (summary.received === 0 && !summary.continued) await sleep(1000); // the next schedule
    process.stdout.write(`\r  ${recordCount(pipeline)} written, ${seconds(performance.now() - started)} s   `);
  }
  process.stdout.write("\r\x1b[2K");
  return summaries;
}

/** What the base and the queues hold, against the donations published. */
async function outcomeOf(pipeline: LocalPipeline, donations: DonationCreatedEvent[]) {
  const outcome = await accountFor(pipeline, { validIds: donations.map((d) => d.Id), invalidBodies: [] });
  return {
    recordsWritten: outcome.records.length,
    lost: outcome.missing.length,
    duplicateRecords: outcome.duplicated.length,
    deadLettered: outcome.deadLetters.length,
    leftInSourceQueue: outcome.leftInSourceQueue,
  };
}

/** Waits until `predicate` holds, polling every 200 ms. */
async function until(predicate: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await predicate())) await sleep(200);
}

const queueEmpty = (pipeline: LocalPipeline) => async () => {
  const { visible, hidden } = await depth(pipeline, pipeline.queueUrls.source);
  return visible + hidden === 0;
};

export const UNATTENDED_SCENARIOS: UnattendedScenario[] = [
  {
    name: "outage",
    what: "every write answered 503 for --outage-minutes (default 10) mid-drain, then healed",
    count: 3000,
    targets: "0 dead-lettered, 0 lost, 0 duplicates; drained <= 90 s after the heal",
    run: (workflow, count, { outageMinutes }) =>
      withPipeline(workflow, async (pipeline) => {
        const donations = await publish(pipeline, count);
        const timeline: Record<string, number> = {};
        const started = performance.now();
        // The outage starts once a third is written, and ends outageMinutes later.
        const outage = (async () => {
          await until(() => recordCount(pipeline) >= count / 3);
          const rule = pipeline.emulator!.faults.add({ status: 503, operation: "write" });
          timeline.outageStartedAt = performance.now() - started;
          timeline.writtenWhenItStarted = recordCount(pipeline);
          await sleep(outageMinutes * 60_000);
          pipeline.emulator!.faults.remove(rule.id);
          timeline.healedAt = performance.now() - started;
        })();
        const summaries = await drain(pipeline, queueEmpty(pipeline));
        await outage;
        const drainedAt = performance.now() - started;
        const receiveCounts = summaries.filter((s) => s.received > 0).length;
        return {
          ...(await outcomeOf(pipeline, donations)),
          outageMinutes,
          writtenBeforeTheOutage: timeline.writtenWhenItStarted,
          drainedSecondsAfterHeal: seconds(drainedAt - (timeline.healedAt ?? drainedAt)),
          totalSeconds: seconds(drainedAt),
          executions: summaries.length,
          executionsThatReceived: receiveCounts,
          injectedFaults: pipeline.emulator!.stats().injectedFaults,
          airtableRequests: pipeline.emulator!.stats().requests,
          stateTransitions: summaries.reduce((sum, s) => sum + s.stateTransitions, 0),
        };
      }),
  },
  {
    name: "flaky",
    what: "30% of writes answered 500 at random",
    count: 3000,
    targets: "0 dead-lettered, 0 lost, 0 duplicates; throughput reported",
    run: (workflow, count) =>
      withPipeline(workflow, async (pipeline) => {
        const donations = await publish(pipeline, count);
        pipeline.emulator!.faults.add({ status: 500, probability: 0.3, seed: 15, operation: "write" });
        const started = performance.now();
        const summaries = await drain(pipeline, queueEmpty(pipeline));
        const elapsed = performance.now() - started;
        const outcome = await outcomeOf(pipeline, donations);
        return {
          ...outcome,
          seconds: seconds(elapsed),
          recordsPerSecond: round(outcome.recordsWritten / (elapsed / 1000), 2),
          airtableRequests: pipeline.emulator!.stats().requests,
          executions: summaries.length,
          retries: summaries.reduce((sum, s) => sum + s.retried, 0),
        };
      }),
  },
  {
    name: "revoked",
    what: "the token refused (401) after a third of the donations, then fixed",
    count: 3000,
    targets: "the execution fails with AirtableMisconfigured, 0 dead-lettered, the rest written after the token is fixed",
    run: (workflow, count) =>
      withPipeline(workflow, async (pipeline) => {
        const donations = await publish(pipeline, count);
        const failures: string[] = [];
        let rule: { id: string } | undefined;
        const revoke = (async () => {
          await until(() => recordCount(pipeline) >= count / 3);
          rule = pipeline.emulator!.faults.add({ status: 401, operation: "write" });
        })();
        let writtenWhenRevoked = 0;
        const summaries = await drain(
          pipeline,
          async () => (await depth(pipeline, pipeline.queueUrls.source)).visible === 0 && failures.length > 0,
          (summary) => {
            failures.push(summary.error?.name ?? "?");
            writtenWhenRevoked = recordCount(pipeline);
            // A person sees the alarm and fixes the token.
            if (rule) pipeline.emulator!.faults.remove(rule.id);
            return summary.error?.name === ErrorName.AirtableConfiguration;
          },
        );
        await revoke;
        const outcome = await outcomeOf(pipeline, donations);
        const { hidden } = await depth(pipeline, pipeline.queueUrls.source);
        return {
          ...outcome,
          failedExecutions: failures,
          writtenBeforeTheFix: writtenWhenRevoked,
          writtenAfterTheFix: outcome.recordsWritten - writtenWhenRevoked,
          // The failed execution's round: hidden until its visibility timeout, as on AWS, then written by a later drain
          // (those it had written already are upserted again, changing nothing). Not lost: counted apart.
          heldByTheFailedExecution: hidden,
          missingUntilTheVisibilityTimeout: Math.min(outcome.lost, hidden),
          lost: Math.max(0, outcome.lost - hidden),
          executions: summaries.length,
        };
      }),
  },
  {
    name: "crash",
    what: "kill -9 of npm start with a drain in flight, then npm start again",
    count: 3000,
    targets: "0 lost, 0 duplicates, drained within 60 s of the restart",
    run: (workflow, count) =>
      withPipeline(workflow, async (pipeline) => {
        const env = {
          AWS_ENDPOINT_URL_SQS: pipeline.sqsEndpoint,
          AIRTABLE_TOKEN: pipeline.airtable.token,
          AIRTABLE_BASE_ID: pipeline.airtable.baseId,
          AIRTABLE_ENDPOINT_URL: pipeline.airtable.endpointUrl,
        };
        // npm start against this process's servers: its own folder (.local/ports-external-airtable), no console.
        const heldFile = `${ROOT}${instancePaths(instanceDataDir({})).heldMessagesFile}`;
        await rm(heldFile, { force: true });
        const lock = new DrainLock(pipeline.sqsEndpoint, `${ROOT}.local/drains`);
        let exited: string | undefined;
        const startNpm = () => {
          const child = spawnCommand("start", ["--every", "1", "--no-console", "--no-sfn"], env);
          let output = "";
          child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
          child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
          child.on("exit", (code, signal) => {
            if (signal !== "SIGKILL") exited = `npm start exited (${code ?? signal}): ${output.trim().split("\n").at(-1)}`;
          });
          return { child, output: () => output };
        };
        const orExit = (predicate: () => boolean | Promise<boolean>) => async () => {
          if (exited) throw new Error(exited);
          return predicate();
        };
        const kill = async (child: ChildProcess) => {
          const pid = lock.holder()?.pid;
          if (pid) process.kill(pid, "SIGKILL");
          child.kill("SIGKILL");
          await once(child, "exit");
        };
        const donations = await publish(pipeline, count);
        const first = startNpm();
        await until(orExit(() => recordCount(pipeline) >= count / 3));
        await kill(first.child);
        const writtenAtTheCrash = recordCount(pipeline);
        const { hidden: heldAtTheCrash } = await depth(pipeline, pipeline.queueUrls.source);
        const restarted = performance.now();
        const second = startNpm();
        try {
          await until(orExit(queueEmpty(pipeline)));
          const drainedSeconds = seconds(performance.now() - restarted);
          const recovered = /^recovered: (\d+)/m.exec(second.output())?.[1];
          return {
            ...(await outcomeOf(pipeline, donations)),
            writtenAtTheCrash,
            heldAtTheCrash,
            recoveredAtRestart: recovered === undefined ? 0 : Number(recovered),
            drainedSecondsAfterRestart: drainedSeconds,
          };
        } finally {
          await kill(second.child);
        }
      }),
  },
  {
    name: "idle",
    what: "scheduled executions on an empty queue",
    count: 0,
    targets: "<= 4 transitions per empty run; <= $1.00 a month at rate(5 minutes) before alarms",
    run: (workflow) =>
      withPipeline(workflow, async (pipeline) => {
        const runs: DrainSummary[] = [];
        for (let run = 0; run < 3; run++) runs.push(await pipeline.workflow.execute());
        const transitions = Math.max(...runs.map((r) => r.stateTransitions));
        return {
          emptyRunTransitions: transitions,
          statuses: runs.map((r) => r.status),
          idleMonthUsdAt5Minutes: round(idleMonthCost(5, transitions, 0), 2),
          idleMonthUsdAt1Minute: round(idleMonthCost(1, transitions, 0), 2),
          alarmsUsdPerMonth: round(ALARM_COUNT * AWS_PRICES.cloudWatchAlarmMonth, 2),
          idleMonthUsdAt5MinutesWithAlarms: round(idleMonthCost(5, transitions), 2),
        };
      }),
  },
];
