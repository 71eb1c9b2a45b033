import http from "node:http";
import type { AddressInfo } from "node:net";
import { SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { sampleDonations, serializeDonationEvent } from "@fundraise-sync/core";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { serveSfnApi } from "@fundraise-sync/local/sfn-testing";
import { LOCAL_STATE_MACHINE_ARN } from "@fundraise-sync/local/workflow";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runInProcess } from "./run-cli";
import { stackName } from "./sfn-target";

/**
 * `executions`, `story` and `run-once --stage` against a real local pipeline's Step Functions API, through the real
 * `@aws-sdk/client-sfn`. The stage path runs offline too: a stand-in CloudFormation (DescribeStacks, AWS's query
 * protocol) gives the stack's outputs, and `AWS_ENDPOINT_URL_SFN` points the SDK at the local API, as it would at AWS.
 */
describe("the commands that read executions", () => {
  let pipeline: LocalPipeline;
  let api: Awaited<ReturnType<typeof serveSfnApi>>;
  let cloudFormation: http.Server;
  let cloudFormationUrl: string;
  let stackRequests: string[];
  const donations = sampleDonations(2);
  let invalidMessageId: string;
  let drainName: string;

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
    const invalid = await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: '{"Id":"not-a-donation"}' }));
    invalidMessageId = invalid.MessageId!;
    const sfn = new SFNClient({ endpoint: api.url, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    const started = await sfn.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN }));
    drainName = started.executionArn!.split(":").pop()!;
    // And one that finds nothing.
    await sfn.send(new StartExecutionCommand({ stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "empty-drain" }));
    sfn.destroy();
    await api.idle();

    // A stand-in for CloudFormation's DescribeStacks: the stack `test` deployed, with the local state machine's ARN.
    stackRequests = [];
    cloudFormation = http.createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        stackRequests.push(body);
        const name = new URLSearchParams(body).get("StackName");
        if (name !== stackName("test")) {
          response.writeHead(400, { "content-type": "text/xml" });
          response.end(`<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${name} does not exist</Message></Error><RequestId>1</RequestId></ErrorResponse>`);
          return;
        }
        const output = (key: string, value: string) => `<member><OutputKey>${key}</OutputKey><OutputValue>${value}</OutputValue></member>`;
        response.writeHead(200, { "content-type": "text/xml" });
        response.end(
          `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
            `<StackName>${name}</StackName><StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2025-01-01T00:00:00Z</CreationTime>` +
            `<Outputs>${output("StateMachineArn", LOCAL_STATE_MACHINE_ARN)}${output("QueueUrl", pipeline.queueUrls.source)}${output("DeadLetterQueueUrl", pipeline.queueUrls.deadLetter)}</Outputs>` +
            `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeStacksResponse>`,
        );
      });
    });
    await new Promise<void>((resolve) => cloudFormation.listen(0, "127.0.0.1", resolve));
    cloudFormationUrl = `http://127.0.0.1:${(cloudFormation.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => cloudFormation?.close(resolve));
    await api?.close();
    await pipeline?.close();
  });

  const local = () => ["--sfn-port", String(api.port)];
  /** What the SDK's usual chain would find for a stage; here it leads to the stand-ins. */
  const stageEnv = () => ({
    AWS_ACCESS_KEY_ID: "AKIASTAGETEST",
    AWS_SECRET_ACCESS_KEY: "stage-secret-never-printed",
    AWS_REGION: "us-east-1",
    AWS_ENDPOINT_URL_CLOUDFORMATION: cloudFormationUrl,
    AWS_ENDPOINT_URL_SFN: api.url,
    // The drain runs in this process while the command does: keep its writer on the emulator.
    AIRTABLE_ENDPOINT_URL: pipeline.airtable.endpointUrl,
  });

  it("executions: the busy drains, with what each did", async () => {
    // Act
    const result = await runInProcess("executions", local());

    // Assert
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`the local runtime (${api.url}):`);
    expect(lines[1]).toMatch(/^STATUS\s+STARTED\s+DURATION\s+RECEIVED\s+WRITTEN\s+DEAD-LETTERED\s+RETRIED\s+EXECUTION$/);
    expect(lines[2]).toMatch(new RegExp(`^SUCCEEDED\\s+\\d\\d:\\d\\d:\\d\\d\\s+\\d+\\.\\d s\\s+3\\s+2\\s+1\\s+0\\s+${drainName}$`));
    expect(lines.at(-1)).toBe("(1 drain that found nothing to do not shown: --all shows them)");
  });

  it("executions --all --json: every drain, as JSON", async () => {
    // Act
    const result = await runInProcess("executions", [...local(), "--all", "--json"]);

    // Assert
    expect(result.code).toBe(0);
    const rows = JSON.parse(result.stdout) as { name: string; status: string; received: number; written: number; deadLettered: number }[];
    expect(rows.map(({ name, status, received, written, deadLettered }) => [name, status, received, written, deadLettered])).toEqual([
      ["empty-drain", "SUCCEEDED", 0, 0, 0],
      [drainName, "SUCCEEDED", 3, 2, 1],
    ]);
  });

  it("story --id: the execution that wrote it, and the record it ended in", async () => {
    // Act
    const result = await runInProcess("story", [...local(), "--id", donations[0]!.Id]);

    // Assert
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toContain(`execution ${drainName}`);
    expect(result.stdout).toMatch(/received as message [\w-]+\n.*written to Airtable: record rec\w+ \(created\)/);
    expect(result.stdout.trimEnd().split("\n").at(-1)).toMatch(/^ended: in Airtable, record rec\w+$/);
  });

  it("story --message-id: a refused body ends in the DLQ, with its reason", async () => {
    // Act
    const result = await runInProcess("story", [...local(), "--message-id", invalidMessageId, "--json"]);

    // Assert
    expect(result.code).toBe(0);
    const story = JSON.parse(result.stdout) as { ending: { what: string; reason: { error: string; cause: string } } };
    expect(story.ending.what).toBe("dead-lettered");
    expect(story.ending.reason.error).toBe("InvalidDonationEventError");
    expect(story.ending.reason.cause).toContain("FundraiserId");
  });

  it("story of a donation no execution saw: says so, exit 1", async () => {
    // Act
    const result = await runInProcess("story", [...local(), "--id", "evt-never-published", "--since", "1h"]);

    // Assert
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^event evt-never-published: not seen by any of the 2 execution\(s\) of the local runtime .* \(--since widens the window\)\n$/);
  });

  it("executions --stage: the stage's state machine from its stack outputs, credentials never printed", async () => {
    // Act
    const result = await runInProcess("executions", ["--stage", "test"], stageEnv());

    // Assert
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout.split("\n")[0]).toBe(`stage test (${stackName("test")}, us-east-1):`);
    expect(result.stdout).toContain(drainName);
    expect(stackRequests.at(-1)).toContain(`StackName=${stackName("test")}`);
    expect(result.stdout).not.toMatch(/AKIASTAGETEST|stage-secret-never-printed/);
  });

  it("run-once --stage: starts a drain through StartExecution and prints what it did", async () => {
    // Arrange
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: serializeDonationEvent(sampleDonations(1)[0]!) }));

    // Act
    const result = await runInProcess("run-once", ["--stage", "test"], stageEnv());

    // Assert
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const [started, summary] = result.stdout.trimEnd().split("\n");
    expect(started).toMatch(new RegExp(`^started arn:aws:states:.*:execution:local-fundraise-sync-DrainDonations:[\\w-]+ on stage test \\(`));
    expect(summary).toMatch(/^SUCCEEDED received 1, written 1, dead-lettered 0, retried 0, \d+\.\d s$/);
  });

  it("a stage that is not deployed: one line naming its stack, exit 1", async () => {
    // Act
    const result = await runInProcess("executions", ["--stage", "nosuch"], stageEnv());

    // Assert
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`error: cannot read stack ${stackName("nosuch")}: ValidationError: Stack with id ${stackName("nosuch")} does not exist\n`);
  });

  it("dlq --stage: the stage's DLQ from its outputs; a change asks first, naming the stage, or takes --yes", async () => {
    // Act
    const listed = await runInProcess("dlq", ["list", "--stage", "test", "--json"], stageEnv());
    const unasked = await runInProcess("dlq", ["delete", "--all", "--stage", "test"], stageEnv());
    const deleted = await runInProcess("dlq", ["delete", "--all", "--stage", "test", "--yes"], stageEnv());

    // Assert
    expect(listed.code).toBe(0);
    const [stageLine, ...json] = listed.stdout.split("\n");
    expect(stageLine).toBe(`stage test (${stackName("test")}, us-east-1)`);
    expect((JSON.parse(json.join("\n")) as { sourceMessageId?: string }[]).map((letter) => letter.sourceMessageId)).toEqual([invalidMessageId]);
    expect(unasked).toMatchObject({ code: 2, stderr: "error: stdin is not a terminal, so I cannot ask: add --yes to delete without asking on stage test\n" });
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(/deleted 1\n$/);
    expect(`${listed.stdout}${deleted.stdout}`).not.toMatch(/AKIASTAGETEST|stage-secret-never-printed/);
  });
});
