/**
 * The Step Functions API of the local runtime, for its one state machine: AWS's JSON 1.0 protocol (POST `/`,
 * `X-Amz-Target: AWSStepFunctions.<Operation>`, `Content-Type: application/x-amz-json-1.0`), as
 * `@aws-sdk/client-sfn` and the AWS CLI send it, so that the same tools talk to `npm start` and to a deployed stage.
 *
 * Served: ListStateMachines, DescribeStateMachine, StartExecution, DescribeExecution, ListExecutions,
 * GetExecutionHistory, StopExecution. Any other operation is refused (`UnknownOperationException`, "not supported by
 * the local runtime"), never answered with a silent success. Errors have AWS's shape: HTTP 400,
 * `{"__type": "com.amazonaws.states#ExecutionDoesNotExist", "message": …}`.
 *
 * Reads are consistent (AWS's ListExecutions is eventually consistent; the state machine's own calls still see AWS's
 * lag, see `aws-semantics.ts`). It binds 127.0.0.1 and refuses a foreign `Host` or `Origin` (`localGuard`). Requests
 * are not signed-checked: anything on this machine may call it, as it may call the local SQS server.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { localGuard } from "@fundraise-sync/airtable-emulator";
import type { ExecutionStatus } from "./aws-semantics";
import type { SfnHistoryEvent } from "./sfn-history";
import type { ExecutionStore, StoredExecution } from "./sfn-store";
import { LOCAL_STATE_MACHINE_ARN, LOCAL_STATE_MACHINE_NAME, type LocalWorkflow } from "./workflow";

/** The port `npm start` serves it on (`--sfn-port`). */
export const SFN_API_DEFAULTS = { host: "127.0.0.1", port: 9327 } as const;

/** The operations served, in the order the help lists them. */
export const SUPPORTED_OPERATIONS = [
  "ListStateMachines",
  "DescribeStateMachine",
  "StartExecution",
  "DescribeExecution",
  "ListExecutions",
  "GetExecutionHistory",
  "StopExecution",
] as const;

const TARGET_PREFIX = "AWSStepFunctions.";
const ERROR_NAMESPACE = "com.amazonaws.states#";
/** AWS's limits on ListExecutions' and GetExecutionHistory's `maxResults` (0 means the default, 100). */
const MAX_RESULTS = 1000;
const DEFAULT_RESULTS = 100;
/** What AWS allows in an execution name. */
const EXECUTION_NAME = /^[A-Za-z0-9_-]{1,80}$/;
/** A request body larger than StartExecution's 256 KiB input, with room for the rest, is refused. */
const MAX_BODY_BYTES = 512 * 1024;
const STATUSES: readonly ExecutionStatus[] = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

/** An error the API answers with, in AWS's shape. */
export class SfnApiError extends Error {
  constructor(
    /** AWS's error code, e.g. `ExecutionDoesNotExist`. */
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = code;
  }
}

export interface SfnApiOptions {
  workflow: LocalWorkflow;
  store: ExecutionStore;
  /** Port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /**
   * Called after StartExecution queued an execution: the scheduler runs it when no drain runs (and it holds the
   * drain lock), as it runs a scheduled one.
   */
  onStartRequested?: (executionArn: string) => void;
  /** Called after StopExecution stopped a running execution (e.g. to hand its held messages back). */
  onStopped?: (executionArn: string) => void;
  /** When the state machine "was created": the start of this runtime. */
  creationDate?: Date;
}

export interface SfnApi {
  url: string;
  port: number;
  stateMachineArn: string;
  close(): Promise<void>;
}

