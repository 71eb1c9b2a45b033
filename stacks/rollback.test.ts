import { describe, expect, inject, it } from "vitest";
import { explicitNameOf } from "./aws-requests";

type Template = Record<string, any>;
type Resource = { Type: string; Properties?: Record<string, unknown>; DeletionPolicy?: string };

const workflow = inject("workflow");

/**
 * The resources of a template that a rolled-back first create would leave behind under a name the retry needs
 * again: a fixed physical name (`QueueName`, `LogGroupName`, … `Name`) with `DeletionPolicy: Retain`. CloudFormation
 * deletes what it created when a create rolls back, except what `Retain` keeps; `RetainExceptOnCreate` (CDK's
 * `RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE`) deletes it then too, and `Delete` or `Snapshot` leave no resource. An
 * `UpdateReplacePolicy` plays no part in a create.
 */
function survivorsOfRolledBackCreate(template: Template): string[] {
  return Object.entries(template.Resources as Record<string, Resource>)
    .filter(([, resource]) => explicitNameOf(resource) !== undefined && resource.DeletionPolicy === "Retain")
    .map(([id, resource]) => `${resource.Type} ${id}`);
}

describe("a failed first deploy can be retried", () => {
  const resources = workflow.template.Resources as Record<string, Resource>;
  const named = Object.entries(resources).filter(([, resource]) => explicitNameOf(resource) !== undefined);

  it("finds the fixed names: the queues, the topic, the state machine, its log group and SST's SSM parameters", () => {
    // Assert: a check that found no named resource would pass vacuously
    for (const type of ["AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::StepFunctions::StateMachine", "AWS::Logs::LogGroup", "AWS::SSM::Parameter"]) {
      expect(named.some(([, r]) => r.Type === type), type).toBe(true);
    }
  });

  it("leaves nothing with a fixed name behind when a first create rolls back", () => {
    // Assert
    expect(survivorsOfRolledBackCreate(workflow.template)).toEqual([]);
  });

  it("still keeps the drain's logs when the stack is deleted or the group replaced", () => {
    // Arrange
    const [logGroup] = named.filter(([, r]) => r.Type === "AWS::Logs::LogGroup").map(([, r]) => r as Resource & { UpdateReplacePolicy?: string });

    // Assert
    expect(logGroup).toMatchObject({ DeletionPolicy: "RetainExceptOnCreate", UpdateReplacePolicy: "Retain" });
  });

  it("catches CDK's default for a log group (Retain) on a resource with a fixed name", () => {
    // Arrange: the state machine's log group as it was
    const broken = structuredClone(workflow.template);
    const [id] = named.find(([, r]) => r.Type === "AWS::Logs::LogGroup")!;
    broken.Resources[id].DeletionPolicy = "Retain";

    // Assert
    expect(survivorsOfRolledBackCreate(broken)).toEqual([`AWS::Logs::LogGroup ${id}`]);
  });
});
