import { randomUUID } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DeleteItemCommand, type DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { StateMachine } from "aws-local-stepfunctions";
import type { Round } from "@fundraise-sync/core/write-round";
import { handler as deleteMessages } from "@fundraise-sync/functions/delete-messages";
import { handler as validate } from "@fundraise-sync/functions/validate";
import { handler as writeToAirtable } from "@fundraise-sync/functions/write-to-airtable";
import { HELD_ROUND, StateName } from "../../../stacks/drain-definition";
import { placeholderQueueUrl, type SynthesizedWorkflow } from "../../../stacks/synthesize";
import type { AslGraph, AslState } from "../../../stacks/timing";
import {
  AWS_SEMANTICS_DEFAULTS,
  type AwsSemanticsOptions,
  ExecutionRegistry,
  type ExecutionStatus,
  type TaskHandler,
  invokeLikeLambda,
  sdkIntegrationError,
} from "./aws-semantics";

export type { LambdaContext, TaskHandler } from "./aws-semantics";

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
  dynamodb?: DynamoDBClient;
  handlers?: Record<string, TaskHandler>;
  /** Shortens retry waits (ms), by state name, as aws-local-stepfunctions' `retryIntervalOverrides`. */
  retryIntervalOverrides?: Record<string, number | number[]>;
  /** Shortens Wait states (ms), by state name, as aws-local-stepfunctions' `waitTimeOverrides`. */
  waitTimeOverrides?: Record<string, number>;
  /**
   * The AWS behaviours a test may tune (see `aws-semantics.ts`): how far ListExecutions / DescribeExecution lag, and
   * what a function timeout is reported as. AWS's by default.
   */
  semantics?: Partial<AwsSemanticsOptions>;
  /**
   * A file where the runtime keeps the receipts of the messages its execution holds, rewritten on every receive: a
   * process killed mid-drain leaves it behind, and the next start gives those messages back at once
   * (`releaseHeldMessages`) instead of waiting out their visibility timeout.
   */
  heldMessagesFile?: string;
}

/**
 * Watches executions as they run, e.g. for the local console. Gets every raw event of aws-local-stepfunctions' event
 * log (the package does not export its type: see its `EventLog`), then the summary. An observer that throws is ignored:
 * watching never changes what the pipeline does.
 */
export interface WorkflowObserver {
  /** An execution exists from now on (RUNNING): scheduled, requested with {@link LocalWorkflow.requestStart}, or a continuation. */
  started?(execution: StartedExecution): void;
  /** `soFar`: the execution's summary counted up to this event (its status and `received` are known at the end only). */
  event?(executionArn: string, event: unknown, soFar: DrainSummary): void;
  /** It ended, with its status as Step Functions names it: after its last event. */
  stopped?(executionArn: string, status: Exclude<ExecutionStatus, "RUNNING">): void;
  finished?(summary: DrainSummary): void;
}

/** An execution as it starts. */
export interface StartedExecution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: Record<string, unknown>;
  /** Epoch ms. */
  startDate: number;
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
  /**
   * Held while Airtable fails: the round handed on to the continuation, its messages kept hidden (see `HeldRound`).
   * `airtableFailingSince` says since when.
   */
  held: number;
  airtableFailingSince?: string;
  retried: number;
  /** Billable state transitions, as Step Functions Standard counts them (each state entered, each retry). */
  stateTransitions: number;
  durationMs: number;
  error?: { name: string; cause: string };
}

export const LOCAL_STATE_MACHINE_NAME = "local-fundraise-sync-DrainDonations";
const STATE_MACHINE_NAME = LOCAL_STATE_MACHINE_NAME;
/** The stack's construct id of the donations queue (a key of `queueUrls`). */
const SOURCE_QUEUE_CONSTRUCT_ID = "DonationsQueue";
const ACCOUNT_AND_REGION = "us-east-1:123456789012";
export const LOCAL_STATE_MACHINE_ARN = `arn:aws:states:${ACCOUNT_AND_REGION}:stateMachine:${STATE_MACHINE_NAME}`;

/**
 * The synthesized drain state machine, executed in-process by aws-local-stepfunctions. Every Task is mapped by its
 * `Resource`: `lambda:invoke` to the handler named by its FunctionName, `aws-sdk:sqs:*` to real calls on the local
 * SQS server, `dynamodb:*` to real calls on the local DynamoDB server, `aws-sdk:sfn:describeExecution` /
 * `listExecutions` to this runtime's own executions, seen with AWS's lag. Errors, timeouts and waits follow AWS where
 * it differs from the interpreter: see `aws-semantics.ts`.
 */
