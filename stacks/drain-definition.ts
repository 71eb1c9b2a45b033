import { Duration } from "aws-cdk-lib";
import { Construct } from "constructs";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import * as tasks from "aws-cdk-lib/aws-stepfunctions-tasks";
import { ErrorName } from "@fundraise-sync/core/errors";
import { RECEIVES_PER_ROUND, SQS_MAX_MESSAGES_PER_RECEIVE } from "@fundraise-sync/core/limits";
import { DeadLetterAttribute } from "@fundraise-sync/core/names";
import { MAX_WRITE_RETRY_WAIT_SECONDS, WritePolicy } from "@fundraise-sync/core/write-round";
import { FUNCTION_TIMEOUT_SECONDS, MAX_ROUNDS_PER_EXECUTION, VALIDATE_CONCURRENCY } from "./settings";
import { type AslGraph, type AslState, type GraphBounds, worstCaseEvents, worstCaseStateSeconds } from "./timing";

/** State names: what people read in the Step Functions console, and what the local runtime and tests key on. */
export const StateName = {
  IsContinuation: "IsContinuation",
  // A scheduled drain looks before it does anything else: an empty queue ends it at once.
  PeekQueue: "PeekQueue",
  AnyWaiting: "AnyWaiting",
  NothingToDrain: "NothingToDrain",
  // The lease (one drain at a time): taken at the start, released at every end.
  TakeLease: "TakeLease",
  ReadLease: "ReadLease",
  IsLeaseStillHeld: "IsLeaseStillHeld",
  DescribeLeaseHolder: "DescribeLeaseHolder",
  HasLeaseHolderEnded: "HasLeaseHolderEnded",
  TakeOverStaleLease: "TakeOverStaleLease",
  TakeLeaseFromPredecessor: "TakeLeaseFromPredecessor",
  AnotherDrainIsRunning: "AnotherDrainIsRunning",
  StartDrain: "StartDrain",
  HasHeldRound: "HasHeldRound",
  ResumeHeldRound: "ResumeHeldRound",
  ResumeDrain: "ResumeDrain",
  ReceiveRound: "ReceiveRound",
  // Inside ReceiveRound, once per receive:
  ReceiveBatch: "ReceiveBatch",
  AnyReceived: "AnyReceived",
  NothingReceived: "NothingReceived",
  ValidateBatch: "ValidateBatch",
  // Inside ValidateBatch, once per message:
  Validate: "Validate",
  IsInvalidMessageRedriven: "IsInvalidMessageRedriven",
  DeadLetterInvalidMessage: "DeadLetterInvalidMessage",
  DeadLetterRedrivenInvalidMessage: "DeadLetterRedrivenInvalidMessage",
  DeleteInvalidMessage: "DeleteInvalidMessage",
  InvalidMessageDeadLettered: "InvalidMessageDeadLettered",
  KeepInvalidMessageQueued: "KeepInvalidMessageQueued",
  KeepUnvalidatedMessageQueued: "KeepUnvalidatedMessageQueued",
  // Once per round:
  AnyMessages: "AnyMessages",
  CollectRound: "CollectRound",
  WriteToAirtable: "WriteToAirtable",
  IsRetryDue: "IsRetryDue",
  WaitForAirtable: "WaitForAirtable",
  DeleteWrittenMessages: "DeleteWrittenMessages",
  AnyUnwritable: "AnyUnwritable",
  DeadLetterUnwritableMessages: "DeadLetterUnwritableMessages",
  // Inside DeadLetterUnwritableMessages, once per message:
  IsUnwritableMessageRedriven: "IsUnwritableMessageRedriven",
  DeadLetterUnwritableMessage: "DeadLetterUnwritableMessage",
  DeadLetterRedrivenUnwritableMessage: "DeadLetterRedrivenUnwritableMessage",
  DeleteUnwritableMessage: "DeleteUnwritableMessage",
  KeepUnwritableMessageQueued: "KeepUnwritableMessageQueued",
  CountRound: "CountRound",
  KeepDraining: "KeepDraining",
  WaitOutAirtableLock: "WaitOutAirtableLock",
  ContinueInNewExecution: "ContinueInNewExecution",
  HandOverHeldRound: "HandOverHeldRound",
  ReleaseLease: "ReleaseLease",
  DrainComplete: "DrainComplete",
  ReleaseLeaseOnMisconfiguration: "ReleaseLeaseOnMisconfiguration",
  AirtableMisconfigured: "AirtableMisconfigured",
  ReleaseLeaseOnWriteFailure: "ReleaseLeaseOnWriteFailure",
  WriteFailed: "WriteFailed",
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

/**
 * The retry rules of the tasks, in one place: the worst-case arithmetic (visibility timeout, drain cap) follows from
 * them. Airtable's own failures (429, 5xx, timeouts) are not here: WriteToAirtable sorts them out per message and the
 * state machine waits between its attempts (`WritePolicy`, `WaitForAirtable`), so one 429 pauses the whole round.
 */
export const RetryPolicy = {
  lambdaService: { errors: LAMBDA_SERVICE_ERRORS, interval: Duration.seconds(2), maxAttempts: 6, backoffRate: 2 },
  // A function that ran out of time: once more. Lambda reports it as `Sandbox.Timedout` in current runtimes and has
  // reported timeouts and out-of-memory as `Lambda.Unknown` ("Handle Lambda service exceptions"); the task's own
  // timeout is `States.Timeout`.
  functionTimedOut: { errors: ["Sandbox.Timedout", "Lambda.Unknown", sfn.Errors.TIMEOUT], interval: Duration.seconds(2), maxAttempts: 1 },
  // An invalid message will never become valid: a retrier that matches it first, and never retries.
  invalidMessage: { errors: [ErrorName.InvalidDonationEvent], maxAttempts: 0 },
  // Any other failure of a pure task (a broken bundle, a runtime fault): once more, then it is caught.
  anyOtherFailure: { errors: [sfn.Errors.ALL], interval: Duration.seconds(1), maxAttempts: 1 },
  // SSM could not be read at a cold start (throttled, say): only that invocation failed, so try again.
  configurationUnavailable: { errors: [ErrorName.ConfigurationUnavailable], interval: Duration.seconds(2), maxAttempts: 3, backoffRate: 2 },
  // SQS calls (receive, send to DLQ, delete) are idempotent enough to retry on anything.
  queueCall: { errors: [sfn.Errors.ALL], interval: Duration.seconds(1), maxAttempts: 3, backoffRate: 2 },
  // The lease's calls (DynamoDB, DescribeExecution): throttling and service faults are retried on anything, after
  // a first retrier that never retries the answers (see `LeaseAnswer`): Step Functions applies the first retrier
  // that names the error, and MaxAttempts 0 means no retry ("Handling errors in Step Functions workflows").
  leaseCall: { errors: [sfn.Errors.ALL], interval: Duration.seconds(1), maxAttempts: 3, backoffRate: 2 },
} satisfies Record<string, sfn.RetryProps>;

/**
 * The errors that answer a lease call rather than fail it, as Step Functions names them for a Catch. The optimized
 * DynamoDB integration prefixes DynamoDB's exception with `DynamoDB.` (upper-case DB; the AWS SDK integration's is
 * `DynamoDb.`: "Perform DynamoDB CRUD operations with Step Functions", "Exception prefix differences"); the AWS SDK
 * integration names a service's error `<Service>.<Name>Exception` (Step Functions' AWS SDK service integrations page).
 */
export const LeaseAnswer = {
  /** A conditional write found another holder (or none where it expected one). */
  ConditionFailed: "DynamoDB.ConditionalCheckFailedException",
  /** DescribeExecution does not know the holder (yet): it started too recently for this eventually consistent read. */
  HolderNotFound: "Sfn.ExecutionDoesNotExistException",
} as const;

/** The lease item's key: one item, so one drain at a time on the stack's queue. */
export const LEASE_KEY = { name: "lease", value: "drain" } as const;

export interface DrainResources {
  queue: sqs.IQueue;
  deadLetterQueue: sqs.IQueue;
  /** Holds the drain lease (partition key {@link LEASE_KEY}`.name`, a string). */
  leaseTable: dynamodb.ITable;
  /** This state machine's executions (`arn:aws:states:…:execution:<machine name>:*`): whose holder may be described. */
  executionArns: string;
  functions: { validate: lambda.IFunction; writeToAirtable: lambda.IFunction; deleteMessages: lambda.IFunction };
}

/** A Lambda task's own timeout: the function's, plus room for the invoke itself. */
const taskTimeout = (functionSeconds: number) => sfn.Timeout.duration(Duration.seconds(functionSeconds + 5));
const SQS_TASK_TIMEOUT = sfn.Timeout.duration(Duration.seconds(30));
const LEASE_TASK_TIMEOUT = sfn.Timeout.duration(Duration.seconds(30));

/** Messages in one round at most. */
export const MAX_MESSAGES_PER_ROUND = RECEIVES_PER_ROUND * SQS_MAX_MESSAGES_PER_RECEIVE;

/** How many items each Map gets at most, and the longest Wait: what the graph alone does not bound. */
export const DRAIN_BOUNDS: GraphBounds = {
  mapItems: {
    [StateName.ReceiveRound]: RECEIVES_PER_ROUND,
    [StateName.ValidateBatch]: SQS_MAX_MESSAGES_PER_RECEIVE,
    [StateName.DeadLetterUnwritableMessages]: MAX_MESSAGES_PER_ROUND,
  },
  waitSeconds: MAX_WRITE_RETRY_WAIT_SECONDS,
};

/**
 * Builds the drain: take the lease (one drain at a time) → rounds of (a few receives, each message Validated → one
 * WriteToAirtable task for the round, 10 records per request → one batch delete → dead-letter what Airtable refused)
 * → receive again → give the lease up, and returns the visibility timeout that the receive sets, computed from the rendered states' own retry settings.
 */
export function buildDrainDefinition(parent: Construct, { queue, deadLetterQueue, leaseTable, executionArns, functions }: DrainResources) {
  // States live in their own scope: their ids are the console's state names, and may equal the functions' ids.
  const stack = new Construct(parent, "DrainDonationsStates");
  const lease = leaseStates(stack, leaseTable, executionArns);
  // Numbers known only once the states are rendered (below): set into these parameter objects then.
  const holdLimitedRounds: Record<string, unknown>[] = [];
  const holdLimited = (round: Record<string, unknown>) => (holdLimitedRounds.push(round), round);
  const keepHiddenPayloads: Record<string, unknown>[] = [];
  const keepHiddenFor = (payload: Record<string, unknown>) => (keepHiddenPayloads.push(payload), payload);
  const invoke = (name: string, fn: lambda.IFunction, seconds: number, props: Partial<tasks.LambdaInvokeProps>) =>
    new tasks.LambdaInvoke(stack, name, {
      lambdaFunction: fn,
      retryOnServiceExceptions: false, // replaced by RetryPolicy.lambdaService (adds TooManyRequests)
      taskTimeout: taskTimeout(seconds),
      ...props,
    }).addRetry(RetryPolicy.lambdaService);

  /** Deletes one message that is safely in the DLQ; if that fails it stays queued (the DLQ may then hold it twice). */
  const deleteDeadLettered = (name: string, keepQueued: sfn.IChainable) =>
    invoke(name, functions.deleteMessages, FUNCTION_TIMEOUT_SECONDS.deleteMessages, {
      payload: sfn.TaskInput.fromObject({
        queueUrl: queue.queueUrl,
        delete: [
          {
            MessageId: sfn.JsonPath.stringAt("$.message.MessageId"),
            ReceiptHandle: sfn.JsonPath.stringAt("$.message.ReceiptHandle"),
          },
        ],
      }),
      resultPath: sfn.JsonPath.DISCARD,
    })
      .addRetry(RetryPolicy.queueCall)
      .addCatch(keepQueued, { errors: [sfn.Errors.ALL], resultPath: "$.deleteFailure" });

  /**
   * Copies the original body to the DLQ, the reason in its attributes; then deletes it from the source queue. A
   * message that a person redrove carries `RedriveCount`, which its DLQ copy keeps; a state's parameters cannot leave
   * out an attribute that is absent, so a Choice picks the send with or without it.
   */
  const deadLetter = (
    names: { choice: string; send: string; sendRedriven: string },
    failedState: string,
    then: sfn.IChainable,
    keepQueued: sfn.IChainable,
  ) => {
    const send = (name: string, redriven: boolean) =>
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
            ...(redriven
              ? {
                  [DeadLetterAttribute.RedriveCount]: {
                    DataType: "Number",
                    StringValue: sfn.JsonPath.stringAt(`$.message.MessageAttributes.${DeadLetterAttribute.RedriveCount}.StringValue`),
                  },
                }
              : {}),
          },
        },
        resultPath: sfn.JsonPath.DISCARD,
        taskTimeout: SQS_TASK_TIMEOUT,
      })
        .addRetry(RetryPolicy.queueCall)
        .addCatch(keepQueued, { errors: [sfn.Errors.ALL], resultPath: "$.deadLetterFailure" })
        .next(then);
    return new sfn.Choice(stack, names.choice)
      .when(
        sfn.Condition.isPresent(`$.message.MessageAttributes.${DeadLetterAttribute.RedriveCount}.StringValue`),
        send(names.sendRedriven, true),
      )
      .otherwise(send(names.send, false));
  };

  // --- Per message: Validate (inside ValidateBatch) --------------------------------------------------------------
  const settled = (name: string, outcome: "dead-lettered" | "left-for-redelivery", comment: string) =>
    new sfn.Pass(stack, name, {
      comment,
      // What the round writer reads: this message is settled, with no body to carry further.
      parameters: { MessageId: sfn.JsonPath.stringAt("$.message.MessageId"), outcome },
    });
  const keepInvalidQueued = settled(
    StateName.KeepInvalidMessageQueued,
    "left-for-redelivery",
    "Could not dead-letter or delete it: it stays queued and is validated again on redelivery.",
  );
  const validate = invoke(StateName.Validate, functions.validate, FUNCTION_TIMEOUT_SECONDS.validate, {
    comment: "Checks one message against the DonationCreated contract; an invalid one goes to the DLQ with each problem",
    payload: sfn.TaskInput.fromObject({ message: sfn.JsonPath.objectAt("$.message") }),
    resultPath: sfn.JsonPath.DISCARD,
    // A valid message goes on as received; WriteToAirtable reads its body.
    outputPath: "$.message",
  })
    .addRetry(RetryPolicy.functionTimedOut)
    .addRetry(RetryPolicy.invalidMessage)
    .addRetry(RetryPolicy.anyOtherFailure)
    // No retry for an invalid message: it will never become valid. Only that verdict dead-letters a message: a
    // throttled or timed-out invoke, a broken bundle or a paused `sst dev` breakpoint says nothing about the donation.
    .addCatch(
      deadLetter(
        {
          choice: StateName.IsInvalidMessageRedriven,
          send: StateName.DeadLetterInvalidMessage,
          sendRedriven: StateName.DeadLetterRedrivenInvalidMessage,
        },
        StateName.Validate,
        deleteDeadLettered(StateName.DeleteInvalidMessage, keepInvalidQueued).next(
          settled(StateName.InvalidMessageDeadLettered, "dead-lettered", "In the DLQ with its reason, and gone from the queue."),
        ),
        keepInvalidQueued,
      ),
      { errors: [ErrorName.InvalidDonationEvent], resultPath: "$.failure" },
    )
    .addCatch(
      new sfn.Pass(stack, StateName.KeepUnvalidatedMessageQueued, {
        comment: "Validate itself failed (not the message): it stays queued and is validated again on redelivery.",
        // Named for what it is, for the summary and the console; the cause stays in the execution's history.
        parameters: {
          MessageId: sfn.JsonPath.stringAt("$.message.MessageId"),
          outcome: "left-for-redelivery",
          error: sfn.JsonPath.stringAt("$.failure.Error"),
        },
      }),
      { errors: [sfn.Errors.ALL], resultPath: "$.failure" },
    );

  const validateBatch = new sfn.Map(stack, StateName.ValidateBatch, {
    comment: "Each received message through Validate, all at once",
    itemsPath: "$.batch.Messages",
    maxConcurrency: VALIDATE_CONCURRENCY,
    itemSelector: { message: sfn.JsonPath.objectAt("$$.Map.Item.Value") },
  }).itemProcessor(validate);

  // --- Per round: a few receives at once ---------------------------------------------------------------------------
  // Set below, once the visibility timeout is known from the rendered states.
  const receiveParameters: Record<string, unknown> = {
    QueueUrl: queue.queueUrl,
    MaxNumberOfMessages: SQS_MAX_MESSAGES_PER_RECEIVE,
    // A short long-poll asks every SQS server, so a small backlog is not missed by sampling.
    WaitTimeSeconds: 1,
    AttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
    // A redriven message's count, so that its DLQ copy keeps it if it fails again.
    MessageAttributeNames: [DeadLetterAttribute.RedriveCount],
  };
  const receiveBatch = new tasks.CallAwsService(stack, StateName.ReceiveBatch, {
    comment: "Up to 10 messages, hidden from other consumers until they are written or dead-lettered",
    service: "sqs",
    action: "receiveMessage",
    iamAction: "sqs:ReceiveMessage",
    iamResources: [queue.queueArn],
    parameters: receiveParameters,
    resultPath: "$.batch",
    taskTimeout: SQS_TASK_TIMEOUT,
  }).addRetry(RetryPolicy.queueCall);
  receiveBatch.next(
    new sfn.Choice(stack, StateName.AnyReceived)
      .when(sfn.Condition.isPresent("$.batch.Messages[0]"), validateBatch)
      .otherwise(new sfn.Pass(stack, StateName.NothingReceived, { result: sfn.Result.fromArray([]) })),
  );
  const receiveRound = new sfn.Map(stack, StateName.ReceiveRound, {
    comment: `${RECEIVES_PER_ROUND} receives at once: up to ${MAX_MESSAGES_PER_ROUND} messages written together`,
    itemsPath: "$.drain.receivers",
    maxConcurrency: RECEIVES_PER_ROUND,
    itemSelector: { receiver: sfn.JsonPath.numberAt("$$.Map.Item.Value") },
    resultPath: "$.received",
  }).itemProcessor(receiveBatch);

  // --- Per round: one writer, then batch deletes -------------------------------------------------------------------
  const writeToAirtable = invoke(StateName.WriteToAirtable, functions.writeToAirtable, FUNCTION_TIMEOUT_SECONDS.writeToAirtable, {
    comment:
      "Upserts the round 10 records per request within the pipeline's share of the base; sorts each message into written, copy, to dead-letter, to retry or left for redelivery",
    // The round is the whole payload, and the whole result: invoked directly, without Lambda's response envelope.
    inputPath: "$.round",
    payloadResponseOnly: true,
    resultPath: "$.round",
  })
    .addRetry(RetryPolicy.functionTimedOut)
    .addRetry(RetryPolicy.configurationUnavailable)
    // Wrong token, base or table: every message would fail the same way. Stop the run; messages stay queued.
    .addCatch(
      lease.release(
        StateName.ReleaseLeaseOnMisconfiguration,
        new sfn.Fail(stack, StateName.AirtableMisconfigured, {
          comment: "Airtable refused the token, base or table: fix the configuration; no message was dead-lettered.",
          error: ErrorName.AirtableConfiguration,
          causePath: "$.failure.Cause",
        }),
        "Gives the lease up before the run fails: the next drain need not wait for a take-over",
      ),
      { errors: [ErrorName.AirtableConfiguration], resultPath: "$.failure" },
    )
    // Anything else is a fault of the writer itself: fail loudly (alarm); the round's messages reappear and retry.
    .addCatch(
      lease.release(
        StateName.ReleaseLeaseOnWriteFailure,
        new sfn.Fail(stack, StateName.WriteFailed, {
          comment: "WriteToAirtable failed unexpectedly: the round's messages reappear after the visibility timeout.",
          errorPath: "$.failure.Error",
          causePath: "$.failure.Cause",
        }),
        "Gives the lease up before the run fails: the next drain need not wait for a take-over",
      ),
      { errors: [sfn.Errors.ALL], resultPath: "$.failure" },
    );

  const keepUnwritableQueued = new sfn.Pass(stack, StateName.KeepUnwritableMessageQueued, {
    comment: "Could not dead-letter or delete it: it stays queued and is written again (or refused again) on redelivery.",
  });
  const deadLetterUnwritable = new sfn.Map(stack, StateName.DeadLetterUnwritableMessages, {
    comment: "Each message Airtable refused (or that conflicts with a copy) to the DLQ with Airtable's error",
    itemsPath: "$.round.deadLetter",
    maxConcurrency: SQS_MAX_MESSAGES_PER_RECEIVE,
    resultPath: sfn.JsonPath.DISCARD,
  }).itemProcessor(
    deadLetter(
      {
        choice: StateName.IsUnwritableMessageRedriven,
        send: StateName.DeadLetterUnwritableMessage,
        sendRedriven: StateName.DeadLetterRedrivenUnwritableMessage,
      },
      StateName.WriteToAirtable,
      deleteDeadLettered(StateName.DeleteUnwritableMessage, keepUnwritableQueued),
      keepUnwritableQueued,
    ),
  );

  const countRound = new sfn.Pass(stack, StateName.CountRound, {
    // Rebuilt, not merged: the round's bodies are dropped here, only the budget and a lock carry on.
    parameters: {
      drain: {
        rounds: sfn.JsonPath.mathAdd(sfn.JsonPath.numberAt("$.drain.rounds"), 1),
        received: sfn.JsonPath.mathAdd(sfn.JsonPath.numberAt("$.drain.received"), sfn.JsonPath.numberAt("$.round.received")),
        receivers: sfn.JsonPath.listAt("$.drain.receivers"),
      },
      round: {
        budget: sfn.JsonPath.objectAt("$.round.budget"),
        lockedUntil: sfn.JsonPath.stringAt("$.round.lockedUntil"),
        held: sfn.JsonPath.objectAt("$.round.held"),
      },
    },
  });

  const anyUnwritable = new sfn.Choice(stack, StateName.AnyUnwritable)
    .when(sfn.Condition.isPresent("$.round.deadLetter[0]"), deadLetterUnwritable.next(countRound))
    .otherwise(countRound);
  const deleteWritten = invoke(StateName.DeleteWrittenMessages, functions.deleteMessages, FUNCTION_TIMEOUT_SECONDS.deleteMessages, {
    comment: "Deletes every written message (and copy) 10 per call; releases the ones left for redelivery when the base unlocks",
    payload: sfn.TaskInput.fromObject(keepHiddenFor({
      queueUrl: queue.queueUrl,
      delete: sfn.JsonPath.listAt("$.round.written"),
      release: sfn.JsonPath.listAt("$.round.release"),
      releaseAt: sfn.JsonPath.stringAt("$.round.releaseAt"),
      // A held round's messages: hidden again for as long as the next execution may need them.
      keepHidden: sfn.JsonPath.listAt("$.round.keepHidden"),
    })),
    resultSelector: {
      deleted: sfn.JsonPath.numberAt("$.Payload.deleted"),
      released: sfn.JsonPath.numberAt("$.Payload.released"),
      failed: sfn.JsonPath.listAt("$.Payload.failed"),
    },
    resultPath: "$.deleted",
  })
    .addRetry(RetryPolicy.queueCall)
    // Not deleted: the messages reappear after the visibility timeout and are upserted again, harmlessly.
    .addCatch(anyUnwritable, { errors: [sfn.Errors.ALL], resultPath: "$.deleteFailure" });
  deleteWritten.next(anyUnwritable);

  const waitForAirtable = new sfn.Wait(stack, StateName.WaitForAirtable, {
    comment: "The base is locked (429) or failing: wait, then write what is left (one trial request once the circuit is open)",
    time: sfn.WaitTime.timestampPath("$.round.retryAt"),
  }).next(writeToAirtable);
  writeToAirtable.next(
    new sfn.Choice(stack, StateName.IsRetryDue, {
      comment: "Airtable answered 429 (base locked 30 s) or failed: wait, then write what is left",
    })
      .when(sfn.Condition.isString("$.round.retryAt"), waitForAirtable)
      .otherwise(deleteWritten),
  );

  const collectRound = new sfn.Pass(stack, StateName.CollectRound, {
    comment: "Every message of the round in one list (each body once), with the budget carried from the last round",
    parameters: {
      drain: sfn.JsonPath.objectAt("$.drain"),
      round: holdLimited({
        items: sfn.JsonPath.listAt("$.received[*][*]"),
        budget: sfn.JsonPath.objectAt("$.round.budget"),
        attempt: 0,
      }),
    },
  }).next(writeToAirtable);

  // --- Per execution ----------------------------------------------------------------------------------------------
  const drainComplete = new sfn.Succeed(stack, StateName.DrainComplete, { outputPath: "$.drain" });
  const releaseLease = lease.release(StateName.ReleaseLease, drainComplete);

  // At the cap a backlog is not left for the next scheduled run: a fresh execution (a fresh history) carries on at
  // once, with the same Airtable budget. It keeps the lease: this execution ends holding it, and the continuation
  // takes it over from this one (TakeLeaseFromPredecessor).
  const continueInNewExecution = new sfn.CustomState(stack, StateName.ContinueInNewExecution, {
    stateJson: {
      Type: "Task",
      Comment: "The cap is reached and the queue may hold more: start a new execution to keep draining",
      Resource: "arn:aws:states:::states:startExecution",
      Parameters: {
        "StateMachineArn.$": "$$.StateMachine.Id",
        // Raw ASL (a CustomState renders no CDK tokens): `.$` keys take paths.
        Input: {
          [`${CONTINUED_FROM}.$`]: "$$.Execution.Id",
          "budget.$": "$.round.budget",
          "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
        },
      },
      ResultPath: null,
      TimeoutSeconds: 30,
    },
  })
    .addRetry(RetryPolicy.queueCall)
    // If it cannot start, the next scheduled run drains the rest: nothing is lost, only delayed.
    .addCatch(releaseLease, { errors: [sfn.Errors.ALL], resultPath: "$.continuationFailure" })
    .next(drainComplete);

  // The base kept failing through this execution's attempts: the round's messages stay hidden (DeleteWrittenMessages
  // extended them) and a new execution retries them; nothing else is received while the base is down.
  const handOverHeldRound = new sfn.CustomState(stack, StateName.HandOverHeldRound, {
    stateJson: {
      Type: "Task",
      Comment: "Airtable is still failing: a new execution takes the held round on and retries it; nothing is dead-lettered",
      Resource: "arn:aws:states:::states:startExecution",
      Parameters: {
        "StateMachineArn.$": "$$.StateMachine.Id",
        Input: {
          [`${CONTINUED_FROM}.$`]: "$$.Execution.Id",
          "budget.$": "$.round.budget",
          [`${HELD_ROUND}.$`]: "$.round.held",
          "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
        },
      },
      ResultPath: null,
      TimeoutSeconds: 30,
    },
  });
  handOverHeldRound
    .addRetry(RetryPolicy.queueCall)
    // If it cannot start, the held messages reappear when their visibility ends and the next drain takes them.
    .addCatch(releaseLease, { errors: [sfn.Errors.ALL], resultPath: "$.continuationFailure" })
    .next(drainComplete);

  countRound.next(
    new sfn.Choice(stack, StateName.KeepDraining, {
      comment: `Receive again until the queue is empty, at most ${MAX_ROUNDS_PER_EXECUTION} rounds per execution; hand a held round on; stop while Airtable is locked`,
    })
      .when(sfn.Condition.isNotNull("$.round.held"), handOverHeldRound)
      .when(
        sfn.Condition.isString("$.round.lockedUntil"),
        new sfn.Wait(stack, StateName.WaitOutAirtableLock, {
          comment: "Airtable stayed locked (429): end only once it unlocks, so the next drain cannot hit the lock",
          time: sfn.WaitTime.timestampPath("$.round.lockedUntil"),
        }).next(releaseLease),
      )
      .when(sfn.Condition.numberLessThan("$.drain.rounds", MAX_ROUNDS_PER_EXECUTION), receiveRound)
      .otherwise(continueInNewExecution),
  );

  receiveRound.next(
    new sfn.Choice(stack, StateName.AnyMessages)
      .when(
        sfn.Condition.or(
          ...Array.from({ length: RECEIVES_PER_ROUND }, (_, receiver) => sfn.Condition.isPresent(`$.received[${receiver}][0]`)),
        ),
        collectRound,
      )
      .otherwise(releaseLease),
  );

  const receivers = Array.from({ length: RECEIVES_PER_ROUND }, (_, receiver) => receiver + 1);
  const startDrain = new sfn.Pass(stack, StateName.StartDrain, {
    parameters: { drain: { rounds: 0, received: 0, receivers }, round: { budget: { recentAnswers: [] } } },
  }).next(receiveRound);
  const resumeDrain = new sfn.Pass(stack, StateName.ResumeDrain, {
    comment: "A continuation: the previous execution's Airtable budget carries on",
    parameters: { drain: { rounds: 0, received: 0, receivers }, round: { budget: sfn.JsonPath.objectAt("$.budget") } },
  }).next(receiveRound);
  const resumeHeldRound = new sfn.Pass(stack, StateName.ResumeHeldRound, {
    comment: "The round the previous execution held while Airtable failed: retried when it is due, before any receive",
    parameters: {
      drain: { rounds: 0, received: 0, receivers },
      round: holdLimited({
        pending: sfn.JsonPath.listAt(`$.${HELD_ROUND}.pending`),
        retryAt: sfn.JsonPath.stringAt(`$.${HELD_ROUND}.retryAt`),
        circuit: sfn.JsonPath.objectAt(`$.${HELD_ROUND}.circuit`),
        heldSince: sfn.JsonPath.stringAt(`$.${HELD_ROUND}.heldSince`),
        lastError: sfn.JsonPath.objectAt(`$.${HELD_ROUND}.lastError`),
        strikes: sfn.JsonPath.objectAt(`$.${HELD_ROUND}.strikes`),
        budget: sfn.JsonPath.objectAt("$.budget"),
        attempt: 0,
      }),
    },
  }).next(waitForAirtable);
  const hasHeldRound = new sfn.Choice(stack, StateName.HasHeldRound)
    .when(sfn.Condition.isPresent(`$.${HELD_ROUND}`), resumeHeldRound)
    .otherwise(resumeDrain);

  // An empty run costs four transitions: IsContinuation, PeekQueue, AnyWaiting, NothingToDrain. The count is
  // approximate (SQS: "eventually consistent"); a message it misses waits one schedule period, never more.
  const peekQueue = new tasks.CallAwsService(stack, StateName.PeekQueue, {
    comment: "How many donations are waiting (visible): an empty queue ends the run before the lease or any receive",
    service: "sqs",
    action: "getQueueAttributes",
    iamAction: "sqs:GetQueueAttributes",
    iamResources: [queue.queueArn],
    parameters: { QueueUrl: queue.queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] },
    resultSelector: { waiting: sfn.JsonPath.stringToJson(sfn.JsonPath.stringAt("$.Attributes.ApproximateNumberOfMessages")) },
    resultPath: "$.peek",
    taskTimeout: SQS_TASK_TIMEOUT,
  }).addRetry(RetryPolicy.queueCall);
  const takeLeaseAndDrain = lease.take(startDrain);
  // A peek that fails says nothing about the queue: drain as if it held messages.
  peekQueue.addCatch(takeLeaseAndDrain, { errors: [sfn.Errors.ALL], resultPath: "$.peekFailure" });
  peekQueue.next(
    new sfn.Choice(stack, StateName.AnyWaiting)
      .when(sfn.Condition.numberGreaterThan("$.peek.waiting", 0), takeLeaseAndDrain)
      .otherwise(new sfn.Succeed(stack, StateName.NothingToDrain, { comment: "The queue is empty: nothing to take, nothing to receive" })),
  );

  const takeLeaseFromPredecessor = lease.takeFromPredecessor(hasHeldRound);
  const chain = new sfn.Choice(stack, StateName.IsContinuation, {
    comment: "A continuation of a drain (at its cap, or holding a round while Airtable fails) takes the lease from it; any other drain looks first",
  })
    .when(sfn.Condition.isPresent(`$.${CONTINUED_FROM}`), takeLeaseFromPredecessor)
    .otherwise(peekQueue);

  // Every received message stays hidden until its round is over, whatever retries that takes.
  const render = (state: sfn.State) => state.toStateJson() as AslState;
  const visibilityTimeoutSeconds =
    Math.ceil(
      worstCaseRoundSeconds({
        receiveRound: render(receiveRound),
        writeToAirtable: render(writeToAirtable),
        deleteWrittenMessages: render(deleteWritten),
        deadLetterUnwritableMessages: render(deadLetterUnwritable),
      }),
    ) + VISIBILITY_MARGIN_SECONDS;
  receiveParameters.VisibilityTimeout = visibilityTimeoutSeconds;
  const holding = holdArithmetic({
    receiveRound: render(receiveRound),
    writeToAirtable: render(writeToAirtable),
    deleteWrittenMessages: render(deleteWritten),
    deadLetterUnwritableMessages: render(deadLetterUnwritable),
    handOverHeldRound: render(handOverHeldRound),
    takeLeaseFromPredecessor: render(takeLeaseFromPredecessor.startState),
  });
  for (const round of holdLimitedRounds) round.holdLimitSeconds = holding.holdLimitSeconds;
  for (const payload of keepHiddenPayloads) payload.keepHiddenSeconds = holding.keepHiddenSeconds;

  return { chain, visibilityTimeoutSeconds, ...holding };
}

