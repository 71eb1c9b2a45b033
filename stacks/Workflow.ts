import { ArnFormat, Duration, RemovalPolicy, type Stack } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as events from "aws-cdk-lib/aws-events";
import * as eventTargets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as sns from "aws-cdk-lib/aws-sns";
import * as snsSubscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import * as sqs from "aws-cdk-lib/aws-sqs";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { Config, Function, type StackContext } from "sst/constructs";
import { ConfigName, DEAD_LETTER_QUEUE_NAME, EnvName, SOURCE_QUEUE_NAME } from "@fundraise-sync/core/names";
import { DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES, DONATIONS_QUEUE_MAX_MESSAGE_BYTES } from "@fundraise-sync/core/limits";
import { AirtableHealthMetric } from "@fundraise-sync/core/airtable-health";
import { AIRTABLE_CLIENT_BUNDLING } from "./bundling";
import { LEASE_KEY, buildDrainDefinition } from "./drain-definition";
import { suppressReviewedFindings } from "./nag";
import {
  AIRTABLE_REQUEST_TIMEOUT_MS,
  FUNCTION_TIMEOUT_SECONDS,
  MAX_RECEIVE_COUNT,
  type StageSettings,
  settingsFor,
} from "./settings";

/**
 * The product: a scheduled Standard state machine that drains the donations queue into Airtable.
 *
 *   EventBridge schedule → DrainDonations (Step Functions)
 *     → TakeLease (a conditional write to DrainLease, DynamoDB): one drain at a time
 *     → rounds of: ReceiveRound (3 × ReceiveBatch, each message through Validate) → WriteToAirtable (one writer,
 *       10 records per request, within the base's share) → DeleteWrittenMessages (batch) → DeadLetterUnwritableMessages
 *     → failures: DeadLetter… (SQS SDK integration) with the original body and the reason
 *     → ReleaseLease
 */