export class LocalWorkflow {
  readonly #machine: StateMachine;
  /** The definition this runtime executes: the synthesized one, pointed at the local queues. */
  readonly definition: AslGraph;
  readonly #overrides: Record<string, (input: any) => Promise<any>>;
  readonly #semantics: AwsSemanticsOptions;
  readonly #executions: ExecutionRegistry;
  /** How to stop each execution in progress, as StopExecution does. */
  readonly #aborts = new Map<string, () => void>();
  /** A continuation that an execution started (ContinueInNewExecution), run by the next `execute()`. */
  #pendingContinuation: { input: Record<string, unknown>; name: string } | undefined;
  /** Executions asked for (StartExecution) and not yet run: the next `execute()` runs the oldest, after any continuation. */
  readonly #requested: StartedExecution[] = [];
  readonly #observers = new Set<WorkflowObserver>();
  /** Every message the current execution received (deleted ones too): what an abort hands back, see `release.ts`. */
  readonly #received: ReceivedReceipt[] = [];
  /** Receives not yet answered (and handed on), so that an abort can wait for them. */
  readonly #receiving = new Set<Promise<unknown>>();
  /** Set by an abort: what a receive still returns goes here, not to the execution. */
  #handBack: ((receipts: ReceivedReceipt[]) => Promise<unknown>) | undefined;

  constructor(private readonly options: LocalWorkflowOptions) {
    this.#semantics = { ...AWS_SEMANTICS_DEFAULTS, ...options.semantics };
    this.#executions = new ExecutionRegistry(this.#semantics);
    const definition = pointAtLocalQueues(options.workflow.definition, options.workflow.constructIds, options.queueUrls);
    this.definition = definition;
    this.#machine = new StateMachine(definition as never, { validationOptions: { checkPaths: true, checkArn: true } });
    const timeouts = functionTimeouts(options.workflow);
    const handlers = { ...DEFAULT_HANDLERS, ...options.handlers };
    this.#overrides = {};
    for (const [name, state] of taskStates(definition)) {
      this.#overrides[name] = this.#taskFor(name, state, handlers, timeouts);
    }
  }

  /** The AWS behaviours this runtime was given (`aws-semantics.ts`), e.g. how far ListExecutions lags. */
  get semantics(): Readonly<AwsSemanticsOptions> {
    return this.#semantics;
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

  #started(execution: StartedExecution): void {
    this.#executions.started({ ...execution, startedAt: execution.startDate });
    this.#notify((o) => o.started?.(execution));
  }

  /**
   * Asks for an execution, as StartExecution does: it exists (RUNNING) from now on, and the next {@link execute} runs
   * it (after a pending continuation), so it is an ordinary drain: one at a time, under the caller's drain lock.
   */
  requestStart(request: { name?: string; input?: Record<string, unknown> } = {}): StartedExecution {
    const name = request.name ?? randomUUID();
    const execution: StartedExecution = {
      executionArn: executionArnFor(name),
      stateMachineArn: LOCAL_STATE_MACHINE_ARN,
      name,
      input: request.input ?? {},
      startDate: Date.now(),
    };
    this.#requested.push(execution);
    this.#started(execution);
    return execution;
  }

  /** Executions asked for with {@link requestStart} that have not run yet, plus a pending continuation. */
  get pendingExecutions(): number {
    return this.#requested.length + (this.#pendingContinuation ? 1 : 0);
  }

