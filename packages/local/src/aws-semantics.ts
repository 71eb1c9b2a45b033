import { randomUUID } from "node:crypto";

/**
 * Where AWS is documented to behave differently from the local stand-ins (the aws-local-stepfunctions interpreter,
 * in-process handlers), and how the local runtime follows AWS. This is the one list of those differences: each is
 * applied by the code below, or by the interpreter patch it names. The local runtime (`LocalWorkflow`) uses all of
 * them by default, so `npm start`, the workflow tests and the fault matrix see what AWS does.
 */
export const AWS_SEMANTICS: readonly AwsSemantic[] = [
  {
    behaviour: "A Wait state's Timestamp / TimestampPath counts whole seconds: the milliseconds are truncated",
    interpreter: "waits to the millisecond",
    source: { title: "Wait workflow state", url: "https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html" },
    appliedBy: "patches/aws-local-stepfunctions+3.0.0.patch (WaitStateAction)",
  },
  {
    behaviour: "A Choice rule's type test with false (IsNull, IsPresent, IsString, …: false) matches when the test fails",
    interpreter: "never matches a type test with false",
    source: { title: "Choice workflow state (Choice Rules: data-test expressions)", url: "https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html" },
    appliedBy: "patches/aws-local-stepfunctions+3.0.0.patch (ChoiceHelper)",
  },
  {
    behaviour: "A Task that runs past its own TimeoutSeconds fails with States.Timeout and an empty Cause",
    interpreter: 'Cause "States.Timeout"',
    source: { title: "Error handling in Step Functions (States.Timeout); the empty Cause as seen on AWS", url: "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html" },
    appliedBy: "patches/aws-local-stepfunctions+3.0.0.patch (StatesTimeoutError)",
  },
  {
    behaviour: "A Task without TimeoutSeconds has no timeout of its own (a Lambda task still ends at the function's)",
    interpreter: "fails every Task after 60 s (the States Language spec's default)",
    source: { title: "Using timeouts to avoid stuck Step Functions workflow executions", url: "https://docs.aws.amazon.com/step-functions/latest/dg/sfn-stuck-execution.html" },
    appliedBy: "patches/aws-local-stepfunctions+3.0.0.patch (TaskStateAction)",
  },
  {
    behaviour:
      "A Lambda function's error: Error is its errorType (the thrown error's name), Cause is Lambda's JSON " +
      '`{"errorType","errorMessage","trace"}`, in a Catch output as in the execution history',
    interpreter: "a Catch's Cause is the bare message (`error.message`)",
    source: { title: "Handling errors in Step Functions workflows", url: "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html" },
    appliedBy: "lambdaFunctionError()",
  },
  {
    behaviour:
      "A function that runs past its timeout: Sandbox.Timedout (current runtimes) or Lambda.Unknown (reported for " +
      'timeouts and out-of-memory, Cause "The cause could not be determined because Lambda did not return an error type…")',
    interpreter: "no function timeout at all",
    source: { title: "Handle Lambda service exceptions", url: "https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html" },
    appliedBy: "lambdaTimeoutError(); the option `functionTimeoutError` picks the name",
  },
  {
    behaviour:
      "AWS SDK integration errors are `<Service>.<Name>Exception` in Pascal case, with Exception added where the " +
      "service's own name lacks it (e.g. Sqs.QueueDoesNotExistException)",
    interpreter: "the SDK v3 error name as is (e.g. QueueDoesNotExist)",
    source: { title: "Learning to use AWS service SDK integrations in Step Functions", url: "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html" },
    appliedBy: "sdkIntegrationError()",
  },
  {
    behaviour:
      "ListExecutions and DescribeExecution are eventually consistent: results may not reflect very recent updates " +
      "(an execution just started is missing, a status just changed is the old one)",
    interpreter: "no such calls (the local runtime answers them)",
    source: { title: "ListExecutions / DescribeExecution (Step Functions API reference)", url: "https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html" },
    appliedBy: "ExecutionRegistry (options `listExecutionsLagMs`, `describeExecutionLagMs`)",
  },
  {
    behaviour:
      "The optimized DynamoDB integration names errors `DynamoDB.<Name>` (e.g. DynamoDB.ConditionalCheckFailedException), " +
      "unlike the AWS SDK integration's `DynamoDb.` prefix",
    interpreter: "no such calls (the local runtime maps them to the local DynamoDB server)",
    source: { title: "Perform DynamoDB CRUD operations with Step Functions", url: "https://docs.aws.amazon.com/step-functions/latest/dg/connect-ddb.html" },
    appliedBy: "workflow.ts dynamoDbTask() through sdkIntegrationError()",
  },
  {
    behaviour:
      "Message attributes (name, type and value) count toward a queue's maximum message size; empty attribute names, " +
      "types and values are refused",
    interpreter: "fauxqs took empty attribute values",
    source: { title: "MessageAttributeValue (Amazon SQS API reference)", url: "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html" },
    appliedBy: "patches/fauxqs+2.4.1.patch (the local SQS server)",
  },
];