export function Workflow({ stack, app }: StackContext) {
  const settings = settingsFor(app.stage);

  // --- Queues -------------------------------------------------------------------------------------------------
  const deadLetterQueue = new sqs.Queue(stack, "DeadLetterQueue", {
    queueName: `${app.stage}-${DEAD_LETTER_QUEUE_NAME}`,
    retentionPeriod: Duration.days(14),
    maxMessageSizeBytes: DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  });
  const queue = new sqs.Queue(stack, "DonationsQueue", {
    queueName: `${app.stage}-${SOURCE_QUEUE_NAME}`,
    retentionPeriod: Duration.days(14),
    maxMessageSizeBytes: DONATIONS_QUEUE_MAX_MESSAGE_BYTES,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    // A backstop only: the state machine dead-letters failures itself, with a reason. This catches what it cannot.
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
  });

  // --- Configuration --------------------------------------------------------------------------------------------
  const airtableToken = new Config.Secret(stack, ConfigName.AirtableToken);
  const airtableBaseId = new Config.Parameter(stack, ConfigName.AirtableBaseId, { value: settings.airtableBaseId });
  const airtableTableName = new Config.Parameter(stack, ConfigName.AirtableTableName, {
    value: settings.airtableTableName,
  });

  // --- Functions: each with only what it needs ---------------------------------------------------------------------
  const validate = new Function(stack, "Validate", {
    handler: "packages/functions/src/validate.handler",
    timeout: FUNCTION_TIMEOUT_SECONDS.validate,
  });
  const writeToAirtable = new Function(stack, "WriteToAirtable", {
    handler: "packages/functions/src/write-to-airtable.handler",
    timeout: FUNCTION_TIMEOUT_SECONDS.writeToAirtable,
    nodejs: AIRTABLE_CLIENT_BUNDLING,
    bind: [airtableToken, airtableBaseId, airtableTableName],
    environment: {
      [EnvName.AirtableRequestTimeoutMs]: String(AIRTABLE_REQUEST_TIMEOUT_MS),
      [EnvName.AirtableRequestsPerSecond]: String(settings.airtableRequestsPerSecond),
    },
  });
  const deleteMessages = new Function(stack, "DeleteMessages", {
    handler: "packages/functions/src/delete-messages.handler",
    timeout: FUNCTION_TIMEOUT_SECONDS.deleteMessages,
    // DeleteMessageBatch and ChangeMessageVisibilityBatch are authorized as their single-message actions.
    permissions: [
      new iam.PolicyStatement({ actions: ["sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], resources: [queue.queueArn] }),
    ],
  });

  // --- The drain lease: one drain at a time --------------------------------------------------------------------
  // One item, written only by the state machine's conditional writes. It holds nothing worth keeping (a lost lease is
  // taken again by the next drain), so it goes with the stack, and CloudFormation names it (a failed create leaves
  // nothing behind that blocks a retry).
  const leaseTable = new dynamodb.Table(stack, "DrainLease", {
    partitionKey: { name: LEASE_KEY.name, type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    removalPolicy: RemovalPolicy.DESTROY,
  });

  // --- The state machine ----------------------------------------------------------------------------------------
  const stateMachineName = `${app.stage}-${app.name}-DrainDonations`;
  // Built from the name, not the construct, so that the role's permissions do not depend on the machine itself.
  const stateMachineArn = stack.formatArn({
    service: "states",
    resource: "stateMachine",
    resourceName: stateMachineName,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  const drain = buildDrainDefinition(stack, {
    queue,
    deadLetterQueue,
    leaseTable,
    // The lease's holder is always one of this machine's executions: DescribeExecution on those only.
    executionArns: stack.formatArn({
      service: "states",
      resource: "execution",
      resourceName: `${stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    }),
    functions: { validate, writeToAirtable, deleteMessages },
  });
  // Nothing received may become visible again while it is still being written or dead-lettered.
  (queue.node.defaultChild as sqs.CfnQueue).visibilityTimeout = drain.visibilityTimeoutSeconds;

  const logGroup = new logs.LogGroup(stack, "DrainDonationsLogs", {
    logGroupName: `/aws/vendedlogs/states/${stateMachineName}`,
    retention: logs.RetentionDays.ONE_MONTH,
    // Kept when the stack is deleted, but not when its first create rolls back: a kept group of this fixed name would
    // make every retry of the first deploy fail ("already exists"). CloudFormation's RetainExceptOnCreate.
    removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
  });
  const stateMachine = new sfn.StateMachine(stack, "DrainDonations", {
    stateMachineName,
    stateMachineType: sfn.StateMachineType.STANDARD,
    comment: "Drains the donations queue into Airtable: validate, upsert, delete; failures to the DLQ with a reason.",
    definitionBody: sfn.DefinitionBody.fromChainable(drain.chain),
    // A stuck execution would hold the lease and block every later one: end it; its messages simply reappear, and the
    // next drain takes the lease over from an execution that has timed out.
    timeout: Duration.hours(1),
    logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: settings.logExecutionData },
    // The functions are traced (SST's default): tracing the state machine too puts a drain in one X-Ray trace.
    tracingEnabled: true,
  });

  // ContinueInNewExecution (a raw ASL state, so CDK cannot derive this grant) starts this machine, and only it.
  stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ["states:StartExecution"], resources: [stateMachineArn] }));

  const schedule = new events.Rule(stack, "DrainSchedule", {
    description: "Starts a drain of the donations queue",
    schedule: events.Schedule.expression(settings.schedule),
    targets: [new eventTargets.SfnStateMachine(stateMachine, { input: events.RuleTargetInput.fromObject({}) })],
  });

  // --- Alarms ---------------------------------------------------------------------------------------------------
  const alarms = [
    new cloudwatch.Alarm(stack, "DeadLetteredDonationsAlarm", {
      alarmDescription: "Donations are waiting in the dead-letter queue: read their ErrorCause, fix, then redrive.",
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: "Maximum" }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }),
    new cloudwatch.Alarm(stack, "FailedDrainsAlarm", {
      alarmDescription: "A drain execution failed or timed out (e.g. AirtableConfigurationError): donations are not flowing.",
      metric: new cloudwatch.MathExpression({
        expression: "failed + timedOut + aborted",
        usingMetrics: {
          failed: stateMachine.metricFailed({ period: Duration.minutes(5), statistic: "Sum" }),
          timedOut: stateMachine.metricTimedOut({ period: Duration.minutes(5), statistic: "Sum" }),
          aborted: stateMachine.metricAborted({ period: Duration.minutes(5), statistic: "Sum" }),
        },
        period: Duration.minutes(5),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }),
    new cloudwatch.Alarm(stack, "DrainNotStartedAlarm", {
      alarmDescription: "The schedule could not start a drain (its target failed, e.g. a missing permission): donations are not flowing.",
      metric: new cloudwatch.Metric({
        namespace: "AWS/Events",
        metricName: "FailedInvocations",
        dimensionsMap: { RuleName: schedule.ruleName },
        period: Duration.minutes(5),
        statistic: "Sum",
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }),
    // WriteToAirtable logs AirtableFailing after every attempt that reached the base: 1 when the base failed (5xx,
    // timeout, refused connection, 429), 0 when it answered. A minimum of 1 over a period means not one answer in it.
    new cloudwatch.Alarm(stack, "AirtableFailingAlarm", {
      alarmDescription:
        "Airtable has been failing for 15 minutes (5xx, timeouts or 429s): donations wait in the queue, none is dead-lettered; they drain by themselves when it answers again. Check status.airtable.com.",
      metric: new cloudwatch.Metric({
        namespace: AirtableHealthMetric.namespace,
        metricName: AirtableHealthMetric.name,
        dimensionsMap: { [AirtableHealthMetric.dimension]: app.stage },
        period: Duration.minutes(5),
        statistic: "Minimum",
      }),
      threshold: 1,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }),
    new cloudwatch.Alarm(stack, "OldestDonationAlarm", {
      alarmDescription: `The oldest donation in the queue has waited more than ${settings.oldestDonationAlarmMinutes} minutes: drains are not keeping up or not running.`,
      metric: queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: "Maximum" }),
      threshold: settings.oldestDonationAlarmMinutes * 60,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }),
  ];
  const alarmTopic = alarmTopicFor(stack, app.stage, settings, alarms);

  retainLogsOfEveryFunction(stack);
  suppressReviewedFindings(stack, { stateMachine, deadLetterQueue, schedule, leaseTable });

  stack.addOutputs({
    QueueUrl: queue.queueUrl,
    DeadLetterQueueUrl: deadLetterQueue.queueUrl,
    StateMachineArn: stateMachine.stateMachineArn,
    AlarmTopicArn: alarmTopic.topicArn,
    LeaseTableName: leaseTable.tableName,
  });

  return { queue, deadLetterQueue, stateMachine, alarmTopic, leaseTable };
}

/**
 * The topic every alarm notifies: the stage's own (`alarmTopicArn`) or one this stack creates. Each address in
 * `alarmEmails` is subscribed to it; AWS mails it a confirmation link, and nothing is delivered until it is clicked.
 *
 * A created topic refuses plain HTTP, and its policy lets CloudWatch publish for these alarms only: a topic policy
 * replaces SNS's default one, so with the HTTPS Deny alone nothing may publish and every alarm notification is
 * dropped (the alarm history says "not authorized to perform: SNS:Publish"). A stage's own topic must allow
 * `cloudwatch.amazonaws.com` itself. Checked by evaluating the policy (`stacks/policies.test.ts`).
 */
export function alarmTopicFor(stack: Stack, stage: string, settings: StageSettings, alarms: cloudwatch.Alarm[] = []): sns.ITopic {
  let topic: sns.ITopic;
  if (settings.alarmTopicArn) {
    topic = sns.Topic.fromTopicArn(stack, "AlarmTopic", settings.alarmTopicArn);
  } else {
    topic = new sns.Topic(stack, "AlarmTopic", {
      topicName: `${stage}-fundraise-sync-alarms`,
      displayName: `fundraise-sync ${stage} alarms`,
      enforceSSL: true,
    });
    if (alarms.length > 0) {
      topic.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: "AllowThisStacksAlarmsToPublish",
          principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
          actions: ["sns:Publish"],
          resources: [topic.topicArn],
          // Only CloudWatch acting for these alarms, not for any alarm of any account (the confused deputy).
          conditions: {
            StringEquals: { "aws:SourceAccount": stack.account },
            ArnLike: { "aws:SourceArn": alarms.map((alarm) => alarm.alarmArn) },
          },
        }),
      );
    }
  }
  for (const alarm of alarms) alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic));
  for (const email of settings.alarmEmails ?? []) topic.addSubscription(new snsSubscriptions.EmailSubscription(email));
  return topic;
}

/** Days a function's logs are kept: long enough to look into last month's failed drain. */
const FUNCTION_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/**
 * Gives every function of the stack (its handlers and SST's own custom-resource handler) a log group of its own
 * with a retention: a group Lambda creates by itself keeps its logs forever, and outside the stack.
 */
function retainLogsOfEveryFunction(stack: Stack): void {
  for (const child of stack.node.findAll()) {
    if (!(child instanceof lambda.CfnFunction) || child.loggingConfig !== undefined) continue;
    const owner = child.node.scope!;
    const logGroup = new logs.LogGroup(owner, "Logs", { retention: FUNCTION_LOG_RETENTION });
    child.loggingConfig = { logGroup: logGroup.logGroupName };
  }
}
