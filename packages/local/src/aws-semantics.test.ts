import { CreateQueueCommand, SQSClient, SendMessageCommand } from "@aws-sdk/client-sqs";
import { StateMachine } from "aws-local-stepfunctions";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  AWS_SEMANTICS,
  ExecutionRegistry,
  LAMBDA_UNKNOWN,
  SANDBOX_TIMEDOUT,
  type AwsSemanticsOptions,
  type TaskHandler,
  sdkIntegrationErrorName,
} from "./aws-semantics";
import { type LocalSqsServer, startLocalSqs } from "./sqs-server";
import { LOCAL_STATE_MACHINE_ARN, LocalWorkflow } from "./workflow";

/**
 * Each AWS behaviour of `aws-semantics.ts`, proven with the real interpreter (patched as `patches/` says) running
 * tiny definitions, most of them through `LocalWorkflow` itself: what the drain sees locally is what AWS does.
 */

type Definition = { StartAt: string; States: Record<string, unknown> };
const FUNCTION_ARN = (name: string) => `arn:aws:lambda:us-east-1:123456789012:function:${name}`;
const caught = { ErrorEquals: ["States.ALL"], ResultPath: "$.failure", Next: "Caught" };
const CAUGHT = { Type: "Pass", End: true };

/** A local runtime running `definition`, with functions by name (and their timeouts, seconds), and its output. */
async function runLocally(
  definition: Definition,
  options: { handlers?: Record<string, TaskHandler>; functionTimeouts?: Record<string, number>; semantics?: Partial<AwsSemanticsOptions>; sqs?: SQSClient } = {},
) {
  const resources = Object.fromEntries(
    Object.entries(options.functionTimeouts ?? {}).map(([name, seconds]) => [`${name}Fn`, { Type: "AWS::Lambda::Function", Properties: { Timeout: seconds } }]),
  );
  const constructIds = Object.fromEntries(Object.keys(options.functionTimeouts ?? {}).map((name) => [`${name}Fn`, name]));
  const sqs = options.sqs ?? new SQSClient({ region: "us-east-1", endpoint: "http://127.0.0.1:9", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
  const workflow = new LocalWorkflow({
    workflow: { definition: definition as never, template: { Resources: resources }, constructIds },
    sqs,
    queueUrls: {},
    handlers: options.handlers,
    semantics: options.semantics,
  });
  return { workflow, ...(await executeWithOutput(workflow)) };
}

async function executeWithOutput(workflow: LocalWorkflow) {
  let output: any;
  const stop = workflow.observe({
    event: (_arn, event) => {
      const { type, output: value } = event as { type: string; output?: unknown };
      if (type === "ExecutionSucceeded") output = value;
    },
  });
  try {
    const summary = await workflow.execute();
    return { summary, output };
  } finally {
    stop();
  }
}

class InvalidDonationEventError extends Error {
  override readonly name = "InvalidDonationEventError";
}

describe("the list of AWS semantics", () => {
  it("names an AWS documentation page and where it is applied for every behaviour", () => {
    expect(AWS_SEMANTICS.length).toBeGreaterThanOrEqual(7);
    for (const semantic of AWS_SEMANTICS) {
      expect(semantic.source.url).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
      expect(semantic.source.title).not.toBe("");
      expect(semantic.appliedBy).not.toBe("");
    }
  });
});

describe("Wait on a timestamp (Wait workflow state: milliseconds truncated)", () => {
  beforeAll(() => {
    // The first StateMachine loads the interpreter's validator (seconds): not inside the timed wait
    new StateMachine({ StartAt: "Done", States: { Done: { Type: "Pass", End: true } } } as never);
  });

  it.each(["Timestamp", "TimestampPath"])("%s 0.7 s past a whole second ends at that second", async (field) => {
    // Arrange: a whole second at least 1 s ahead, and a timestamp 700 ms after it
    const wholeSecond = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    const at = new Date(wholeSecond + 700).toISOString();
    const wait = field === "Timestamp" ? { Type: "Wait", Timestamp: at, End: true } : { Type: "Wait", TimestampPath: "$.at", End: true };
    const machine = new StateMachine({ StartAt: "Wait", States: { Wait: wait } } as never);

    // Act
    await machine.run({ at } as never).result;
    const endedAt = Date.now();

    // Assert: AWS wakes at the whole second; the unpatched interpreter at +700 ms
    expect(endedAt).toBeGreaterThanOrEqual(wholeSecond - 5);
    expect(endedAt).toBeLessThan(wholeSecond + 350);
  });
});

describe("a Choice's type test with false (Choice workflow state)", () => {
  it.each([
    ["IsNull", { held: { pending: [] } }, { held: null }],
    ["IsPresent", {}, { held: 1 }],
    ["IsString", { held: 1 }, { held: "x" }],
  ])("%s: false matches a value that fails the test, and only that", async (test, matching, other) => {
    // Arrange
    const machine = new StateMachine({
      StartAt: "Test",
      States: {
        Test: { Type: "Choice", Choices: [{ Variable: "$.held", [test]: false, Next: "Matched" }], Default: "Other" },
        Matched: { Type: "Pass", Result: "matched", End: true },
        Other: { Type: "Pass", Result: "other", End: true },
      },
    } as never);

    // Act
    const results = [await machine.run(matching as never).result, await machine.run(other as never).result];

    // Assert: the unpatched interpreter answers "other" twice
    expect(results).toEqual(["matched", "other"]);
  });
});

describe("a Task's own TimeoutSeconds (States.Timeout, empty Cause)", () => {
  const hangs: TaskHandler = () => new Promise((resolve) => setTimeout(resolve, 2500));
  const definition = (withCatch: boolean): Definition => ({
    StartAt: "Slow",
    States: {
      Slow: {
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke",
        Parameters: { FunctionName: FUNCTION_ARN("Slow"), "Payload.$": "$" },
        TimeoutSeconds: 1,
        ...(withCatch ? { Catch: [caught], Next: "Done" } : { End: true }),
      },
      ...(withCatch ? { Done: { Type: "Pass", End: true }, Caught: CAUGHT } : {}),
    },
  });

  it("is caught as States.Timeout with Cause \"\"", async () => {
    // Act
    const { output } = await runLocally(definition(true), { handlers: { Slow: hangs }, functionTimeouts: { Slow: 10 } });

    // Assert
    expect(output.failure).toEqual({ Error: "States.Timeout", Cause: "" });
  });

  it("fails an execution with States.Timeout and Cause \"\" when nothing catches it", async () => {
    // Act
    const { summary } = await runLocally(definition(false), { handlers: { Slow: hangs }, functionTimeouts: { Slow: 10 } });

    // Assert
    expect(summary.status).toBe("FAILED");
    expect(summary.error).toEqual({ name: "States.Timeout", cause: "" });
  });
});

describe("a Task without TimeoutSeconds (no timeout of its own on AWS; the interpreter's default was 60 s)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("still runs after 61 s", async () => {
    // Arrange: a task that answers when the test says so, under a clock the test moves
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    let answer: (value: unknown) => void = () => undefined;
    const machine = new StateMachine({ StartAt: "Long", States: { Long: { Type: "Task", Resource: "arn:aws:states:::aws-sdk:sqs:receiveMessage", End: true } } } as never);
    const execution = machine.run({} as never, {
      overrides: { taskResourceLocalHandlers: { Long: () => new Promise((resolve) => (answer = resolve as (value: unknown) => void)) } },
    });
    let settled = false;
    const result = execution.result.then(
      (value) => ((settled = true), value),
      (error) => ((settled = true), Promise.reject(error)),
    );

    // Act
    await vi.advanceTimersByTimeAsync(61_000);
    const settledAfter61s = settled;
    answer({ done: true });

    // Assert
    expect(settledAfter61s).toBe(false);
    await expect(result).resolves.toEqual({ done: true });
  });
});

