import { execFile } from "node:child_process";
import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  HistoryEventType,
  InvalidArn,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
  StopExecutionCommand,
} from "@aws-sdk/client-sfn";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { sampleDonations, serializeDonationEvent } from "@fundraise-sync/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { StateName } from "../../../stacks/drain-definition";
import { type LocalPipeline, startLocalPipeline } from "./pipeline";
import { ExecutionStore } from "./sfn-store";
import { serveSfnApi } from "./sfn-testing";
import { LOCAL_STATE_MACHINE_ARN } from "./workflow";

/**
 * The local runtime's Step Functions API, driven by the real `@aws-sdk/client-sfn` (and the AWS CLI when it is
 * installed) against a real local pipeline: what a tool written for a deployed stage sees here.
 */
const run = promisify(execFile);
const unknownExecution = `${LOCAL_STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:")}:no-such-execution`;

/** Every page of an execution's history, asking `pageSize` events at a time. */
async function allHistory(client: SFNClient, executionArn: string, pageSize: number, reverseOrder = false) {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  let pages = 0;
  do {
    const page = await client.send(new GetExecutionHistoryCommand({ executionArn, maxResults: pageSize, reverseOrder, nextToken }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
    pages++;
  } while (nextToken);
  return { events, pages };
}

describe("the local Step Functions API", () => {
  let pipeline: LocalPipeline;
  let api: Awaited<ReturnType<typeof serveSfnApi>>;
  let client: SFNClient;
  let drained: string;
  let dir: string;
  beforeAll(async () => {
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
      semantics: { listExecutionsLagMs: 0, describeExecutionLagMs: 0 },
    });
    dir = await mkdtemp(path.join(tmpdir(), "fundraise-sfn-"));
    api = await serveSfnApi(pipeline, dir);
    client = new SFNClient({ endpoint: api.url, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    // One drain of three donations and one invalid body, started through the API.
    for (const event of sampleDonations(3)) {
      await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: serializeDonationEvent(event) }));
    }
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: "not json" }));
    const started = await client.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "first-drain" }));
    drained = started.executionArn!;
    await api.idle();
  });
  afterAll(async () => {
    client?.destroy();
    await api?.close();
    await pipeline?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("lists and describes its one state machine, with the definition it runs", async () => {
    // Act
    const { stateMachines } = await client.send(new ListStateMachinesCommand({}));
    const described = await client.send(new DescribeStateMachineCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN }));

    // Assert
    expect(stateMachines?.map((machine) => [machine.stateMachineArn, machine.type])).toEqual([[LOCAL_STATE_MACHINE_ARN, "STANDARD"]]);
    expect(stateMachines?.[0]?.creationDate).toBeInstanceOf(Date);
    expect(described.status).toBe("ACTIVE");
    expect(Object.keys(JSON.parse(described.definition!).States)).toContain(StateName.ReceiveRound);
  });

  it("runs an execution started through it as a drain, and describes how it ended", async () => {
    // Act
    const execution = await client.send(new DescribeExecutionCommand({ executionArn: drained }));

    // Assert
    expect(execution.name).toBe("first-drain");
    expect(execution.status).toBe("SUCCEEDED");
    expect(execution.startDate).toBeInstanceOf(Date);
    expect(execution.stopDate!.getTime()).toBeGreaterThanOrEqual(execution.startDate!.getTime());
    expect(JSON.parse(execution.output!)).toMatchObject({ received: 4 });
  });

  it("gives the history in AWS's shapes, page by page, in either order", async () => {
    // Act
    const forward = await allHistory(client, drained, 25);
    const backward = await allHistory(client, drained, 1000, true);

    // Assert: numbered from 1, typed as the SDK knows them, dated, from ExecutionStarted to ExecutionSucceeded
    const { events } = forward;
    expect(forward.pages).toBeGreaterThan(2);
    expect(events.map((event) => event.id)).toEqual(events.map((_, index) => index + 1));
    expect(events.every((event) => Object.values(HistoryEventType).includes(event.type!))).toBe(true);
    expect(events.every((event) => event.timestamp instanceof Date)).toBe(true);
    expect(events[0]?.type).toBe("ExecutionStarted");
    expect(events.at(-1)?.type).toBe("ExecutionSucceeded");
    expect(backward.events.map((event) => event.id)).toEqual(events.map((event) => event.id).reverse());
    // A Task entered, scheduled and exited with its data; the invalid body's dead-lettering is in it.
    const validate = events.find((event) => event.type === "TaskStateEntered" && event.stateEnteredEventDetails?.name === StateName.Validate);
    expect(JSON.parse(validate!.stateEnteredEventDetails!.input!)).toBeTypeOf("object");
    expect(events.some((event) => event.type === "TaskScheduled" && event.taskScheduledEventDetails?.resourceType === "lambda")).toBe(true);
    expect(events.filter((event) => event.stateExitedEventDetails?.name === StateName.InvalidMessageDeadLettered)).toHaveLength(1);
  });

  it("answers unknown and malformed ARNs with AWS's errors", async () => {
    // Act / Assert
    await expect(client.send(new DescribeExecutionCommand({ executionArn: unknownExecution }))).rejects.toBeInstanceOf(ExecutionDoesNotExist);
    await expect(client.send(new GetExecutionHistoryCommand({ executionArn: unknownExecution }))).rejects.toBeInstanceOf(ExecutionDoesNotExist);
    await expect(client.send(new DescribeExecutionCommand({ executionArn: "not-an-arn" }))).rejects.toBeInstanceOf(InvalidArn);
    await expect(
      client.send(new ListExecutionsCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN.replace("DrainDonations", "Other") })),
    ).rejects.toBeInstanceOf(StateMachineDoesNotExist);
    await expect(client.send(new ListExecutionsCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, statusFilter: "DONE" as never }))).rejects.toMatchObject({
      name: "ValidationException",
    });
  });

  it("refuses an operation it does not serve, never pretending it succeeded", async () => {
    // Act
    const refusal = await client
      .send(new CreateStateMachineCommand({ name: "x", definition: "{}", roleArn: "arn:aws:iam::123456789012:role/x" }))
      .catch((error: Error) => error);

    // Assert
    expect(refusal).toMatchObject({ name: "UnknownOperationException", $metadata: { httpStatusCode: 400 } });
    expect((refusal as Error).message).toContain("CreateStateMachine is not supported by the local runtime");
  });

  it("lists executions newest first, filtered by status, in pages", async () => {
    // Arrange: two more drains (they find the queue empty)
    await client.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "second" }));
    await client.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "third" }));
    await api.idle();

    // Act
    const first = await client.send(new ListExecutionsCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, maxResults: 2 }));
    const second = await client.send(new ListExecutionsCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, maxResults: 2, nextToken: first.nextToken }));
    const failed = await client.send(new ListExecutionsCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, statusFilter: "FAILED" }));
    const succeeded = await client.send(new ListExecutionsCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, statusFilter: "SUCCEEDED" }));

    // Assert
    expect(first.executions?.map((execution) => execution.name)).toEqual(["third", "second"]);
    expect(first.nextToken).toBeDefined();
    expect(second.executions?.map((execution) => execution.name)).toEqual(["first-drain"]);
    expect(second.nextToken).toBeUndefined();
    expect(failed.executions).toEqual([]);
    expect(succeeded.executions).toHaveLength(3);
  });

  it("stops an execution that has not run yet: ABORTED, with the reason given, and it never runs", async () => {
    // Arrange: a drain that waits behind another (one at a time)
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: serializeDonationEvent(sampleDonations(1)[0]!) }));
    await client.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "ahead" }));
    const { executionArn } = await client.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "behind" }));

    // Act
    const stopped = await client.send(new StopExecutionCommand({ executionArn, error: "Operator", cause: "not needed" }));
    await api.idle();

    // Assert
    const execution = await client.send(new DescribeExecutionCommand({ executionArn }));
    const { events } = await client.send(new GetExecutionHistoryCommand({ executionArn }));
    expect(stopped.stopDate).toBeInstanceOf(Date);
    expect([execution.status, execution.error, execution.cause]).toEqual(["ABORTED", "Operator", "not needed"]);
    expect(events?.map((event) => event.type)).toEqual(["ExecutionAborted"]);
    await expect(client.send(new StopExecutionCommand({ executionArn }))).rejects.toMatchObject({ name: "ValidationException" });
  });

  it("refuses a second execution of a closed one's name, and bad input", async () => {
    // Act / Assert
    await expect(client.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "first-drain" }))).rejects.toMatchObject({
      name: "ExecutionAlreadyExists",
    });
    await expect(client.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, input: "{not json" }))).rejects.toMatchObject({
      name: "InvalidExecutionInput",
    });
    await expect(client.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "has spaces" }))).rejects.toMatchObject({
      name: "InvalidName",
    });
  });

  it("refuses a request naming another host, or sent from a web page", async () => {
    // Arrange
    // node:http, not fetch: fetch does not let a caller set Host.
    const call = (headers: Record<string, string>) =>
      new Promise<{ status: number; json(): unknown }>((resolve, reject) => {
        const request = http.request(
          api.url,
          { method: "POST", headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "AWSStepFunctions.ListStateMachines", ...headers } },
          (response) => {
            let body = "";
            response.on("data", (chunk) => (body += chunk));
            response.on("end", () => resolve({ status: response.statusCode!, json: () => JSON.parse(body) }));
          },
        );
        request.on("error", reject);
        request.end("{}");
      });

    // Act
    const ok = await call({});
    const rebound = await call({ host: "attacker.example:9327" });
    const fromPage = await call({ origin: "http://attacker.example" });

    // Assert
    expect(ok.status).toBe(200);
    expect([rebound.status, fromPage.status]).toEqual([403, 403]);
    expect(fromPage.json()).toMatchObject({ __type: expect.stringMatching(/AccessDenied/) });
  });

  it("answers the AWS CLI (aws stepfunctions list-executions --endpoint-url …)", async (context) => {
    // Arrange
    const aws = await run("sh", ["-c", "command -v aws"]).then(({ stdout }) => stdout.trim(), () => "");
    if (aws === "") {
      console.log("skipped: the AWS CLI (aws) is not installed; `apt-get install awscli` to run this test");
      context.skip();
    }
    const env = { ...process.env, AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local", AWS_DEFAULT_REGION: "us-east-1", AWS_PAGER: "" };

    // Act
    const { stdout } = await run(
      aws,
      ["stepfunctions", "list-executions", "--endpoint-url", api.url, "--state-machine-arn", LOCAL_STATE_MACHINE_ARN, "--output", "json"],
      { env, timeout: 30_000 },
    );
    const missing = await run(aws, ["stepfunctions", "describe-execution", "--endpoint-url", api.url, "--execution-arn", unknownExecution], {
      env,
      timeout: 30_000,
    }).catch((error: { stderr: string; code: number }) => error);

    // Assert
    const names = (JSON.parse(stdout) as { executions: { name: string }[] }).executions.map((execution) => execution.name);
    expect(names).toContain("first-drain");
    expect((missing as { stderr: string }).stderr).toContain("ExecutionDoesNotExist");
  });

  // Last: it closes the API, as npm start does when it stops.
  it("keeps executions and their histories for the next start", async () => {
    // Arrange
    const before = await allHistory(client, drained, 1000);
    await api.close();

    // Act
    const reopened = await ExecutionStore.open({ definition: pipeline.workflow.definition, dir });

    // Assert
    expect(reopened.get(drained)).toMatchObject({ name: "first-drain", status: "SUCCEEDED" });
    expect(reopened.list().map((execution) => execution.name)).toContain("behind");
    expect((await reopened.events(drained))?.map((event) => event.type)).toEqual(before.events.map((event) => event.type));
  });
});