/** The states whose worst cases add up to a round's. */
export interface RoundStates {
  receiveRound: AslState;
  writeToAirtable: AslState;
  deleteWrittenMessages: AslState;
  deadLetterUnwritableMessages: AslState;
}

/**
 * The longest a round can keep its messages hidden, from the receive to the last delete: the receives (each with its
 * batch's Validate iterations), every WriteToAirtable attempt at its worst with the longest wait between attempts,
 * the batch delete, and every message dead-lettered.
 */
export function worstCaseRoundSeconds(states: RoundStates): number {
  const seconds = (name: string, state: AslState) => worstCaseStateSeconds(name, state, DRAIN_BOUNDS);
  return (
    seconds(StateName.ReceiveRound, states.receiveRound) +
    WritePolicy.maxAttempts * seconds(StateName.WriteToAirtable, states.writeToAirtable) +
    (WritePolicy.maxAttempts - 1) * MAX_WRITE_RETRY_WAIT_SECONDS +
    seconds(StateName.DeleteWrittenMessages, states.deleteWrittenMessages) +
    seconds(StateName.DeadLetterUnwritableMessages, states.deadLetterUnwritableMessages)
  );
}

/**
 * Events one execution adds to its history at most: taking the lease, then at most {@link MAX_ROUNDS_PER_EXECUTION} rounds
 * with every retry taken and every message dead-lettered, then a last (empty) receive and the continuation or the
 * wait for a lock, and the release.
 */
