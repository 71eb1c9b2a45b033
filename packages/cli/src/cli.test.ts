import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { DeadLetterAttribute, ErrorName, MAX_EVENT_BYTES, sampleDonation, serializeDonationEvent } from "@fundraise-sync/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { run, runInProcess } from "./run-cli";

const COMMANDS = ["start", "publish", "run-once", "dlq", "executions", "story", "airtable", "reconcile", "bench", "bench:reconcile", "emulator", "bench:emulator", "bundle-sizes"] as const;

/** Nothing listens here: commands that must fail before any network call are pointed at it. */
const DEAD_QUEUE_URL = "http://127.0.0.1:9/000000000000/FundraiseDonations";

describe("the local commands", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "fundraise-cli-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each(COMMANDS)("%s --help prints its usage and exits 0", async (command) => {
    // Act
    const result = await run(command, ["--help"]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: npm /);
    expect(result.stderr).toBe("");
  });

  it("refuses an oversized event from a file with the size message, exit 2, nothing sent", async () => {
    // Arrange
    const file = path.join(dir, "oversized.ndjson");
    const big = sampleDonation({ DonorDisplayName: "x".repeat(MAX_EVENT_BYTES) });
    await writeFile(file, `${serializeDonationEvent(sampleDonation())}\n${serializeDonationEvent(big)}\n`);

    // Act
    const result = await run("publish", ["--file", file, "--queue-url", DEAD_QUEUE_URL]);

    // Assess: Validate's size check names the line and the limit
    const bytes = Buffer.byteLength(serializeDonationEvent(big));
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(`oversized.ndjson line 2: Not a valid DonationCreated event: body: is ${bytes} bytes; a DonationCreated event may be at most ${MAX_EVENT_BYTES} bytes`);
  });

  it("refuses an oversized raw body with the queue's size message, exit 2, nothing sent", async () => {
    // Arrange: --raw skips Validate; the producer's own size check still applies
    const file = path.join(dir, "oversized-raw.ndjson");
    const big = sampleDonation({ DonorDisplayName: "x".repeat(MAX_EVENT_BYTES) });
    await writeFile(file, `${serializeDonationEvent(big)}\n`);

    // Act
    const result = await run("publish", ["--raw", "--file", file, "--queue-url", DEAD_QUEUE_URL]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(`accepts at most ${MAX_EVENT_BYTES} bytes per message`);
  });

  it("refuses an invalid event in a file naming its line, exit 2", async () => {
    // Arrange
    const file = path.join(dir, "invalid.ndjson");
    await writeFile(file, `${serializeDonationEvent(sampleDonation())}\n\n{"Id":"nope"}\n`);

    // Act
    const result = await run("publish", ["--file", file, "--queue-url", DEAD_QUEUE_URL]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/^error: .*invalid\.ndjson line 3: Not a valid DonationCreated event: Id: must be a Guid/);
  });

  it("run-once says to run npm start first when nothing listens, exit 1", async () => {
    // Act
    const result = await run("run-once", ["--sqs-port", "9", "--airtable-port", "9"], { AWS_ENDPOINT_URL_SQS: "" });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/^error: nothing is listening at http:\/\/127\.0\.0\.1:9 \(SQS\): run `npm start` first/);
  });
});

describe("publish, a drain, dlq list and dlq redrive, end to end", () => {
  let pipeline: LocalPipeline;
  let dir: string;
  let env: Record<string, string>;
  let queueFlags: string[];
  beforeAll(async () => {
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
    });
    dir = await mkdtemp(path.join(tmpdir(), "fundraise-cli-e2e-"));
    env = { AWS_ENDPOINT_URL_SQS: pipeline.sqsEndpoint };
    queueFlags = ["--queue-url", pipeline.queueUrls.source];
  });
  afterAll(async () => {
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("dead-letters a malformed body with its reason, lists it without consuming it, and redrives it unchanged", async () => {
    // Arrange: one malformed body (sent raw) and three valid donations
    const malformed = '{"Id":"not-a-guid","DonationAmount":"lots"}';
    const file = path.join(dir, "malformed.ndjson");
    await writeFile(file, `${malformed}\n`);
    const raw = await run("publish", ["--raw", "--file", file, ...queueFlags], env);
    expect(raw).toMatchObject({ code: 0, stderr: "" });
    expect(raw.stdout).toMatch(/^published 1, failed 0/);
    const samples = await run("publish", ["--count", "3", ...queueFlags], env);
    expect(samples.stdout).toMatch(/^published 3, failed 0/);

    // Act: one execution, in this process
    const summary = await pipeline.workflow.execute();

    // Assess: three written, the malformed one dead-lettered
    expect(summary).toMatchObject({ status: "SUCCEEDED", received: 4, written: 3, deadLettered: 1 });

    // Act: list, twice (listing must not consume)
    const first = await run("dlq", ["list", "--json", ...queueFlags], env);
    const second = await run("dlq", ["list", "--json", ...queueFlags], env);

    // Assess
    expect(first).toMatchObject({ code: 0, stderr: "" });
    const letters = JSON.parse(first.stdout) as { messageId: string; errorName: string; cause: string; failedState: string; body: string }[];
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ errorName: ErrorName.InvalidDonationEvent, failedState: "Validate", body: malformed });
    expect(letters[0]!.cause).toMatch(/^Not a valid DonationCreated event: Id: must be a Guid/);
    expect(JSON.parse(second.stdout)).toHaveLength(1);

    // Assess: the listing names the message by the DLQ copy's id and by the id it had in the source queue
    const { sourceMessageId } = letters[0] as { sourceMessageId?: string };
    expect(sourceMessageId).toMatch(/\S/);
    expect(sourceMessageId).not.toBe(letters[0]!.messageId);
    const text = await runInProcess("dlq", ["list", ...queueFlags], env);
    expect(text.stdout).toContain(`MessageId        ${letters[0]!.messageId}\nSourceMessageId  ${sourceMessageId}\n`);

    // Act: redrive; the body can never pass Validate, so it stays
    const kept = await run("dlq", ["redrive", ...queueFlags], env);

    // Assess
    expect(kept).toMatchObject({ code: 0, stderr: "" });
    expect(kept.stdout).toMatch(/^redriven 0, kept 1 that can never pass Validate, failed 0/);
    expect(kept.stdout).toContain(`kept ${letters[0]!.messageId}: Id: must be a Guid`);

    // Act: redrive with --force
    const redrive = await run("dlq", ["redrive", "--force", ...queueFlags], env);

    // Assess: the DLQ is empty, the source queue holds the original body, byte for byte, with a redrive count only
    expect(redrive).toMatchObject({ code: 0, stderr: "" });
    expect(redrive.stdout).toMatch(/^redriven 1, kept 0 that can never pass Validate, failed 0/);
    const { Attributes } = await pipeline.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: pipeline.queueUrls.deadLetter,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    expect(Attributes).toMatchObject({ ApproximateNumberOfMessages: "0", ApproximateNumberOfMessagesNotVisible: "0" });
    const { Messages = [] } = await pipeline.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: pipeline.queueUrls.source,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ["All"],
      }),
    );
    expect(Messages.map((message) => message.Body)).toEqual([malformed]);
    expect(Messages[0]!.MessageAttributes).toEqual({ RedriveCount: expect.objectContaining({ DataType: "Number", StringValue: "1" }) });
  });
});

