import { describe, expect, it } from "vitest";
import { queueArnOfUrl, requestsOfTask, taskStatesOf } from "./aws-requests";
import { SYNTH_ACCOUNT, SYNTH_REGION } from "./synthesize";
import type { AslGraph, AslState } from "./timing";

const MACHINE = `arn:aws:states:${SYNTH_REGION}:${SYNTH_ACCOUNT}:stateMachine:drain`;
const QUEUE_URL = `https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/donations`;
const QUEUE_ARN = `arn:aws:sqs:${SYNTH_REGION}:${SYNTH_ACCOUNT}:donations`;
const task = (Resource: string, Parameters: Record<string, unknown> = {}): AslState => ({ Type: "Task", Resource, Parameters, End: true });
const calls = (state: AslState) => requestsOfTask("State", state, MACHINE).map(({ action, resource }) => `${action} ${resource}`);

describe("the IAM request each kind of Task state makes", () => {
  it("names the SDK integration's action with the service's IAM prefix, batch APIs as their single-message actions", () => {
    expect(calls(task("arn:aws:states:::aws-sdk:sqs:receiveMessage", { QueueUrl: QUEUE_URL }))).toEqual([`sqs:ReceiveMessage ${QUEUE_ARN}`]);
    expect(calls(task("arn:aws:states:::aws-sdk:sqs:deleteMessageBatch", { QueueUrl: QUEUE_URL }))).toEqual([`sqs:DeleteMessage ${QUEUE_ARN}`]);
    expect(calls(task("arn:aws:states:::aws-sdk:sfn:listExecutions", { "StateMachineArn.$": "$$.StateMachine.Id" }))).toEqual([
      `states:ListExecutions ${MACHINE}`,
    ]);
  });

  it("takes an execution from the state's input to be one of this machine's own (describeExecution of a lease holder)", () => {
    expect(calls(task("arn:aws:states:::aws-sdk:sfn:describeExecution", { "ExecutionArn.$": "$.lease.holder" }))).toEqual([
      `states:DescribeExecution arn:aws:states:${SYNTH_REGION}:${SYNTH_ACCOUNT}:execution:drain:an-execution`,
    ]);
  });

  it("maps the optimized DynamoDB item integrations to their actions on the table", () => {
    const table = `arn:aws:dynamodb:${SYNTH_REGION}:${SYNTH_ACCOUNT}:table/leases`;
    for (const [api, action] of [["putItem", "PutItem"], ["getItem", "GetItem"], ["updateItem", "UpdateItem"], ["deleteItem", "DeleteItem"]]) {
      expect(calls(task(`arn:aws:states:::dynamodb:${api}`, { TableName: "leases", Key: {} }))).toEqual([`dynamodb:${action} ${table}`]);
    }
  });

  it("invokes the function a lambda:invoke names, or a Lambda ARN used directly", () => {
    const fn = `arn:aws:lambda:${SYNTH_REGION}:${SYNTH_ACCOUNT}:function:Validate`;
    expect(calls(task("arn:aws:states:::lambda:invoke", { FunctionName: fn, "Payload.$": "$" }))).toEqual([`lambda:InvokeFunction ${fn}`]);
    expect(calls(task("arn:aws:states:::lambda:invoke", { FunctionName: "Validate" }))).toEqual([`lambda:InvokeFunction ${fn}`]);
    expect(calls(task(fn))).toEqual([`lambda:InvokeFunction ${fn}`]);
  });

  it("starts an execution; waiting for it (.sync) also polls it and manages Step Functions' own rule", () => {
    expect(calls(task("arn:aws:states:::states:startExecution", { "StateMachineArn.$": "$$.StateMachine.Id" }))).toEqual([
      `states:StartExecution ${MACHINE}`,
    ]);
    expect(calls(task("arn:aws:states:::states:startExecution.sync:2", { StateMachineArn: MACHINE }))).toEqual(
      expect.arrayContaining([`states:StartExecution ${MACHINE}`, expect.stringMatching(/^states:DescribeExecution /), expect.stringMatching(/^events:PutRule /)]),
    );
  });

  it("refuses what it cannot map or whose resource comes from the input, rather than letting it pass unchecked", () => {
    expect(() => calls(task("arn:aws:states:::glue:startJobRun", { JobName: "x" }))).toThrow(/no IAM mapping/);
    expect(() => calls(task("arn:aws:states:::aws-sdk:sqs:receiveMessage", { "QueueUrl.$": "$.queue" }))).toThrow(/comes from the state's input/);
  });

  it("finds the Task states inside Map item processors and Parallel branches", () => {
    const inner: AslGraph = { StartAt: "Inner", States: { Inner: task("arn:aws:states:::sqs:sendMessage", { QueueUrl: QUEUE_URL }) } };
    const graph: AslGraph = {
      StartAt: "Each",
      States: {
        Each: { Type: "Map", ItemProcessor: inner, Next: "Both" },
        Both: { Type: "Parallel", Branches: [{ StartAt: "B", States: { B: task("arn:aws:states:::sns:publish", { TopicArn: "arn:aws:sns:x:1:t" }) } }], End: true },
      },
    };
    expect(taskStatesOf(graph).map(([name]) => name)).toEqual(["Inner", "B"]);
  });

  it("reads a queue's ARN from its URL", () => {
    expect(queueArnOfUrl(QUEUE_URL)).toBe(QUEUE_ARN);
    expect(() => queueArnOfUrl("http://localhost:4566/q")).toThrow();
  });
});