/** Starts the Step Functions API of a local pipeline's state machine. */
export async function startSfnApi(options: SfnApiOptions): Promise<SfnApi> {
  const operations = sfnOperations(options);
  let guard: ReturnType<typeof localGuard> | undefined;
  const server = http.createServer((request, response) => {
    const answer = (status: number, body: unknown, errorType?: string) => {
      response.writeHead(status, {
        "content-type": "application/x-amz-json-1.0",
        "x-amzn-requestid": crypto.randomUUID(),
        ...(errorType ? { "x-amzn-errortype": errorType } : {}),
      });
      response.end(JSON.stringify(body));
    };
    const fail = (error: SfnApiError) => answer(error.status, { __type: `${ERROR_NAMESPACE}${error.code}`, message: error.message }, error.code);
    const refused = guard?.check(request);
    if (refused) return fail(new SfnApiError("AccessDeniedException", refused, 403));
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on("end", () => {
      void (async () => {
        if (size > MAX_BODY_BYTES) throw new SfnApiError("ValidationException", `the request is larger than ${MAX_BODY_BYTES} bytes`);
        if (request.method !== "POST") throw new SfnApiError("UnknownOperationException", "the Step Functions API takes POST requests with an X-Amz-Target header", 404);
        const target = String(request.headers["x-amz-target"] ?? "");
        if (!target.startsWith(TARGET_PREFIX)) throw new SfnApiError("UnknownOperationException", `X-Amz-Target must be ${TARGET_PREFIX}<Operation>, not "${target}"`);
        const operation = target.slice(TARGET_PREFIX.length);
        const handler = operations[operation as keyof typeof operations];
        if (!handler) {
          throw new SfnApiError(
            "UnknownOperationException",
            `${operation} is not supported by the local runtime (it serves ${SUPPORTED_OPERATIONS.join(", ")})`,
          );
        }
        let input: Record<string, unknown>;
        try {
          const text = Buffer.concat(chunks).toString("utf8");
          input = text.trim() === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
        } catch {
          throw new SfnApiError("SerializationException", "the request body is not JSON");
        }
        if (input === null || typeof input !== "object" || Array.isArray(input)) throw new SfnApiError("SerializationException", "the request body must be a JSON object");
        answer(200, await handler(input));
      })().catch((error: unknown) => {
        if (error instanceof SfnApiError) return fail(error);
        fail(new SfnApiError("InternalFailure", (error as Error).message ?? String(error), 500));
      });
    });
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(options.port ?? SFN_API_DEFAULTS.port, SFN_API_DEFAULTS.host, resolve));
  const { port } = server.address() as AddressInfo;
  guard = localGuard(port, SFN_API_DEFAULTS.host);
  return {
    url: `http://${SFN_API_DEFAULTS.host}:${port}`,
    port,
    stateMachineArn: LOCAL_STATE_MACHINE_ARN,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Epoch seconds, as the JSON protocol carries timestamps. */
const seconds = (ms: number) => ms / 1000;

function describe(execution: StoredExecution) {
  return {
    executionArn: execution.executionArn,
    stateMachineArn: execution.stateMachineArn,
    name: execution.name,
    status: execution.status,
    startDate: seconds(execution.startDate),
    ...(execution.stopDate !== undefined ? { stopDate: seconds(execution.stopDate) } : {}),
  };
}

function wireEvent({ timestamp, ...event }: SfnHistoryEvent, includeData: boolean) {
  const wire: Record<string, unknown> = { ...event, timestamp: seconds(timestamp) };
  if (includeData) return wire;
  // includeExecutionData: false leaves out inputs and outputs, as AWS does.
  for (const [key, value] of Object.entries(wire)) {
    if (!key.endsWith("EventDetails") || typeof value !== "object" || value === null) continue;
    const { input: _input, output: _output, parameters: _parameters, ...rest } = value as Record<string, unknown>;
    wire[key] = rest;
  }
  return wire;
}

/** The operations, each from its request to its answer (or an {@link SfnApiError}). */
function sfnOperations({ workflow, store, onStartRequested, onStopped, creationDate = new Date() }: SfnApiOptions) {
  const machine = () => ({
    stateMachineArn: LOCAL_STATE_MACHINE_ARN,
    name: LOCAL_STATE_MACHINE_NAME,
    type: "STANDARD",
    creationDate: seconds(creationDate.getTime()),
  });
  const stateMachineArnOf = (input: Record<string, unknown>) => {
    const arn = requiredString(input, "stateMachineArn");
    if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$/.test(arn)) throw new SfnApiError("InvalidArn", `Invalid Arn: '${arn}'`);
    if (arn !== LOCAL_STATE_MACHINE_ARN) throw new SfnApiError("StateMachineDoesNotExist", `State Machine Does Not Exist: '${arn}' (the local runtime serves ${LOCAL_STATE_MACHINE_ARN})`);
    return arn;
  };
  const executionOf = (input: Record<string, unknown>) => {
    const arn = requiredString(input, "executionArn");
    if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$/.test(arn)) throw new SfnApiError("InvalidArn", `Invalid Arn: '${arn}'`);
    const execution = store.get(arn);
    if (!execution) throw new SfnApiError("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    return execution;
  };
  return {
    ListStateMachines: async (input: Record<string, unknown>) => {
      maxResultsOf(input);
      return { stateMachines: [machine()] };
    },
    DescribeStateMachine: async (input: Record<string, unknown>) => {
      stateMachineArnOf(input);
      return {
        ...machine(),
        status: "ACTIVE",
        definition: JSON.stringify(workflow.definition),
        roleArn: `arn:aws:iam::123456789012:role/${LOCAL_STATE_MACHINE_NAME}`,
      };
    },
    StartExecution: async (input: Record<string, unknown>) => {
      const stateMachineArn = stateMachineArnOf(input);
      const name = optionalString(input, "name");
      if (name !== undefined && !EXECUTION_NAME.test(name)) throw new SfnApiError("InvalidName", `Invalid Name: '${name}' (1-80 letters, digits, - and _)`);
      const inputText = optionalString(input, "input") ?? "{}";
      let parsed: unknown;
      try {
        parsed = JSON.parse(inputText);
      } catch {
        throw new SfnApiError("InvalidExecutionInput", "Invalid State Machine Execution Input: the input is not JSON");
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new SfnApiError("InvalidExecutionInput", "Invalid State Machine Execution Input: the drain takes a JSON object");
      }
      if (name !== undefined) {
        const existing = store.get(`${stateMachineArn.replace(":stateMachine:", ":execution:")}:${name}`);
        // The same name and input while it runs: the same execution (StartExecution is idempotent so); else refused.
        if (existing?.status === "RUNNING" && JSON.stringify(JSON.parse(existing.input)) === JSON.stringify(parsed)) {
          return { executionArn: existing.executionArn, startDate: seconds(existing.startDate) };
        }
        if (existing) throw new SfnApiError("ExecutionAlreadyExists", `Execution Already Exists: '${existing.executionArn}'`);
      }
      const started = workflow.requestStart({ ...(name ? { name } : {}), input: parsed as Record<string, unknown> });
      onStartRequested?.(started.executionArn);
      return { executionArn: started.executionArn, startDate: seconds(started.startDate) };
    },
    DescribeExecution: async (input: Record<string, unknown>) => {
      const execution = executionOf(input);
      return {
        ...describe(execution),
        input: execution.input,
        inputDetails: { included: true },
        ...(execution.output !== undefined ? { output: execution.output, outputDetails: { included: true } } : {}),
        ...(execution.error !== undefined ? { error: execution.error } : {}),
        ...(execution.cause !== undefined ? { cause: execution.cause } : {}),
      };
    },
    ListExecutions: async (input: Record<string, unknown>) => {
      const stateMachineArn = stateMachineArnOf(input);
      const statusFilter = optionalString(input, "statusFilter");
      if (statusFilter !== undefined && !STATUSES.includes(statusFilter as ExecutionStatus)) {
        throw new SfnApiError("ValidationException", `1 validation error detected: Value '${statusFilter}' at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [${STATUSES.join(", ")}]`);
      }
      const executions = store
        .list()
        .filter((execution) => execution.stateMachineArn === stateMachineArn && (!statusFilter || execution.status === statusFilter));
      const { page, nextToken } = paginate(executions, input, (execution) => execution.executionArn);
      return { executions: page.map(describe), ...(nextToken ? { nextToken } : {}) };
    },
    GetExecutionHistory: async (input: Record<string, unknown>) => {
      const execution = executionOf(input);
      const reverse = optionalBoolean(input, "reverseOrder") ?? false;
      const includeData = optionalBoolean(input, "includeExecutionData") ?? true;
      const events = ((await store.events(execution.executionArn)) ?? []).slice();
      if (reverse) events.reverse();
      const { page, nextToken } = paginate(events, input, (event) => `${execution.name}/${event.id}/${reverse ? "r" : "f"}`);
      return { events: page.map((event) => wireEvent(event, includeData)), ...(nextToken ? { nextToken } : {}) };
    },
    StopExecution: async (input: Record<string, unknown>) => {
      const execution = executionOf(input);
      const error = optionalString(input, "error");
      const cause = optionalString(input, "cause");
      if (execution.status !== "RUNNING") {
        throw new SfnApiError("ValidationException", `Execution is not running: '${execution.executionArn}' is ${execution.status}`);
      }
      store.stopping(execution.executionArn, { ...(error !== undefined ? { error } : {}), ...(cause !== undefined ? { cause } : {}) });
      if (workflow.abort(execution.executionArn)) onStopped?.(execution.executionArn);
      return { stopDate: seconds(Date.now()) };
    },
  };
}

function requiredString(input: Record<string, unknown>, field: string): string {
  const value = input[field];
  if (value === undefined || value === null) {
    throw new SfnApiError("ValidationException", `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`);
  }
  if (typeof value !== "string") throw new SfnApiError("SerializationException", `${field} must be a string`);
  return value;
}

function optionalString(input: Record<string, unknown>, field: string): string | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new SfnApiError("SerializationException", `${field} must be a string`);
  return value;
}

function optionalBoolean(input: Record<string, unknown>, field: string): boolean | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw new SfnApiError("SerializationException", `${field} must be a boolean`);
  return value;
}

