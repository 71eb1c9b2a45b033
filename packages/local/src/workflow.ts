import { randomUUID } from "node:crypto";
import { DeleteItemCommand, type DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { ReceiveMessageCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { StateMachine } from "aws-local-stepfunctions";
import type { Round } from "@fundraise-sync/core/write-round";
import { handler as deleteMessages } from "@fundraise-sync/functions/delete-messages";
import { handler as validate } from "@fundraise-sync/functions/validate";
import { handler as writeToAirtable } from "@fundraise-sync/functions/write-to-airtable";
import { StateName } from "../../../stacks/drain-definition";
import { placeholderQueueUrl, type SynthesizedWorkflow } from "../../../stacks/synthesize";
import type { AslGraph, AslState } from "../../../stacks/timing";

/** A Lambda handler as the state machine calls it: JSON in, JSON out, a named error thrown on failure. */
export type TaskHandler = (payload: any, context: LambdaContext) => Promise<unknown>;

/** The part of Lambda's context object the handlers use. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/** The stack's functions, by construct id, mapped to the same handler code that Lambda runs. */
export const DEFAULT_HANDLERS: Record<string, TaskHandler> = {
  Validate: validate,
  WriteToAirtable: writeToAirtable,
  DeleteMessages: deleteMessages,
};

export interface LocalWorkflowOptions {
  workflow: Pick<SynthesizedWorkflow, "definition" | "template" | "constructIds">;
  sqs: SQSClient;
  /** Local URLs of the stack's queues, by construct id (`DonationsQueue`, `DeadLetterQueue`). */
  queueUrls: Record<string, string>;
  /** The local DynamoDB server holding the stack's tables (the drain lease), named by construct id. */
  dynamodb: DynamoDBClient;
  /**
   * How long DescribeExecution shows an execution as it was before its latest change (ms): see
   * {@link describeExecutionTask}. Default {@link DESCRIBE_EXECUTION_LAG_MS}.
   */
  describeLagMs?: number;
  handlers?: Record<string, TaskHandler>;
  /** Shortens retry waits (ms), by state name, as aws-local-stepfunctions' `retryIntervalOverrides`. */
  retryIntervalOverrides?: Record<string, number | number[]>;
  /** Shortens Wait states (ms), by state name, as aws-local-stepfunctions' `waitTimeOverrides`. */
  waitTimeOverrides?: Record<string, number>;
}

/**
 * Watches executions as they run, e.g. for the local console. Gets every raw event of aws-local-stepfunctions' event
 * log (the package does not export its type: see its `EventLog`), then the summary. An observer that throws is ignored:
 * watching never changes what the pipeline does.
 */
export interface WorkflowObserver {
  event?(executionArn: string, event: unknown): void;
  finished?(summary: DrainSummary): void;
}

/** A message an execution received: enough to change its visibility. */
export interface ReceivedReceipt {
  queueUrl: string;
  receiptHandle: string;
}

/** What one execution did, counted from its event log. */
export interface DrainSummary {
  executionArn: string;
  /** SKIPPED: another execution holds the drain lease (AnotherDrainIsRunning). */
  status: "SUCCEEDED" | "FAILED" | "SKIPPED";
  /** True when it reached the batch cap and started a continuation: run {@link LocalWorkflow.execute} again now. */
  continued: boolean;
  received: number;
  written: number;
  /** Of `written`: records updated rather than created (a redelivered event). */
  updated: number;
  copiesInBatch: number;
  deadLettered: number;
  leftInQueue: number;
  retried: number;
  /** Billable state transitions, as Step Functions Standard counts them (each state entered, each retry). */
  stateTransitions: number;
  durationMs: number;
  error?: { name: string; cause: string };
}

const STATE_MACHINE_NAME = "local-fundraise-sync-DrainDonations";
const ACCOUNT_AND_REGION = "us-east-1:123456789012";
export const LOCAL_STATE_MACHINE_ARN = `arn:aws:states:${ACCOUNT_AND_REGION}:stateMachine:${STATE_MACHINE_NAME}`;

/**
 * The synthesized drain state machine, executed in-process by aws-local-stepfunctions. Every Task is mapped by its
 * `Resource`: `lambda:invoke` to the handler named by its FunctionName, `aws-sdk:sqs:*` to real calls on the local
 * SQS server, `dynamodb:*` to real calls on the local DynamoDB server, `aws-sdk:sfn:describeExecution` (and
 * `listExecutions`) to this runtime's own executions.
 */
export class LocalWorkflow {
  readonly #machine: StateMachine;
  readonly #overrides: Record<string, (input: any) => Promise<any>>;
  readonly #running = new Map<string, { startDate: string }>();
  /** Every execution this runtime started, with its status: what DescribeExecution answers from. */
  readonly #executions = new Map<string, ExecutionRecord>();
  /** How to stop each execution in progress, as StopExecution does. */
  readonly #aborts = new Map<string, () => void>();
  /** The input of a continuation that an execution started (ContinueInNewExecution), run by the next `execute()`. */
  #pendingContinuation: Record<string, unknown> | undefined;
  readonly #observers = new Set<WorkflowObserver>();
  /** Every message the current execution received (deleted ones too): what an abort hands back, see `release.ts`. */
  readonly #received: ReceivedReceipt[] = [];
  /** Receives not yet answered (and handed on), so that an abort can wait for them. */
  readonly #receiving = new Set<Promise<unknown>>();
  /** Set by an abort: what a receive still returns goes here, not to the execution. */
  #handBack: ((receipts: ReceivedReceipt[]) => Promise<unknown>) | undefined;

  constructor(private readonly options: LocalWorkflowOptions) {
    const definition = pointAtLocalQueues(options.workflow.definition, options.workflow.constructIds, options.queueUrls);
    this.#machine = new StateMachine(definition as never, { validationOptions: { checkPaths: true, checkArn: true } });
    const timeouts = functionTimeouts(options.workflow);
    const handlers = { ...DEFAULT_HANDLERS, ...options.handlers };
    this.#overrides = {};
    for (const [name, state] of taskStates(definition)) {
      this.#overrides[name] = this.#taskFor(name, state, handlers, timeouts);
    }
  }

  /** Calls `observer` for every execution from now on; returns a function that stops it. */
  observe(observer: WorkflowObserver): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  #notify(call: (observer: WorkflowObserver) => void): void {
    for (const observer of this.#observers) {
      try {
        call(observer);
      } catch {
        // an observer's fault is its own: the execution goes on
      }
    }
  }

  /**
   * Runs one execution to its end and summarizes it: the continuation a previous one started, if any, else a
   * scheduled one. Never throws for a failed execution: see `status`.
   */
  async execute(): Promise<DrainSummary> {
    this.#received.length = 0;
    this.#handBack = undefined;
    const input = this.#pendingContinuation ?? {};
    this.#pendingContinuation = undefined;
    const id = randomUUID();
    const executionArn = `arn:aws:states:${ACCOUNT_AND_REGION}:execution:${STATE_MACHINE_NAME}:${id}`;
    const startDate = new Date().toISOString();
    const started = Date.now();
    this.#running.set(executionArn, { startDate });
    const record: ExecutionRecord = { startDate: new Date(started), status: "RUNNING" };
    this.#executions.set(executionArn, record);
    const execution = this.#machine.run(
      input as never,
      {
        overrides: {
          taskResourceLocalHandlers: this.#overrides,
          retryIntervalOverrides: this.options.retryIntervalOverrides,
          waitTimeOverrides: this.options.waitTimeOverrides,
        },
        context: {
          Execution: { Id: executionArn, Name: id, StartTime: startDate, Input: input as never },
          StateMachine: { Id: LOCAL_STATE_MACHINE_ARN, Name: STATE_MACHINE_NAME },
        },
      },
    );
    const summary: DrainSummary = {
      executionArn,
      status: "SUCCEEDED",
      continued: false,
      received: 0,
      written: 0,
      updated: 0,
      copiesInBatch: 0,
      deadLettered: 0,
      leftInQueue: 0,
      retried: 0,
      stateTransitions: 0,
      durationMs: 0,
    };
    this.#aborts.set(executionArn, execution.abort);
    const events = tap(execution.eventLogs as AsyncIterable<EventLog>, (event) => this.#notify((o) => o.event?.(executionArn, event)));
    const counting = countEvents(events, summary);
    try {
      const output = (await execution.result) as { received?: number } | undefined;
      // The drain's own count (DrainComplete outputs $.drain); a skipped drain outputs its input.
      summary.received = output?.received ?? 0;
      record.status = "SUCCEEDED";
    } catch (error) {
      const name = (error as Error).name;
      record.status = name === "ExecutionAbortedError" ? "ABORTED" : name === "ExecutionTimeoutError" ? "TIMED_OUT" : "FAILED";
      // aws-local-stepfunctions rejects with an ExecutionError whose cause is the state machine's own error.
      const wrapper = error as { name?: string; cause?: unknown };
      const failure = (wrapper.name === "ExecutionError" && wrapper.cause ? wrapper.cause : wrapper) as {
        name?: string;
        message?: string;
        cause?: unknown;
      };
      summary.status = "FAILED";
      summary.error = { name: failure.name ?? "Error", cause: String(failure.cause ?? failure.message ?? "") };
    } finally {
      this.#running.delete(executionArn);
      this.#aborts.delete(executionArn);
      record.stopDate = new Date();
    }
    await counting;
    summary.continued = this.#pendingContinuation !== undefined;
    summary.durationMs = Date.now() - started;
    this.#notify((o) => o.finished?.(summary));
    return summary;
  }

  /**
   * Stops an execution in progress where it is, as StopExecution does (status ABORTED): it runs no further state,
   * so it gives nothing back (no lease release, no delete). Its `execute()` resolves as FAILED.
   * @returns false if no such execution is in progress.
   */
  abort(executionArn: string): boolean {
    const abort = this.#aborts.get(executionArn);
    abort?.();
    return abort !== undefined;
  }

  /** The executions in progress now (their ARNs), e.g. to {@link abort} one. */
  runningExecutions(): string[] {
    return [...this.#running.keys()];
  }

  /**
   * The receipt handles of every message the execution in progress (or the last one) received, including those it
   * has deleted since: SQS refuses a visibility change for those, which is how a release skips them.
   */
  receivedReceipts(): ReceivedReceipt[] {
    return [...this.#received];
  }

  /**
   * For an abort: from now on the execution receives nothing, and what a receive still returns is given to
   * `handBack`; resolves once the receives already waiting on SQS have answered and been handed back. After it,
   * {@link receivedReceipts} holds everything the execution itself got.
   */
  async stopReceiving(handBack: (receipts: ReceivedReceipt[]) => Promise<unknown>): Promise<void> {
    this.#handBack = handBack;
    await Promise.allSettled([...this.#receiving]);
  }

  #taskFor(
    stateName: string,
    state: AslState,
    handlers: Record<string, TaskHandler>,
    timeouts: Record<string, number>,
  ): (input: any) => Promise<any> {
    const { sqs } = this.options;
    // A Lambda invoked directly (`payloadResponseOnly`): the state's input is the payload, the result is its output.
    const directFunction = /^arn:aws:lambda:[^:]+:\d+:function:([^:]+)$/.exec(state.Resource ?? "")?.[1];
    if (directFunction) {
      const handler = handlers[directFunction];
      if (!handler) throw new Error(`No local handler for function ${directFunction} (state ${stateName})`);
      return (payload) => invokeLikeLambda(handler, payload, timeouts[directFunction]);
    }
    switch (state.Resource) {
      case "arn:aws:states:::lambda:invoke":
        return async ({ FunctionName, Payload }: { FunctionName: string; Payload: unknown }) => {
          const name = String(FunctionName).split(":").pop()!;
          const handler = handlers[name];
          if (!handler) throw new Error(`No local handler for function ${name} (state ${stateName})`);
          return { StatusCode: 200, ExecutedVersion: "$LATEST", Payload: await invokeLikeLambda(handler, Payload, timeouts[name]) };
        };
      case "arn:aws:states:::aws-sdk:sqs:receiveMessage":
        return (params) => {
          const receiving = (async () => {
            const reply = (await callSqs(() => sqs.send(new ReceiveMessageCommand(params)))) as { Messages?: { ReceiptHandle?: string }[] };
            const receipts = (reply.Messages ?? []).flatMap(({ ReceiptHandle }) =>
              ReceiptHandle ? [{ queueUrl: params.QueueUrl as string, receiptHandle: ReceiptHandle }] : [],
            );
            if (this.#handBack) {
              await this.#handBack(receipts);
              return { Messages: [] };
            }
            this.#received.push(...receipts);
            return reply;
          })();
          this.#receiving.add(receiving);
          return receiving.finally(() => this.#receiving.delete(receiving));
        };
      case "arn:aws:states:::aws-sdk:sqs:sendMessage":
        return (params) => callSqs(() => sqs.send(new SendMessageCommand(params)));
      case "arn:aws:states:::states:startExecution":
        // Step Functions starts it at once; locally the next execute() runs it (callers loop on `continued`).
        return async ({ Input }: { Input: Record<string, unknown> }) => {
          this.#pendingContinuation = Input;
          return { ExecutionArn: `${LOCAL_STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:")}:${randomUUID()}`, StartDate: new Date().toISOString() };
        };
      case "arn:aws:states:::dynamodb:putItem":
      case "arn:aws:states:::dynamodb:getItem":
      case "arn:aws:states:::dynamodb:updateItem":
      case "arn:aws:states:::dynamodb:deleteItem":
        return dynamoDbTask(this.options.dynamodb, state.Resource);
      case "arn:aws:states:::aws-sdk:sfn:describeExecution":
        return describeExecutionTask(this.#executions, this.options.describeLagMs ?? DESCRIBE_EXECUTION_LAG_MS);
      case "arn:aws:states:::aws-sdk:sfn:listExecutions":
        return async () => ({
          Executions: [...this.#running].map(([executionArn, { startDate }]) => ({
            executionArn,
            stateMachineArn: LOCAL_STATE_MACHINE_ARN,
            status: "RUNNING",
            startDate,
          })),
        });
      default:
        throw new Error(`State ${stateName}: no local mapping for resource ${state.Resource}`);
    }
  }
}

// --- The drain lease's calls ----------------------------------------------------------------------------------

/** An execution's status as DescribeExecution reports it (PENDING_REDRIVE does not arise here: nothing redrives). */
export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";

/** What this runtime remembers of an execution it started. */
export interface ExecutionRecord {
  startDate: Date;
  status: ExecutionStatus;
  stopDate?: Date;
}

/**
 * DescribeExecution's default lag here (ms): AWS documents it as eventually consistent ("This operation is eventually
 * consistent. The results are best effort and may not reflect very recent updates and changes": API reference,
 * DescribeExecution) and publishes no bound, so the local runtime shows a short lag by default rather than none.
 */
export const DESCRIBE_EXECUTION_LAG_MS = 1000;

/**
 * `aws-sdk:sfn:describeExecution` on this runtime's own executions, eventually consistent like AWS's: for `lagMs`
 * after a change it still shows the execution as it was before. An execution started less than `lagMs` ago does
 * not exist yet (`Sfn.ExecutionDoesNotExistException`); one that ended less than `lagMs` ago is still RUNNING.
 */
export function describeExecutionTask(executions: ReadonlyMap<string, ExecutionRecord>, lagMs: number) {
  return async ({ ExecutionArn }: { ExecutionArn: string }) => {
    const now = Date.now();
    const record = executions.get(ExecutionArn);
    if (!record || now - record.startDate.getTime() < lagMs) {
      throw serviceError("Sfn", "ExecutionDoesNotExist", `Execution Does Not Exist: '${ExecutionArn}'`);
    }
    const ended = record.stopDate !== undefined && now - record.stopDate.getTime() >= lagMs;
    return {
      ExecutionArn,
      StateMachineArn: LOCAL_STATE_MACHINE_ARN,
      Name: ExecutionArn.split(":").pop(),
      Status: ended ? record.status : "RUNNING",
      StartDate: record.startDate.toISOString(),
      ...(ended ? { StopDate: record.stopDate!.toISOString() } : {}),
    };
  };
}

const DYNAMODB_COMMANDS = {
  "arn:aws:states:::dynamodb:putItem": PutItemCommand,
  "arn:aws:states:::dynamodb:getItem": GetItemCommand,
  "arn:aws:states:::dynamodb:updateItem": UpdateItemCommand,
  "arn:aws:states:::dynamodb:deleteItem": DeleteItemCommand,
} as const;

/**
 * The optimized DynamoDB integration as real calls on the local DynamoDB server: the state's Parameters are the API
 * request, the answer comes back with the integration's `SdkHttpMetadata`/`SdkResponseMetadata`, and an error is
 * named `DynamoDB.<Name>` (upper-case DB: "Perform DynamoDB CRUD operations with Step Functions").
 */
function dynamoDbTask(dynamodb: DynamoDBClient, resource: keyof typeof DYNAMODB_COMMANDS) {
  const Command = DYNAMODB_COMMANDS[resource] as new (input: any) => Parameters<DynamoDBClient["send"]>[0];
  return async (params: Record<string, unknown>) => {
    try {
      const { $metadata, ...response } = (await dynamodb.send(new Command(params))) as { $metadata: { httpStatusCode?: number; requestId?: string } };
      return { ...response, SdkHttpMetadata: { HttpStatusCode: $metadata.httpStatusCode }, SdkResponseMetadata: { RequestId: $metadata.requestId } };
    } catch (error) {
      const { name = "Error", message = String(error) } = error as Error;
      throw serviceError("DynamoDB", name, message, { exact: true });
    }
  };
}

/**
 * An AWS service's error as a Step Functions integration reports it: Error `<Service>.<Name>` (the AWS SDK
 * integration adds `Exception` when the name lacks it; `exact` keeps it as is), Cause the message with the call's
 * details, as AWS formats them.
 */
function serviceError(service: string, code: string, message: string, { exact = false } = {}): Error {
  const name = `${service}.${exact || code.endsWith("Exception") ? code : `${code}Exception`}`;
  const error = new Error(message, { cause: `${message} (Service: ${service}, Status Code: 400, Error Code: ${code})` });
  error.name = name;
  return error;
}

/** Every Task state of a definition, inside Map item processors too, by name. */
export function taskStates(graph: AslGraph): [string, AslState][] {
  return Object.entries(graph.States).flatMap(([name, state]): [string, AslState][] => {
    const nested = state.ItemProcessor ?? state.Iterator;
    return [...(state.Type === "Task" ? [[name, state] as [string, AslState]] : []), ...(nested ? taskStates(nested) : [])];
  });
}

/** Replaces the synthesized placeholder URLs of the stack's queues by the local ones. */
function pointAtLocalQueues(definition: AslGraph, constructIds: Record<string, string>, queueUrls: Record<string, string>): AslGraph {
  let text = JSON.stringify(definition);
  for (const [construct, url] of Object.entries(queueUrls)) {
    if (!Object.values(constructIds).includes(construct)) throw new Error(`The stack has no queue ${construct}`);
    text = text.replaceAll(placeholderQueueUrl(construct), url);
  }
  return JSON.parse(text);
}

/** Each function's configured timeout (seconds), by construct id, from the template. */
function functionTimeouts({ template, constructIds }: LocalWorkflowOptions["workflow"]): Record<string, number> {
  const timeouts: Record<string, number> = {};
  for (const [logicalId, resource] of Object.entries(template.Resources as Record<string, any>)) {
    if (resource.Type === "AWS::Lambda::Function" && constructIds[logicalId]) {
      timeouts[constructIds[logicalId]!] = resource.Properties.Timeout ?? 3;
    }
  }
  return timeouts;
}

/**
 * Calls a handler the way Lambda reports to Step Functions: a thrown error's `name` becomes the error, its cause is
 * Lambda's JSON (`errorType`, `errorMessage`), and running past the function's timeout is `Sandbox.Timedout`.
 */
async function invokeLikeLambda(handler: TaskHandler, payload: unknown, timeoutSeconds = 3): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = Date.now() + timeoutSeconds * 1000;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(namedError("Sandbox.Timedout", `Task timed out after ${timeoutSeconds} seconds`)), timeoutSeconds * 1000);
  });
  try {
    const context: LambdaContext = { getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
    return await Promise.race([handler(structuredClone(payload), context), timedOut]);
  } catch (error) {
    const { name = "Error", message = String(error) } = error as Error;
    throw namedError(name, message);
  } finally {
    clearTimeout(timer);
  }
}

function namedError(name: string, message: string): Error {
  const error = new Error(message, { cause: JSON.stringify({ errorType: name, errorMessage: message, trace: [] }) });
  error.name = name;
  return error;
}

/** SDK integrations name service errors `Sqs.<Name>`; strip the SDK's `$metadata` like Step Functions does. */
async function callSqs(call: () => Promise<{ $metadata?: unknown }>): Promise<unknown> {
  try {
    const { $metadata: _, ...response } = await call();
    return response;
  } catch (error) {
    const { name = "Error", message = String(error) } = error as Error;
    throw namedError(`Sqs.${name}`, message);
  }
}

/** Passes each event to `seen` as it goes by: the event log can be iterated only once. */
async function* tap<T>(events: AsyncIterable<T>, seen: (event: T) => void): AsyncIterable<T> {
  for await (const event of events) {
    seen(event);
    yield event;
  }
}

/** The part of aws-local-stepfunctions' event log that the summary reads (the package does not export the type). */
interface EventLog {
  type: string;
  state?: { name: string; output?: unknown };
}

async function countEvents(events: AsyncIterable<EventLog>, summary: DrainSummary): Promise<void> {
  for await (const event of events) {
    if (event.type === "StateEntered") {
      summary.stateTransitions++;
      if (event.state?.name === StateName.AnotherDrainIsRunning) summary.status = "SKIPPED";
    }
    if (event.type === "StateRetried") {
      summary.retried++;
      summary.stateTransitions++;
    }
    if (event.type !== "StateExited" || !event.state) continue;
    const output = event.state.output as { round?: Round; deleted?: { failed?: string[] } } | undefined;
    switch (event.state.name) {
      case StateName.WriteToAirtable: {
        const round = output?.round;
        if (!round) break;
        if (round.retryAt !== null) {
          summary.retried++; // the round waits (WaitForAirtable) and writes what is left
          break;
        }
        for (const { outcome } of round.written) {
          if (outcome === "copy") summary.copiesInBatch++;
          else summary.written++;
          if (outcome === "updated") summary.updated++;
        }
        summary.leftInQueue += round.release.length;
        break;
      }
      case StateName.DeleteWrittenMessages:
        summary.leftInQueue += output?.deleted?.failed?.length ?? 0;
        break;
      case StateName.InvalidMessageDeadLettered:
      case StateName.DeleteUnwritableMessage:
        summary.deadLettered++;
        break;
      case StateName.KeepInvalidMessageQueued:
      case StateName.KeepUnvalidatedMessageQueued:
      case StateName.KeepUnwritableMessageQueued:
        summary.leftInQueue++;
        break;
    }
  }
}
