import { createRequire } from "node:module";
import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, inject, it } from "vitest";
import { ErrorName } from "@fundraise-sync/core/errors";
import {
  AIRTABLE_REQUESTS_PER_SECOND,
  EXECUTION_HISTORY_LIMIT_EVENTS,
  MAX_EVENT_BYTES,
  SQS_MAX_MESSAGES_PER_RECEIVE,
  STATE_PAYLOAD_LIMIT_BYTES,
} from "@fundraise-sync/core/limits";
import { ConfigName, DEAD_LETTER_QUEUE_NAME, EnvName, SOURCE_QUEUE_NAME } from "@fundraise-sync/core/names";
import { AIRTABLE_REQUEST_TIMEOUT_MS, MAX_BATCHES_PER_EXECUTION, MAX_RECEIVE_COUNT, settingsFor } from "./settings";
import { SYNTH_ACCOUNT, SYNTH_REGION, resolveReferences } from "./synthesize";
import { type AslGraph, type AslRetrier, type AslState, worstCaseBatchSeconds, worstCaseMessageEvents, worstCaseStateEvents } from "./timing";

// asl-validator ships no type declarations: load it through require, typed by what its README documents.
type AslValidator = (
  definition: unknown,
  options?: { checkPaths: boolean; checkArn: boolean },
) => { isValid: boolean; errors: unknown[]; errorsText: (separator?: string) => string };
const aslValidator = createRequire(import.meta.url)("asl-validator") as AslValidator;

const STAGE = "test";
const workflow = inject("workflow");
const template = Template.fromJSON(workflow.template);
const definition = workflow.definition;

interface CfnResource {
  Type: string;
  Properties: Record<string, any>;
}
const resources = workflow.template.Resources as Record<string, CfnResource>;
const resolve = <T = unknown>(value: unknown) => resolveReferences(value, workflow.template, workflow.constructIds) as T;

/** The logical id of the one resource of `type` whose construct is `constructId`. */
function logicalId(constructId: string, type: string): string {
  const ids = Object.keys(resources).filter((id) => resources[id]!.Type === type && workflow.constructIds[id] === constructId);
  expect(ids, `${type} ${constructId}`).toHaveLength(1);
  return ids[0]!;
}
const resource = (constructId: string, type: string) => resources[logicalId(constructId, type)]!;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

const arn = {
  queue: (name: string) => `arn:aws:sqs:${SYNTH_REGION}:${SYNTH_ACCOUNT}:${name}`,
  function: (name: string) => `arn:aws:lambda:${SYNTH_REGION}:${SYNTH_ACCOUNT}:function:${name}`,
};
const SOURCE_QUEUE_ARN = arn.queue("DonationsQueue");
const DLQ_ARN = arn.queue("DeadLetterQueue");
const FUNCTIONS = ["Validate", "WriteToAirtable", "DeleteMessage"] as const;

interface Statement {
  effect: string;
  actions: string[];
  resources: string[];
}
const list = (value: unknown): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]) as string[];

/** Every statement granted to a role, by inline policies or `AWS::IAM::Policy` resources, with references resolved. */
function statementsOfRole(roleLogicalId: string): Statement[] {
  const role = resources[roleLogicalId]!;
  const documents = [
    ...((role.Properties.Policies ?? []) as { PolicyDocument: unknown }[]).map((p) => p.PolicyDocument),
    ...ofType("AWS::IAM::Policy")
      .filter(([, policy]) => (policy.Properties.Roles as unknown[]).some((r) => (r as { Ref?: string }).Ref === roleLogicalId))
      .map(([, policy]) => policy.Properties.PolicyDocument),
  ];
  return documents.flatMap((document) =>
    resolve<{ Statement: { Effect: string; Action: unknown; Resource: unknown }[] }>(document).Statement.map((s) => ({
      effect: s.Effect,
      actions: list(s.Action),
      resources: list(s.Resource),
    })),
  );
}
const roleOfFunction = (name: string): string => resource(name, "AWS::Lambda::Function").Properties.Role["Fn::GetAtt"][0];
const statementsOfFunction = (name: string) => statementsOfRole(roleOfFunction(name));
const grantsOf = (statements: Statement[], service: string) =>
  statements.filter((s) => s.actions.some((action) => action.toLowerCase().startsWith(`${service}:`)));

