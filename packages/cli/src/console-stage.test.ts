import http from "node:http";
import type { AddressInfo } from "node:net";
import { SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { sampleDonations, serializeDonationEvent } from "@fundraise-sync/core";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { serveSfnApi } from "@fundraise-sync/local/sfn-testing";
import { LOCAL_STATE_MACHINE_ARN } from "@fundraise-sync/local/workflow";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type StageConsole, startStageConsole } from "./console";
import { resolveTarget, stackName } from "./sfn-target";

/**
 * `npm run console -- --stage NAME` offline: a real local pipeline's Step Functions API stands in for the stage's
 * (`AWS_ENDPOINT_URL_SFN`), a stand-in CloudFormation gives the stack's outputs, and the console is asked through its
 * own HTTP API what a person's page would show: the stage's executions and their events, its dead letter and its
 * queues' depths, and the stage named before a change.
 */
const CHROMIUM = "/usr/bin/chromium";

describe("the console on a stage", () => {
  let pipeline: LocalPipeline;
  let api: Awaited<ReturnType<typeof serveSfnApi>>;
  let cloudFormation: http.Server;
  let console_: StageConsole;
  let drainName: string;
  let invalidMessageId: string;
  const saved = { ...process.env };
  const donations = sampleDonations(2);

  beforeAll(async () => {
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
      semantics: { listExecutionsLagMs: 0, describeExecutionLagMs: 0 },
    });
    api = await serveSfnApi(pipeline);
    for (const event of donations) {
      await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: serializeDonationEvent(event) }));
    }
    invalidMessageId = (await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: '{"Id":"not-a-donation"}' }))).MessageId!;
    const sfn = new SFNClient({ endpoint: api.url, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    drainName = (await sfn.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN }))).executionArn!.split(":").pop()!;
    sfn.destroy();
    await api.idle();

    cloudFormation = http.createServer((request, response) => {
      request.resume();
      request.on("end", () => {
        const output = (key: string, value: string) => `<member><OutputKey>${key}</OutputKey><OutputValue>${value}</OutputValue></member>`;
        response.writeHead(200, { "content-type": "text/xml" });
        response.end(
          `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
            `<StackName>${stackName("test")}</StackName><StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2025-01-01T00:00:00Z</CreationTime>` +
            `<Outputs>${output("StateMachineArn", LOCAL_STATE_MACHINE_ARN)}${output("QueueUrl", pipeline.queueUrls.source)}${output("DeadLetterQueueUrl", pipeline.queueUrls.deadLetter)}</Outputs>` +
            `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeStacksResponse>`,
        );
      });
    });
    await new Promise<void>((resolve) => cloudFormation.listen(0, "127.0.0.1", resolve));
    // What the SDK's usual chain would find for a stage; here it leads to the stand-ins.
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: "AKIASTAGETEST",
      AWS_SECRET_ACCESS_KEY: "stage-secret-never-printed",
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_CLOUDFORMATION: `http://127.0.0.1:${(cloudFormation.address() as AddressInfo).port}`,
      AWS_ENDPOINT_URL_SFN: api.url,
    });
    const target = await resolveTarget({ stage: "test" });
    console_ = await startStageConsole({ target, queueUrl: target.queueUrl!, deadLetterQueueUrl: target.deadLetterQueueUrl!, port: 0, pollMs: 300 });
  });
  afterAll(async () => {
    await console_?.close();
    process.env = saved;
    await new Promise((resolve) => cloudFormation?.close(resolve));
    await api?.close();
    await pipeline?.close();
  });

  const get = async <T>(path: string): Promise<T> => (await fetch(`${console_.url}${path}`)).json() as Promise<T>;
  const post = (path: string, body: unknown) =>
    fetch(`${console_.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  interface Snapshot {
    graph: { nodes: { id: string }[] };
    executions: { name: string; status: string; summary?: { received: number; written: number; deadLettered: number } }[];
    queues?: { source: { visible: number }; deadLetter: { visible: number; inFlight: number } };
    deadLetters: { messageId: string; sourceMessageId?: string; errorName?: string }[];
    commands: { connection: string; stage?: string };
  }
  /** The snapshot once `ready` holds (the console polls every 300 ms here). */
  const snapshotWhen = async (ready: (snapshot: Snapshot) => boolean): Promise<Snapshot> => {
    for (const until = Date.now() + 8000; ; ) {
      const snapshot = await get<Snapshot>("/api/snapshot");
      if (ready(snapshot) || Date.now() > until) return snapshot;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  it("shows the stage's executions with what each did, its dead letter and its queues, from the APIs", async () => {
    // Act
    const snapshot = await snapshotWhen((s) => s.executions.some((entry) => entry.name === drainName && entry.status !== "RUNNING") && s.deadLetters.length > 0);

    // Assert
    expect(snapshot.commands).toEqual({ connection: "--stage test", stage: "test" });
    expect(snapshot.graph.nodes.map((node) => node.id)).toEqual(expect.arrayContaining(["ReceiveBatch", "Validate", "DeadLetterInvalidMessage"]));
    const drain = snapshot.executions.find((entry) => entry.name === drainName);
    expect(drain).toMatchObject({ status: "SUCCEEDED", summary: { received: 3, written: 2, deadLettered: 1 } });
    expect(snapshot.queues?.source.visible).toBe(0);
    // Visible, or hidden for a moment while the console lists it.
    expect(snapshot.queues!.deadLetter.visible + snapshot.queues!.deadLetter.inFlight).toBe(1);
    expect(snapshot.deadLetters).toEqual([expect.objectContaining({ sourceMessageId: invalidMessageId, errorName: "InvalidDonationEventError" })]);
    expect(JSON.stringify(snapshot)).not.toMatch(/AKIASTAGETEST|stage-secret-never-printed/);
  });

  it("an execution's events read as the page reads the local ones: the failed Validate caught, the records written", async () => {
    // Act
    const { events } = await get<{ events: { type: string; state?: string; error?: string; caught?: { next: string }; messageIds?: string[] }[] }>(
      `/api/executions/${drainName}/events?lite=1`,
    );
    const story = await get<{ executions: { name: string }[]; deadLetters: { sourceMessageId?: string }[] }>(`/api/story?q=${invalidMessageId}`);

    // Assert
    expect(events[0]?.type).toBe("ExecutionStarted");
    expect(events.at(-1)?.type).toBe("ExecutionSucceeded");
    expect(events.filter((event) => event.type === "StateEntered" && event.state === "Validate")).toHaveLength(3);
    expect(events.find((event) => event.type === "StateFailed" && event.state === "Validate")).toMatchObject({ error: "InvalidDonationEventError" });
    expect(events.find((event) => event.type === "StateCaught")).toMatchObject({ state: "Validate", caught: { next: expect.any(String) } });
    expect(story.executions.map((execution) => execution.name)).toEqual([drainName]);
    expect(story.deadLetters.map((letter) => letter.sourceMessageId)).toEqual([invalidMessageId]);
  });

  it("a new drain on the stage reaches the page's live stream by itself", async () => {
    // Arrange
    const stream = await fetch(`${console_.url}/api/stream`);
    const reader = stream.body!.getReader();
    let text = "";
    const sfn = new SFNClient({ endpoint: api.url, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });

    // Act
    await sfn.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "live-drain" }));
    sfn.destroy();
    for (const until = Date.now() + 8000; Date.now() < until && !/event: execution\ndata: \{[^\n]*"name":"live-drain","status":"SUCCEEDED"/.test(text); ) {
      text += new TextDecoder().decode((await reader.read()).value);
    }
    await reader.cancel();

    // Assert
    expect(text).toMatch(/^retry: 1000\nevent: hello\ndata: \{/);
    expect(text).toMatch(/event: execution\ndata: \{[^\n]*"name":"live-drain","status":"SUCCEEDED"/);
  });

  it.skipIf(!existsSync(CHROMIUM))("in Chromium: the header names the stage, and Delete asks in a dialog naming it (dismissed: nothing deleted)", async () => {
    // Arrange
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      page.setDefaultTimeout(15_000);
      await page.goto(console_.url);
      await page.locator('header [data-stage="test"]').waitFor();
      await page.locator(`[data-execution="${drainName}"]`).first().waitFor();
      await page.getByRole("tab", { name: /Dead letters \(1\)/ }).click();
      await page.locator("li.letter input[type=checkbox]").first().check();
      let asked = "";
      page.once("dialog", (dialog) => {
        asked = dialog.message();
        void dialog.dismiss();
      });

      // Act
      await page.getByRole("button", { name: "Delete", exact: true }).click();
      await page.getByRole("button", { name: "Confirm delete" }).click();
      await page.getByRole("button", { name: "Delete", exact: true }).waitFor();

      // Assert
      expect(asked).toBe("On stage test: delete 1 dead letter(s) for good?");
      expect((await get<Snapshot>("/api/snapshot")).deadLetters).toHaveLength(1);
    } finally {
      await browser.close();
    }
  });

  it("a change on the stage must name it: refused without, let through with (here to the selection's own check)", async () => {
    // Act
    const unnamed = await post("/api/dlq/delete", { all: true });
    const named = await post("/api/dlq/delete", { stage: "test" });

    // Assert
    expect(unnamed.status).toBe(409);
    expect(((await unnamed.json()) as { error: string }).error).toBe('this console acts on stage test: confirm by naming it (stage: "test")');
    expect(named.status).toBe(400);
    expect(((await named.json()) as { error: string }).error).toMatch(/^choose messages/);
    expect((await get<Snapshot>("/api/snapshot")).deadLetters).toHaveLength(1);
  });
});