describe("a Lambda function's error (Error = errorType, Cause = Lambda's JSON)", () => {
  const throwing = (error: unknown): TaskHandler => async () => {
    throw error;
  };
  const definition = (withCatch: boolean): Definition => ({
    StartAt: "Fn",
    States: {
      Fn: {
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke",
        Parameters: { FunctionName: FUNCTION_ARN("Fn"), "Payload.$": "$" },
        ...(withCatch ? { Catch: [caught], Next: "Done" } : { End: true }),
      },
      ...(withCatch ? { Done: { Type: "Pass", End: true }, Caught: CAUGHT } : {}),
    },
  });

  it.each([
    ["a named error class", new InvalidDonationEventError('DonationAmount: must be greater than 0, got -5; Id: "x" is not a UUID'), "InvalidDonationEventError"],
    ["a plain Error", new Error("boom"), "Error"],
    ["a runtime failure", Object.assign(new Error("Cannot find module 'airtable'"), { name: "Runtime.ImportModuleError" }), "Runtime.ImportModuleError"],
  ])("%s is caught with its name and a Cause that parses as JSON with errorMessage", async (_case, thrown, errorType) => {
    // Act
    const { output } = await runLocally(definition(true), { handlers: { Fn: throwing(thrown) } });

    // Assert
    expect(output.failure.Error).toBe(errorType);
    const cause = JSON.parse(output.failure.Cause);
    expect(cause).toMatchObject({ errorType, errorMessage: (thrown as Error).message });
    expect(cause.trace[0]).toBe(`${errorType}: ${(thrown as Error).message}`);
  });

  it("fails an execution with the same Error and Cause when nothing catches it", async () => {
    // Act
    const { summary } = await runLocally(definition(false), { handlers: { Fn: throwing(new InvalidDonationEventError("bad")) } });

    // Assert
    expect(summary.error?.name).toBe("InvalidDonationEventError");
    expect(JSON.parse(summary.error!.cause)).toMatchObject({ errorType: "InvalidDonationEventError", errorMessage: "bad" });
  });

  it("is a bare message in the unpatched way: the interpreter's Catch reads `message` (why the shaping exists)", async () => {
    // Arrange: the interpreter alone, a task that throws a named error
    const machine = new StateMachine(definition(true) as never);
    const error = Object.assign(new Error("bad"), { name: "InvalidDonationEventError" });

    // Act
    const output = (await machine.run({} as never, { overrides: { taskResourceLocalHandlers: { Fn: async () => Promise.reject(error) } } }).result) as any;

    // Assert
    expect(output.failure).toEqual({ Error: "InvalidDonationEventError", Cause: "bad" });
  });
});