  /**
   * Runs one execution to its end and summarizes it: the continuation a previous one started, if any, else one asked
   * for with {@link requestStart}, else a scheduled one. Never throws for a failed execution: see `status`.
   */
  async execute(): Promise<DrainSummary> {
    this.#received.length = 0;
    this.#handBack = undefined;
    const continuation = this.#pendingContinuation;
    this.#pendingContinuation = undefined;
    const requested = continuation ? undefined : this.#requested.shift();
    const input = continuation?.input ?? requested?.input ?? {};
    // A held round handed on (HandOverHeldRound): its messages are this execution's now, for an abort or a crash.
    const held = (input as { [HELD_ROUND]?: { pending?: { ReceiptHandle: string }[] } })[HELD_ROUND];
    const sourceQueueUrl = this.options.queueUrls[SOURCE_QUEUE_CONSTRUCT_ID];
    if (held?.pending && sourceQueueUrl) {
      this.#received.push(...held.pending.map(({ ReceiptHandle }) => ({ queueUrl: sourceQueueUrl, receiptHandle: ReceiptHandle })));
    }
    this.#saveHeld();
    const id = continuation?.name ?? requested?.name ?? randomUUID();
    const executionArn = executionArnFor(id);
    // A continuation started when its predecessor asked (as on AWS), a requested one when it was asked for; a
    // scheduled execution starts now.
    if (!continuation && !requested) this.#started({ executionArn, stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: id, input, startDate: Date.now() });
    const startDate = new Date().toISOString();
    const started = Date.now();
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
    const summary = emptySummary(executionArn);
    this.#aborts.set(executionArn, execution.abort);
    // Counted before observers hear of it: each observer gets the counts so far with the event.
    const counting = (async () => {
      for await (const event of execution.eventLogs as AsyncIterable<EventLog>) {
        countEvent(event, summary);
        const soFar = { ...summary };
        this.#notify((o) => o.event?.(executionArn, event, soFar));
      }
    })();
    let ended: Exclude<ExecutionStatus, "RUNNING"> = "SUCCEEDED";
    try {
      const output = (await execution.result) as { received?: number } | undefined;
      // The drain's own count (DrainComplete outputs $.drain); a skipped drain outputs its input.
      summary.received = output?.received ?? 0;
    } catch (error) {
      const name = (error as Error).name;
      ended = name === "ExecutionAbortedError" ? "ABORTED" : name === "ExecutionTimeoutError" ? "TIMED_OUT" : "FAILED";
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
      this.#aborts.delete(executionArn);
      this.#executions.stopped(executionArn, ended);
    }
    await counting;
    this.#notify((o) => o.stopped?.(executionArn, ended));
    summary.continued = this.#pendingContinuation !== undefined;
    // Ended: what it still holds (a failed round) is hidden until its visibility timeout, as on AWS. A continuation
    // takes a held round on: keep the file until it starts.
    if (!summary.continued) this.#saveHeld([]);
    summary.durationMs = Date.now() - started;
    this.#notify((o) => o.finished?.(summary));
    return summary;
  }

  /** Writes the held receipts to `heldMessagesFile` (atomically: a crash mid-write leaves the previous list). */
  #saveHeld(receipts: ReceivedReceipt[] = this.#received): void {
    const file = this.options.heldMessagesFile;
    if (!file) return;
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(receipts));
    renameSync(`${file}.tmp`, file);
  }

  /**
   * Stops an execution in progress where it is, as StopExecution does (status ABORTED): it runs no further state,
   * so it gives nothing back (no lease release, no delete). Its `execute()` resolves as FAILED.
   * @returns false if no such execution is in progress.
   */
  abort(executionArn: string): boolean {
    // One asked for and not run yet: it ends here, having run nothing.
    const waiting = this.#requested.findIndex((execution) => execution.executionArn === executionArn);
    if (waiting >= 0) {
      this.#requested.splice(waiting, 1);
      this.#executions.stopped(executionArn, "ABORTED");
      this.#notify((o) => o.stopped?.(executionArn, "ABORTED"));
      return true;
    }
    const abort = this.#aborts.get(executionArn);
    abort?.();
    return abort !== undefined;
  }

  /** The executions in progress now (their ARNs), e.g. to {@link abort} one. */
  runningExecutions(): string[] {
    return this.#executions.runningNow();
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

  /**
   * The local code for one Task, by its `Resource`. One case per integration; a new one (e.g. `dynamodb:*`) is one
   * more case, with its errors shaped by `sdkIntegrationError` as the SQS calls' are.
   */
  #taskFor(
    stateName: string,
    state: AslState,
    handlers: Record<string, TaskHandler>,
    timeouts: Record<string, number>,
  ): (input: any) => Promise<any> {
    const { sqs } = this.options;
    const invoke = (name: string, payload: unknown) => {
      const handler = handlers[name];
      if (!handler) throw new Error(`No local handler for function ${name} (state ${stateName})`);
      return invokeLikeLambda(handler, payload, timeouts[name] ?? DEFAULT_FUNCTION_TIMEOUT_SECONDS, this.#semantics.functionTimeoutError);
    };
    // A Lambda invoked directly (`payloadResponseOnly`): the state's input is the payload, the result is its output.
    const directFunction = /^arn:aws:lambda:[^:]+:\d+:function:([^:]+)$/.exec(state.Resource ?? "")?.[1];
    if (directFunction) {
      if (!handlers[directFunction]) throw new Error(`No local handler for function ${directFunction} (state ${stateName})`);
      return (payload) => invoke(directFunction, payload);
    }
    switch (state.Resource) {
      case "arn:aws:states:::lambda:invoke":
        return async ({ FunctionName, Payload }: { FunctionName: string; Payload: unknown }) => {
          const name = String(FunctionName).split(":").pop()!;
          return { StatusCode: 200, ExecutedVersion: "$LATEST", Payload: await invoke(name, Payload) };
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
            this.#saveHeld();
            return reply;
          })();
          this.#receiving.add(receiving);
          return receiving.finally(() => this.#receiving.delete(receiving));
        };
      case "arn:aws:states:::aws-sdk:sqs:sendMessage":
        return (params) => callSqs(() => sqs.send(new SendMessageCommand(params)));
      case "arn:aws:states:::aws-sdk:sqs:getQueueAttributes":
        return (params) => callSqs(() => sqs.send(new GetQueueAttributesCommand(params)));
      case "arn:aws:states:::states:startExecution":
        // Step Functions starts it at once (so it is listed from then on); locally the next execute() runs it, under
        // the same ARN (callers loop on `continued`).
        return async ({ Input }: { Input: Record<string, unknown> }) => {
          const name = randomUUID();
          const executionArn = executionArnFor(name);
          this.#started({ executionArn, stateMachineArn: LOCAL_STATE_MACHINE_ARN, name, input: Input, startDate: Date.now() });
          this.#pendingContinuation = { input: Input, name };
          return { ExecutionArn: executionArn, StartDate: new Date().toISOString() };
        };
      case "arn:aws:states:::dynamodb:putItem":
      case "arn:aws:states:::dynamodb:getItem":
      case "arn:aws:states:::dynamodb:updateItem":
      case "arn:aws:states:::dynamodb:deleteItem":
        if (!this.options.dynamodb) throw new Error(`State ${stateName}: no local DynamoDB server for ${state.Resource}`);
        return dynamoDbTask(this.options.dynamodb, state.Resource);
      case "arn:aws:states:::aws-sdk:sfn:listExecutions":
        return async (params) => this.#executions.listExecutions(params);
      case "arn:aws:states:::aws-sdk:sfn:describeExecution":
        return async (params) => this.#executions.describeExecution(params);
      default:
        throw new Error(`State ${stateName}: no local mapping for resource ${state.Resource}`);
    }
  }
}