/** A state of a graph, failing the test if it is absent. */
function state(graph: AslGraph, name: string): AslState {
  const found = graph.States[name];
  if (!found) throw new Error(`No state ${name} in the definition`);
  return found;
}
const processBatch = state(definition, "ProcessBatch");
const itemProcessor = processBatch.ItemProcessor!;
const maxConcurrency = processBatch.MaxConcurrency!;
const receiveBatch = state(definition, "ReceiveBatch");
const writeToAirtable = state(itemProcessor, "WriteToAirtable");
const receiveParameters = receiveBatch.Parameters as { VisibilityTimeout: number; MaxNumberOfMessages: number; QueueUrl: string };

/** Every state of a graph and of the graphs nested in it. */
function allStates(graph: AslGraph): [string, AslState][] {
  return Object.entries(graph.States).flatMap(([name, s]) => [
    [name, s] as [string, AslState],
    ...(s.ItemProcessor ? allStates(s.ItemProcessor) : []),
    ...(s.Iterator ? allStates(s.Iterator) : []),
  ]);
}

describe("the Workflow stack", () => {
  describe("queues", () => {
    it("has a donations queue and its dead-letter queue, both encrypted with SQS-managed keys and kept 14 days", () => {
      // Assert
      const queues = ofType("AWS::SQS::Queue").map(([, queue]) => queue.Properties);
      expect(queues.map((q) => q.QueueName).sort()).toEqual([`${STAGE}-${SOURCE_QUEUE_NAME}`, `${STAGE}-${DEAD_LETTER_QUEUE_NAME}`].sort());
      for (const queue of queues) {
        expect(queue.SqsManagedSseEnabled).toBe(true);
        expect(queue.MessageRetentionPeriod).toBe(14 * 24 * 60 * 60);
      }
    });

    it("refuses plain-HTTP access to both queues", () => {
      // Assert
      const policies = ofType("AWS::SQS::QueuePolicy").map(([, policy]) => resolve<any>(policy.Properties));
      expect(policies.flatMap((p) => p.Queues).sort()).toEqual(
        [`https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/DeadLetterQueue`, `https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/DonationsQueue`].sort(),
      );
      for (const policy of policies) {
        expect(policy.PolicyDocument.Statement).toContainEqual(
          expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        );
      }
    });

    it("redrives from the donations queue to the DLQ after MAX_RECEIVE_COUNT receives (the backstop)", () => {
      // Assert
      const source = resource("DonationsQueue", "AWS::SQS::Queue").Properties;
      expect(resolve(source.RedrivePolicy)).toEqual({ deadLetterTargetArn: DLQ_ARN, maxReceiveCount: MAX_RECEIVE_COUNT });
    });

    it("caps a message at MAX_EVENT_BYTES, so that a full batch fits Step Functions' payload limit", () => {
      // Arrange: worst cases, generously. A body's quotes, backslashes and newlines double when embedded in JSON; a
      // message adds a receipt handle (up to 1,024 characters), ids, an MD5 and attributes; a state adds the drain
      // counters, the guard's result, a Lambda error's Cause with its stack trace.
      const source = resource("DonationsQueue", "AWS::SQS::Queue").Properties;
      const escapedBody = 2 * source.MaximumMessageSize;
      const messageOverhead = 2 * 1024;
      const stateOverhead = 4 * 1024;
      // The execution's state after ReceiveBatch: every message of the batch.
      const batchState = SQS_MAX_MESSAGES_PER_RECEIVE * (escapedBody + messageOverhead) + stateOverhead;
      // One Map iteration, at its largest (WriteToAirtable's input): its message, a copy of every body of the batch
      // (to spot duplicates), and the validated event.
      const iterationState = escapedBody + messageOverhead + SQS_MAX_MESSAGES_PER_RECEIVE * (escapedBody + 3) + escapedBody + stateOverhead;

      // Assert
      expect(source.MaximumMessageSize).toBe(MAX_EVENT_BYTES);
      expect(receiveParameters.MaxNumberOfMessages).toBe(SQS_MAX_MESSAGES_PER_RECEIVE);
      // The model above matches what the Map hands each iteration: nothing else is copied per iteration.
      expect(Object.keys(processBatch.ItemSelector as object).sort()).toEqual(["batchBodies.$", "index.$", "message.$", "queueUrl"]);
      expect(batchState).toBeLessThan(STATE_PAYLOAD_LIMIT_BYTES);
      expect(iterationState).toBeLessThan(STATE_PAYLOAD_LIMIT_BYTES);
    });
  });

  describe("state machine, schedule and alarms", () => {
    it("is a STANDARD state machine that logs without execution data (donor names are personal data)", () => {
      // Assert
      template.hasResourceProperties("AWS::StepFunctions::StateMachine", {
        StateMachineType: "STANDARD",
        StateMachineName: `${STAGE}-fundraise-sync-DrainDonations`,
        LoggingConfiguration: {
          Level: "ALL",
          IncludeExecutionData: false,
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { "Fn::GetAtt": [logicalId("DrainDonationsLogs", "AWS::Logs::LogGroup"), "Arn"] } } }],
        },
      });
      expect(ofType("AWS::StepFunctions::StateMachine")).toHaveLength(1);
    });

    it("starts a drain every 5 minutes", () => {
      // Assert
      const rules = ofType("AWS::Events::Rule");
      expect(rules).toHaveLength(1);
      expect(rules[0]![1].Properties).toMatchObject({
        ScheduleExpression: "rate(5 minutes)",
        State: "ENABLED",
        Targets: [{ Arn: { Ref: logicalId("DrainDonations", "AWS::StepFunctions::StateMachine") }, Input: "{}" }],
      });
    });

    it("alarms on dead-lettered donations, on failed drains and on a schedule that could not start a drain", () => {
      // Assert
      expect(ofType("AWS::CloudWatch::Alarm")).toHaveLength(3);
      template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Namespace: "AWS/SQS",
        MetricName: "ApproximateNumberOfMessagesVisible",
        Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [logicalId("DeadLetterQueue", "AWS::SQS::Queue"), "QueueName"] } }],
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
      });
      template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        Metrics: Match.arrayWith([
          Match.objectLike({
            MetricStat: Match.objectLike({
              Metric: {
                Namespace: "AWS/States",
                MetricName: "ExecutionsFailed",
                Dimensions: [{ Name: "StateMachineArn", Value: { Ref: logicalId("DrainDonations", "AWS::StepFunctions::StateMachine") } }],
              },
            }),
          }),
        ]),
      });
      expect(resource("DrainNotStartedAlarm", "AWS::CloudWatch::Alarm").Properties).toMatchObject({
        Namespace: "AWS/Events",
        MetricName: "FailedInvocations",
        Dimensions: [{ Name: "RuleName", Value: { Ref: logicalId("DrainSchedule", "AWS::Events::Rule") } }],
        Statistic: "Sum",
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        TreatMissingData: "notBreaching",
      });
    });

    it("sends every alarm to the stage's alarm topic, whose ARN is an output", () => {
      // Arrange
      const topic = logicalId("AlarmTopic", "AWS::SNS::Topic");

      // Assert
      expect(resource("AlarmTopic", "AWS::SNS::Topic").Properties.TopicName).toBe(`${STAGE}-fundraise-sync-alarms`);
      for (const [, alarm] of ofType("AWS::CloudWatch::Alarm")) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }]);
      expect(workflow.template.Outputs.AlarmTopicArn).toMatchObject({ Value: { Ref: topic } });
    });

    it("subscribes each of the stage's alarmEmails to the topic by e-mail", () => {
      // Assert
      const subscriptions = ofType("AWS::SNS::Subscription").map(([, s]) => s.Properties);
      expect(subscriptions).toEqual(
        settingsFor(STAGE).alarmEmails!.map((email) => ({ Protocol: "email", Endpoint: email, TopicArn: { Ref: logicalId("AlarmTopic", "AWS::SNS::Topic") } })),
      );
      expect(subscriptions.length).toBeGreaterThan(0);
    });

    it("refuses to publish to the alarm topic over plain HTTP", () => {
      // Assert
      const policies = ofType("AWS::SNS::TopicPolicy").map(([, policy]) => policy.Properties);
      expect(policies).toHaveLength(1);
      expect(policies[0]!.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
      );
    });
  });

  describe("tracing and logs", () => {
    it("traces the state machine and every function with X-Ray, so that a drain is one trace", () => {
      // Assert
      expect(resource("DrainDonations", "AWS::StepFunctions::StateMachine").Properties.TracingConfiguration).toEqual({ Enabled: true });
      for (const name of FUNCTIONS) expect(resource(name, "AWS::Lambda::Function").Properties.TracingConfig).toEqual({ Mode: "Active" });
    });

    it("keeps every log group for a month, and every function logs into one of them", () => {
      // Arrange
      const logGroups = ofType("AWS::Logs::LogGroup");
      const functions = ofType("AWS::Lambda::Function");

      // Assert
      expect(logGroups.length).toBe(functions.length + 1); // one per function, one for the state machine
      for (const [, group] of logGroups) expect(group.Properties.RetentionInDays).toBe(30);
      for (const [id, fn] of functions) {
        const target = fn.Properties.LoggingConfig?.LogGroup as { Ref?: string } | undefined;
        expect(target?.Ref, id).toBeDefined();
        expect(resources[target!.Ref!]!.Type).toBe("AWS::Logs::LogGroup");
      }
    });
  });

  describe("functions", () => {
    it("has the three handlers (plus SST's custom-resource handler), all on nodejs22.x", () => {
      // Assert
      const functions = ofType("AWS::Lambda::Function").map(([, fn]) => fn.Properties);
      expect(functions).toHaveLength(4);
      for (const fn of functions) expect(fn.Runtime).toBe("nodejs22.x");
      expect(FUNCTIONS.map((name) => resource(name, "AWS::Lambda::Function").Properties.Handler)).toEqual([
        "packages/functions/src/validate.handler",
        "packages/functions/src/write-to-airtable.handler",
        "packages/functions/src/delete-message.handler",
      ]);
    });

    it("binds the Airtable secret and parameters to WriteToAirtable only, the token fetched from SSM at run time", () => {
      // Arrange
      const env = (name: string) => resource(name, "AWS::Lambda::Function").Properties.Environment.Variables as Record<string, string>;

      // Assert
      expect(env("WriteToAirtable")).toMatchObject({
        [`SST_Secret_value_${ConfigName.AirtableToken}`]: expect.stringMatching(/^__FETCH_FROM_/),
        [`SST_Parameter_value_${ConfigName.AirtableBaseId}`]: "appFundraiseSync1",
        [`SST_Parameter_value_${ConfigName.AirtableTableName}`]: "Donations",
      });
      for (const name of ["Validate", "DeleteMessage"]) {
        expect(Object.keys(env(name)).filter((key) => /^SST_(Secret|Parameter)_/.test(key))).toEqual([]);
      }
    });

    it("gives the Airtable request a timeout that leaves WriteToAirtable time to report it as retryable", () => {
      // Arrange
      const fn = resource("WriteToAirtable", "AWS::Lambda::Function").Properties;
      const env = fn.Environment.Variables as Record<string, string>;

      // Assert: request timeout + pacing hold well within the function's timeout
      expect(Number(env[EnvName.AirtableRequestTimeoutMs])).toBe(AIRTABLE_REQUEST_TIMEOUT_MS);
      expect(Number(env[EnvName.AirtableRequestTimeoutMs]) + Number(env[EnvName.AirtableMinWriteIntervalMs])).toBeLessThan(fn.Timeout * 1000);
    });
  });

  describe("least privilege", () => {
    it("grants a function a wildcard resource only for X-Ray, which takes no narrower resource", () => {
      // Assert: what cdk-nag's reviewed IAM5 suppression on the functions (stacks/nag.ts) relies on
      for (const name of FUNCTIONS) {
        const wildcards = statementsOfFunction(name).filter((s) => s.resources.includes("*"));
        expect(wildcards.flatMap((s) => s.actions).sort(), name).toEqual(["xray:PutTelemetryRecords", "xray:PutTraceSegments"]);
      }
    });

    it("Validate touches no queue and reads no configuration", () => {
      // Arrange
      const statements = statementsOfFunction("Validate");

      // Assert
      expect(grantsOf(statements, "sqs")).toEqual([]);
      expect(grantsOf(statements, "ssm")).toEqual([]);
      expect(statements.flatMap((s) => s.actions).every((action) => /^(xray|logs):/.test(action))).toBe(true);
    });

    it("DeleteMessage may only sqs:DeleteMessage, on the donations queue only", () => {
      // Arrange
      const statements = statementsOfFunction("DeleteMessage");

      // Assert
      expect(grantsOf(statements, "sqs")).toEqual([{ effect: "Allow", actions: ["sqs:DeleteMessage"], resources: [SOURCE_QUEUE_ARN] }]);
      expect(grantsOf(statements, "ssm")).toEqual([]);
      expect(statements.flatMap((s) => s.actions).every((action) => /^(xray|logs):|^sqs:DeleteMessage$/.test(action))).toBe(true);
    });

    it("WriteToAirtable may only read its own SSM configuration, and touches no queue", () => {
      // Arrange
      const statements = statementsOfFunction("WriteToAirtable");
      const ownConfig = new RegExp(
        `^arn:aws:ssm:${SYNTH_REGION}:${SYNTH_ACCOUNT}:parameter/sst/fundraise-sync/(${STAGE}|\\.fallback)/(Secret|Parameter)/(${Object.values(ConfigName).join("|")})/value$`,
      );
      const ssm = grantsOf(statements, "ssm");

      // Assert
      expect(grantsOf(statements, "sqs")).toEqual([]);
      expect(ssm.length).toBeGreaterThan(0);
      for (const grant of ssm) {
        expect(grant.actions.every((action) => /^ssm:GetParameters?$/.test(action))).toBe(true);
        for (const resourceArn of grant.resources) expect(resourceArn).toMatch(ownConfig);
      }
      expect(ssm.flatMap((grant) => grant.resources)).toContain(
        `arn:aws:ssm:${SYNTH_REGION}:${SYNTH_ACCOUNT}:parameter/sst/fundraise-sync/${STAGE}/Secret/${ConfigName.AirtableToken}/value`,
      );
      expect(statements.flatMap((s) => s.actions).every((action) => /^(xray|logs):|^ssm:GetParameters?$/.test(action))).toBe(true);
    });

    describe("the state machine's role", () => {
      const role = resource("DrainDonations", "AWS::StepFunctions::StateMachine").Properties.RoleArn["Fn::GetAtt"][0] as string;
      const statements = statementsOfRole(role);
      const resourcesFor = (action: string) => statements.filter((s) => s.actions.includes(action)).flatMap((s) => s.resources);

      it("receives from the donations queue and sends to the DLQ, nothing else on SQS", () => {
        // Assert
        expect(resourcesFor("sqs:ReceiveMessage")).toEqual([SOURCE_QUEUE_ARN]);
        expect(resourcesFor("sqs:SendMessage")).toEqual([DLQ_ARN]);
        expect(new Set(grantsOf(statements, "sqs").flatMap((s) => s.actions))).toEqual(new Set(["sqs:ReceiveMessage", "sqs:SendMessage"]));
      });

      it("invokes the three functions, and only them", () => {
        // Assert
        const invokable = resourcesFor("lambda:InvokeFunction");
        for (const name of FUNCTIONS) expect(invokable).toContain(arn.function(name));
        expect(invokable.every((a) => FUNCTIONS.some((name) => a === arn.function(name) || a === `${arn.function(name)}:*`))).toBe(true);
      });

      it("lists its own executions (the overlap guard), nothing broader", () => {
        // Assert
        expect(resourcesFor("states:ListExecutions")).toEqual([
          `arn:aws:states:${SYNTH_REGION}:${SYNTH_ACCOUNT}:stateMachine:${STAGE}-fundraise-sync-DrainDonations`,
        ]);
      });

      it("starts only itself (a drain that reaches its cap continues in a new execution)", () => {
        // Assert
        expect(resourcesFor("states:StartExecution")).toEqual([
          `arn:aws:states:${SYNTH_REGION}:${SYNTH_ACCOUNT}:stateMachine:${STAGE}-fundraise-sync-DrainDonations`,
        ]);
      });

      it("has a wildcard resource only for CloudWatch Logs delivery and X-Ray, which take no narrower resource", () => {
        // Assert
        const wildcards = statements.filter((s) => s.resources.includes("*"));
        expect(wildcards.length).toBeGreaterThan(0);
        for (const s of wildcards) expect(s.actions.every((action) => /^(logs|xray):/.test(action))).toBe(true);
      });
    });
  });
});

