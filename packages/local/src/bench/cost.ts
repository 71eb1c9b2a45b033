/**
 * AWS's published on-demand prices (us-east-1, 2026; free tiers ignored), and what the pipeline costs from counted
 * usage. Kept in one place so the benchmark and the README agree.
 */
export const AWS_PRICES = {
  /** Step Functions Standard: per state transition ($0.025 per 1,000). */
  stepFunctionsTransition: 0.025 / 1000,
  /** Lambda: per request ($0.20 per 1M). */
  lambdaRequest: 0.2 / 1_000_000,
  /** Lambda on arm64: per GB-second. */
  lambdaGbSecondArm: 0.0000133334,
  /** SQS Standard: per request ($0.40 per 1M; a batch of up to 10 is one request). */
  sqsRequest: 0.4 / 1_000_000,
  /** CloudWatch: per standard alarm per month. */
  cloudWatchAlarmMonth: 0.1,
} as const;

export interface Usage {
  stateTransitions: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  sqsRequests: number;
}

export function costOf(usage: Usage): number {
  return (
    usage.stateTransitions * AWS_PRICES.stepFunctionsTransition +
    usage.lambdaInvocations * AWS_PRICES.lambdaRequest +
    usage.lambdaGbSeconds * AWS_PRICES.lambdaGbSecondArm +
    usage.sqsRequests * AWS_PRICES.sqsRequest
  );
}

/**
 * An idle month: the schedule starts an execution every `scheduleMinutes`; each finds the queue empty and takes
 * `emptyExecutionTransitions` transitions, one ListExecutions call and one (long-poll) receive. Plus the two alarms.
 */
export function idleMonthCost(scheduleMinutes: number, emptyExecutionTransitions: number): number {
  const executions = (30 * 24 * 60) / scheduleMinutes;
  return (
    costOf({ stateTransitions: executions * emptyExecutionTransitions, lambdaInvocations: 0, lambdaGbSeconds: 0, sqsRequests: executions }) +
    2 * AWS_PRICES.cloudWatchAlarmMonth
  );
}
