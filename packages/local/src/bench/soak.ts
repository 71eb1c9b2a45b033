/**
 * Soak benchmark (`npm run bench`): publishes N donations with faults injected (Airtable errors, invalid and
 * duplicate messages), drains them through the synthesized state machine with Airtable's real pacing (the emulator's
 * 5 requests/s per base limiter on, the writer's stack pacing), and prints — and writes to a JSON file — throughput,
 * 429s, losses, duplicates, dead letters by reason, state transitions per message and the AWS cost that follows.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { AIRTABLE_REQUESTS_PER_SECOND, SqsEventBus, sampleDonations, serializeDonationEvent } from "@fundraise-sync/core";
import { StateName } from "../../../../stacks/drain-definition";
import { MAP_MAX_CONCURRENCY } from "../../../../stacks/settings";
import { synthesizeWorkflowCached } from "../../../../stacks/synthesize";
import { startLocalPipeline } from "../pipeline";
import { accountFor, queueDepth } from "../testing";
import { DEFAULT_HANDLERS, type DrainSummary, type TaskHandler } from "../workflow";
import { costOf, idleMonthCost } from "./cost";
import { UsageError, parseCommandLine } from "../cli/options";

const DEFAULTS = {
  count: 1000,
  invalidPercent: 2,
  duplicatePercent: 2,
  /** Airtable 503s (with Retry-After) on this share of writes. */
  airtable503Percent: 2,
  /**
   * Injected 429s (as if another client had hit the base's limit). None by default: by Airtable's rules each costs
   * 30 s before its retry, which stalls that batch; `--inject-429 N` measures that cost separately.
   */
  inject429: 0,
  out: "bench-results/soak.json",
};
const LAMBDA_MEMORY_GB = 256 / 1024;

