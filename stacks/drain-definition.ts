import { Duration } from "aws-cdk-lib";
import { Construct } from "constructs";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import * as tasks from "aws-cdk-lib/aws-stepfunctions-tasks";
import { ErrorName } from "@fundraise-sync/core/errors";
import { AIRTABLE_RATE_LIMIT_PENALTY_SECONDS, SQS_MAX_MESSAGES_PER_RECEIVE } from "@fundraise-sync/core/limits";
import { DeadLetterAttribute } from "@fundraise-sync/core/names";
import type { MessageOutcome } from "../packages/functions/src/contracts";
import { FUNCTION_TIMEOUT_SECONDS, MAP_MAX_CONCURRENCY, MAX_BATCHES_PER_EXECUTION } from "./settings";
import { type AslGraph, worstCaseBatchSeconds } from "./timing";

/** State names: what people read in the Step Functions console, and what the local runtime and tests key on. */
export const StateName = {
  IsContinuation: "IsContinuation",
  CheckForRunningDrain: "CheckForRunningDrain",
  IsAnotherDrainRunning: "IsAnotherDrainRunning",
  AnotherDrainIsRunning: "AnotherDrainIsRunning",
  StartDrain: "StartDrain",
  ReceiveBatch: "ReceiveBatch",
  AnyMessages: "AnyMessages",
  ProcessBatch: "ProcessBatch",
  CountBatch: "CountBatch",
  KeepDraining: "KeepDraining",
  ContinueInNewExecution: "ContinueInNewExecution",
  DrainComplete: "DrainComplete",
  // Inside ProcessBatch, once per message:
  Validate: "Validate",
  IsCopyInBatch: "IsCopyInBatch",
  WriteToAirtable: "WriteToAirtable",
  DeleteMessage: "DeleteMessage",
  DeleteCopy: "DeleteCopy",
  DeadLetterInvalidMessage: "DeadLetterInvalidMessage",
  DeadLetterUnwritableMessage: "DeadLetterUnwritableMessage",
  DeleteDeadLetteredMessage: "DeleteDeadLetteredMessage",
  LeaveForRedelivery: "LeaveForRedelivery",
  AirtableMisconfigured: "AirtableMisconfigured",
} as const;

/**
 * Lambda's own transient failures, retried as AWS recommends for `lambda:invoke` (the CDK default list plus
 * TooManyRequests, which throttling raises).
 */
export const LAMBDA_SERVICE_ERRORS = [
  "Lambda.ClientExecutionTimeoutException",
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  "Lambda.TooManyRequestsException",
];

/** The retry rules, in one place: the worst-case arithmetic (visibility timeout, drain cap) follows from them. */
export const RetryPolicy = {
  lambdaService: { errors: LAMBDA_SERVICE_ERRORS, interval: Duration.seconds(2), maxAttempts: 6, backoffRate: 2 },
  // A 429 locks the base for 30 s: never come back sooner, and never jitter below it.
  airtableRateLimited: {
    errors: [ErrorName.AirtableRateLimited],
    interval: Duration.seconds(AIRTABLE_RATE_LIMIT_PENALTY_SECONDS),
    maxAttempts: 3,
    backoffRate: 1.5,
    jitterStrategy: sfn.JitterType.NONE,
  },
  // 5xx, timeouts, network: exponential backoff with full jitter so parallel writers do not retry in lockstep.
  airtableUnavailable: {
    errors: [ErrorName.AirtableUnavailable, "Sandbox.Timedout", sfn.Errors.TIMEOUT],
    interval: Duration.seconds(2),
    maxAttempts: 4,
    backoffRate: 2,
    maxDelay: Duration.seconds(20),
    jitterStrategy: sfn.JitterType.FULL,
  },
  // SQS calls (receive, send to DLQ, delete) are idempotent enough to retry on anything.
  queueCall: { errors: [sfn.Errors.ALL], interval: Duration.seconds(1), maxAttempts: 3, backoffRate: 2 },
} satisfies Record<string, sfn.RetryProps>;

export interface DrainResources {
  queue: sqs.IQueue;
  deadLetterQueue: sqs.IQueue;
  stateMachineArn: string;
  functions: { validate: lambda.IFunction; writeToAirtable: lambda.IFunction; deleteMessage: lambda.IFunction };
}

/** A Lambda task's own timeout: the function's, plus room for the invoke itself. */
const taskTimeout = (functionSeconds: number) => sfn.Timeout.duration(Duration.seconds(functionSeconds + 5));
const SQS_TASK_TIMEOUT = sfn.Timeout.duration(Duration.seconds(30));

