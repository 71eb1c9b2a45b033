/**
 * An execution's history as Step Functions' `GetExecutionHistory` shows it, made from aws-local-stepfunctions' raw
 * event log. Pure. The interpreter's events name what happened (a state entered, failed, retried, caught, exited);
 * AWS names them by state type (`TaskStateEntered`, `ChoiceStateExited`, …) and shows a Task's work as
 * `TaskScheduled` / `TaskStarted` / `TaskSucceeded` or `TaskFailed`, a retry as one more `TaskScheduled` (it has no
 * retry event), a Catch as nothing of its own.
 */

/** One event as the API returns it (`HistoryEvent` of `@aws-sdk/client-sfn`), its timestamp in epoch ms. */
export interface SfnHistoryEvent {
  id: number;
  previousEventId: number;
  /** Epoch ms (the wire carries epoch seconds). */
  timestamp: number;
  type: string;
  [details: `${string}EventDetails`]: Record<string, unknown> | undefined;
}

/** An event before it is numbered. */
export type UnnumberedEvent = Omit<SfnHistoryEvent, "id" | "previousEventId">;

/** A Task's `Resource` as the history names it: `lambda` / `invoke`, `aws-sdk:sqs` / `sendMessage`, … */
export function taskResource(resource: string | undefined): { resourceType: string; resource: string } {
  const integration = /^arn:aws:states:::(.+):([^:]+)$/.exec(resource ?? "");
  if (integration) return { resourceType: integration[1]!, resource: integration[2]! };
  if (/^arn:aws:lambda:/.test(resource ?? "")) return { resourceType: "lambda", resource: "invoke" };
  return { resourceType: "unknown", resource: resource ?? "" };
}

/** Step Functions' state types, as the event names spell them. */
const STATE_TYPE_NAMES: Record<string, string> = {
  Task: "Task",
  Choice: "Choice",
  Map: "Map",
  Pass: "Pass",
  Wait: "Wait",
  Succeed: "Succeed",
  Fail: "Fail",
  Parallel: "Parallel",
};

const json = (value: unknown) => JSON.stringify(value ?? null);
const causeText = (cause: unknown) => (typeof cause === "string" ? cause : cause === undefined ? "" : JSON.stringify(cause));

/**
 * Translates one execution's raw events, in order, to AWS's. Keeps a little state: which Task entries failed and
 * were caught (their exit is no `TaskSucceeded`).
 */
export class HistoryTranslator {
  /** Caught failures not yet exited, by state name. */
  readonly #caught = new Map<string, number>();

  constructor(
    /** Each Task state's `Resource`, by state name (inside Maps too). */
    private readonly resources: Readonly<Record<string, string | undefined>>,
    private readonly region = "us-east-1",
    private readonly roleArn = "arn:aws:iam::123456789012:role/local-fundraise-sync-DrainDonations",
  ) {}

  translate(raw: unknown): UnnumberedEvent[] {
    const event = (raw ?? {}) as Record<string, any>;
    const timestamp = Number(event.timestamp ?? Date.now());
    const one = (type: string, details?: [string, Record<string, unknown>]): UnnumberedEvent =>
      (details ? { timestamp, type, [details[0]]: details[1] } : { timestamp, type }) as UnnumberedEvent;
    const stateName = String(event.state?.name ?? "");
    const stateType = STATE_TYPE_NAMES[String(event.state?.type ?? "")] ?? "Pass";
    const task = () => taskResource(this.resources[stateName]);
    switch (event.type) {
      case "ExecutionStarted":
        return [one("ExecutionStarted", ["executionStartedEventDetails", { input: json(event.input), inputDetails: { truncated: false }, roleArn: this.roleArn }])];
      case "ExecutionSucceeded":
        return [one("ExecutionSucceeded", ["executionSucceededEventDetails", { output: json(event.output), outputDetails: { truncated: false } }])];
      case "ExecutionFailed":
        return [one("ExecutionFailed", ["executionFailedEventDetails", { error: String(event.Error ?? "States.Runtime"), cause: causeText(event.Cause) }])];
      case "ExecutionAborted":
        return [one("ExecutionAborted", ["executionAbortedEventDetails", {}])];
      case "ExecutionTimeout":
        return [one("ExecutionTimedOut", ["executionTimedOutEventDetails", {}])];
      case "StateEntered": {
        const entered = one(`${stateType}StateEntered`, ["stateEnteredEventDetails", { name: stateName, input: json(event.state.input), inputDetails: { truncated: false } }]);
        if (stateType !== "Task") return [entered];
        return [entered, ...this.#scheduled(one, event.state.input, task())];
      }
      case "StateRetried":
        // AWS shows a retry as the Task scheduled again.
        return stateType === "Task" ? this.#scheduled(one, event.state.input, task()) : [];
      case "StateFailed": {
        const error = String(event.Error ?? "States.TaskFailed");
        const cause = causeText(event.Cause);
        if (stateType === "Task") return [one("TaskFailed", ["taskFailedEventDetails", { ...task(), error, cause }])];
        if (stateType === "Map") return [one("MapStateFailed")];
        return [];
      }
      case "StateCaught":
        this.#caught.set(stateName, (this.#caught.get(stateName) ?? 0) + 1);
        return [];
      case "StateExited": {
        const exited = one(`${stateType}StateExited`, ["stateExitedEventDetails", { name: stateName, output: json(event.state.output), outputDetails: { truncated: false } }]);
        if (stateType === "Map") return [one("MapStateSucceeded"), exited];
        if (stateType !== "Task") return [exited];
        const caught = this.#caught.get(stateName) ?? 0;
        if (caught > 0) {
          this.#caught.set(stateName, caught - 1);
          return [exited];
        }
        return [one("TaskSucceeded", ["taskSucceededEventDetails", { ...task(), output: json(event.state.output), outputDetails: { truncated: false } }]), exited];
      }
      case "MapIterationStarted":
      case "MapIterationSucceeded":
      case "MapIterationFailed": {
        const key = `mapIteration${event.type.slice("MapIteration".length)}EventDetails`;
        return [one(event.type, [key, { name: String(event.parentState?.name ?? ""), index: Number(event.index ?? 0) }])];
      }
      default:
        return [];
    }
  }

  #scheduled(one: (type: string, details?: [string, Record<string, unknown>]) => UnnumberedEvent, input: unknown, resource: ReturnType<typeof taskResource>) {
    return [
      one("TaskScheduled", ["taskScheduledEventDetails", { ...resource, region: this.region, parameters: json(input) }]),
      one("TaskStarted", ["taskStartedEventDetails", resource]),
    ];
  }
}
