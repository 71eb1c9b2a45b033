import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { sampleDonation, serializeDonationEvent } from "@fundraise-sync/core";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { queueDepth } from "@fundraise-sync/local/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { type CommandContext, Commands, shellQuote } from "./commands";
import { sendInvalidDeadLetter } from "./test-support";

const run = promisify(execFile);

/**
 * The commands the console prints beside each action, run as printed (through a shell, from the repository root):
 * a person who scripts what they clicked gets the same effect.
 */
describe("the CLI commands the console shows", () => {
  let pipeline: LocalPipeline;
  let context: CommandContext;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "console-commands-"));
    pipeline = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, emulator: { port: 0, rateLimit: false }, airtableRequestsPerSecond: 5 });
    context = { connection: `--sqs-port ${new URL(pipeline.sqsEndpoint).port}` };
  });
  afterAll(async () => {
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  });

  let letterId: string;
  beforeEach(async () => {
    letterId = await sendInvalidDeadLetter(pipeline);
  });

  const shell = (command: string) => run("sh", ["-c", command], { cwd: process.cwd(), env: { ...process.env, CI: "1" } });
  const depths = async () => ({
    source: await queueDepth(pipeline.sqs, pipeline.queueUrls.source),
    deadLetter: await queueDepth(pipeline.sqs, pipeline.queueUrls.deadLetter),
  });

  it("resend sends an edited body that Validate passes, in place of the dead letter", async () => {
    // Arrange
    const file = path.join(dir, "edited.json");
    await writeFile(file, serializeDonationEvent(sampleDonation()));
    const before = await depths();

    // Act
    const { stdout } = await shell(Commands.resend(context, letterId, file));

    // Assert
    expect(stdout).toContain(`${letterId} removed from the dead-letter queue`);
    expect(await depths()).toEqual({ source: before.source + 1, deadLetter: before.deadLetter - 1 });
  });

  it("resend refuses an edited body that Validate refuses, with one line, and sends nothing", async () => {
    const file = path.join(dir, "still-bad.json");
    await writeFile(file, '{"Id":"still-bad"}');
    const before = await depths();

    const failure = (await shell(Commands.resend(context, letterId, file)).catch((error: unknown) => error)) as { code: number; stderr: string };

    expect(failure.code).toBe(2);
    expect(failure.stderr.trim().split("\n").filter((line) => line.startsWith("error:"))).toHaveLength(1);
    expect(failure.stderr).toContain("Validate refuses");
    expect(await depths()).toEqual(before);
  });

  it("redrive and delete act on exactly the chosen dead letter", async () => {
    const before = await depths();
    await shell(Commands.redrive(context, { ids: [letterId] }, true));
    expect(await depths()).toEqual({ source: before.source + 1, deadLetter: before.deadLetter - 1 });

    const { MessageId } = await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.deadLetter, MessageBody: "x" }));
    await shell(Commands.delete(context, { ids: [MessageId!] }));
    expect((await depths()).deadLetter).toBe(before.deadLetter - 1);
  });

  it("quotes what a shell would mangle", () => {
    expect(shellQuote("plain-id_1.json")).toBe("plain-id_1.json");
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
  });
});
