import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import type { AirtableCircuit } from "@fundraise-sync/core/write-round";
import { StateName } from "../../../stacks/drain-definition";
import type { LocalPipeline } from "./pipeline";

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

/** `DeadLetteredDonationsAlarm`: a donation waits in the DLQ. */
export function deadLetteredDonationsAlarm(count: number): LocalAlarm {
  const name = "DeadLetteredDonationsAlarm";
  return count > 0
    ? { name, state: "ALARM", reason: `${count} donation(s) in the DLQ: read their reason, fix, redrive` }
    : { name, state: "OK", reason: "the DLQ is empty" };
}

/**
 * The local pipeline's alarms, as the console's header shows them: watches the executions for the writer's circuit
 * (the last WriteToAirtable's answer) and reads the queues when asked.
 */
export function watchLocalAlarms(pipeline: Pick<LocalPipeline, "workflow" | "sqs" | "sqsEndpoint" | "queueUrls">): {
  read(): Promise<LocalAlarm[]>;
  stop(): void;
} {
  let circuit: AirtableCircuit | undefined;
  const stop = pipeline.workflow.observe({
    event(_executionArn, event) {
      const { type, state } = event as { type: string; state?: { name: string; output?: { round?: { circuit?: AirtableCircuit } } } };
      if (type === "StateExited" && state?.name === StateName.WriteToAirtable && state.output?.round?.circuit) circuit = state.output.round.circuit;
    },
  });
  const queueName = (url: string) => decodeURIComponent(url.split("/").pop() ?? "");
  return {
    stop,
    async read() {
      const [age, deadLettered] = await Promise.all([
        oldestMessageAgeMs(pipeline.sqsEndpoint, queueName(pipeline.queueUrls.source)),
        pipeline.sqs
          .send(new GetQueueAttributesCommand({ QueueUrl: pipeline.queueUrls.deadLetter, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }))
          .then(({ Attributes = {} }) => Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0)),
      ]);
      return [airtableFailingAlarm(circuit), oldestDonationAlarm(age), deadLetteredDonationsAlarm(deadLettered)];
    },
  };
}