describe("the drain definition", () => {
  it("is valid Amazon States Language", () => {
    // Act
    const result = aslValidator(definition);

    // Assert
    expect(result.errorsText(), "asl-validator").toBe("");
    expect(result.isValid).toBe(true);
  });

  it("is checked by the validator: a transition to a missing state is refused", () => {
    // Arrange
    const broken = structuredClone(definition);
    state(broken, "StartDrain").Next = "NoSuchState";

    // Act
    const result = aslValidator(broken);

    // Assert
    expect(result.isValid).toBe(false);
    expect(result.errorsText()).toContain("NoSuchState");
  });

  it("only names errors that something raises: the project's, States.*, Lambda.* or Sandbox.Timedout", () => {
    // Arrange
    const known = new Set<string>(Object.values(ErrorName));
    const names = allStates(definition).flatMap(([, s]) => [...(s.Retry ?? []), ...(s.Catch ?? [])].flatMap((rule) => rule.ErrorEquals));

    // Assert
    expect(names.length).toBeGreaterThan(10);
    const unknown = names.filter((name) => !known.has(name) && !/^States\.\w+$/.test(name) && !/^Lambda\.\w+$/.test(name) && name !== "Sandbox.Timedout");
    expect(unknown).toEqual([]);
  });

  it("never retries an invalid message: Validate retries only Lambda's own failures, and dead-letters the rest", () => {
    // Arrange
    const validate = state(itemProcessor, "Validate");

    // Assert
    const retried = (validate.Retry ?? []).flatMap((r) => r.ErrorEquals);
    expect(retried).not.toContain(ErrorName.InvalidDonationEvent);
    expect(retried.every((name) => name.startsWith("Lambda."))).toBe(true);
    expect(validate.Catch).toEqual([expect.objectContaining({ ErrorEquals: ["States.ALL"], Next: "DeadLetterInvalidMessage" })]);
  });

  describe("WriteToAirtable", () => {
    const retrier = (name: string): AslRetrier => {
      const found = (writeToAirtable.Retry ?? []).find((r) => r.ErrorEquals.includes(name));
      if (!found) throw new Error(`WriteToAirtable does not retry ${name}`);
      return found;
    };

    it("retries a 429 no sooner than Airtable's 30 s penalty, without jitter that could shorten it", () => {
      // Assert
      const rule = retrier(ErrorName.AirtableRateLimited);
      expect(rule.IntervalSeconds).toBeGreaterThanOrEqual(30);
      expect(rule.JitterStrategy).toBe("NONE");
      expect(rule.BackoffRate ?? 2).toBeGreaterThanOrEqual(1);
    });

    it("retries an unavailable Airtable with exponential backoff and full jitter", () => {
      // Assert
      const rule = retrier(ErrorName.AirtableUnavailable);
      expect(rule.BackoffRate).toBeGreaterThan(1);
      expect(rule.JitterStrategy).toBe("FULL");
      expect(rule.MaxAttempts).toBeGreaterThan(0);
    });

    it("never retries a rejected record or a configuration error", () => {
      // Assert
      const retried = (writeToAirtable.Retry ?? []).flatMap((r) => r.ErrorEquals);
      for (const name of [ErrorName.AirtableRecordRejected, ErrorName.AirtableConfiguration, "States.ALL", "States.TaskFailed"]) {
        expect(retried).not.toContain(name);
      }
    });

    it("stops the run on a configuration error (a Fail state) before its catch-all dead-letters the message", () => {
      // Arrange
      const catchers = writeToAirtable.Catch ?? [];
      const configuration = catchers.findIndex((c) => c.ErrorEquals.includes(ErrorName.AirtableConfiguration));
      const catchAll = catchers.findIndex((c) => c.ErrorEquals.includes("States.ALL"));

      // Assert
      expect(configuration).toBeGreaterThanOrEqual(0);
      expect(catchAll).toBeGreaterThan(configuration);
      const fail = state(itemProcessor, catchers[configuration]!.Next);
      expect(fail).toMatchObject({ Type: "Fail", Error: ErrorName.AirtableConfiguration });
      const deadLetter = state(itemProcessor, catchers[catchAll]!.Next);
      expect(deadLetter.Resource).toBe("arn:aws:states:::aws-sdk:sqs:sendMessage");
      expect((deadLetter.Parameters as { QueueUrl: string }).QueueUrl).toBe(
        `https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/DeadLetterQueue`,
      );
    });
  });

  it("writes at most 5 requests/s: ProcessBatch's slots, each paced at WriteToAirtable's interval", () => {
    // Arrange: the interval the deployed function actually gets
    const env = resource("WriteToAirtable", "AWS::Lambda::Function").Properties.Environment.Variables as Record<string, string>;
    const intervalMs = Number(env[EnvName.AirtableMinWriteIntervalMs]);

    // Act: each slot makes at most one request per interval
    const requestsPerSecond = maxConcurrency * (1000 / intervalMs);

    // Assert
    expect(intervalMs).toBeGreaterThan(0);
    expect(requestsPerSecond).toBeLessThanOrEqual(AIRTABLE_REQUESTS_PER_SECOND);
  });

  describe("visibility timeout", () => {
    const worstCase = worstCaseBatchSeconds(itemProcessor, SQS_MAX_MESSAGES_PER_RECEIVE, maxConcurrency);
    const queueVisibility = resource("DonationsQueue", "AWS::SQS::Queue").Properties.VisibilityTimeout as number;

    it("hides a received batch for at least its worst case, so no message is delivered twice while in flight", () => {
      // Assert
      expect(receiveParameters.QueueUrl).toBe(`https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/DonationsQueue`);
      expect(receiveParameters.VisibilityTimeout).toBeGreaterThanOrEqual(worstCase);
      expect(queueVisibility).toBeGreaterThanOrEqual(worstCase);
      expect(receiveParameters.VisibilityTimeout).toBeLessThanOrEqual(12 * 60 * 60); // SQS's maximum
    });

    it("has teeth: five more attempts on a WriteToAirtable retrier would outlast the synthesized timeout", () => {
      // Arrange
      const changed = structuredClone(itemProcessor);
      const write = state(changed, "WriteToAirtable");
      const unavailable = (write.Retry ?? []).find((r) => r.ErrorEquals.includes(ErrorName.AirtableUnavailable))!;
      unavailable.MaxAttempts = (unavailable.MaxAttempts ?? 3) + 5;

      // Act
      const changedWorstCase = worstCaseBatchSeconds(changed, SQS_MAX_MESSAGES_PER_RECEIVE, maxConcurrency);

      // Assert
      expect(changedWorstCase).toBeGreaterThan(receiveParameters.VisibilityTimeout);
      expect(changedWorstCase).toBeGreaterThan(queueVisibility);
    });
  });

  describe("drain cap", () => {
    it("loops back to ReceiveBatch only while fewer than MAX_BATCHES_PER_EXECUTION batches were drained", () => {
      // Assert: the counter starts at 0, grows by 1 per batch, and KeepDraining compares it with the cap
      expect(state(definition, "StartDrain")).toMatchObject({ Result: { batches: 0 }, Next: "ReceiveBatch" });
      expect(state(definition, "CountBatch").Parameters).toMatchObject({ "batches.$": "States.MathAdd($.drain.batches, 1)" });
      const keepDraining = state(definition, "KeepDraining");
      expect(keepDraining.Choices).toEqual([{ Variable: "$.drain.batches", NumericLessThan: MAX_BATCHES_PER_EXECUTION, Next: "ReceiveBatch" }]);
      expect(keepDraining.Default).toBe("ContinueInNewExecution");
    });

    it("keeps the worst-case execution history under Step Functions' 25,000 events", () => {
      // Why this bounds the history: an execution runs the guard once (or skips it as a continuation), then the
      // receive loop, then at most one ContinueInNewExecution: a backlog beyond the cap goes on in a fresh history. KeepDraining sends it
      // back to ReceiveBatch only while the batch counter (0 at StartDrain, +1 at CountBatch) is below the cap, so the
      // loop body runs at most MAX_BATCHES_PER_EXECUTION times; an empty receive leaves through AnyMessages with
      // fewer events than a full pass. Each pass is ReceiveBatch (every retry), AnyMessages, the Map state (entered,
      // started, succeeded, exited) with at most 10 iterations (MaxNumberOfMessages), CountBatch and KeepDraining.
      // Each iteration is bounded by its longest path with every retry taken (worstCaseMessageEvents).
      const events = (name: string) => worstCaseStateEvents(state(definition, name));
      const MAP_STATE_EVENTS = 4;
      const perBatch =
        receiveParameters.MaxNumberOfMessages * worstCaseMessageEvents(itemProcessor) +
        events("ReceiveBatch") +
        events("AnyMessages") +
        MAP_STATE_EVENTS +
        events("CountBatch") +
        events("KeepDraining");
      const EXECUTION_STARTED_AND_ENDED = 2;
      const guard =
        EXECUTION_STARTED_AND_ENDED +
        events("IsContinuation") +
        events("CheckForRunningDrain") +
        events("IsAnotherDrainRunning") +
        events("StartDrain") +
        events("ContinueInNewExecution") +
        events("DrainComplete");

      // Act
      const worstCase = MAX_BATCHES_PER_EXECUTION * perBatch + guard;

      // Assert
      expect(receiveParameters.MaxNumberOfMessages).toBe(10);
      expect(worstCase).toBeLessThan(EXECUTION_HISTORY_LIMIT_EVENTS);
    });
  });
});

describe("a stage that names its own alarm topic", () => {
  it("uses that topic, creates none, and still subscribes the stage's alarmEmails to it", async () => {
    // Arrange: a bare CDK stack, so that this needs no second SST synthesis
    const { App, Stack } = await import("aws-cdk-lib");
    const { alarmTopicFor } = await import("./Workflow");
    const stack = new Stack(new App(), "AlarmTopicStage", { env: { account: SYNTH_ACCOUNT, region: SYNTH_REGION } });
    const existing = `arn:aws:sns:${SYNTH_REGION}:${SYNTH_ACCOUNT}:charity-ops-alarms`;

    // Act
    const topic = alarmTopicFor(stack, "prod", { ...settingsFor(STAGE), alarmTopicArn: existing, alarmEmails: ["ops@example.org"] });
    const stageTemplate = Template.fromStack(stack);

    // Assert
    expect(topic.topicArn).toBe(existing);
    stageTemplate.resourceCountIs("AWS::SNS::Topic", 0);
    stageTemplate.hasResourceProperties("AWS::SNS::Subscription", { Protocol: "email", Endpoint: "ops@example.org", TopicArn: existing });
  });
});
