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
  /** DynamoDB on-demand: per write request unit (an item up to 1 KB; $0.625 per 1M). The drain lease only. */
  dynamoDbWriteRequest: 0.625 / 1_000_000,
} as const;

/** Lease writes of a drain that finds the lease free: TakeLease's put and ReleaseLease's delete. */
export const LEASE_WRITES_PER_DRAIN = 2;

export interface Usage {
  stateTransitions: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  sqsRequests: number;
  /** DynamoDB write request units (the lease); none when left out. */
  dynamoDbWrites?: number;
}

export function costOf(usage: Usage): number {
  return (
    usage.stateTransitions * AWS_PRICES.stepFunctionsTransition +
    usage.lambdaInvocations * AWS_PRICES.lambdaRequest +
    usage.lambdaGbSeconds * AWS_PRICES.lambdaGbSecondArm +
    usage.sqsRequests * AWS_PRICES.sqsRequest +
    (usage.dynamoDbWrites ?? 0) * AWS_PRICES.dynamoDbWriteRequest
  );
}

/** The stack's CloudWatch alarms (`stacks/Workflow.ts`): each costs {@link AWS_PRICES.cloudWatchAlarmMonth}. */
export const ALARM_COUNT = 5;

/**
 * An idle month: the schedule starts an execution every `scheduleMinutes`; each finds the queue empty with one
 * GetQueueAttributes (PeekQueue) and takes `emptyExecutionTransitions` transitions, no receive, no Lambda and no lease
 * write. Plus `alarms` alarms (pass 0 for the cost before alarms).
 */
export function idleMonthCost(scheduleMinutes: number, emptyExecutionTransitions: number, alarms = ALARM_COUNT): number {
  const executions = (30 * 24 * 60) / scheduleMinutes;
  return (
    costOf({ stateTransitions: executions * emptyExecutionTransitions, lambdaInvocations: 0, lambdaGbSeconds: 0, sqsRequests: executions }) +
    alarms * AWS_PRICES.cloudWatchAlarmMonth
  );
}

/**
 * What AWS itself adds, for an estimate of deployed throughput. AWS publishes quotas but no latency figures for
 * Standard state transitions or warm Lambda invokes, so these are assumptions, named here and printed with the
 * estimate: a conservative 50 ms per state transition on a round's critical path, 20 ms of invoke overhead per
 * warm Lambda call (arm64, 256 MB), 20 ms per SQS call from the same region, and 300 ms for Airtable to answer.
 */
export const AWS_LATENCY_ASSUMPTIONS = {
  stateTransitionMs: 50,
  lambdaInvokeMs: 20,
  sqsCallMs: 20,
  airtableAnswerMs: 300,
  /** States on a round's critical path: ReceiveRound, ReceiveBatch, AnyReceived, ValidateBatch, Validate, AnyMessages,
   * CollectRound, WriteToAirtable, IsRetryDue, DeleteWrittenMessages, AnyUnwritable, CountRound, KeepDraining. */
  criticalPathStates: 13,
  /** Lambda calls on it (Validate, WriteToAirtable, DeleteWrittenMessages) and SQS calls (receive, delete batch). */
  lambdaCalls: 3,
  sqsCalls: 2,
  recordsPerRound: 30,
} as const;

/**
 * Deployed throughput of one drain: a round's own time (its critical path, Airtable's answer once as its requests
 * overlap), or what the share allows when Airtable is slower than the round (a request holds its place in the window
 * from its send to one second after its answer), whichever is slower.
 */
export function deployedThroughput({ share, recordsPerRequest }: { share: number; recordsPerRequest: number }) {
  const a = AWS_LATENCY_ASSUMPTIONS;
  const roundMs = a.criticalPathStates * a.stateTransitionMs + a.lambdaCalls * a.lambdaInvokeMs + a.sqsCalls * a.sqsCallMs + a.airtableAnswerMs;
  const requestsPerRound = a.recordsPerRound / recordsPerRequest;
  const shareRequestsPerSecond = share / (1 + a.airtableAnswerMs / 1000);
  const roundSeconds = Math.max(roundMs / 1000, requestsPerRound / shareRequestsPerSecond);
  return {
    recordsPerSecond: Number((a.recordsPerRound / roundSeconds).toFixed(1)),
    roundSeconds: Number(roundSeconds.toFixed(2)),
    explanation: `${a.criticalPathStates} transitions x ${a.stateTransitionMs} ms + ${a.lambdaCalls} invokes x ${a.lambdaInvokeMs} ms + ${a.sqsCalls} SQS calls x ${a.sqsCallMs} ms + Airtable ${a.airtableAnswerMs} ms; the share allows ${shareRequestsPerSecond.toFixed(2)} requests/s at that answer time`,
    assumptions: a,
  };
}