export function worstCaseExecutionEvents(definition: AslGraph): number {
  const events = (name: string) => {
    const state = definition.States[name];
    if (!state) throw new Error(`The definition has no state ${name}`);
    return worstCaseEvents(name, state, DRAIN_BOUNDS);
  };
  const round =
    events(StateName.ReceiveRound) +
    events(StateName.AnyMessages) +
    events(StateName.CollectRound) +
    WritePolicy.maxAttempts * (events(StateName.WriteToAirtable) + events(StateName.IsRetryDue)) +
    (WritePolicy.maxAttempts - 1) * events(StateName.WaitForAirtable) +
    events(StateName.DeleteWrittenMessages) +
    events(StateName.AnyUnwritable) +
    events(StateName.DeadLetterUnwritableMessages) +
    events(StateName.CountRound) +
    events(StateName.KeepDraining);
  const EXECUTION_STARTED_AND_ENDED = 2;
  // The longest way to the first round: the queue peeked, the lease found held, its holder ended, and taken over. (A
  // held round resumed is a round without its receives, after a wait: fewer events than a round.)
  const start =
    events(StateName.IsContinuation) +
    Math.max(
      events(StateName.PeekQueue) +
        events(StateName.AnyWaiting) +
        events(StateName.TakeLease) +
        events(StateName.ReadLease) +
        events(StateName.IsLeaseStillHeld) +
        events(StateName.DescribeLeaseHolder) +
        events(StateName.HasLeaseHolderEnded) +
        events(StateName.TakeOverStaleLease) +
        events(StateName.StartDrain),
      events(StateName.TakeLeaseFromPredecessor) +
        events(StateName.HasHeldRound) +
        Math.max(events(StateName.ResumeDrain), events(StateName.ResumeHeldRound) + events(StateName.WaitForAirtable)),
    );
  // A failed write ends a round early, through a release and a Fail: fewer events than the rest of a full round.
  const end =
    events(StateName.ReceiveRound) +
    events(StateName.AnyMessages) +
    Math.max(events(StateName.ContinueInNewExecution), events(StateName.WaitOutAirtableLock), events(StateName.HandOverHeldRound)) +
    events(StateName.ReleaseLease) +
    events(StateName.DrainComplete);
  return EXECUTION_STARTED_AND_ENDED + start + MAX_ROUNDS_PER_EXECUTION * round + end;
}

