import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { ReceiveMessageCommand, DeleteMessageCommand } from "@aws-sdk/client-sqs";
import { ErrorName, MAX_EVENT_BYTES, sampleDonation, serializeDonationEvent } from "@fundraise-sync/core";
import { localDeadLetterActions } from "@fundraise-sync/local/dead-letter-actions";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { queueDepth } from "@fundraise-sync/local/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { buildPage, type PageBundle } from "./build";
import { startPipelineConsole } from "./index";
import { sendInvalidDeadLetter } from "./test-support";

/** A raw HTTP request with exactly these headers (fetch will not forge a Host). */
function send(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
        // A stream never ends by itself: its first frame is enough here.
        if (res.headers["content-type"]?.startsWith("text/event-stream") && text.includes("\n\n")) res.destroy();
      });
      const done = () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers });
      res.on("end", done);
      res.on("close", done);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("the console server", () => {
  let pipeline: LocalPipeline;
  let server: Awaited<ReturnType<typeof startPipelineConsole>>;
  let dir: string;
  let host: string;
  let page: PageBundle;

  beforeAll(async () => {
    page = await buildPage();
    dir = await mkdtemp(path.join(tmpdir(), "console-server-"));
    pipeline = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, emulator: { port: 0, rateLimit: false }, airtableRequestsPerSecond: 5 });
    server = await startPipelineConsole({
      pipeline,
      deadLetters: localDeadLetterActions({ sqs: pipeline.sqs, sourceUrl: pipeline.queueUrls.source, deadLetterUrl: pipeline.queueUrls.deadLetter }),
      definition: inject("workflow").definition,
      port: 0,
      dir,
      pollMs: 100,
    });
    host = `127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.close();
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  });

  let letterId: string;
  beforeEach(async () => {
    letterId = await sendInvalidDeadLetter(pipeline);
  });
  const deleteBody = () => JSON.stringify({ ids: [letterId] });
  const dlqDepth = () => queueDepth(pipeline.sqs, pipeline.queueUrls.deadLetter);
  /** Empties the donations queue, so that the next test starts with nothing sent. */
  const drainSource = async () => {
    for (;;) {
      const { Messages = [] } = await pipeline.sqs.send(new ReceiveMessageCommand({ QueueUrl: pipeline.queueUrls.source, MaxNumberOfMessages: 10 }));
      if (Messages.length === 0) return;
      for (const message of Messages) await pipeline.sqs.send(new DeleteMessageCommand({ QueueUrl: pipeline.queueUrls.source, ReceiptHandle: message.ReceiptHandle! }));
    }
  };

  it("serves the page and its bundle from itself, on 127.0.0.1 only", async () => {
    // Act
    const html = await send(`${server.url}/`, "GET", { host });
    const script = await send(`${server.url}/app.js`, "GET", { host });

    // Assert
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(html.status).toBe(200);
    expect(html.text).toContain('src="/app.js"');
    expect(html.text).not.toMatch(/https?:\/\//); // nothing from elsewhere
    expect(script.status).toBe(200);
    expect(script.text.length).toBe(page["app.js"].length);
    expect(String(html.headers["content-security-policy"])).toContain("default-src 'self'");
  });

  it("refuses a delete posted by a page of another origin (CSRF), and deletes nothing", async () => {
    // Act
    const reply = await send(`${server.url}/api/dlq/delete`, "POST", { host, origin: "http://evil.example", "content-type": "application/json" }, deleteBody());

    // Assert
    expect(reply.status).toBe(403);
    expect(await dlqDepth()).toBeGreaterThanOrEqual(1);
  });

  it("refuses a redrive sent with a rebound Host name (DNS rebinding), and moves nothing", async () => {
    const reply = await send(
      `${server.url}/api/dlq/redrive`,
      "POST",
      { host: `attacker.example:${server.port}`, "content-type": "application/json" },
      JSON.stringify({ all: true, force: true }),
    );
    expect(reply.status).toBe(403);
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(0);
  });

  it("refuses to hand donors' data to a rebound Host name, on reads and on the live stream", async () => {
    const snapshot = await send(`${server.url}/api/snapshot`, "GET", { host: `attacker.example:${server.port}` });
    const stream = await send(`${server.url}/api/stream`, "GET", { host: `attacker.example:${server.port}` });
    expect([snapshot.status, stream.status]).toEqual([403, 403]);
    expect(snapshot.text).not.toContain("not-a-guid");
  });

  it("refuses a form post (not JSON), which a page of another origin could send without asking", async () => {
    const reply = await send(`${server.url}/api/dlq/delete`, "POST", { host, "content-type": "application/x-www-form-urlencoded" }, `ids=${letterId}`);
    expect(reply.status).toBe(415);
    expect(await dlqDepth()).toBeGreaterThanOrEqual(1);
  });

  it("refuses an edited body that Validate refuses, and sends nothing", async () => {
    const reply = await send(
      `${server.url}/api/dlq/resend`,
      "POST",
      { host, origin: `http://${host}`, "content-type": "application/json" },
      JSON.stringify({ id: letterId, body: '{"Id":"still-bad"}' }),
    );
    expect(reply.status).toBe(422);
    expect(JSON.parse(reply.text).verdict).toMatchObject({ valid: false, errorName: ErrorName.InvalidDonationEvent });
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(0);
  });

  it("refuses a 4 KiB edited body up front, in Check with Validate and in Send, naming the limit; sends nothing", async () => {
    // Arrange: a valid event, padded to 4 KiB (it used to be shown "Validate passes it" and then fail with HTTP 500)
    const event = sampleDonation({ DonorDisplayName: "" });
    const edited = serializeDonationEvent({ ...event, DonorDisplayName: "x".repeat(4 * 1024 - Buffer.byteLength(serializeDonationEvent(event))) });
    expect(Buffer.byteLength(edited)).toBe(4096);
    const headers = { host, origin: `http://${host}`, "content-type": "application/json" };
    const problem = `body: is 4096 bytes; a DonationCreated event may be at most ${MAX_EVENT_BYTES} bytes`;

    // Act
    const checked = await send(`${server.url}/api/dlq/validate`, "POST", headers, JSON.stringify({ body: edited }));
    const sent = await send(`${server.url}/api/dlq/resend`, "POST", headers, JSON.stringify({ id: letterId, body: edited }));

    // Assert
    expect(checked.status).toBe(200);
    expect(JSON.parse(checked.text)).toEqual({ valid: false, errorName: ErrorName.InvalidDonationEvent, problems: [problem] });
    expect(sent.status).toBe(422);
    expect(JSON.parse(sent.text)).toEqual({ ok: false, verdict: { valid: false, errorName: ErrorName.InvalidDonationEvent, problems: [problem] } });
    expect(await queueDepth(pipeline.sqs, pipeline.queueUrls.source)).toBe(0);
    expect(await dlqDepth()).toBeGreaterThanOrEqual(1);
  });

  it("sends an edited body of exactly the limit", async () => {
    const event = sampleDonation({ DonorDisplayName: "" });
    const edited = serializeDonationEvent({ ...event, DonorDisplayName: "x".repeat(MAX_EVENT_BYTES - Buffer.byteLength(serializeDonationEvent(event))) });
    const reply = await send(`${server.url}/api/dlq/resend`, "POST", { host, origin: `http://${host}`, "content-type": "application/json" }, JSON.stringify({ id: letterId, body: edited }));
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text)).toMatchObject({ action: "resend", ok: true });
    await drainSource();
  });

  it("answers a resend that fails after Validate with a reason a person can read, not a bare status", async () => {
    const reply = await send(
      `${server.url}/api/dlq/resend`,
      "POST",
      { host, origin: `http://${host}`, "content-type": "application/json" },
      JSON.stringify({ id: "no-such-message", body: serializeDonationEvent(sampleDonation()) }),
    );
    expect(reply.status).toBe(500);
    expect(JSON.parse(reply.text)).toMatchObject({ ok: false, detail: "not in the dead-letter queue: no-such-message (nothing sent)" });
  });

  it("deletes when the console's own page asks, and says which CLI command does the same", async () => {
    // Arrange
    const before = await dlqDepth();

    // Act
    const reply = await send(`${server.url}/api/dlq/delete`, "POST", { host, origin: `http://${host}`, "content-type": "application/json", "sec-fetch-site": "same-origin" }, deleteBody());

    // Assert
    expect(reply.status).toBe(200);
    const action = JSON.parse(reply.text);
    expect(action).toMatchObject({ action: "delete", ok: true });
    expect(action.command).toBe(`npm run dlq -- delete --id ${letterId} --yes`);
    expect(await dlqDepth()).toBe(before - 1);
  });

  it("starts its live stream with the whole state, so a reload catches up", async () => {
    const stream = await send(`${server.url}/api/stream`, "GET", { host: `localhost:${server.port}` });
    expect(stream.status).toBe(200);
    const [eventLine, dataLine] = stream.text.split("\n").filter((line) => line.startsWith("event:") || line.startsWith("data:"));
    expect(eventLine).toBe("event: hello");
    const hello = JSON.parse(dataLine!.slice("data: ".length));
    expect(hello.graph.nodes.length).toBeGreaterThan(5);
    expect(hello).toHaveProperty("executions");
  });
});