// --- The drain lease's calls ----------------------------------------------------------------------------------

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
      throw sdkIntegrationError("DynamoDB", error);
    }
  };
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

const executionArnFor = (name: string) => `arn:aws:states:${ACCOUNT_AND_REGION}:execution:${STATE_MACHINE_NAME}:${name}`;

/** Lambda's default function timeout (seconds), for a function the template gives none. */
const DEFAULT_FUNCTION_TIMEOUT_SECONDS = 3;

/** Each function's configured timeout (seconds), by construct id, from the template. */
function functionTimeouts({ template, constructIds }: LocalWorkflowOptions["workflow"]): Record<string, number> {
  const timeouts: Record<string, number> = {};
  for (const [logicalId, resource] of Object.entries(template.Resources as Record<string, any>)) {
    if (resource.Type === "AWS::Lambda::Function" && constructIds[logicalId]) {
      timeouts[constructIds[logicalId]!] = resource.Properties.Timeout ?? DEFAULT_FUNCTION_TIMEOUT_SECONDS;
    }
  }
  return timeouts;
}

/** An `aws-sdk:sqs:*` call: the SDK's `$metadata` stripped, as Step Functions does; errors named as it names them. */
async function callSqs(call: () => Promise<{ $metadata?: unknown }>): Promise<unknown> {
  try {
    const { $metadata: _, ...response } = await call();
    return response;
  } catch (error) {
    throw sdkIntegrationError("Sqs", error);
  }
}

/** The part of aws-local-stepfunctions' event log that the summary reads (the package does not export the type). */
export interface EventLog {
  type: string;
  state?: { name: string; output?: unknown };
}

/** A summary with nothing counted yet. */
export function emptySummary(executionArn: string): DrainSummary {
  return {
    executionArn,
    status: "SUCCEEDED",
    continued: false,
    received: 0,
    written: 0,
    updated: 0,
    copiesInBatch: 0,
    deadLettered: 0,
    leftInQueue: 0,
    held: 0,
    retried: 0,
    stateTransitions: 0,
    durationMs: 0,
  };
}

/**
 * Counts one event of an execution's log into its summary: what the summary says at the end, and what an execution
 * did so far (the console counts an interrupted one this way from the events it kept). `received` is not counted here: it is
 * the drain's own count, in its output at the end.
 */
export function countEvent(event: EventLog, summary: DrainSummary): void {
  if (event.type === "StateEntered") {
    summary.stateTransitions++;
    if (event.state?.name === StateName.AnotherDrainIsRunning) summary.status = "SKIPPED";
  }
  if (event.type === "StateRetried") {
    summary.retried++;
    summary.stateTransitions++;
  }
  if (event.type !== "StateExited" || !event.state) return;
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
      summary.held = round.held?.pending.length ?? 0;
      summary.airtableFailingSince = round.circuit?.failingSince ?? undefined;
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
