/**
 * Soak benchmark (`npm run bench`): drains donations through the synthesized state machine into the Airtable
 * emulator with Airtable's real limiter on (5 requests/s per base, a 30 s lock after a 429), in the scenarios that
 * decide how the pipeline spends a base's shared budget, and prints (and writes to JSON) what each achieved:
 * throughput, requests per 1,000 donations, 429s, losses, duplicates, dead letters, transitions and AWS cost.
 *
 *   alone    the pipeline alone on the base, the default share (4 requests/s)
 *   reader   another client reads the base once a second; the pipeline's share is 3
 *   burst    another client sends 10 requests at once every 60 s (it draws 429s); the default share
 *   refused  2% of the donations are refused by the base (422); the default share
 *
 * and the unattended ones (`unattended.ts`): outage, flaky, revoked, crash, idle.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME, DEFAULT_TOKEN } from "@fundraise-sync/airtable-emulator";
import {
  AIRTABLE_MAX_RECORDS_PER_REQUEST,
  DEFAULT_AIRTABLE_SHARE_PER_SECOND,
  type DonationCreatedEvent,
  SqsEventBus,
  sampleDonations,
} from "@fundraise-sync/core";
import { synthesizeWorkflowCached } from "../../../../stacks/synthesize";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { accountFor, queueDepth } from "@fundraise-sync/local/testing";
import { DEFAULT_HANDLERS, type DrainSummary, type TaskHandler } from "@fundraise-sync/local/workflow";
import { LEASE_WRITES_PER_DRAIN, costOf, deployedThroughput, idleMonthCost } from "./cost";
import { UsageError, parseCommandLine } from "../options";
import { UNATTENDED_SCENARIOS } from "./unattended";

const LAMBDA_MEMORY_GB = 256 / 1024;
const REFUSED_NAME = "Refused By The Base";

interface OtherClient {
  /** Requests it sent, and how many of them Airtable answered 429. */
  stop(): { requests: number; rateLimited: number };
}

interface Scenario {
  name: string;
  what: string;
  count: number;
  share: number;
  refusedPercent?: number;
  otherClient?: (pipeline: LocalPipeline) => OtherClient;
  targets: string;
}

/** Another client of the base: reads a page of the table, as a website's "total raised" counter would. */
function reader(everyMs: number, burst: number) {
  return (pipeline: LocalPipeline): OtherClient => {
    let requests = 0;
    let rateLimited = 0;
    const read = async () => {
      requests++;
      const response = await fetch(`${pipeline.airtable.endpointUrl}/v0/${DEFAULT_BASE_ID}/${DEFAULT_TABLE_NAME}?pageSize=100`, {
        headers: { authorization: `Bearer ${DEFAULT_TOKEN}` },
      }).catch(() => undefined);
      if (response?.status === 429) rateLimited++;
      await response?.arrayBuffer();
    };
    const tick = () => {
      for (let i = 0; i < burst; i++) void read();
    };
    const timer = setInterval(tick, everyMs);
    tick();
    return {
      stop() {
        clearInterval(timer);
        return { requests, rateLimited };
      },
    };
  };
}

const SCENARIOS: Scenario[] = [
  {
    name: "alone",
    what: "alone on the base, default share",
    count: 3000,
    share: DEFAULT_AIRTABLE_SHARE_PER_SECOND,
    targets: ">= 36 records/s, 0 x 429, <= 105 requests per 1,000 donations",
  },
  {
    name: "reader",
    what: "another client reads 1 request/s, share 3",
    count: 1500,
    share: 3,
    otherClient: reader(1000, 1),
    targets: ">= 27 records/s, <= one 429 per 5 minutes, 0 dead-lettered, 0 lost, 0 duplicates",
  },
  {
    name: "burst",
    what: "another client sends 10 requests at once every 60 s, default share",
    count: 3000,
    share: DEFAULT_AIRTABLE_SHARE_PER_SECOND,
    otherClient: reader(60_000, 10),
    targets: "0 dead-lettered, 0 lost, 0 duplicates; throughput reported",
  },
  {
    name: "refused",
    what: "2% of records refused with 422, default share",
    count: 1000,
    share: DEFAULT_AIRTABLE_SHARE_PER_SECOND,
    refusedPercent: 2,
    targets: "only the refused dead-lettered; every neighbour written once",
  },
];