describe("a function that runs past its timeout (Sandbox.Timedout, or Lambda.Unknown)", () => {
  const sleeps: TaskHandler = () => new Promise((resolve) => setTimeout(resolve, 1600));
  const definition: Definition = {
    StartAt: "Fn",
    States: {
      Fn: {
        Type: "Task",
        Resource: "arn:aws:states:::lambda:invoke",
        Parameters: { FunctionName: FUNCTION_ARN("Fn"), "Payload.$": "$" },
        TimeoutSeconds: 6,
        Retry: [{ ErrorEquals: [SANDBOX_TIMEDOUT], MaxAttempts: 1, IntervalSeconds: 1 }],
        Catch: [caught],
        End: true,
      },
      Caught: CAUGHT,
    },
  };

  it("is Sandbox.Timedout by default, with Lambda's JSON as Cause", async () => {
    // Act
    const { output, summary } = await runLocally(definition, { handlers: { Fn: sleeps }, functionTimeouts: { Fn: 1 } });

    // Assert: retried once (the retrier names it), then caught
    expect(summary.retried).toBe(1);
    expect(output.failure.Error).toBe(SANDBOX_TIMEDOUT);
    expect(JSON.parse(output.failure.Cause)).toMatchObject({ errorType: SANDBOX_TIMEDOUT, errorMessage: expect.stringMatching(/Task timed out after 1\.00 seconds$/) });
  });

  it("is Lambda.Unknown when a test asks for it, which a retrier on Sandbox.Timedout alone does not retry", async () => {
    // Act
    const { output, summary } = await runLocally(definition, {
      handlers: { Fn: sleeps },
      functionTimeouts: { Fn: 1 },
      semantics: { functionTimeoutError: LAMBDA_UNKNOWN },
    });

    // Assert
    expect(summary.retried).toBe(0);
    expect(output.failure.Error).toBe(LAMBDA_UNKNOWN);
    expect(output.failure.Cause).toMatch(/^The cause could not be determined because Lambda did not return an error type\. Returned payload: \{"errorMessage":".*Task timed out after 1\.00 seconds"\}$/);
  });
});