/** One documented difference between AWS and the local stand-ins. */
export interface AwsSemantic {
  /** What AWS does. */
  behaviour: string;
  /** What the stand-in did before. */
  interpreter: string;
  /** The AWS documentation page it comes from. */
  source: { title: string; url: string };
  /** Where the local runtime applies it. */
  appliedBy: string;
}

/** The knobs tests may turn; everything else in this module is fixed AWS behaviour. */
export interface AwsSemanticsOptions {
  /** How far ListExecutions lags behind the truth (ms). AWS gives no figure: 1 s by default, 0 for a consistent read. */
  listExecutionsLagMs: number;
  /** How far DescribeExecution lags behind the truth (ms). */
  describeExecutionLagMs: number;
  /** What a function timeout is reported as. */
  functionTimeoutError: typeof SANDBOX_TIMEDOUT | typeof LAMBDA_UNKNOWN;
}

export const SANDBOX_TIMEDOUT = "Sandbox.Timedout";
export const LAMBDA_UNKNOWN = "Lambda.Unknown";

export const AWS_SEMANTICS_DEFAULTS: AwsSemanticsOptions = {
  listExecutionsLagMs: 1000,
  describeExecutionLagMs: 1000,
  functionTimeoutError: SANDBOX_TIMEDOUT,
};

/** A Lambda handler as the state machine calls it: JSON in, JSON out, a named error thrown on failure. */
export type TaskHandler = (payload: any, context: LambdaContext) => Promise<unknown>;

/** The part of Lambda's context object the handlers use. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/**
 * An error as a Task reports it to the interpreter: `name` is the Error, and both `message` and `cause` carry the
 * Cause (the interpreter's Catch output reads `message`, its event log `cause`).
 */
export function taskError(name: string, cause: string): Error {
  const error = new Error(cause, { cause });
  error.name = name;
  return error;
}

/**
 * What Step Functions reports for an error a function threw: the Node.js runtime's `errorType` (the error's name;
 * `typeof` for a thrown non-Error) and a Cause that is the runtime's JSON error payload.
 */
export function lambdaFunctionError(thrown: unknown): Error {
  const payload =
    thrown instanceof Error
      ? { errorType: thrown.name, errorMessage: thrown.message, trace: (thrown.stack ?? "").split("\n") }
      : { errorType: typeof thrown, errorMessage: String(thrown), trace: [] as string[] };
  return taskError(payload.errorType, JSON.stringify(payload));
}

/** What Step Functions reports for a function that ran past its configured timeout. */
export function lambdaTimeoutError(timeoutSeconds: number, reportedAs: AwsSemanticsOptions["functionTimeoutError"]): Error {
  const requestId = randomUUID();
  const seconds = timeoutSeconds.toFixed(2);
  if (reportedAs === LAMBDA_UNKNOWN) {
    const returned = JSON.stringify({ errorMessage: `${new Date().toISOString()} ${requestId} Task timed out after ${seconds} seconds` });
    return taskError(LAMBDA_UNKNOWN, `The cause could not be determined because Lambda did not return an error type. Returned payload: ${returned}`);
  }
  return taskError(SANDBOX_TIMEDOUT, JSON.stringify({ errorType: SANDBOX_TIMEDOUT, errorMessage: `RequestId: ${requestId} Error: Task timed out after ${seconds} seconds` }));
}

/**
 * Calls a handler the way Lambda does for Step Functions: a structured copy of the payload, a context with the time
 * left, an error shaped by {@link lambdaFunctionError}, and {@link lambdaTimeoutError} past `timeoutSeconds` (the
 * handler itself keeps running, as a timed-out invocation's promise would be abandoned).
 */
