import type { Round } from "./write-round";

/**
 * The metric WriteToAirtable publishes after each attempt that sent a request, and the stack's
 * `AirtableFailingAlarm` watches: 1 when the attempt met a failing base (5xx, timeout, refused connection, 429), 0 when
 * the base answered. Published as a CloudWatch embedded-metric-format log line: Lambda's log stream carries it, so the
 * writer needs no CloudWatch permission and makes no extra call.
 */
export const AirtableHealthMetric = {
  namespace: "FundraiseSync",
  name: "AirtableFailing",
  /** The stage the function runs in (SST sets `SST_STAGE`), so each stage has its own alarm. */
  dimension: "Stage",
} as const;

/**
 * The embedded-metric-format record for an attempt, or undefined when it sent nothing (nothing was learnt about the
 * base). `sentBefore` is the round's request count before the attempt.
 */
export function airtableHealthRecord(round: Round, sentBefore: number, stage: string, now = Date.now()): Record<string, unknown> | undefined {
  if (round.requests <= sentBefore) return undefined;
  const { namespace, name, dimension } = AirtableHealthMetric;
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [[dimension]], Metrics: [{ Name: name, Unit: "Count" }] }],
    },
    [dimension]: stage,
    [name]: round.circuit.failures > 0 ? 1 : 0,
    ...(round.circuit.failingSince ? { failingSince: round.circuit.failingSince } : {}),
  };
}