describe("AWS SDK integration errors (Sqs.<Name>Exception) against the local SQS server", () => {
  let server: LocalSqsServer;
  let sqs: SQSClient;
  beforeAll(async () => {
    server = await startLocalSqs({ port: 0 });
    sqs = new SQSClient({ region: "us-east-1", endpoint: server.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
  });
  afterAll(async () => {
    sqs?.destroy();
    await server?.close();
  });

  const sendTo = (queueUrl: string): Definition => ({
    StartAt: "Send",
    States: {
      Send: {
        Type: "Task",
        Resource: "arn:aws:states:::aws-sdk:sqs:sendMessage",
        Parameters: { QueueUrl: queueUrl, MessageBody: "hello" },
        Catch: [
          { ErrorEquals: ["Sqs.QueueDoesNotExistException"], ResultPath: "$.failure", Next: "NoSuchQueue" },
          caught,
        ],
        End: true,
      },
      NoSuchQueue: { Type: "Pass", Result: "matched Sqs.QueueDoesNotExistException", ResultPath: "$.matched", End: true },
      Caught: CAUGHT,
    },
  });

  it("the SDK calls it QueueDoesNotExist; a Catch on Sqs.QueueDoesNotExistException matches it", async () => {
    // Arrange: what the SDK itself throws for a queue that is not there
    const missingUrl = `${server.endpoint}/000000000000/no-such-queue`;
    const sdkName = await sqs.send(new SendMessageCommand({ QueueUrl: missingUrl, MessageBody: "x" })).then(
      () => "sent",
      (error: Error) => error.name,
    );

    // Act
    const { output } = await runLocally(sendTo(missingUrl), { sqs });

    // Assert
    expect(sdkName).toBe("QueueDoesNotExist");
    expect(output.matched).toBe("matched Sqs.QueueDoesNotExistException");
    expect(output.failure.Error).toBe("Sqs.QueueDoesNotExistException");
    expect(output.failure.Cause).toMatch(/\(Service: Sqs, Status Code: 400, Request ID: [^)]+\)$/);
  });

  it("a call that succeeds returns the response without the SDK's $metadata", async () => {
    // Arrange
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "semantics-ok" }));

    // Act
    const definition = sendTo(QueueUrl!);
    (definition.States.Send as Record<string, unknown>).ResultPath = "$.sent";
    const { output } = await runLocally(definition, { sqs });

    // Assert
    expect(output.sent.MessageId).toEqual(expect.any(String));
    expect(output.sent).not.toHaveProperty("$metadata");
  });

  it("a call that never reaches the service is Sqs.SdkClientException", async () => {
    // Arrange: a client pointed at a port nothing listens on
    const unreachable = new SQSClient({ region: "us-east-1", endpoint: "http://127.0.0.1:9", maxAttempts: 1, credentials: { accessKeyId: "l", secretAccessKey: "l" } });

    // Act
    const { output } = await runLocally(sendTo("http://127.0.0.1:9/000000000000/q"), { sqs: unreachable });

    // Assert
    expect(output.failure.Error).toBe("Sqs.SdkClientException");
  });

  it.each([
    ["QueueDoesNotExist", "Sqs.QueueDoesNotExistException"],
    ["InvalidMessageContents", "Sqs.InvalidMessageContentsException"],
    ["ResourceNotFoundException", "Sqs.ResourceNotFoundException"],
    ["AWS.SimpleQueueService.NonExistentQueue", "Sqs.NonExistentQueueException"],
  ])("names the SDK's %s as %s", (sdkName, stepFunctionsName) => {
    expect(sdkIntegrationErrorName("Sqs", sdkName)).toBe(stepFunctionsName);
  });
});