/** The input key that marks an execution started by {@link StateName.ContinueInNewExecution}. */
export const CONTINUED_FROM = "continuedFrom";

/** The input key that carries a round handed on by {@link StateName.HandOverHeldRound}. */
export const HELD_ROUND = "held";

/** SQS: a message may stay hidden at most 12 hours after its receive, extensions included (ChangeMessageVisibility). */
export const SQS_MAX_HIDDEN_SECONDS = 12 * 60 * 60;

/** The states whose worst cases decide how long a held round is kept hidden, and how long it may be held. */
export interface HoldStates extends RoundStates {
  handOverHeldRound: AslState;
  takeLeaseFromPredecessor: AslState;
}

/**
 * How long a held round's messages are hidden again when it is handed on, and how long a round may have been held and
 * still be handed on.
 *
 * - `keepHiddenSeconds`: everything from the extension (in DeleteWrittenMessages) to the end of the next execution's
 *   round, at its worst: dead-lettering what Airtable refused, the handover, the next execution taking the lease, one
 *   wait, then a round without its receives; plus a minute.
 * - `holdLimitSeconds`: SQS keeps a message hidden at most 12 h after its receive: that, less the receive round
 *   (before the first attempt), a DeleteWrittenMessages (between the writer's decision and the extension), the
 *   extension itself and a minute.
 */
