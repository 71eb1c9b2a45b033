import { createRequire } from "node:module";
import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, inject, it } from "vitest";
import { ErrorName } from "@fundraise-sync/core/errors";
import {
  AIRTABLE_REQUESTS_PER_SECOND,
  DEFAULT_AIRTABLE_SHARE_PER_SECOND,
  EXECUTION_HISTORY_LIMIT_EVENTS,
  DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES,
  DONATIONS_QUEUE_MAX_MESSAGE_BYTES,
  MAX_EVENT_BYTES,
  RECEIVES_PER_ROUND,
  SQS_MAX_MESSAGES_PER_RECEIVE,
  SQS_MAX_RECEIPT_HANDLE_BYTES,
  STATE_PAYLOAD_LIMIT_BYTES,
} from "@fundraise-sync/core/limits";
import { ConfigName, DEAD_LETTER_QUEUE_NAME, EnvName, SOURCE_QUEUE_NAME } from "@fundraise-sync/core/names";
import { MAX_WRITE_RETRY_WAIT_SECONDS, WritePolicy } from "@fundraise-sync/core/write-round";
import {
  DRAIN_BOUNDS,
  LEASE_KEY,
  LeaseAnswer,
  MAX_MESSAGES_PER_ROUND,
  SQS_MAX_HIDDEN_SECONDS,
  StateName,
  holdArithmetic,
  worstCaseExecutionEvents,
  worstCaseRoundSeconds,
} from "./drain-definition";
import { AIRTABLE_REQUEST_TIMEOUT_MS, MAX_RECEIVE_COUNT, MAX_ROUNDS_PER_EXECUTION, settingsFor } from "./settings";
import { SYNTH_ACCOUNT, SYNTH_REGION, resolveReferences } from "./synthesize";
import { type AslGraph, type AslState, worstCaseStateSeconds } from "./timing";

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
const FUNCTIONS = ["Validate", "WriteToAirtable", "DeleteMessages"] as const;

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
const receiveRound = state(definition, StateName.ReceiveRound);
const receiver = receiveRound.ItemProcessor!;
const validateBatch = state(receiver, StateName.ValidateBatch);
const validator = validateBatch.ItemProcessor!;
const receiveBatch = state(receiver, StateName.ReceiveBatch);
const writeToAirtable = state(definition, StateName.WriteToAirtable);
const deleteWritten = state(definition, StateName.DeleteWrittenMessages);
const deadLetterUnwritable = state(definition, StateName.DeadLetterUnwritableMessages);
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

    it("caps the queues at the size budget of core/limits.ts: a body the producer accepts, plus the attributes a redrive or a dead-lettering adds", () => {
      const source = resource("DonationsQueue", "AWS::SQS::Queue").Properties;
      const deadLetter = resource("DeadLetterQueue", "AWS::SQS::Queue").Properties;
      expect(source.MaximumMessageSize).toBe(DONATIONS_QUEUE_MAX_MESSAGE_BYTES);
      expect(source.MaximumMessageSize).toBeGreaterThan(MAX_EVENT_BYTES); // room for RedriveCount
      expect(deadLetter.MaximumMessageSize).toBe(DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES);
    });

    it("caps a message at the donations queue's maximum, so that a full round of bodies fits Step Functions' payload limit", () => {
      // Arrange: worst cases, generously. A body's quotes, backslashes and newlines double when embedded in JSON; a
      // message adds a receipt handle, ids, an MD5 and attributes; a state adds the drain counters, the budget and
      // an error's Cause.
      const source = resource("DonationsQueue", "AWS::SQS::Queue").Properties;
      const messageOverhead = SQS_MAX_RECEIPT_HANDLE_BYTES + 512;
      const stateOverhead = 4 * 1024;
      // The largest state: a round, every message with its body (received, still pending, or to dead-letter). A
      // written message drops its body for a smaller outcome (ids, receipt handle, record id); no message is in
      // two lists, and no body is copied between iterations.
      const roundState = (bodyBytes: number) => MAX_MESSAGES_PER_ROUND * (2 * bodyBytes + messageOverhead) + stateOverhead;

      // Assert
      expect(source.MaximumMessageSize).toBe(DONATIONS_QUEUE_MAX_MESSAGE_BYTES);
      expect(receiveParameters.MaxNumberOfMessages).toBe(SQS_MAX_MESSAGES_PER_RECEIVE);
      expect(receiveRound.MaxConcurrency).toBe(RECEIVES_PER_ROUND);
      // The model matches what the Maps hand their iterations: the message alone, no copies of the batch.
      expect(Object.keys(validateBatch.ItemSelector as object)).toEqual(["message.$"]);
      expect(roundState(source.MaximumMessageSize)).toBeLessThan(STATE_PAYLOAD_LIMIT_BYTES);
      // ...and has teeth: the 8 KiB this queue used to accept would not fit a round of 30.
      expect(roundState(8 * 1024)).toBeGreaterThan(STATE_PAYLOAD_LIMIT_BYTES);
    });
  });

  describe("the drain lease's table", () => {
    it("is on demand, keyed by the lease's name, goes with the stack and is named by CloudFormation", () => {
      // Arrange
      const id = logicalId("DrainLease", "AWS::DynamoDB::Table");
      const table = workflow.template.Resources[id];

      // Assert
      expect(ofType("AWS::DynamoDB::Table")).toHaveLength(1);
      expect(table.Properties).toMatchObject({
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [{ AttributeName: LEASE_KEY.name, KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: LEASE_KEY.name, AttributeType: "S" }],
      });
      // A fixed name would block the retry of a failed first deploy; what it holds is worth nothing after the stack.
      expect(table.Properties.TableName).toBeUndefined();
      expect(table).toMatchObject({ DeletionPolicy: "Delete", UpdateReplacePolicy: "Delete" });
      expect(workflow.template.Outputs.LeaseTableName).toMatchObject({ Value: { Ref: id } });
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

    it("alarms when Airtable has failed for 15 minutes, on the writer's own metric", () => {
      // Assert: not one answer in three 5-minute periods in a row
      expect(resource("AirtableFailingAlarm", "AWS::CloudWatch::Alarm").Properties).toMatchObject({
        Namespace: "FundraiseSync",
        MetricName: "AirtableFailing",
        Dimensions: [{ Name: "Stage", Value: STAGE }],
        Statistic: "Minimum",
        Period: 300,
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        TreatMissingData: "notBreaching",
      });
    });

    it("alarms when the oldest donation in the queue is older than the stage's limit (an hour by default)", () => {
      // Assert
      expect(resource("OldestDonationAlarm", "AWS::CloudWatch::Alarm").Properties).toMatchObject({
        Namespace: "AWS/SQS",
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [logicalId("DonationsQueue", "AWS::SQS::Queue"), "QueueName"] } }],
        Statistic: "Maximum",
        Threshold: 3600,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
      });
    });

    it("alarms on dead-lettered donations, on failed drains and on a schedule that could not start a drain", () => {
      // Assert
      expect(ofType("AWS::CloudWatch::Alarm")).toHaveLength(5);
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
        "packages/functions/src/delete-messages.handler",
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
      for (const name of ["Validate", "DeleteMessages"]) {
        expect(Object.keys(env(name)).filter((key) => /^SST_(Secret|Parameter)_/.test(key))).toEqual([]);
      }
    });

    it("gives the Airtable request a timeout that leaves WriteToAirtable time to report what it did", () => {
      // Arrange
      const fn = resource("WriteToAirtable", "AWS::Lambda::Function").Properties;
      const env = fn.Environment.Variables as Record<string, string>;

      // Assert: the writer stops starting requests one request timeout before its end; that leaves most of it
      expect(Number(env[EnvName.AirtableRequestTimeoutMs])).toBe(AIRTABLE_REQUEST_TIMEOUT_MS);
      expect(4 * Number(env[EnvName.AirtableRequestTimeoutMs])).toBeLessThanOrEqual(fn.Timeout * 1000);
    });

    it("gives WriteToAirtable the stage's share of the base: 4 of Airtable's 5 requests/s by default", () => {
      // Arrange
      const env = resource("WriteToAirtable", "AWS::Lambda::Function").Properties.Environment.Variables as Record<string, string>;

      // Assert
      expect(Number(env[EnvName.AirtableRequestsPerSecond])).toBe(DEFAULT_AIRTABLE_SHARE_PER_SECOND);
      expect(DEFAULT_AIRTABLE_SHARE_PER_SECOND).toBeLessThan(AIRTABLE_REQUESTS_PER_SECOND);
      expect(settingsFor(STAGE).airtableRequestsPerSecond).toBe(4);
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

    it("DeleteMessages may only delete and change visibility, on the donations queue only", () => {
      // Arrange
      const statements = statementsOfFunction("DeleteMessages");
      const sqsActions = /^sqs:(DeleteMessage|ChangeMessageVisibility)$/;

      // Assert
      expect(grantsOf(statements, "sqs")).toEqual([
        { effect: "Allow", actions: ["sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], resources: [SOURCE_QUEUE_ARN] },
      ]);
      expect(grantsOf(statements, "ssm")).toEqual([]);
      expect(statements.flatMap((s) => s.actions).every((action) => /^(xray|logs):/.test(action) || sqsActions.test(action))).toBe(true);
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

      it("peeks at and receives from the donations queue and sends to the DLQ, nothing else on SQS", () => {
        // Assert
        expect(resourcesFor("sqs:ReceiveMessage")).toEqual([SOURCE_QUEUE_ARN]);
        expect(resourcesFor("sqs:GetQueueAttributes")).toEqual([SOURCE_QUEUE_ARN]);
        expect(resourcesFor("sqs:SendMessage")).toEqual([DLQ_ARN]);
        expect(new Set(grantsOf(statements, "sqs").flatMap((s) => s.actions))).toEqual(
          new Set(["sqs:ReceiveMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"]),
        );
      });

      it("invokes the three functions, and only them", () => {
        // Assert
        const invokable = resourcesFor("lambda:InvokeFunction");
        for (const name of FUNCTIONS) expect(invokable).toContain(arn.function(name));
        expect(invokable.every((a) => FUNCTIONS.some((name) => a === arn.function(name) || a === `${arn.function(name)}:*`))).toBe(true);
      });

      it("reads and writes the drain lease, on the lease table only", () => {
        // Arrange
        const table = `arn:aws:dynamodb:${SYNTH_REGION}:${SYNTH_ACCOUNT}:table/DrainLease`;
        const dynamodb = grantsOf(statements, "dynamodb");

        // Assert
        expect(new Set(dynamodb.flatMap((s) => s.actions))).toEqual(
          new Set(["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
        );
        for (const grant of dynamodb) expect(grant).toMatchObject({ effect: "Allow", resources: [table] });
      });

      it("describes its own executions only (the lease's holder), and lists none", () => {
        // Assert
        expect(resourcesFor("states:DescribeExecution")).toEqual([
          `arn:aws:states:${SYNTH_REGION}:${SYNTH_ACCOUNT}:execution:${STAGE}-fundraise-sync-DrainDonations:*`,
        ]);
        expect(resourcesFor("states:ListExecutions")).toEqual([]);
        expect(new Set(grantsOf(statements, "states").flatMap((s) => s.actions))).toEqual(
          new Set(["states:DescribeExecution", "states:StartExecution"]),
        );
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

  it("only names errors that something raises: the project's, States.*, Lambda.*, Sandbox.Timedout or the lease's answers", () => {
    // Arrange
    const known = new Set<string>(Object.values(ErrorName));
    const names = allStates(definition).flatMap(([, s]) => [...(s.Retry ?? []), ...(s.Catch ?? [])].flatMap((rule) => rule.ErrorEquals));

    // Assert
    expect(names.length).toBeGreaterThan(10);
    const answers = new Set<string>(Object.values(LeaseAnswer));
    const unknown = names.filter(
      (name) => !known.has(name) && !answers.has(name) && !/^States\.\w+$/.test(name) && !/^Lambda\.\w+$/.test(name) && name !== "Sandbox.Timedout",
    );
    expect(unknown).toEqual([]);
  });

  it("never retries an invalid message, and dead-letters nothing else from Validate: every other failure is retried, then left queued", () => {
    // Arrange: Step Functions takes the first retrier, and the first catcher, whose ErrorEquals names the error or
    // States.ALL (States.TaskFailed matches every Task error but States.Timeout) ("Error handling in Step Functions")
    const validate = state(validator, StateName.Validate);
    const matches = (names: string[], error: string) =>
      names.includes(error) || names.includes("States.ALL") || (names.includes("States.TaskFailed") && error !== "States.Timeout");
    const retriesOf = (error: string) => {
      const retrier = (validate.Retry ?? []).find((r) => matches(r.ErrorEquals, error));
      return retrier ? (retrier.MaxAttempts ?? 3) : 0; // 3: Step Functions' default
    };
    const catcherOf = (error: string) => (validate.Catch ?? []).find((c) => matches(c.ErrorEquals, error))?.Next;
    const notTheMessagesFault = [
      "Lambda.TooManyRequestsException",
      "Lambda.ServiceException",
      "Lambda.Unknown",
      "Sandbox.Timedout",
      "States.Timeout",
      "Runtime.ImportModuleError",
      "Error",
    ];

    // Assert
    expect(retriesOf(ErrorName.InvalidDonationEvent)).toBe(0);
    expect(catcherOf(ErrorName.InvalidDonationEvent)).toBe(StateName.IsInvalidMessageRedriven);
    for (const error of notTheMessagesFault) {
      expect({ error, retried: retriesOf(error) > 0, next: catcherOf(error) }).toEqual({
        error,
        retried: true,
        next: StateName.KeepUnvalidatedMessageQueued,
      });
    }
  });

  it("dead-letters with the original body and the reason in attributes, in both places messages can fail", () => {
    // Arrange
    const unwritable = deadLetterUnwritable.ItemProcessor!;
    const senders = [
      state(validator, StateName.DeadLetterInvalidMessage),
      state(validator, StateName.DeadLetterRedrivenInvalidMessage),
      state(unwritable, StateName.DeadLetterUnwritableMessage),
      state(unwritable, StateName.DeadLetterRedrivenUnwritableMessage),
    ];
    const reason = ["ErrorCause", "ErrorName", "ExecutionArn", "FailedState", "ReceiveCount", "SourceMessageId"];

    // Assert
    for (const [index, sender] of senders.entries()) {
      expect(sender.Resource).toBe("arn:aws:states:::aws-sdk:sqs:sendMessage");
      const parameters = sender.Parameters as { QueueUrl: string; "MessageBody.$": string; MessageAttributes: Record<string, unknown> };
      expect(parameters.QueueUrl).toBe(`https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/DeadLetterQueue`);
      expect(parameters["MessageBody.$"]).toBe("$.message.Body");
      // The redriven variants keep the message's RedriveCount; the others have none to keep.
      expect(Object.keys(parameters.MessageAttributes).sort()).toEqual(index % 2 ? [...reason, "RedriveCount"].sort() : reason);
    }
  });

  it("keeps a redriven message's count: the receive asks for it, and a Choice picks the send that copies it", () => {
    // Assert
    expect(receiveBatch.Parameters).toMatchObject({ MessageAttributeNames: ["RedriveCount"] });
    for (const [graph, choice, redriven, plain] of [
      [validator, StateName.IsInvalidMessageRedriven, StateName.DeadLetterRedrivenInvalidMessage, StateName.DeadLetterInvalidMessage],
      [deadLetterUnwritable.ItemProcessor!, StateName.IsUnwritableMessageRedriven, StateName.DeadLetterRedrivenUnwritableMessage, StateName.DeadLetterUnwritableMessage],
    ] as const) {
      expect(state(graph, choice)).toMatchObject({
        Choices: [{ Variable: "$.message.MessageAttributes.RedriveCount.StringValue", IsPresent: true, Next: redriven }],
        Default: plain,
      });
    }
  });

  describe("the drain lease: one drain at a time", () => {
    const leaseTasks = allStates(definition).filter(
      ([, s]) => s.Resource?.startsWith("arn:aws:states:::dynamodb:") || s.Resource === "arn:aws:states:::aws-sdk:sfn:describeExecution",
    );
    const skip = StateName.AnotherDrainIsRunning;

    it("takes a free lease by a conditional put, naming the table and this execution", () => {
      // Assert
      expect(state(definition, StateName.TakeLease)).toMatchObject({
        Resource: "arn:aws:states:::dynamodb:putItem",
        Parameters: {
          TableName: "DrainLease",
          Item: { lease: { S: "drain" }, holder: { "S.$": "$$.Execution.Id" }, since: { "S.$": "$$.Execution.StartTime" } },
          ConditionExpression: "attribute_not_exists(#holder)",
          ExpressionAttributeNames: { "#holder": "holder" },
        },
        Next: StateName.StartDrain,
      });
      expect(state(definition, StateName.TakeLease).Catch).toEqual([
        { ErrorEquals: [LeaseAnswer.ConditionFailed], Next: StateName.ReadLease, ResultPath: "$.leaseTaken" },
      ]);
      // Every DynamoDB call names the table by TableName (what a policy evaluator maps to the table's ARN).
      for (const [name, task] of leaseTasks.filter(([, s]) => s.Resource!.includes(":dynamodb:"))) {
        expect((task.Parameters as { TableName?: string }).TableName, name).toBe("DrainLease");
      }
    });

    it("reads a held lease strongly consistent, and takes it over only from a holder DescribeExecution reports ended", () => {
      // Assert
      expect(state(definition, StateName.ReadLease)).toMatchObject({
        Resource: "arn:aws:states:::dynamodb:getItem",
        Parameters: { ConsistentRead: true, Key: { lease: { S: "drain" } } },
        Next: StateName.IsLeaseStillHeld,
      });
      expect(state(definition, StateName.IsLeaseStillHeld)).toMatchObject({
        Choices: [
          { Variable: "$.lease.Item.holder.S", StringEqualsPath: "$$.Execution.Id", Next: StateName.StartDrain },
          { Variable: "$.lease.Item.holder.S", IsPresent: true, Next: StateName.DescribeLeaseHolder },
        ],
        Default: skip,
      });
      expect(state(definition, StateName.DescribeLeaseHolder)).toMatchObject({
        Parameters: { "ExecutionArn.$": "$.lease.Item.holder.S" },
        ResultSelector: { "status.$": "$.Status" },
        Next: StateName.HasLeaseHolderEnded,
      });
      // Not visible yet (it started moments ago): running.
      expect(state(definition, StateName.DescribeLeaseHolder).Catch).toEqual([
        { ErrorEquals: [LeaseAnswer.HolderNotFound], Next: skip, ResultPath: "$.holder" },
      ]);
      const ended = state(definition, StateName.HasLeaseHolderEnded);
      expect(ended.Default).toBe(skip);
      expect(ended.Choices).toHaveLength(1);
      const statuses = (ended.Choices![0] as unknown as { Or: { Variable: string; StringEquals: string }[] }).Or;
      expect(statuses.map((c) => c.Variable)).toEqual(Array(4).fill("$.holder.status"));
      expect(statuses.map((c) => c.StringEquals).sort()).toEqual(["ABORTED", "FAILED", "SUCCEEDED", "TIMED_OUT"]);
      expect(ended.Choices![0]!.Next).toBe(StateName.TakeOverStaleLease);
      expect(state(definition, StateName.TakeOverStaleLease)).toMatchObject({
        Resource: "arn:aws:states:::dynamodb:updateItem",
        Parameters: {
          UpdateExpression: "SET #holder = :me, #since = :since",
          ConditionExpression: "#holder = :previous",
          ExpressionAttributeValues: { ":me": { "S.$": "$$.Execution.Id" }, ":previous": { "S.$": "$.lease.Item.holder.S" } },
        },
        Next: StateName.StartDrain,
      });
      // Someone else took it over first: they drain.
      for (const name of [StateName.TakeOverStaleLease, StateName.TakeLeaseFromPredecessor]) {
        expect(state(definition, name).Catch).toEqual([{ ErrorEquals: [LeaseAnswer.ConditionFailed], Next: skip, ResultPath: "$.leaseTaken" }]);
      }
    });

    it("never retries a lease call's answer (a failed condition, an unknown holder), and retries anything else", () => {
      // Assert
      expect(leaseTasks.map(([name]) => name).sort()).toEqual(
        [
          StateName.TakeLease,
          StateName.ReadLease,
          StateName.DescribeLeaseHolder,
          StateName.TakeOverStaleLease,
          StateName.TakeLeaseFromPredecessor,
          StateName.ReleaseLease,
          StateName.ReleaseLeaseOnMisconfiguration,
          StateName.ReleaseLeaseOnWriteFailure,
        ].sort(),
      );
      for (const [name, task] of leaseTasks) {
        const retry = task.Retry ?? [];
        const last = retry.at(-1)!;
        expect(last, name).toMatchObject({ ErrorEquals: ["States.ALL"] });
        expect(last.MaxAttempts, name).toBeGreaterThan(0);
        // Retriers apply in order, the first that names the error: a 0-attempt one before States.ALL is "never".
        const answers = retry.slice(0, -1);
        for (const answer of answers) expect(answer, name).toMatchObject({ MaxAttempts: 0 });
        // ...and each answer goes somewhere: every error a Catch names is one, and every answer is caught.
        const answered = answers.flatMap((a) => a.ErrorEquals);
        const caught = (task.Catch ?? []).flatMap((c) => c.ErrorEquals);
        for (const error of caught.filter((e) => e !== "States.ALL")) expect(answered, name).toContain(error);
        for (const error of answered) expect(caught.includes(error) || caught.includes("States.ALL"), `${name} catches ${error}`).toBe(true);
        expect(task.TimeoutSeconds, name).toBeGreaterThan(0);
      }
    });

    /**
     * Walks the top-level graph from the start of a drain (lease held) and returns every end it can reach without
     * passing a DeleteItem of the lease (Catches included; a Map is one step). A continuation's predecessor may end
     * holding it: its successor takes it over.
     */
    function endsWithoutRelease(graph: AslGraph): string[] {
      const leaks = new Set<string>();
      const seen = new Set<string>();
      const visit = (name: string, path: string[]) => {
        if (seen.has(name)) return;
        seen.add(name);
        const s = state(graph, name);
        if (s.Resource === "arn:aws:states:::dynamodb:deleteItem") return;
        if (s.Type === "Succeed" || s.Type === "Fail" || s.End) {
          leaks.add([...path, name].join(" → "));
          return;
        }
        const next = [s.Next, s.Default, ...(s.Choices ?? []).map((c) => c.Next), ...(s.Catch ?? []).map((c) => c.Next)];
        for (const successor of next) {
          if (!successor) continue;
          // handed on
          if ((name === StateName.ContinueInNewExecution || name === StateName.HandOverHeldRound) && successor === s.Next) continue;
          visit(successor, [...path, name]);
        }
      };
      visit(StateName.StartDrain, []);
      seen.clear();
      visit(StateName.ResumeDrain, []);
      seen.clear();
      visit(StateName.ResumeHeldRound, []);
      return [...leaks];
    }

    it("gives the lease up on every way out of a drain (success, lock, both Fail states), except to a continuation", () => {
      // Assert
      expect(endsWithoutRelease(definition)).toEqual([]);
      // ...and every release ends where the drain would have: DrainComplete or the Fail it was on the way to.
      const releases = leaseTasks.filter(([, s]) => s.Resource === "arn:aws:states:::dynamodb:deleteItem");
      expect(releases.map(([name, s]) => [name, s.Next ?? ""]).sort()).toEqual(
        [
          [StateName.ReleaseLease, StateName.DrainComplete],
          [StateName.ReleaseLeaseOnMisconfiguration, StateName.AirtableMisconfigured],
          [StateName.ReleaseLeaseOnWriteFailure, StateName.WriteFailed],
        ].sort(),
      );
      for (const [name, release] of releases) {
        expect(release.Parameters, name).toMatchObject({ ConditionExpression: "#holder = :me", ExpressionAttributeValues: { ":me": { "S.$": "$$.Execution.Id" } } });
        // A failed release must not fail the drain.
        expect(release.Catch, name).toEqual([{ ErrorEquals: ["States.ALL"], Next: release.Next, ResultPath: "$.leaseRelease" }]);
      }
    });

    it("has teeth: a way out that skips the release is found", () => {
      // Arrange
      const broken = structuredClone(definition);
      state(broken, StateName.WaitOutAirtableLock).Next = StateName.DrainComplete;

      // Act
      const leaks = endsWithoutRelease(broken);

      // Assert: from a fresh drain, from a continuation and from a held round alike
      expect(leaks).toHaveLength(3);
      for (const leak of leaks) expect(leak).toContain(`${StateName.WaitOutAirtableLock} → ${StateName.DrainComplete}`);
    });
  });

  describe("WriteToAirtable, one writer per round", () => {
    it("is a Lambda task that takes the round and returns it: Airtable's 429s and 5xx are not Step Functions retries", () => {
      // Assert: only Lambda's own failures are retried by the state machine; Airtable's are sorted per message
      const retried = (writeToAirtable.Retry ?? []).flatMap((r) => r.ErrorEquals);
      for (const name of [ErrorName.AirtableRateLimited, ErrorName.AirtableUnavailable, ErrorName.AirtableRecordRejected, "States.ALL"]) {
        expect(retried).not.toContain(name);
      }
      expect(writeToAirtable.Resource).toBe(arn.function("WriteToAirtable"));
      expect(writeToAirtable).toMatchObject({ InputPath: "$.round", ResultPath: "$.round" });
    });

    it("waits in the open after a 429 or a failure (WaitForAirtable), then writes what is left", () => {
      // Assert
      const isRetryDue = state(definition, StateName.IsRetryDue);
      expect(isRetryDue.Choices).toEqual([{ Variable: "$.round.retryAt", IsString: true, Next: StateName.WaitForAirtable }]);
      expect(isRetryDue.Default).toBe(StateName.DeleteWrittenMessages);
      expect(state(definition, StateName.WaitForAirtable)).toMatchObject({ Type: "Wait", TimestampPath: "$.round.retryAt", Next: StateName.WriteToAirtable });
    });

    it("ends the drain only once Airtable unlocks when the round gave up on a locked base", () => {
      // Assert
      const keepDraining = state(definition, StateName.KeepDraining);
      expect(keepDraining.Choices![1]).toEqual({ Variable: "$.round.lockedUntil", IsString: true, Next: StateName.WaitOutAirtableLock });
      expect(state(definition, StateName.WaitOutAirtableLock)).toMatchObject({ Type: "Wait", TimestampPath: "$.round.lockedUntil", Next: StateName.ReleaseLease });
    });

    it("stops the run on a configuration error (a Fail state) before its catch-all fails it as a fault of the writer", () => {
      // Arrange
      const catchers = writeToAirtable.Catch ?? [];

      // Assert
      expect(catchers.map((c) => [c.ErrorEquals, c.Next])).toEqual([
        [[ErrorName.AirtableConfiguration], StateName.ReleaseLeaseOnMisconfiguration],
        [["States.ALL"], StateName.ReleaseLeaseOnWriteFailure],
      ]);
      // Each through a release of the lease, whatever the release does, then the Fail with the writer's error.
      for (const [release, fail] of [
        [StateName.ReleaseLeaseOnMisconfiguration, StateName.AirtableMisconfigured],
        [StateName.ReleaseLeaseOnWriteFailure, StateName.WriteFailed],
      ] as const) {
        expect(state(definition, release)).toMatchObject({ Resource: "arn:aws:states:::dynamodb:deleteItem", ResultPath: null, Next: fail });
        expect(state(definition, release).Catch).toEqual([{ ErrorEquals: ["States.ALL"], Next: fail, ResultPath: "$.leaseRelease" }]);
      }
      expect(state(definition, StateName.AirtableMisconfigured)).toMatchObject({ Type: "Fail", Error: ErrorName.AirtableConfiguration, CausePath: "$.failure.Cause" });
      expect(state(definition, StateName.WriteFailed)).toMatchObject({ Type: "Fail", ErrorPath: "$.failure.Error", CausePath: "$.failure.Cause" });
    });

    it("deletes what was written in batches, and never fails the round over a delete", () => {
      // Assert
      expect(deleteWritten.Resource).toBe("arn:aws:states:::lambda:invoke");
      expect((deleteWritten.Parameters as { Payload: Record<string, string> }).Payload).toMatchObject({
        "delete.$": "$.round.written",
        "release.$": "$.round.release",
        "releaseAt.$": "$.round.releaseAt",
      });
      expect(deleteWritten.Catch).toEqual([expect.objectContaining({ ErrorEquals: ["States.ALL"], Next: StateName.AnyUnwritable })]);
    });
  });

  describe("a base that is down: the round is held and handed on, nothing else is received", () => {
    const seconds = (name: string) => worstCaseStateSeconds(name, state(definition, name), DRAIN_BOUNDS);
    const { keepHiddenSeconds, holdLimitSeconds } = holdArithmetic({
      receiveRound,
      writeToAirtable,
      deleteWrittenMessages: deleteWritten,
      deadLetterUnwritableMessages: deadLetterUnwritable,
      handOverHeldRound: state(definition, StateName.HandOverHeldRound),
      takeLeaseFromPredecessor: state(definition, StateName.TakeLeaseFromPredecessor),
    });
    const payload = (deleteWritten.Parameters as { Payload: Record<string, unknown> }).Payload;

    it("hands a held round on to a new execution, which retries it before it receives anything", () => {
      // Assert
      expect(state(definition, StateName.KeepDraining).Choices![0]).toEqual({ Variable: "$.round.held", IsNull: false, Next: StateName.HandOverHeldRound });
      const handOver = state(definition, StateName.HandOverHeldRound);
      expect(handOver).toMatchObject({ Resource: "arn:aws:states:::states:startExecution", Next: StateName.DrainComplete });
      expect((handOver.Parameters as { Input: Record<string, string> }).Input).toMatchObject({
        "continuedFrom.$": "$$.Execution.Id",
        "budget.$": "$.round.budget",
        "held.$": "$.round.held",
      });
      expect(state(definition, StateName.ResumeHeldRound)).toMatchObject({ Type: "Pass", Next: StateName.WaitForAirtable });
      expect(state(definition, StateName.CountRound).Parameters).toMatchObject({ round: { "held.$": "$.round.held" } });
    });

    it("keeps a held round hidden for the next execution: DeleteWrittenMessages extends it by a visibility timeout", () => {
      // Assert: what comes after the extension, at its worst: dead-lettering, the handover, the lease, one wait, and a
      // round without its receives
      const afterExtension =
        seconds(StateName.DeadLetterUnwritableMessages) +
        seconds(StateName.HandOverHeldRound) +
        seconds(StateName.TakeLeaseFromPredecessor) +
        MAX_WRITE_RETRY_WAIT_SECONDS +
        worstCaseRoundSeconds({
          receiveRound: { ...receiveRound, ItemProcessor: { StartAt: "Nothing", States: { Nothing: { Type: "Pass", End: true } } } },
          writeToAirtable,
          deleteWrittenMessages: deleteWritten,
          deadLetterUnwritableMessages: deadLetterUnwritable,
        });
      expect(payload).toMatchObject({ "keepHidden.$": "$.round.keepHidden", keepHiddenSeconds });
      expect(keepHiddenSeconds).toBeGreaterThanOrEqual(afterExtension);
    });

    it("hands a round on only while SQS can keep it hidden (12 h from its receive), so no extension is refused", () => {
      // Assert
      for (const name of [StateName.CollectRound, StateName.ResumeHeldRound]) {
        expect(state(definition, name).Parameters, name).toMatchObject({ round: { holdLimitSeconds } });
      }
      expect(seconds(StateName.ReceiveRound) + holdLimitSeconds + seconds(StateName.DeleteWrittenMessages) + keepHiddenSeconds).toBeLessThanOrEqual(
        SQS_MAX_HIDDEN_SECONDS,
      );
    });

    it("receives a message at most 3 times in a 24-hour outage: below the backstop of MAX_RECEIVE_COUNT", () => {
      // Arrange: each receive of a held message is followed by at least holdLimitSeconds of holding
      const outageSeconds = 24 * 60 * 60;
      const receives = 1 + Math.floor(outageSeconds / holdLimitSeconds);

      // Assert
      expect(holdLimitSeconds).toBeGreaterThan(8 * 60 * 60);
      expect(receives).toBeLessThanOrEqual(3);
      expect(receives).toBeLessThan(MAX_RECEIVE_COUNT);
    });

    it("ends an empty run in four states (IsContinuation, PeekQueue, AnyWaiting, NothingToDrain), before the lease", () => {
      // Assert
      expect(state(definition, StateName.IsContinuation).Default).toBe(StateName.PeekQueue);
      const peek = state(definition, StateName.PeekQueue);
      expect(peek).toMatchObject({
        Resource: "arn:aws:states:::aws-sdk:sqs:getQueueAttributes",
        Parameters: { AttributeNames: ["ApproximateNumberOfMessages"] },
        Next: StateName.AnyWaiting,
      });
      // A failed peek says nothing about the queue: it drains.
      expect(peek.Catch).toEqual([expect.objectContaining({ ErrorEquals: ["States.ALL"], Next: StateName.TakeLease })]);
      expect(state(definition, StateName.AnyWaiting)).toMatchObject({
        Choices: [{ Variable: "$.peek.waiting", NumericGreaterThan: 0, Next: StateName.TakeLease }],
        Default: StateName.NothingToDrain,
      });
      expect(state(definition, StateName.NothingToDrain).Type).toBe("Succeed");
    });
  });

  describe("visibility timeout", () => {
    const worstCase = worstCaseRoundSeconds({
      receiveRound,
      writeToAirtable,
      deleteWrittenMessages: deleteWritten,
      deadLetterUnwritableMessages: deadLetterUnwritable,
    });
    const queueVisibility = resource("DonationsQueue", "AWS::SQS::Queue").Properties.VisibilityTimeout as number;

    it("hides a received round for at least its worst case, so no message is delivered twice while in flight", () => {
      // Assert
      expect(receiveParameters.QueueUrl).toBe(`https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/DonationsQueue`);
      expect(receiveParameters.VisibilityTimeout).toBeGreaterThanOrEqual(worstCase);
      expect(queueVisibility).toBeGreaterThanOrEqual(worstCase);
      expect(receiveParameters.VisibilityTimeout).toBeLessThanOrEqual(12 * 60 * 60); // SQS's maximum
    });

    it("counts every WriteToAirtable attempt and the longest wait between them", () => {
      // Arrange: the same round with one attempt fewer
      const oneAttempt = worstCase - worstCaseRoundSeconds({
        receiveRound: { ...receiveRound, ItemProcessor: { StartAt: "Nothing", States: { Nothing: { Type: "Pass", End: true } } } },
        writeToAirtable,
        deleteWrittenMessages: { ...deleteWritten, TimeoutSeconds: 0, Retry: [] },
        deadLetterUnwritableMessages: { ...deadLetterUnwritable, ItemProcessor: { StartAt: "Nothing", States: { Nothing: { Type: "Pass", End: true } } } },
      });

      // Assert: the write loop alone is maxAttempts × (timeout × attempts + Lambda retry waits) + the waits between
      expect(oneAttempt).toBeGreaterThan(0);
      expect(worstCase).toBeGreaterThan(WritePolicy.maxAttempts * (writeToAirtable.TimeoutSeconds ?? 0) + (WritePolicy.maxAttempts - 1) * MAX_WRITE_RETRY_WAIT_SECONDS);
    });

    it("has teeth: two more Lambda retries on WriteToAirtable would outlast the synthesized timeout", () => {
      // Arrange
      const changed = structuredClone(writeToAirtable);
      changed.Retry![0]!.MaxAttempts = (changed.Retry![0]!.MaxAttempts ?? 3) + 2;

      // Act
      const changedWorstCase = worstCaseRoundSeconds({
        receiveRound,
        writeToAirtable: changed,
        deleteWrittenMessages: deleteWritten,
        deadLetterUnwritableMessages: deadLetterUnwritable,
      });

      // Assert
      expect(changedWorstCase).toBeGreaterThan(receiveParameters.VisibilityTimeout);
    });
  });

  describe("drain cap", () => {
    it("loops back to ReceiveRound only while fewer than MAX_ROUNDS_PER_EXECUTION rounds were drained", () => {
      // Assert: the counter starts at 0, grows by 1 per round, and KeepDraining compares it with the cap
      expect(state(definition, StateName.StartDrain)).toMatchObject({ Parameters: { drain: { rounds: 0 } }, Next: StateName.ReceiveRound });
      expect(state(definition, StateName.CountRound).Parameters).toMatchObject({
        drain: { "rounds.$": "States.MathAdd($.drain.rounds, 1)" },
      });
      const keepDraining = state(definition, StateName.KeepDraining);
      expect(keepDraining.Choices).toContainEqual({ Variable: "$.drain.rounds", NumericLessThan: MAX_ROUNDS_PER_EXECUTION, Next: StateName.ReceiveRound });
      expect(keepDraining.Default).toBe(StateName.ContinueInNewExecution);
    });

    it("keeps the worst-case execution history under Step Functions' 25,000 events", () => {
      // Act: every round at its worst (every retry, every message dead-lettered), see worstCaseExecutionEvents
      const worstCase = worstCaseExecutionEvents(definition);

      // Assert
      expect(worstCase).toBeLessThan(EXECUTION_HISTORY_LIMIT_EVENTS);
      // ...and one more round would not fit: the cap is as high as the history allows.
      expect(worstCase * (MAX_ROUNDS_PER_EXECUTION + 1) / MAX_ROUNDS_PER_EXECUTION).toBeGreaterThan(EXECUTION_HISTORY_LIMIT_EVENTS);
    });

    it("carries the Airtable budget into the continuation, which takes the lease over from its predecessor only", () => {
      // Assert
      const input = (state(definition, StateName.ContinueInNewExecution).Parameters as { Input: Record<string, string> }).Input;
      expect(input).toMatchObject({ "continuedFrom.$": "$$.Execution.Id", "budget.$": "$.round.budget" });
      expect(state(definition, StateName.IsContinuation).Choices).toEqual([
        { Variable: "$.continuedFrom", IsPresent: true, Next: StateName.TakeLeaseFromPredecessor },
      ]);
      expect(state(definition, StateName.TakeLeaseFromPredecessor)).toMatchObject({
        Resource: "arn:aws:states:::dynamodb:updateItem",
        Parameters: { ConditionExpression: "#holder = :previous", ExpressionAttributeValues: { ":previous": { "S.$": "$.continuedFrom" } } },
        Next: StateName.HasHeldRound,
      });
      expect(state(definition, StateName.HasHeldRound)).toMatchObject({
        Choices: [{ Variable: "$.held", IsPresent: true, Next: StateName.ResumeHeldRound }],
        Default: StateName.ResumeDrain,
      });
      expect(state(definition, StateName.ResumeDrain).Parameters).toMatchObject({ round: { "budget.$": "$.budget" } });
      // The predecessor ends holding the lease, for the continuation to take.
      expect(state(definition, StateName.ContinueInNewExecution).Next).toBe(StateName.DrainComplete);
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
