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