export function holdArithmetic(states: HoldStates) {
  const seconds = (name: string, state: AslState) => worstCaseStateSeconds(name, state, DRAIN_BOUNDS);
  const noReceive: AslState = { ...states.receiveRound, ItemProcessor: { StartAt: "Held", States: { Held: { Type: "Pass", End: true } } } };
  const keepHiddenSeconds = Math.ceil(
    seconds(StateName.DeadLetterUnwritableMessages, states.deadLetterUnwritableMessages) +
      seconds(StateName.HandOverHeldRound, states.handOverHeldRound) +
      seconds(StateName.TakeLeaseFromPredecessor, states.takeLeaseFromPredecessor) +
      MAX_WRITE_RETRY_WAIT_SECONDS +
      worstCaseRoundSeconds({ ...states, receiveRound: noReceive }) +
      VISIBILITY_MARGIN_SECONDS,
  );
  const holdLimitSeconds = Math.floor(
    SQS_MAX_HIDDEN_SECONDS -
      seconds(StateName.ReceiveRound, states.receiveRound) -
      seconds(StateName.DeleteWrittenMessages, states.deleteWrittenMessages) -
      keepHiddenSeconds -
      VISIBILITY_MARGIN_SECONDS,
  );
  return { keepHiddenSeconds, holdLimitSeconds };
}