async function run(scenario: Scenario, count: number, workflow: Awaited<ReturnType<typeof synthesizeWorkflowCached>>) {
  // Lambda bills per invocation and per GB-second: time each handler as the local runtime calls it.
  const handlerMs: Record<string, number> = {};
  let invocations = 0;
  const timed = (name: string, handler: TaskHandler): TaskHandler => async (payload, context) => {
    const started = performance.now();
    invocations++;
    try {
      return await handler(payload, context);
    } finally {
      handlerMs[name] = (handlerMs[name] ?? 0) + performance.now() - started;
    }
  };
  const pipeline = await startLocalPipeline({
    workflow,
    sqsPort: 0,
    emulator: { port: 0 }, // Airtable's real limiter: 5 requests/s per base, a 30 s lock after a 429
    airtableRequestsPerSecond: scenario.share,
    handlers: Object.fromEntries(Object.entries(DEFAULT_HANDLERS).map(([name, handler]) => [name, timed(name, handler)])),
  });
  // SQS requests the state machine makes (receives, DLQ sends), counted on the wire; deletes are counted below.
  let sqsCalls = 0;
  try {
    const refusedCount = Math.round((count * (scenario.refusedPercent ?? 0)) / 100);
    // Every n-th donation carries a name the base refuses.
    const every = refusedCount > 0 ? Math.floor(count / refusedCount) : 0;
    const donations: DonationCreatedEvent[] = sampleDonations(count).map((donation, index) =>
      every > 0 && index % every === 0 && index / every < refusedCount ? { ...donation, DonorDisplayName: REFUSED_NAME } : donation,
    );
    const refused = new Set(donations.filter((d) => d.DonorDisplayName === REFUSED_NAME).map((d) => d.Id));
    if (refused.size > 0) {
      pipeline.emulator!.faults.failWhen(
        { field: "Donor Display Name", equals: REFUSED_NAME },
        { status: 422, type: "INVALID_VALUE_FOR_COLUMN", message: 'Field "Donor Display Name" cannot accept the provided value' },
      );
    }
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(donations);
    pipeline.sqs.middlewareStack.add((next) => async (args) => {
      sqsCalls++;
      return next(args);
    }, { step: "initialize" });
    console.log(`\n${scenario.name}: ${scenario.what}: ${count} donations${refused.size ? `, ${refused.size} refused by the base` : ""}`);

    // Act: executions back to back until the queue is empty, as the schedule (and continuations) would.
    const other = scenario.otherClient?.(pipeline);
    const summaries: DrainSummary[] = [];
    const started = performance.now();
    while ((await queueDepth(pipeline.sqs, pipeline.queueUrls.source)) > 0) {
      const summary = await pipeline.workflow.execute();
      summaries.push(summary);
      if (summary.status === "FAILED") throw new Error(`execution failed: ${summary.error?.name} ${summary.error?.cause}`);
      if (summary.received === 0) await new Promise((resolve) => setTimeout(resolve, 1000)); // released messages come back
      if (summaries.length > 500) throw new Error("the queue did not drain in 500 executions");
      const written = summaries.reduce((sum, s) => sum + s.written, 0);
      process.stdout.write(`\r  ${written} written, ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
    const seconds = (performance.now() - started) / 1000;
    const otherClient = other?.stop();
    // An idle month's cost follows from what one scheduled execution on an empty queue takes: measure one, once the
    // drains above are over in ListExecutions' lagging view (else the guard may count them and skip).
    await new Promise((resolve) => setTimeout(resolve, pipeline.workflow.semantics.listExecutionsLagMs + 50));
    const emptyRunTransitions = (await pipeline.workflow.execute()).stateTransitions;
    process.stdout.write("\r\x1b[2K");

    // Assess, from what the base and the queues hold.
    const validIds = donations.filter((d) => !refused.has(d.Id)).map((d) => d.Id);
    const outcome = await accountFor(pipeline, { validIds, invalidBodies: [] });
    const stats = pipeline.emulator!.stats();
    const ours429 = stats.rateLimited - (otherClient?.rateLimited ?? 0);
    const ourRequests = stats.requests - (otherClient?.requests ?? 0);
    const deadLettered = outcome.deadLetters.length;
    const deadLetteredOther = outcome.deadLetters.filter((letter) => !refused.has(JSON.parse(letter.body).Id)).length;
    const transitions = summaries.reduce((sum, s) => sum + s.stateTransitions, 0);
    const lambdaSeconds = Object.values(handlerMs).reduce((sum, ms) => sum + ms, 0) / 1000;
    const publishCalls = Math.ceil(count / 10);
    const deleteCalls = Math.ceil(count / 10);
    const usage = {
      stateTransitions: transitions,
      lambdaInvocations: invocations,
      lambdaGbSeconds: lambdaSeconds * LAMBDA_MEMORY_GB,
      sqsRequests: publishCalls + sqsCalls + deleteCalls,
      dynamoDbWrites: LEASE_WRITES_PER_DRAIN * summaries.length,
    };
    const rounds = Math.ceil(count / 30);
    return {
      scenario: scenario.name,
      what: scenario.what,
      targets: scenario.targets,
      share: scenario.share,
      donations: count,
      seconds: round(seconds, 1),
      recordsWritten: outcome.records.length,
      recordsPerSecond: round(outcome.records.length / seconds, 2),
      airtableRequests: ourRequests,
      requestsPer1000Donations: round((ourRequests / count) * 1000, 1),
      recordsPerRequest: round(outcome.records.length / Math.max(1, ourRequests), 2),
      pipeline429s: ours429,
      pipeline429sPer5Minutes: round(ours429 / (seconds / 300), 2),
      otherClient: otherClient ? { ...otherClient } : undefined,
      lost: outcome.missing.length,
      duplicateRecords: outcome.duplicated.length,
      deadLettered,
      deadLetteredThatWereNotRefused: deadLetteredOther,
      refused: refused.size,
      leftInSourceQueue: outcome.leftInSourceQueue,
      executions: summaries.length,
      retries: summaries.reduce((sum, s) => sum + s.retried, 0),
      stateTransitionsPerDonation: round(transitions / count, 2),
      costPer1000DonationsUsd: round((costOf(usage) / count) * 1000, 4),
      usage: { ...usage, lambdaGbSeconds: round(usage.lambdaGbSeconds, 2) },
      transitionsPerRound: round(transitions / rounds, 1),
      emptyRunTransitions,
    };
  } finally {
    await pipeline.close();
  }
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

async function main() {
  // The local commands' parser: one-line errors, exit 2 (see the README's command-line contract).
  const { values } = parseCommandLine(process.argv.slice(2), {
    scenario: { type: "string" },
    count: { type: "string" },
    out: { type: "string" },
    "outage-minutes": { type: "string" },
  });
  const names = [...SCENARIOS, ...UNATTENDED_SCENARIOS].map((s) => s.name);
  if (values.help) {
    console.log(
      `Usage: npm run bench -- [--scenario ${names.join("|")}|all (default all)] [--count N] [--outage-minutes M (default 10)] [--out FILE (default bench-results/soak.json)]\n` +
        [...SCENARIOS, ...UNATTENDED_SCENARIOS].map((s) => `  ${s.name.padEnd(8)} ${s.what} (${s.count} donations); target: ${s.targets}`).join("\n"),
    );
    return;
  }
  const all = values.scenario === undefined || values.scenario === "all";
  const chosen = all ? SCENARIOS : SCENARIOS.filter((s) => s.name === values.scenario);
  const unattended = all ? UNATTENDED_SCENARIOS : UNATTENDED_SCENARIOS.filter((s) => s.name === values.scenario);
  if (chosen.length + unattended.length === 0) throw new UsageError(`--scenario must be one of ${names.join(", ")} or all, not "${values.scenario}"`);
  const outageMinutes = values["outage-minutes"] === undefined ? 10 : Number(values["outage-minutes"]);
  if (!Number.isFinite(outageMinutes) || outageMinutes <= 0 || outageMinutes > 24 * 60) {
    throw new UsageError(`--outage-minutes must be a number of minutes from 0 to 1440, not "${values["outage-minutes"]}"`);
  }
  const count = values.count === undefined ? undefined : Number(values.count);
  if (count !== undefined && (!Number.isInteger(count) || count < 30 || count > 20_000)) {
    throw new UsageError(`--count must be a whole number from 30 to 20000, not "${values.count}"`);
  }
  const out = values.out ?? "bench-results/soak.json";

  const workflow = await synthesizeWorkflowCached();
  const results = [];
  for (const scenario of chosen) {
    const result = await run(scenario, count ?? scenario.count, workflow);
    results.push(result);
    console.log(
      `  ${result.recordsPerSecond} records/s over ${result.seconds} s; ${result.requestsPer1000Donations} requests per 1,000 donations ` +
        `(${result.recordsPerRequest} records each); pipeline 429s ${result.pipeline429s}` +
        (result.otherClient ? `; other client ${result.otherClient.requests} requests, ${result.otherClient.rateLimited} answered 429` : "") +
        `\n  lost ${result.lost}, duplicates ${result.duplicateRecords}, dead-lettered ${result.deadLettered} (of them not refused: ${result.deadLetteredThatWereNotRefused}), ` +
        `left queued ${result.leftInSourceQueue}\n  ${result.stateTransitionsPerDonation} transitions per donation, $${result.costPer1000DonationsUsd} per 1,000 donations` +
        `\n  target: ${result.targets}`,
    );
  }
  const unattendedResults: Record<string, unknown>[] = [];
  for (const scenario of unattended) {
    const scenarioCount = scenario.count === 0 ? 0 : (count ?? scenario.count);
    console.log(`\n${scenario.name}: ${scenario.what}${scenarioCount ? `: ${scenarioCount} donations` : ""}`);
    const result = { scenario: scenario.name, what: scenario.what, targets: scenario.targets, donations: scenarioCount, ...(await scenario.run(workflow, scenarioCount, { outageMinutes })) };
    unattendedResults.push(result);
    console.log(
      Object.entries(result)
        .filter(([key]) => !["scenario", "what", "targets"].includes(key))
        .map(([key, value]) => `  ${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
        .join("\n") + `\n  target: ${scenario.targets}`,
    );
  }
  const alone = results.find((r) => r.scenario === "alone");
  const deployed = deployedThroughput({ share: DEFAULT_AIRTABLE_SHARE_PER_SECOND, recordsPerRequest: AIRTABLE_MAX_RECORDS_PER_REQUEST });
  const emptyRunTransitions = results[0]?.emptyRunTransitions;
  const summary = {
    date: new Date().toISOString(),
    results,
    unattended: unattendedResults,
    idleMonthCostUsd: emptyRunTransitions === undefined ? undefined : round(idleMonthCost(5, emptyRunTransitions), 2),
    emptyRunTransitions,
    deployedEstimate: deployed,
  };
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(
    `\ndeployed (estimate, see cost.ts for the figures used): ~${deployed.recordsPerSecond} records/s per drain ` +
      `(a round of 30 takes ~${deployed.roundSeconds} s: ${deployed.explanation})` +
      (alone ? `; locally ${alone.recordsPerSecond} records/s` : "") +
      (emptyRunTransitions === undefined ? "" : `\nidle month: $${summary.idleMonthCostUsd} (an execution on an empty queue: ${emptyRunTransitions} transitions, every 5 minutes, and the alarms)`) +
      `\nwritten to ${out}`,
  );
  if (results.some((r) => r.lost || r.duplicateRecords || r.leftInSourceQueue || r.deadLetteredThatWereNotRefused)) process.exitCode = 1;
  if (unattendedResults.some((r) => r.lost || r.duplicateRecords || r.deadLettered)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
