/**
 * Lambda reports a function error as JSON `{"errorType","errorMessage","trace"}`; people want `errorMessage`.
 * Anything else (a States.* cause, plain text) is shown as is.
 */
export function readableCause(cause: string): string {
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (parsed && typeof parsed === "object" && typeof parsed.errorMessage === "string") return parsed.errorMessage;
  } catch {
    // not JSON: plain text
  }
  return cause;
}