describe("dlq resend checks the edited body's size with Validate", () => {
  let pipeline: LocalPipeline;
  let dir: string;
  let env: Record<string, string>;
  let queueFlags: string[];
  beforeAll(async () => {
    pipeline = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, emulator: { port: 0, rateLimit: false } });
    dir = await mkdtemp(path.join(tmpdir(), "fundraise-cli-resend-"));
    env = { AWS_ENDPOINT_URL_SQS: pipeline.sqsEndpoint };
    queueFlags = ["--queue-url", pipeline.queueUrls.source];
  });
  afterAll(async () => {
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A valid event's body padded to exactly `bytes` bytes. */
  const validOfBytes = (bytes: number) => {
    const event = sampleDonation({ DonorDisplayName: "" });
    const base = Buffer.byteLength(serializeDonationEvent(event));
    return serializeDonationEvent({ ...event, DonorDisplayName: "x".repeat(bytes - base) });
  };
  const depth = async (queueUrl: string) => {
    const { Attributes } = await pipeline.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
  };

  it("refuses a 4 KiB edited body up front, naming the limit: one line, exit 2, nothing sent or removed", async () => {
    // Arrange
    const { MessageId } = await pipeline.sqs.send(
      new SendMessageCommand({
        QueueUrl: pipeline.queueUrls.deadLetter,
        MessageBody: '{"Id":"not-a-guid"}',
        MessageAttributes: { [DeadLetterAttribute.ErrorName]: { DataType: "String", StringValue: ErrorName.InvalidDonationEvent } },
      }),
    );
    const file = path.join(dir, "too-big.json");
    await writeFile(file, validOfBytes(4 * 1024));

    // Act
    const result = await run("dlq", ["resend", "--id", MessageId!, "--file", file, ...queueFlags], env);

    // Assert
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      `error: not sent: Validate refuses the edited body: body: is 4096 bytes; a DonationCreated event may be at most ${MAX_EVENT_BYTES} bytes`,
    ]);
    expect(await depth(pipeline.queueUrls.source)).toBe(0);
    expect(await depth(pipeline.queueUrls.deadLetter)).toBe(1);

    // Act: the same edit at exactly the limit is sent, with its RedriveCount
    await writeFile(file, validOfBytes(MAX_EVENT_BYTES));
    const sent = await run("dlq", ["resend", "--id", MessageId!, "--file", file, ...queueFlags], env);

    // Assert
    expect(sent).toMatchObject({ code: 0, stderr: "" });
    expect(sent.stdout).toMatch(/^sent as message \S+ to .* \(redrive 1\)/);
    expect(await depth(pipeline.queueUrls.source)).toBe(1);
    expect(await depth(pipeline.queueUrls.deadLetter)).toBe(0);
  });

  it("refuses an id that is not in the DLQ as bad input, like redrive and delete: one line, exit 2, nothing sent", async () => {
    // Arrange
    const file = path.join(dir, "edited.json");
    await writeFile(file, validOfBytes(600));
    const before = await depth(pipeline.queueUrls.source);

    // Act: in-process (the process boundary is proven by the contract test)
    const result = await runInProcess("dlq", ["resend", "--id", "no-such-message", "--file", file, ...queueFlags], env);

    // Assert
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("error: not in the dead-letter queue: no-such-message (nothing sent)\n");
    expect(await depth(pipeline.queueUrls.source)).toBe(before);
  });
});
