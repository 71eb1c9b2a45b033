/** How the local commands print what an execution did. */
import { readableCause } from "@fundraise-sync/local/lambda-cause";
import type { DrainSummary } from "@fundraise-sync/local/workflow";

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** True when an execution found nothing to do: `npm start` prints nothing for those. */
export function isIdle(summary: DrainSummary): boolean {
  return summary.status !== "FAILED" && summary.received === 0 && summary.deadLettered === 0 && summary.leftInQueue === 0;
}

/**
 * One line per execution, e.g.
 * `SUCCEEDED received 10, written 9 (1 updated), copies 0, retried 0, dead-lettered 1, left for redelivery 0,
 * transitions 87, 3.2 s`, followed by the error's name and cause for a failed execution.
 *
 * "left for redelivery" counts messages this execution could neither delete nor dead-letter (they come back after the
 * visibility timeout); it is not the backlog, which the progress line calls "backlog".
 */
export function summaryLine(summary: DrainSummary): string {
  const line =
    `${summary.status} received ${summary.received}, written ${summary.written} (${summary.updated} updated), ` +
    `copies ${summary.copiesInBatch}, retried ${summary.retried}, dead-lettered ${summary.deadLettered}, ` +
    `left for redelivery ${summary.leftInQueue}, transitions ${summary.stateTransitions}, ${seconds(summary.durationMs)}` +
    (summary.held > 0 ? `, ${summary.held} held while Airtable fails (since ${summary.airtableFailingSince?.slice(11, 19) ?? "?"} UTC), retrying in a new execution` : summary.continued ? ", continuing in a new execution" : "");
  return summary.error ? `${line}\n  ${failureLine(summary.error)}` : line;
}

/** While an execution runs: the queue's backlog (visible + in flight) and the records written so far. */
export function progressLine(backlog: number, writtenSoFar: number | undefined): string {
  return `draining… backlog ${backlog} (queued or in flight)${writtenSoFar === undefined ? "" : `, ${writtenSoFar} written so far`}`;
}

/** Printed once when the queue is found empty after work (or at start), instead of a line per idle execution. */
export function idleLine(everySeconds: number): string {
  return `queue empty; checking every ${everySeconds} s (executions that find nothing print nothing)`;
}

/** A failed execution's error: the name, and the cause's readable message when it is Lambda's JSON. */
export function failureLine(error: { name: string; cause: string }): string {
  return `${error.name}: ${readableCause(error.cause)}`;
}

export const timestamp = () => new Date().toTimeString().slice(0, 8);