/**
 * Builds the drain: overlap guard → receive → Map(Validate → WriteToAirtable → DeleteMessage) → receive again, with
 * every per-message failure dead-lettered inside the Map, and returns the visibility timeout that the receive
 * sets, computed from the item processor's own retry settings.
 */
export function buildDrainDefinition(parent: Construct, { queue, deadLetterQueue, stateMachineArn, functions }: DrainResources) {
  // States live in their own scope: their ids are the console's state names, and may equal the functions' ids.
  const stack = new Construct(parent, "DrainDonationsStates");
  const invoke = (name: string, fn: lambda.IFunction, seconds: number, props: Partial<tasks.LambdaInvokeProps>) =>
    new tasks.LambdaInvoke(stack, name, {
      lambdaFunction: fn,
      retryOnServiceExceptions: false, // replaced by RetryPolicy.lambdaService (adds TooManyRequests)
      taskTimeout: taskTimeout(seconds),
      ...props,
    }).addRetry(RetryPolicy.lambdaService);

  // --- Per message (the Map's item processor) --------------------------------------------------------------------
  const leaveForRedelivery = new sfn.Pass(stack, StateName.LeaveForRedelivery, {
    comment: "Could not delete or dead-letter: the message stays queued, and is upserted again on redelivery.",
    parameters: { outcome: "left-in-queue", messageId: sfn.JsonPath.stringAt("$.message.MessageId") },
  });

  const deleteTask = (name: string, outcome: MessageOutcome) =>
    invoke(name, functions.deleteMessage, FUNCTION_TIMEOUT_SECONDS.deleteMessage, {
      payload: sfn.TaskInput.fromObject({
        queueUrl: sfn.JsonPath.stringAt("$.queueUrl"),
        receiptHandle: sfn.JsonPath.stringAt("$.message.ReceiptHandle"),
        messageId: sfn.JsonPath.stringAt("$.message.MessageId"),
        outcome,
      }),
      // The iteration's output is just this, so the Map's collected results stay small.
      resultSelector: {
        messageId: sfn.JsonPath.stringAt("$.Payload.messageId"),
        outcome: sfn.JsonPath.stringAt("$.Payload.outcome"),
      },
      resultPath: "$",
    })
      .addRetry(RetryPolicy.queueCall)
      .addCatch(leaveForRedelivery, { errors: [sfn.Errors.ALL], resultPath: "$.failure" });

  const deleteDeadLettered = deleteTask(StateName.DeleteDeadLetteredMessage, "dead-lettered");
  const deadLetter = (name: string, failedState: string) =>
    new tasks.CallAwsService(stack, name, {
      comment: `Copies the original body to the DLQ with the reason ${failedState} failed in its attributes`,
      service: "sqs",
      action: "sendMessage",
      iamAction: "sqs:SendMessage",
      iamResources: [deadLetterQueue.queueArn],
      parameters: {
        QueueUrl: deadLetterQueue.queueUrl,
        MessageBody: sfn.JsonPath.stringAt("$.message.Body"),
        MessageAttributes: {
          [DeadLetterAttribute.ErrorName]: { DataType: "String", StringValue: sfn.JsonPath.stringAt("$.failure.Error") },
          [DeadLetterAttribute.ErrorCause]: { DataType: "String", StringValue: sfn.JsonPath.stringAt("$.failure.Cause") },
          [DeadLetterAttribute.FailedState]: { DataType: "String", StringValue: failedState },
          [DeadLetterAttribute.ExecutionArn]: { DataType: "String", StringValue: sfn.JsonPath.stringAt("$$.Execution.Id") },
          [DeadLetterAttribute.ReceiveCount]: {
            DataType: "Number",
            StringValue: sfn.JsonPath.stringAt("$.message.Attributes.ApproximateReceiveCount"),
          },
          [DeadLetterAttribute.SourceMessageId]: { DataType: "String", StringValue: sfn.JsonPath.stringAt("$.message.MessageId") },
        },
      },
      resultPath: sfn.JsonPath.DISCARD,
      taskTimeout: SQS_TASK_TIMEOUT,
    })
      .addRetry(RetryPolicy.queueCall)
      .addCatch(leaveForRedelivery, { errors: [sfn.Errors.ALL], resultPath: "$.deadLetterFailure" })
      .next(deleteDeadLettered);

  const validate = invoke(StateName.Validate, functions.validate, FUNCTION_TIMEOUT_SECONDS.validate, {
    payload: sfn.TaskInput.fromObject({
      message: sfn.JsonPath.objectAt("$.message"),
      index: sfn.JsonPath.numberAt("$.index"),
      batchBodies: sfn.JsonPath.listAt("$.batchBodies"),
    }),
    resultSelector: { event: sfn.JsonPath.objectAt("$.Payload.event"), isCopy: sfn.JsonPath.objectAt("$.Payload.isCopy") },
    resultPath: "$.validated",
  })
    // No retry for an invalid message: it will never become valid.
    .addCatch(deadLetter(StateName.DeadLetterInvalidMessage, StateName.Validate), {
      errors: [sfn.Errors.ALL],
      resultPath: "$.failure",
    });

  const writeToAirtable = invoke(StateName.WriteToAirtable, functions.writeToAirtable, FUNCTION_TIMEOUT_SECONDS.writeToAirtable, {
    payload: sfn.TaskInput.fromObject({ event: sfn.JsonPath.objectAt("$.validated.event") }),
    resultSelector: { recordId: sfn.JsonPath.stringAt("$.Payload.recordId"), created: sfn.JsonPath.objectAt("$.Payload.created") },
    resultPath: "$.written",
  })
    .addRetry(RetryPolicy.airtableRateLimited)
    .addRetry(RetryPolicy.airtableUnavailable)
    // Wrong token, base or table: every message would fail the same way. Stop the run; messages stay queued.
    .addCatch(
      new sfn.Fail(stack, StateName.AirtableMisconfigured, {
        comment: "Airtable refused the token, base or table: fix the configuration; no message was dead-lettered.",
        error: ErrorName.AirtableConfiguration,
        causePath: "$.failure.Cause",
      }),
      { errors: [ErrorName.AirtableConfiguration], resultPath: "$.failure" },
    )
    .addCatch(deadLetter(StateName.DeadLetterUnwritableMessage, StateName.WriteToAirtable), {
      errors: [sfn.Errors.ALL],
      resultPath: "$.failure",
    });

  const itemProcessor = validate.next(
    new sfn.Choice(stack, StateName.IsCopyInBatch, {
      comment: "An earlier message in this batch carries the same event: it writes, this copy is only deleted.",
    })
      .when(sfn.Condition.booleanEquals("$.validated.isCopy", true), deleteTask(StateName.DeleteCopy, "copy-in-batch"))
      .otherwise(writeToAirtable.next(deleteTask(StateName.DeleteMessage, "written"))),
  );

  // --- Per execution ----------------------------------------------------------------------------------------------
  const processBatch = new sfn.Map(stack, StateName.ProcessBatch, {
    comment: `Each message: Validate → WriteToAirtable → DeleteMessage, ${MAP_MAX_CONCURRENCY} at a time (Airtable allows 5 requests/s per base)`,
    itemsPath: "$.batch.Messages",
    maxConcurrency: MAP_MAX_CONCURRENCY,
    itemSelector: {
      message: sfn.JsonPath.objectAt("$$.Map.Item.Value"),
      index: sfn.JsonPath.numberAt("$$.Map.Item.Index"),
      batchBodies: sfn.JsonPath.listAt("$.batch.Messages[*].Body"),
      queueUrl: queue.queueUrl,
    },
    resultPath: sfn.JsonPath.DISCARD,
  }).itemProcessor(itemProcessor);

  // The receive's visibility timeout follows from the item processor as rendered, retries and timeouts included.
  const itemGraph = (processBatch.toStateJson() as { ItemProcessor: AslGraph }).ItemProcessor;
  const visibilityTimeoutSeconds =
    Math.ceil(worstCaseBatchSeconds(itemGraph, SQS_MAX_MESSAGES_PER_RECEIVE, MAP_MAX_CONCURRENCY)) + VISIBILITY_MARGIN_SECONDS;

  const drainComplete = new sfn.Succeed(stack, StateName.DrainComplete, { outputPath: "$.drain" });

  const receiveBatch = new tasks.CallAwsService(stack, StateName.ReceiveBatch, {
    comment: "Up to 10 messages, hidden from other consumers until they are written or dead-lettered",
    service: "sqs",
    action: "receiveMessage",
    iamAction: "sqs:ReceiveMessage",
    iamResources: [queue.queueArn],
    parameters: {
      QueueUrl: queue.queueUrl,
      MaxNumberOfMessages: SQS_MAX_MESSAGES_PER_RECEIVE,
      VisibilityTimeout: visibilityTimeoutSeconds,
      // A short long-poll asks every SQS server, so a small backlog is not missed by sampling.
      WaitTimeSeconds: 1,
      AttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
    },
    resultPath: "$.batch",
    taskTimeout: SQS_TASK_TIMEOUT,
  }).addRetry(RetryPolicy.queueCall);


  const startDrain = new sfn.Pass(stack, StateName.StartDrain, {
    result: sfn.Result.fromObject({ batches: 0, received: 0 }),
    resultPath: "$.drain",
  }).next(receiveBatch);

  const countBatch = new sfn.Pass(stack, StateName.CountBatch, {
    parameters: {
      batches: sfn.JsonPath.mathAdd(sfn.JsonPath.numberAt("$.drain.batches"), 1),
      received: sfn.JsonPath.mathAdd(
        sfn.JsonPath.numberAt("$.drain.received"),
        // arrayLength renders an intrinsic (a string token) that mathAdd accepts as its second operand.
        sfn.JsonPath.arrayLength(sfn.JsonPath.listAt("$.batch.Messages")) as unknown as number,
      ),
    },
    resultPath: "$.drain",
  });

  // At the cap a backlog is not left for the next scheduled run: a fresh execution (a fresh history) carries on at
  // once. It skips the overlap guard, which would see this execution still running; this one ends right after.
  const continueInNewExecution = new sfn.CustomState(stack, StateName.ContinueInNewExecution, {
    stateJson: {
      Type: "Task",
      Comment: "The cap is reached and the queue may hold more: start a new execution to keep draining",
      Resource: "arn:aws:states:::states:startExecution",
      Parameters: {
        "StateMachineArn.$": "$$.StateMachine.Id",
        // Raw ASL (a CustomState renders no CDK tokens): `.$` keys take paths.
        Input: { [`${CONTINUED_FROM}.$`]: "$$.Execution.Id", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id" },
      },
      ResultPath: null,
      TimeoutSeconds: 30,
    },
  })
    .addRetry(RetryPolicy.queueCall)
    // If it cannot start, the next scheduled run drains the rest: nothing is lost, only delayed.
    .addCatch(drainComplete, { errors: [sfn.Errors.ALL], resultPath: "$.continuationFailure" })
    .next(drainComplete);

  receiveBatch.next(
    new sfn.Choice(stack, StateName.AnyMessages)
      .when(
        sfn.Condition.isPresent("$.batch.Messages[0]"),
        processBatch.next(countBatch).next(
          new sfn.Choice(stack, StateName.KeepDraining, {
            comment: `Receive again until the queue is empty, at most ${MAX_BATCHES_PER_EXECUTION} batches per execution`,
          })
            .when(sfn.Condition.numberLessThan("$.drain.batches", MAX_BATCHES_PER_EXECUTION), receiveBatch)
            .otherwise(continueInNewExecution),
        ),
      )
      .otherwise(drainComplete),
  );

  const guard = new tasks.CallAwsService(stack, StateName.CheckForRunningDrain, {
    comment: "Overlap guard: two drains at once could write one event twice",
    service: "sfn",
    action: "listExecutions",
    iamAction: "states:ListExecutions",
    iamResources: [stateMachineArn],
    parameters: { StateMachineArn: sfn.JsonPath.stringAt("$$.StateMachine.Id"), StatusFilter: "RUNNING", MaxResults: 2 },
    resultSelector: { running: sfn.JsonPath.arrayLength(sfn.JsonPath.listAt("$.Executions")) },
    resultPath: "$.guard",
    taskTimeout: SQS_TASK_TIMEOUT,
  })
    .addRetry(RetryPolicy.queueCall)
    .next(
      new sfn.Choice(stack, StateName.IsAnotherDrainRunning)
        .when(sfn.Condition.numberGreaterThan("$.guard.running", 1), new sfn.Succeed(stack, StateName.AnotherDrainIsRunning))
        .otherwise(startDrain),
    );

  const chain = new sfn.Choice(stack, StateName.IsContinuation, {
    comment: "A continuation of a drain that reached its cap skips the overlap guard (its predecessor is ending)",
  })
    .when(sfn.Condition.isPresent(`$.${CONTINUED_FROM}`), startDrain)
    .otherwise(guard);

  return { chain, visibilityTimeoutSeconds };
}

/** The input key that marks an execution started by {@link StateName.ContinueInNewExecution}. */
export const CONTINUED_FROM = "continuedFrom";

/** Slack for Step Functions' own scheduling between states, beyond the tasks' worst case. */
const VISIBILITY_MARGIN_SECONDS = 60;
