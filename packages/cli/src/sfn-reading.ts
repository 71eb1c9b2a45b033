/**
 * Reading executions through the Step Functions API, paced for AWS's limits: what `executions` and `story` share.
 * ListExecutions' token bucket is 100 with 2 refills a second, GetExecutionHistory's 250 with 5 a second
 * (us-east-1's, "Quotas related to API action throttling"); the SDK retries a throttled call with backoff, and the
 * commands read one page at a time, so they stay well within them.
 */
import {
  type ExecutionListItem,
  type ExecutionStatus,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
} from "@aws-sdk/client-sfn";
import { CommandFailure, isConnectionRefused } from "./options";
import { type SfnTarget, awsErrorLine } from "./sfn-target";

/** Runs an API call; a refused connection or an AWS error becomes one line naming the target. */
export async function call<T>(target: SfnTarget, what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (error) {
    if (isConnectionRefused(error)) throw new CommandFailure(target.unreachableHint);
    throw new CommandFailure(`${target.label}: ${awsErrorLine(error)}`);
  }
}

/**
 * Executions newest first, page by page, until `enough` says stop (given each one) or `max` are listed.
 */
export async function listExecutions(
  target: SfnTarget,
  options: { max: number; status?: ExecutionStatus; until?: (execution: ExecutionListItem) => boolean },
): Promise<ExecutionListItem[]> {
  const executions: ExecutionListItem[] = [];
  let nextToken: string | undefined;
  do {
    const page = await call(target, () =>
      target.sfn.send(
        new ListExecutionsCommand({
          stateMachineArn: target.stateMachineArn,
          maxResults: Math.min(100, options.max - executions.length),
          ...(options.status ? { statusFilter: options.status } : {}),
          ...(nextToken ? { nextToken } : {}),
        }),
      ),
    );
    for (const execution of page.executions ?? []) {
      if (options.until?.(execution)) return executions;
      executions.push(execution);
      if (executions.length >= options.max) return executions;
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return executions;
}

/** An execution's whole history, in order, 1,000 events a page. */
export async function executionHistory(target: SfnTarget, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await call(target, () => target.sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, ...(nextToken ? { nextToken } : {}) })));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** `12:03:04` today, else `2025-01-31 12:03:04`, in local time. */
export function when(date: Date | undefined, now = new Date()): string {
  if (!date) return "-";
  const pad = (n: number) => String(n).padStart(2, "0");
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay ? time : `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

/** `3.2 s`, `4 min 5 s`, or `running`. */
export function duration(start: Date | undefined, stop: Date | undefined): string {
  if (!start || !stop) return "running";
  const ms = stop.getTime() - start.getTime();
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** `24h`, `90m`, `7d`, `30s` → milliseconds; undefined for anything else. */
export function parseWindow(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as "s" | "m" | "h" | "d"];
  const ms = Number(match[1]) * unit;
  return ms > 0 ? ms : undefined;
}
