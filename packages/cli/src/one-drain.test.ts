import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DrainLock } from "@fundraise-sync/local/drain-lock";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { instanceDataDir, instancePaths } from "./instance";
import { ROOT, run, spawnCommand } from "./run-cli";

/**
 * `npm run run-once` beside `npm start`. The servers belong to this test (`npm start` is pointed at them as at
 * external ones), so nothing here touches a developer's `.local/` data or fixed ports.
 */
describe("one drain at a time locally: run-once beside npm start", () => {
  let pipeline: LocalPipeline;
  let env: Record<string, string>;
  let start: ChildProcess | undefined;
  /** The pid of the Node process running start.ts (tsx runs it in a child of its own). */
  let startPid: number | undefined;
  let startOutput = "";

  const queueDepth = async () => {
    const { Attributes } = await pipeline.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: pipeline.queueUrls.source, AttributeNames: ["ApproximateNumberOfMessages"] }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages);
  };
  const publish = async (count: number) => {
    const published = await run("publish", ["--count", String(count), "--queue-url", pipeline.queueUrls.source], env);
    expect(published.stdout).toMatch(new RegExp(`^published ${count}, failed 0`));
  };
  const lock = () => new DrainLock(pipeline.sqsEndpoint, `${ROOT}.local/drains`);
  const records = () => pipeline.emulator!.records(pipeline.airtable.baseId, pipeline.airtable.tableName);
  /** Resolves when `predicate` holds; the test's own timeout bounds the wait. */
  const until = async (predicate: () => boolean) => {
    while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 100));
  };

  beforeAll(async () => {
    pipeline = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, emulator: { port: 0, rateLimit: false }, airtableRequestsPerSecond: 5 });
    env = {
      AWS_ENDPOINT_URL_SQS: pipeline.sqsEndpoint,
      AIRTABLE_TOKEN: pipeline.airtable.token,
      AIRTABLE_BASE_ID: pipeline.airtable.baseId,
      AIRTABLE_ENDPOINT_URL: pipeline.airtable.endpointUrl,
    };
  });
  afterAll(async () => {
    for (const pid of [startPid, start?.pid]) {
      try {
        if (pid) process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await pipeline?.close();
  });

  it("asks the running npm start to drain now: the drain runs there, run-once prints its summary, exit 0", { timeout: 180_000 }, async () => {
    // Arrange: npm start, scheduled too rarely to drain again by itself after its first (empty) drain
    // --no-console, --no-sfn: a test binds no fixed port (9326, 9327) and writes no history into the repository's .local/.
    start = spawnCommand("start", ["--every", "3600", "--no-console", "--no-sfn"], env);
    start.stdout!.on("data", (chunk: Buffer) => (startOutput += chunk.toString()));
    await until(() => lock().holder()?.command === "npm start");
    startPid = lock().holder()!.pid;
    // npm start drains once as it starts: a first run-once waits for that drain (and runs an empty one), so the
    // donations published next cannot be taken by it.
    expect((await run("run-once", [], env)).code).toBe(0);
    await publish(5);

    // Act
    const result = await run("run-once", [], env);

    // Assert
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const [asked, summary] = result.stdout.trimEnd().split("\n");
    expect(asked).toBe(`npm start (pid ${startPid}) drains this queue: asked it to drain now`);
    expect(summary).toMatch(/^SUCCEEDED received 5, written 5 /);
    expect(startOutput).toMatch(/drain requested by run-once\n.*SUCCEEDED received 5, written 5 /);
    expect(records()).toHaveLength(5);
    expect(await queueDepth()).toBe(0);
  });

  it("takes over the lock of an npm start that died without letting go, and drains by itself", { timeout: 120_000 }, async () => {
    // Arrange
    process.kill(startPid!, "SIGKILL");
    await once(start!, "exit");
    expect(lock().holder()).toBeUndefined(); // the file is still there, its process is not
    await publish(2);

    // Act
    const result = await run("run-once", [], env);

    // Assert
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toMatch(/^SUCCEEDED received 2, written 2 /);
    expect(records()).toHaveLength(7);
    expect(lock().holder()).toBeUndefined();
  });

  it("says in one line that another run-once is draining the queue, starts nothing, exit 0", { timeout: 180_000 }, async () => {
    // Arrange: a first run-once whose write hangs until the fault is cleared (then it times out and is retried)
    await publish(1);
    pipeline.emulator!.faults.add({ hang: true, operation: "write" });
    const first = run("run-once", [], { ...env, AIRTABLE_REQUEST_TIMEOUT_MS: "10000" });
    await until(() => lock().holder()?.command === "npm run run-once");
    const firstPid = lock().holder()!.pid;

    // Act
    const second = await run("run-once", [], env);
    pipeline.emulator!.faults.clear();

    // Assert: the second started nothing; the first drained the message
    expect(second).toMatchObject({ code: 0, stderr: "" });
    expect(second.stdout).toBe(`a drain is already running on this queue (npm run run-once, pid ${firstPid}): not starting another\n`);
    const firstResult = await first;
    expect(firstResult).toMatchObject({ code: 0, stderr: "" });
    expect(firstResult.stdout).toMatch(/^SUCCEEDED received 1, written 1 /);
    expect(records()).toHaveLength(8);
    expect(await queueDepth()).toBe(0);
  });

  it("gives back at once what a killed npm start held: the next start says so in one line and drains it, once", { timeout: 180_000 }, async () => {
    // Arrange: an npm start whose write hangs, killed (-9) while its execution holds 3 donations
    const heldFile = `${ROOT}${instancePaths(instanceDataDir({})).heldMessagesFile}`;
    const before = records().length;
    await publish(3);
    pipeline.emulator!.faults.add({ hang: true, operation: "write" });
    const doomed = spawnCommand("start", ["--every", "3600", "--no-console", "--no-sfn"], env);
    const held = () => (existsSync(heldFile) ? (JSON.parse(readFileSync(heldFile, "utf8")) as unknown[]).length : 0);
    await until(() => held() === 3);
    const doomedPid = lock().holder()!.pid;
    process.kill(doomedPid, "SIGKILL");
    doomed.kill("SIGKILL");
    await once(doomed, "exit");
    pipeline.emulator!.faults.clear();
    expect(await queueDepth()).toBe(0); // hidden for the visibility timeout (about 2 h), as on AWS

    // Act
    let output = "";
    start = spawnCommand("start", ["--every", "3600", "--no-console", "--no-sfn"], env);
    start.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await until(() => records().length === before + 3);

    // Assert
    expect(output).toMatch(/^recovered: 3 message\(s\) the last npm start held when it stopped without finishing are back in the queue now/m);
    const ids = records().map((record) => record.fields.Id);
    expect(new Set(ids).size).toBe(ids.length);
    await until(() => lock().holder()?.command === "npm start");
    startPid = lock().holder()!.pid;
  });
});
