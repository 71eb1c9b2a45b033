import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SqsEventBus, sampleDonations, serializeDonationEvent } from "@fundraise-sync/core";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { drainUntilEmpty } from "@fundraise-sync/local/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { emulatorDataFile } from "./bench/seed-base";
import { run } from "./run-cli";

// A file of its own: the handlers of a pipeline that drained keep their clients for the process, so a second
// draining pipeline needs a process of its own.
describe("reconcile's pace beside a draining pipeline, with Airtable's limiter on", () => {
  let pipeline: LocalPipeline;
  let dir: string;
  const written = sampleDonations(200);
  beforeAll(async () => {
    // 200 records already in the base (2 pages), and the emulator's real limiter: 5 requests/s, a 30 s lock after a 429.
    dir = await mkdtemp(path.join(tmpdir(), "fundraise-reconcile-pace-"));
    const dataFile = path.join(dir, "airtable.json");
    await writeFile(dataFile, emulatorDataFile(written));
    pipeline = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, emulator: { port: 0, dataFile } });
  });
  afterAll(async () => {
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reads at its 1 request/s while the pipeline writes at its default 4: no 429", async () => {
    // Arrange: 60 donations waiting to be drained
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(260).slice(200));
    await writeFile(path.join(dir, "source.ndjson"), written.map(serializeDonationEvent).join("\n"));

    // Act: both at once (reconcile in a process of its own: the pipeline's handlers read this process's environment)
    const [result, summaries] = await Promise.all([
      run(
        "reconcile",
        ["--source", path.join(dir, "source.ndjson"), "--queue-url", pipeline.queueUrls.source, "--airtable-port", new URL(pipeline.airtable.endpointUrl).port],
        { AWS_ENDPOINT_URL_SQS: pipeline.sqsEndpoint },
      ),
      drainUntilEmpty(pipeline),
    ]);

    // Assess: every request of both fitted Airtable's 5 per second
    expect(pipeline.emulator!.stats().rateLimited).toBe(0);
    expect(summaries.reduce((sum, summary) => sum + summary.written, 0)).toBe(60);
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^ {2}matches {10}200$/m);
  });
});
