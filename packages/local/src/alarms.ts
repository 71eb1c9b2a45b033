import type { AirtableCircuit } from "@fundraise-sync/core/write-round";

/**
 * The stack's alarms that a person needs locally too, computed from the signals the local runtime has: the writer's
 * circuit (what `AirtableFailing` reports on AWS) and the local queue's oldest message (what SQS's
 * `ApproximateAgeOfOldestMessage` reports). The thresholds are the stack's defaults.
 */
export interface LocalAlarm {
  /** The stack's alarm name, e.g. `AirtableFailingAlarm`. */
  name: string;
  state: "OK" | "ALARM";
  /** What is wrong (or right), in a line a person can act on. */
  reason: string;
}

/** `AirtableFailingAlarm`: Airtable answered nothing but failures for this long (three 5-minute periods). */
export const AIRTABLE_FAILING_ALARM_MS = 15 * 60_000;
/** `OldestDonationAlarm`'s default limit (the stage setting `oldestDonationAlarmMinutes`). */
export const OLDEST_DONATION_ALARM_MS = 60 * 60_000;

const minutes = (ms: number) => `${Math.floor(ms / 60_000)} min`;

export function airtableFailingAlarm(circuit: AirtableCircuit | undefined, now = Date.now()): LocalAlarm {
  const name = "AirtableFailingAlarm";
  if (!circuit?.failingSince) return { name, state: "OK", reason: "Airtable answers" };
  const failingMs = now - Date.parse(circuit.failingSince);
  const since = `Airtable failing for ${minutes(failingMs)} (since ${circuit.failingSince.slice(11, 19)} UTC, ${circuit.failures} attempts in a row)`;
  return failingMs >= AIRTABLE_FAILING_ALARM_MS
    ? { name, state: "ALARM", reason: `${since}: donations wait in the queue, none is dead-lettered` }
    : { name, state: "OK", reason: `${since}: retrying; alarm at 15 min` };
}

export function oldestDonationAlarm(ageMs: number | undefined, limitMs = OLDEST_DONATION_ALARM_MS): LocalAlarm {
  const name = "OldestDonationAlarm";
  if (ageMs === undefined) return { name, state: "OK", reason: "no donation waiting" };
  const line = `the oldest donation has waited ${minutes(ageMs)}`;
  return ageMs >= limitMs ? { name, state: "ALARM", reason: `${line} (limit ${minutes(limitMs)})` } : { name, state: "OK", reason: line };
}

/**
 * The age of the oldest message in a queue of the local SQS server (fauxqs), waiting or in flight, as SQS's
 * `ApproximateAgeOfOldestMessage` counts it; undefined when the queue is empty or the server has no inspection
 * endpoint (an SQS server that is not fauxqs). Reads without receiving: no receive count changes.
 */
export async function oldestMessageAgeMs(sqsEndpoint: string, queueName: string, now = Date.now()): Promise<number | undefined> {
  interface Inspected {
    messages?: { ready?: { sentTimestamp?: number }[]; delayed?: { sentTimestamp?: number }[]; inflight?: { message?: { sentTimestamp?: number } }[] };
  }
  const response = await fetch(`${sqsEndpoint.replace(/\/$/, "")}/_fauxqs/queues/${encodeURIComponent(queueName)}`).catch(() => undefined);
  if (!response?.ok) return undefined;
  const { messages = {} } = (await response.json()) as Inspected;
  const sent = [...(messages.ready ?? []), ...(messages.inflight ?? []).map((entry) => entry.message ?? {})]
    .map((message) => message.sentTimestamp)
    .filter((timestamp): timestamp is number => typeof timestamp === "number");
  return sent.length === 0 ? undefined : now - Math.min(...sent);
}