describe("ListExecutions and DescribeExecution are eventually consistent (they lag)", () => {
  /** Lists the running executions, then describes itself (catching ExecutionDoesNotExist). */
  const listThenDescribeSelf: Definition = {
    StartAt: "List",
    States: {
      List: {
        Type: "Task",
        Resource: "arn:aws:states:::aws-sdk:sfn:listExecutions",
        Parameters: { "StateMachineArn.$": "$$.StateMachine.Id", StatusFilter: "RUNNING" },
        ResultSelector: { "running.$": "States.ArrayLength($.Executions)" },
        ResultPath: "$.list",
        Next: "DescribeSelf",
      },
      DescribeSelf: {
        Type: "Task",
        Resource: "arn:aws:states:::aws-sdk:sfn:describeExecution",
        Parameters: { "ExecutionArn.$": "$$.Execution.Id" },
        ResultSelector: { "status.$": "$.Status" },
        ResultPath: "$.self",
        Catch: [{ ErrorEquals: ["Sfn.ExecutionDoesNotExistException"], ResultPath: "$.selfFailure", Next: "Done" }],
        Next: "Done",
      },
      Done: { Type: "Pass", End: true },
    },
  };

  it("an execution started within the lag is neither listed nor described, by default", async () => {
    // Act
    const { output } = await runLocally(listThenDescribeSelf);

    // Assert
    expect(output.list.running).toBe(0);
    expect(output.selfFailure.Error).toBe("Sfn.ExecutionDoesNotExistException");
    expect(output.selfFailure.Cause).toContain("(Service: Sfn, Status Code: 400");
  });

  it("with the lags set to 0 (a consistent read) it sees itself running", async () => {
    // Act
    const { output } = await runLocally(listThenDescribeSelf, { semantics: { listExecutionsLagMs: 0, describeExecutionLagMs: 0 } });

    // Assert
    expect(output.list.running).toBe(1);
    expect(output.self).toEqual({ status: "RUNNING" });
  });

  it("lists and describes as of the lag ago: started, running, then stopped, each seen late", () => {
    // Arrange: a clock the test moves, a lag of 1 s
    let now = 1_000_000;
    const registry = new ExecutionRegistry({ listExecutionsLagMs: 1000, describeExecutionLagMs: 1000 }, () => now);
    const executionArn = `${LOCAL_STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:")}:one`;
    const list = () => registry.listExecutions({ StateMachineArn: LOCAL_STATE_MACHINE_ARN, StatusFilter: "RUNNING" }).Executions;
    const status = () => (registry.describeExecution({ ExecutionArn: executionArn }) as { Status: string }).Status;

    // Act & Assert
    registry.started({ executionArn, stateMachineArn: LOCAL_STATE_MACHINE_ARN, name: "one", input: {} });
    now += 999;
    expect(list()).toHaveLength(0);
    expect(() => registry.describeExecution({ ExecutionArn: executionArn })).toThrow(expect.objectContaining({ name: "Sfn.ExecutionDoesNotExistException" }));
    now += 1;
    expect(list()).toHaveLength(1);
    expect(status()).toBe("RUNNING");
    registry.stopped(executionArn, "SUCCEEDED");
    now += 999;
    expect(list()).toHaveLength(1); // stopped, still listed as running
    expect(status()).toBe("RUNNING");
    now += 1;
    expect(list()).toHaveLength(0);
    expect(status()).toBe("SUCCEEDED");
    expect(registry.runningNow()).toEqual([]);
  });

  it("two executions that overlap within the lag do not see each other", async () => {
    // Arrange: a slow first execution, a second started 100 ms later, a lag of 1 s
    const slow: Definition = {
      StartAt: "Pause",
      States: { Pause: { Type: "Wait", Seconds: 1, Next: "List" }, ...listThenDescribeSelf.States },
    };
    const sees = async (semantics: Partial<AwsSemanticsOptions>) => {
      const shared = new LocalWorkflow({
        workflow: { definition: slow as never, template: { Resources: {} }, constructIds: {} },
        sqs: new SQSClient({ region: "us-east-1", endpoint: "http://127.0.0.1:9", credentials: { accessKeyId: "l", secretAccessKey: "l" } }),
        queueUrls: {},
        semantics,
      });
      const first = executeWithOutput(shared);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = await executeWithOutput(shared);
      return { first: (await first).output.list.running, second: second.output.list.running };
    };

    // Act
    const lagging = await sees({ listExecutionsLagMs: 1500 });
    const consistent = await sees({ listExecutionsLagMs: 0 });

    // Assert: lagging, each List (1 s in) sees only what started 1.5 s before it: nothing. Consistent, the first sees
    // both; the second (at 1.1 s) sees itself, the first having ended
    expect(lagging).toEqual({ first: 0, second: 0 });
    expect(consistent).toEqual({ first: 2, second: 1 });
  });
});