function maxResultsOf(input: Record<string, unknown>): number {
  const value = input.maxResults;
  if (value === undefined || value === null || value === 0) return DEFAULT_RESULTS;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_RESULTS) {
    throw new SfnApiError("ValidationException", `1 validation error detected: Value '${String(value)}' at 'maxResults' failed to satisfy constraint: Member must have value between 0 and ${MAX_RESULTS}`);
  }
  return value;
}

/**
 * One page of `items` from `nextToken` on. The token names the item the page starts at (opaque to callers, as
 * AWS's), so a page stays right while new executions are added before it.
 */
function paginate<T>(items: T[], input: Record<string, unknown>, keyOf: (item: T) => string): { page: T[]; nextToken?: string } {
  const size = maxResultsOf(input);
  const token = optionalString(input, "nextToken");
  let start = 0;
  if (token !== undefined) {
    let key: string;
    try {
      key = JSON.parse(Buffer.from(token, "base64url").toString("utf8")).from;
    } catch {
      throw new SfnApiError("InvalidToken", `Invalid Token: '${token}'`);
    }
    start = items.findIndex((item) => keyOf(item) === key);
    if (start < 0) throw new SfnApiError("InvalidToken", `Invalid Token: '${token}' (its page is gone)`);
  }
  const page = items.slice(start, start + size);
  const next = items[start + size];
  return next === undefined ? { page } : { page, nextToken: Buffer.from(JSON.stringify({ from: keyOf(next) })).toString("base64url") };
}