async function main() {
  // The local commands' parser: one-line errors, exit 2 (see the README's command-line contract).
  const { values } = parseCommandLine(process.argv.slice(2), {
    count: { type: "string" },
    "inject-429": { type: "string" },
    out: { type: "string" },
  });
  if (values.help) {
    console.log(
      "Usage: npm run bench -- [--count N (10 to 20000, default 1000)] [--inject-429 N (default 0)] [--out FILE (default bench-results/soak.json)]",
    );
    return;
  }
  const count = values.count === undefined ? DEFAULTS.count : Number(values.count);
  if (!Number.isInteger(count) || count < 10 || count > 20_000) throw new UsageError("--count must be an integer from 10 to 20000");
  const out = values.out ?? DEFAULTS.out;
  const inject429 = values["inject-429"] === undefined ? DEFAULTS.inject429 : Number(values["inject-429"]);
  if (!Number.isInteger(inject429) || inject429 < 0 || inject429 > count) throw new UsageError("--inject-429 must be an integer from 0 to --count");

  const workflow = await synthesizeWorkflowCached();
  // Lambda bills per invocation and per GB-second: time each handler as the local runtime calls it.
  const handlerMs: Record<string, number> = {};
  let invocations = 0;
  const timed = (name: string, handler: TaskHandler): TaskHandler => async (payload) => {
    const started = performance.now();
    invocations++;
    try {
      return await handler(payload);
    } finally {
      handlerMs[name] = (handlerMs[name] ?? 0) + performance.now() - started;
    }
  };
  const pipeline = await startLocalPipeline({
    workflow,
    sqsPort: 0,
    emulator: { port: 0 }, // Airtable's real limiter: 5 requests/s per base, 30 s penalty after a 429
    // Retriers in definition order: Lambda service, Airtable 429, Airtable 5xx. A 429 keeps its real 30 s (the base is
    // locked that long); injected 5xx are retried after 1 s instead of 2–20 s, so the run measures pacing, not waiting.
    retryIntervalOverrides: { [StateName.WriteToAirtable]: [1000, 30_000, 1000] },
    handlers: Object.fromEntries(Object.entries(DEFAULT_HANDLERS).map(([name, handler]) => [name, timed(name, handler)])),
  });
  try {
    // Arrange the load: valid donations, some sent twice, some malformed; a seeded fraction of Airtable 5xx/429s.
    const donations = sampleDonations(count);
    const invalidCount = Math.round((count * DEFAULTS.invalidPercent) / 100);
    const duplicateCount = Math.round((count * DEFAULTS.duplicatePercent) / 100);
    const valid = donations.slice(invalidCount);
    const invalidBodies = donations.slice(0, invalidCount).map((donation, i) => {
      const body = JSON.parse(serializeDonationEvent(donation));
      return JSON.stringify(i % 2 ? { ...body, DonationAmount: 0 } : { ...body, Id: "not-a-guid" });
    });
    const bus = new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source);
    const published = await bus.publish([...valid, ...valid.slice(0, duplicateCount)]);
    for (let start = 0; start < invalidBodies.length; start += 10) {
      await pipeline.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: pipeline.queueUrls.source,
          Entries: invalidBodies.slice(start, start + 10).map((body, i) => ({ Id: String(i), MessageBody: body })),
        }),
      );
    }
    const messages = published.published.length + invalidBodies.length;
    pipeline.emulator!.faults.failFraction(DEFAULTS.airtable503Percent / 100, { status: 503, retryAfterSeconds: 1, seed: 7, operation: "write" });
    if (inject429 > 0) pipeline.emulator!.faults.failFraction(inject429 / count, { status: 429, seed: 11, operation: "write" });
    console.log(
      `soak: ${messages} messages (${valid.length} donations, ${duplicateCount} duplicates, ${invalidCount} invalid); ` +
        `Airtable faults injected on writes: ${DEFAULTS.airtable503Percent}% 503` +
        (inject429 > 0 ? `, about ${inject429} 429s` : ", no 429s (add some with --inject-429 N)"),
    );

    // Act: executions back to back until the queue is empty, as the schedule would with a backlog.
    const summaries: DrainSummary[] = [];
    const started = performance.now();
    while ((await queueDepth(pipeline.sqs, pipeline.queueUrls.source)) > 0) {
      const summary = await pipeline.workflow.execute();
      summaries.push(summary);
      console.log(
        `  execution ${summaries.length}: ${summary.status} received ${summary.received}, written ${summary.written}, ` +
          `retried ${summary.retried}, dead-lettered ${summary.deadLettered}, ${(summary.durationMs / 1000).toFixed(1)} s`,
      );
      if (summary.status === "FAILED") throw new Error(`execution failed: ${summary.error?.name} ${summary.error?.cause}`);
      if (summaries.length > 200) throw new Error("the queue did not drain in 200 executions");
    }
    const seconds = (performance.now() - started) / 1000;

    // Assess.
    const outcome = await accountFor(pipeline, { validIds: valid.map((d) => d.Id), invalidBodies });
    const stats = pipeline.emulator!.stats();
    const deadLetteredByReason: Record<string, number> = {};
    for (const letter of outcome.deadLetters) {
      const reason = letter.attributes.ErrorName ?? "unknown";
      deadLetteredByReason[reason] = (deadLetteredByReason[reason] ?? 0) + 1;
    }
    const recordsWritten = outcome.records.length;
    const writesPerSecond = recordsWritten / seconds;
    const transitions = summaries.reduce((sum, summary) => sum + summary.stateTransitions, 0);
    const lambdaSeconds = Object.values(handlerMs).reduce((sum, ms) => sum + ms, 0) / 1000;
    // SQS requests: publish (1 per 10), receive (1 per batch + 1 empty per execution), delete (1 per message), DLQ sends.
    const sqsRequests = Math.ceil(messages / 10) * 2 + summaries.length + messages + outcome.deadLetters.length;
    const usage = { stateTransitions: transitions, lambdaInvocations: invocations, lambdaGbSeconds: lambdaSeconds * LAMBDA_MEMORY_GB, sqsRequests };
    // An idle month's cost follows from what one scheduled execution on an empty queue takes: measure one.
    const emptyRun = (await pipeline.workflow.execute()).stateTransitions;
    const result = {
      date: new Date().toISOString(),
      messages,
      donations: valid.length,
      seconds: Number(seconds.toFixed(1)),
      recordsWritten,
      recordsWrittenPerSecond: Number(writesPerSecond.toFixed(2)),
      ceilingRequestsPerSecond: AIRTABLE_REQUESTS_PER_SECOND,
      percentOfCeiling: Number(((writesPerSecond / AIRTABLE_REQUESTS_PER_SECOND) * 100).toFixed(1)),
      airtableRequests: stats.requests,
      airtableRequestsPerSecond: Number((stats.requests / seconds).toFixed(2)),
      rateLimit429s: stats.rateLimited,
      injected429s: stats.injected429,
      injectedFaults: stats.injectedFaults,
      lost: outcome.missing.length,
      duplicateRecords: outcome.duplicated.length,
      leftInSourceQueue: outcome.leftInSourceQueue,
      deadLetteredByReason,
      executions: summaries.length,
      retries: summaries.reduce((sum, summary) => sum + summary.retried, 0),
      stateTransitions: transitions,
      stateTransitionsPerMessage: Number((transitions / messages).toFixed(2)),
      mapConcurrency: MAP_MAX_CONCURRENCY,
      writeIntervalMs: pipeline.writeIntervalMs,
      costPer1000DonationsUsd: Number(((costOf(usage) / messages) * 1000).toFixed(4)),
      idleMonthCostUsd: Number(idleMonthCost(5, emptyRun).toFixed(2)),
      usage,
    };
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`
records written/s   ${result.recordsWrittenPerSecond} (${result.percentOfCeiling}% of Airtable's ${AIRTABLE_REQUESTS_PER_SECOND} requests/s; goal ≥ 90%)
Airtable requests/s ${result.airtableRequestsPerSecond} (retries and updates included)
429s (rate limit)   ${result.rateLimit429s} (goal 0; ${result.injected429s} more were injected)
lost / duplicates   ${result.lost} / ${result.duplicateRecords} (must be 0 / 0)
dead-lettered       ${JSON.stringify(deadLetteredByReason)}
transitions/message ${result.stateTransitionsPerMessage}
cost                $${result.costPer1000DonationsUsd} per 1,000 donations; idle month $${result.idleMonthCostUsd}
written to ${out}`);
    if (result.lost || result.duplicateRecords || result.leftInSourceQueue) process.exitCode = 1;
  } finally {
    await pipeline.close();
  }
}

main().catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