export async function invokeLikeLambda(
  handler: TaskHandler,
  payload: unknown,
  timeoutSeconds: number,
  reportTimeoutAs: AwsSemanticsOptions["functionTimeoutError"],
): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = Date.now() + timeoutSeconds * 1000;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(lambdaTimeoutError(timeoutSeconds, reportTimeoutAs)), timeoutSeconds * 1000);
  });
  const context: LambdaContext = { getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
  const invocation = (async () => handler(structuredClone(payload), context))().catch((error: unknown) => {
    throw lambdaFunctionError(error);
  });
  try {
    return await Promise.race([invocation, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** The SDK v3 error name as Step Functions names it: the last segment, `Exception` added when missing. */
export function sdkIntegrationErrorName(service: string, sdkName: string): string {
  const name = sdkName.split(".").pop() || "Unknown";
  return `${service}.${name.endsWith("Exception") ? name : `${name}Exception`}`;
}

/**
 * What an AWS SDK integration Task reports for a failed call: `<Service>.<Name>Exception`, the Cause in the AWS SDK
 * for Java's words (`… (Service: Sqs, Status Code: 400, Request ID: …)`). A failure that never reached the service
 * (no HTTP status: a refused connection, a client timeout) is `<Service>.SdkClientException`, as Lambda's
 * `Lambda.SdkClientException`.
 */
export function sdkIntegrationError(service: string, thrown: unknown): Error {
  const error = thrown as { name?: string; message?: string; $metadata?: { httpStatusCode?: number; requestId?: string } };
  const message = error?.message ?? String(thrown);
  const status = error?.$metadata?.httpStatusCode;
  if (status === undefined) return taskError(`${service}.SdkClientException`, message);
  const requestId = error.$metadata?.requestId ?? randomUUID();
  return taskError(sdkIntegrationErrorName(service, error.name ?? "Unknown"), `${message} (Service: ${service}, Status Code: ${status}, Request ID: ${requestId})`);
}

/** An execution's status as the Step Functions API names it. */
export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";

interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: unknown;
  startedAt: number;
  stoppedAt?: number;
  status?: Exclude<ExecutionStatus, "RUNNING">;
}

/** How many executions the registry remembers (AWS keeps closed ones for 90 days; locally the newest are enough). */
const REMEMBERED_EXECUTIONS = 1000;

/**
 * The executions of the local runtime, answered as Step Functions' eventually consistent `ListExecutions` and
 * `DescribeExecution` answer: from the state as it was `lagMs` ago. An execution started within the lag is not
 * there yet (`Sfn.ExecutionDoesNotExistException` for DescribeExecution); one that stopped within it still runs.
 * Output fields are in Pascal case, as SDK integrations return them.
 */
export class ExecutionRegistry {
  readonly #executions = new Map<string, ExecutionRecord>();

  constructor(
    private readonly lags: Pick<AwsSemanticsOptions, "listExecutionsLagMs" | "describeExecutionLagMs">,
    private readonly now: () => number = Date.now,
  ) {}

  started(execution: { executionArn: string; stateMachineArn: string; name: string; input: unknown; startedAt?: number }): void {
    this.#executions.set(execution.executionArn, { ...execution, startedAt: execution.startedAt ?? this.now() });
    while (this.#executions.size > REMEMBERED_EXECUTIONS) this.#executions.delete(this.#executions.keys().next().value!);
  }

  stopped(executionArn: string, status: Exclude<ExecutionStatus, "RUNNING">): void {
    const record = this.#executions.get(executionArn);
    if (record && record.stoppedAt === undefined) Object.assign(record, { stoppedAt: this.now(), status });
  }

  /** The truth, now: the executions running at this moment (what the local runtime itself knows). */
  runningNow(): string[] {
    return [...this.#executions.values()].filter((record) => record.stoppedAt === undefined).map((record) => record.executionArn);
  }

  /** `states:ListExecutions` as an SDK integration answers it, as of `listExecutionsLagMs` ago. */
  listExecutions(params: { StateMachineArn: string; StatusFilter?: ExecutionStatus; MaxResults?: number }): { Executions: object[]; NextToken?: string } {
    const asOf = this.now() - this.lags.listExecutionsLagMs;
    const matching = [...this.#executions.values()]
      .filter((record) => record.stateMachineArn === params.StateMachineArn && record.startedAt <= asOf)
      .map((record) => this.#asOf(record, asOf))
      .filter((execution) => !params.StatusFilter || execution.Status === params.StatusFilter)
      .reverse(); // newest first, as AWS lists them
    const pageSize = params.MaxResults || 100;
    const page = matching.slice(0, pageSize);
    return matching.length > pageSize ? { Executions: page, NextToken: randomUUID() } : { Executions: page };
  }

  /** `states:DescribeExecution` as an SDK integration answers it, as of `describeExecutionLagMs` ago. */
  describeExecution(params: { ExecutionArn: string }): object {
    const asOf = this.now() - this.lags.describeExecutionLagMs;
    const record = this.#executions.get(params.ExecutionArn);
    if (!record || record.startedAt > asOf) {
      throw taskError(
        "Sfn.ExecutionDoesNotExistException",
        `Execution Does Not Exist: '${params.ExecutionArn}' (Service: Sfn, Status Code: 400, Request ID: ${randomUUID()})`,
      );
    }
    return { ...this.#asOf(record, asOf), Input: JSON.stringify(record.input ?? {}), InputDetails: { Included: true } };
  }

  #asOf(record: ExecutionRecord, asOf: number) {
    const stopped = record.stoppedAt !== undefined && record.stoppedAt <= asOf;
    return {
      ExecutionArn: record.executionArn,
      StateMachineArn: record.stateMachineArn,
      Name: record.name,
      Status: stopped ? record.status! : ("RUNNING" as ExecutionStatus),
      StartDate: new Date(record.startedAt).toISOString(),
      ...(stopped ? { StopDate: new Date(record.stoppedAt!).toISOString() } : {}),
    };
  }
}