/** Slack for Step Functions' own scheduling between states, beyond the tasks' worst case. */
const VISIBILITY_MARGIN_SECONDS = 60;

/**
 * The drain lease: one item, `{ lease: "drain", holder: <execution ARN>, since: <its start time> }`, taken and given
 * up only by conditional writes. A conditional write is checked against the item's latest version ("Best practices
 * for handling concurrent updates in DynamoDB": single writes "always operate on the most recent version of the
 * item"), so at most one execution holds the lease at any time, whatever ListExecutions or DescribeExecution show.
 *
 * A lease is left behind only by an execution that could not run its last state (stopped, timed out): the next drain
 * asks DescribeExecution about that holder and takes the lease over once it has ended. DescribeExecution is eventually
 * consistent (API reference, DescribeExecution), but a lag only ever shows an older status: an execution that is
 * not visible yet (`ExecutionDoesNotExist`) or still RUNNING, never an end it has not reached. Both of those skip;
 * so a lagging answer can delay a take-over by a schedule period, never put two drains on the base.
 */
function leaseStates(stack: Construct, table: dynamodb.ITable, executionArns: string) {
  const key = { [LEASE_KEY.name]: tasks.DynamoAttributeValue.fromString(LEASE_KEY.value) };
  const names = { "#holder": "holder", "#since": "since" };
  const me = tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt("$$.Execution.Id"));
  const myStart = tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt("$$.Execution.StartTime"));
  const leaseCall = <T extends sfn.TaskStateBase>(task: T, answer?: string): T =>
    (answer ? task.addRetry({ errors: [answer], maxAttempts: 0 }) : task).addRetry(RetryPolicy.leaseCall) as T;

  const skip = new sfn.Succeed(stack, StateName.AnotherDrainIsRunning, {
    comment: "Another execution holds the lease: it drains; this one ends without touching the queue",
  });

  /** Moves the lease from the holder at `holderPath` to this execution, unless someone else has it by now. */
  const takeOver = (name: string, comment: string, holderPath: string) =>
    leaseCall(
      new tasks.DynamoUpdateItem(stack, name, {
        comment,
        table,
        key,
        updateExpression: "SET #holder = :me, #since = :since",
        conditionExpression: "#holder = :previous",
        expressionAttributeNames: names,
        expressionAttributeValues: {
          ":me": me,
          ":since": myStart,
          ":previous": tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt(holderPath)),
        },
        resultPath: sfn.JsonPath.DISCARD,
        taskTimeout: LEASE_TASK_TIMEOUT,
      }),
      LeaseAnswer.ConditionFailed,
    ).addCatch(skip, { errors: [LeaseAnswer.ConditionFailed], resultPath: "$.leaseTaken" });

  /** A scheduled (or hand-started) drain: take a free lease, or one whose holder has ended; skip otherwise. */
  const take = (then: sfn.IChainable) => {
    const takeOverStale = takeOver(
      StateName.TakeOverStaleLease,
      "The holder ended without giving the lease up (stopped, timed out): take it over, unless another drain just did",
      "$.lease.Item.holder.S",
    ).next(then);
    const hasHolderEnded = new sfn.Choice(stack, StateName.HasLeaseHolderEnded, {
      comment: "Only an end DescribeExecution reports is trusted: RUNNING (or a redrive pending) means it still drains",
    })
      .when(sfn.Condition.or(...["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"].map((status) => sfn.Condition.stringEquals("$.holder.status", status))), takeOverStale)
      .otherwise(skip);
    const describeHolder = leaseCall(
      new tasks.CallAwsService(stack, StateName.DescribeLeaseHolder, {
        comment: "Is the holder still running? Eventually consistent, but it never shows an end before it happens",
        service: "sfn",
        action: "describeExecution",
        iamAction: "states:DescribeExecution",
        iamResources: [executionArns],
        parameters: { ExecutionArn: sfn.JsonPath.stringAt("$.lease.Item.holder.S") },
        resultSelector: { status: sfn.JsonPath.stringAt("$.Status") },
        resultPath: "$.holder",
        taskTimeout: LEASE_TASK_TIMEOUT,
      }),
      LeaseAnswer.HolderNotFound,
    )
      // Not visible yet: it started moments ago, so it is running.
      .addCatch(skip, { errors: [LeaseAnswer.HolderNotFound], resultPath: "$.holder" })
      .next(hasHolderEnded);
    const isStillHeld = new sfn.Choice(stack, StateName.IsLeaseStillHeld)
      // A retried write that had landed the first time: the lease is already this execution's.
      .when(sfn.Condition.stringEqualsJsonPath("$.lease.Item.holder.S", "$$.Execution.Id"), then)
      .when(sfn.Condition.isPresent("$.lease.Item.holder.S"), describeHolder)
      // Given up between the write and the read: its holder drained just now; the next schedule drains again.
      .otherwise(skip);
    const read = leaseCall(
      new tasks.DynamoGetItem(stack, StateName.ReadLease, {
        comment: "Who holds it (a strongly consistent read)",
        table,
        key,
        consistentRead: true,
        resultPath: "$.lease",
        taskTimeout: LEASE_TASK_TIMEOUT,
      }),
    ).next(isStillHeld);
    return leaseCall(
      new tasks.DynamoPutItem(stack, StateName.TakeLease, {
        comment: "One drain at a time: one writer on the Airtable base, and no event written twice at once",
        table,
        item: { ...key, holder: me, since: myStart },
        conditionExpression: "attribute_not_exists(#holder)",
        expressionAttributeNames: { "#holder": "holder" },
        resultPath: sfn.JsonPath.DISCARD,
        taskTimeout: LEASE_TASK_TIMEOUT,
      }),
      LeaseAnswer.ConditionFailed,
    )
      .addCatch(read, { errors: [LeaseAnswer.ConditionFailed], resultPath: "$.leaseTaken" })
      .next(then);
  };

  /** A continuation takes the lease from the execution that started it, and only from it. */
  const takeFromPredecessor = (then: sfn.IChainable) =>
    takeOver(
      StateName.TakeLeaseFromPredecessor,
      "The execution that reached its cap hands the lease on; if a scheduled drain took it over meanwhile, that one drains",
      `$.${CONTINUED_FROM}`,
    ).next(then);

  /**
   * Gives the lease up (only if this execution still holds it), then goes on to `then` whatever happened: a release
   * that fails leaves a holder that has ended, which the next drain takes over.
   */
  const release = (name: string, then: sfn.IChainable, comment = "Gives the lease up for the next drain") =>
    leaseCall(
      new tasks.DynamoDeleteItem(stack, name, {
        comment,
        table,
        key,
        conditionExpression: "#holder = :me",
        expressionAttributeNames: { "#holder": "holder" },
        expressionAttributeValues: { ":me": me },
        resultPath: sfn.JsonPath.DISCARD,
        taskTimeout: LEASE_TASK_TIMEOUT,
      }),
      LeaseAnswer.ConditionFailed,
    )
      .addCatch(then, { errors: [sfn.Errors.ALL], resultPath: "$.leaseRelease" })
      .next(then);

  return { take, takeFromPredecessor, release };
}
