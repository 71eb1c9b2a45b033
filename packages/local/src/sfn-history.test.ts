import { describe, expect, it } from "vitest";
import { HistoryTranslator, taskResource } from "./sfn-history";

/** The interpreter's events as AWS's history names them. */
describe("an execution's events as GetExecutionHistory shows them", () => {
  const translator = () => new HistoryTranslator({ Validate: "arn:aws:states:::lambda:invoke", Send: "arn:aws:states:::aws-sdk:sqs:sendMessage" });
  const state = (name: string, type: string, data: object = {}) => ({ state: { name, type, input: { a: 1 }, ...data }, timestamp: 1 });

  it("names a Task's work as AWS does: entered, scheduled, started, succeeded, exited", () => {
    // Arrange
    const history = translator();

    // Act
    const types = [
      ...history.translate({ type: "StateEntered", ...state("Validate", "Task") }),
      ...history.translate({ type: "StateExited", ...state("Validate", "Task", { output: { ok: true } }) }),
    ].map((event) => event.type);

    // Assert
    expect(types).toEqual(["TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited"]);
  });

  it("shows a retry as the Task scheduled again, and a caught failure without a success", () => {
    // Arrange
    const history = translator();
    history.translate({ type: "StateEntered", ...state("Send", "Task") });

    // Act
    const failed = history.translate({ type: "StateFailed", ...state("Send", "Task"), Error: "Sqs.X", Cause: "boom" });
    const retried = history.translate({ type: "StateRetried", ...state("Send", "Task"), retry: { attempt: 1 } });
    history.translate({ type: "StateFailed", ...state("Send", "Task"), Error: "Sqs.X", Cause: "boom" });
    const caught = history.translate({ type: "StateCaught", ...state("Send", "Task") });
    const exited = history.translate({ type: "StateExited", ...state("Send", "Task", { output: {} }) });

    // Assert
    expect(failed).toMatchObject([{ type: "TaskFailed", taskFailedEventDetails: { resourceType: "aws-sdk:sqs", resource: "sendMessage", error: "Sqs.X", cause: "boom" } }]);
    expect(retried.map((event) => event.type)).toEqual(["TaskScheduled", "TaskStarted"]);
    expect(caught).toEqual([]);
    expect(exited.map((event) => event.type)).toEqual(["TaskStateExited"]);
  });

  it("names other states by their type, and Map iterations by their Map", () => {
    // Arrange
    const history = translator();

    // Act
    const choice = history.translate({ type: "StateEntered", ...state("AnyMessages", "Choice") });
    const iteration = history.translate({ type: "MapIterationStarted", parentState: { name: "ValidateBatch", type: "Map" }, index: 3, timestamp: 1 });

    // Assert
    expect(choice).toMatchObject([{ type: "ChoiceStateEntered", stateEnteredEventDetails: { name: "AnyMessages", input: '{"a":1}' } }]);
    expect(iteration).toMatchObject([{ type: "MapIterationStarted", mapIterationStartedEventDetails: { name: "ValidateBatch", index: 3 } }]);
    expect(taskResource("arn:aws:lambda:us-east-1:123456789012:function:x")).toEqual({ resourceType: "lambda", resource: "invoke" });
  });
});
