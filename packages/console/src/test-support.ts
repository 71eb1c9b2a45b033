import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { DeadLetterAttribute, ErrorName } from "@fundraise-sync/core";
import type { LocalPipeline } from "@fundraise-sync/local/pipeline";
import type { AslDefinition } from "./graph";

/**
 * Test support: every state of a definition that has a Retry, mapped to `ms`, for aws-local-stepfunctions'
 * `retryIntervalOverrides` (read from the definition, so it follows the state machine as it changes).
 */
export function retryingStates(definition: AslDefinition, ms: number): Record<string, number> {
  const found: Record<string, number> = {};
  const visit = (scope: AslDefinition) => {
    for (const [name, state] of Object.entries(scope.States)) {
      if ((state.Retry ?? []).length > 0) found[name] = ms;
      for (const nested of [state.ItemProcessor ?? state.Iterator, ...(state.Branches ?? [])]) if (nested) visit(nested);
    }
  };
  visit(definition);
  return found;
}

/** Every Wait state of a definition mapped to `ms`, for aws-local-stepfunctions' `waitTimeOverrides`. */
export function waitingStates(definition: AslDefinition, ms: number): Record<string, number> {
  const found: Record<string, number> = {};
  const visit = (scope: AslDefinition) => {
    for (const [name, state] of Object.entries(scope.States)) {
      if (state.Type === "Wait") found[name] = ms;
      for (const nested of [state.ItemProcessor ?? state.Iterator, ...(state.Branches ?? [])]) if (nested) visit(nested);
    }
  };
  visit(definition);
  return found;
}

/** Puts one dead letter in the pipeline's DLQ, as the state machine writes an invalid message; returns its MessageId. */
export async function sendInvalidDeadLetter(pipeline: LocalPipeline): Promise<string> {
  const { MessageId } = await pipeline.sqs.send(
    new SendMessageCommand({
      QueueUrl: pipeline.queueUrls.deadLetter,
      MessageBody: '{"Id":"not-a-guid"}',
      MessageAttributes: { [DeadLetterAttribute.ErrorName]: { DataType: "String", StringValue: ErrorName.InvalidDonationEvent } },
    }),
  );
  return MessageId!;
}
