import type { AirtableTarget, WriteResult } from "./airtable-writer";
import { type DonationCreatedEvent, parseDonationEvent } from "./donation-event";
import { groupCopies } from "./duplicates";
import {
  AirtableRateLimitedError,
  AirtableUnavailableError,
  ErrorName,
  InvalidDonationEventError,
} from "./errors";
import { AIRTABLE_MAX_RECORDS_PER_REQUEST, AIRTABLE_RATE_LIMIT_PENALTY_SECONDS, MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_NAME_BYTES } from "./limits";
import { boundedErrorText } from "./message-size";
import type { ReceivedMessage } from "./queue";
import { type BudgetClock, RequestBudget, type RequestBudgetState } from "./request-budget";

/**
 * How a round's writes are retried. The state machine waits between attempts (a Wait state, visible in the console,
 * free in Lambda time); the stack's worst-case arithmetic (visibility timeout, history) is built from these numbers.
 */
export const WritePolicy = {
  /**
   * WriteToAirtable runs at most this often per round *in one execution*: once, plus four retries. A round whose base
   * still fails is then handed on, held, to a new execution (see {@link HeldRound}); it is never dead-lettered for it.
   */
  maxAttempts: 5,
  /** After a 429 nothing is sent to the base for this long (Airtable locks it for 30 s). */
  rateLimitedWaitSeconds: AIRTABLE_RATE_LIMIT_PENALTY_SECONDS,
  /**
   * After a 5xx, timeout or network failure: 2, 4, 8, 16 s, then every 30 s while the base stays down. One writer, so
   * no jitter is needed; 30 s keeps a healed base idle for at most half a minute.
   */
  unavailableBackoff: { firstSeconds: 2, rate: 2, maxSeconds: 30 },
  /**
   * The circuit opens after this many attempts in a row met a failing base: from then on each attempt is a trial of
   * one request, and the rest of the round follows only once the trial is answered.
   */
  circuitOpensAfter: 3,
  /**
   * A record that fails alone (a 5xx for a request of only it, in this many attempts, while the base answers the
   * round's other writes) is dead-lettered as the record's fault. A base that fails 30% of requests at random would
   * have to fail the same record's request 5 times after halving it out of its request 4 times: about 2 in 100,000.
   */
  strikesToBlameARecord: 5,
} as const;

/** The longest wait between two attempts. */
export const MAX_WRITE_RETRY_WAIT_SECONDS = Math.max(
  WritePolicy.rateLimitedWaitSeconds,
  WritePolicy.unavailableBackoff.maxSeconds,
);

/** Step Functions' shape of an error (`$.failure` after a Catch): what the DLQ's reason attributes are made of. */
export interface Failure {
  Error: string;
  /** Lambda's JSON: `{"errorType": …, "errorMessage": …}`. */
  Cause: string;
}

/** A message that its Map iteration already settled (Validate refused it). */
export interface SettledMessage {
  MessageId: string;
  outcome: "dead-lettered" | "left-for-redelivery";
}

/** What became of a written message: a new record, an update of its record, or a copy of a message that wrote. */
export type WrittenOutcome = "created" | "updated" | "copy";

export interface WrittenMessage {
  MessageId: string;
  ReceiptHandle: string;
  eventId: string;
  outcome: WrittenOutcome;
  recordId: string;
}

/** A message to dead-letter with its original body (the only copy of it in the state) and the reason. */
export interface DeadLetterEntry {
  message: ReceivedMessage;
  failure: Failure;
}

export interface ReleasedMessage {
  MessageId: string;
  ReceiptHandle: string;
}

/** How the base has been answering: failures in a row (attempts that met a 5xx, timeout, refused connection or 429). */
export interface AirtableCircuit {
  /** Attempts in a row that met a failing base; 0 once a request is answered. */
  failures: number;
  /** When the base started failing (ISO 8601), or null while it answers. */
  failingSince: string | null;
}

/**
 * A round whose base kept failing through every attempt of one execution: its messages are kept hidden (the
 * execution extends their visibility) and handed on to a new execution, which retries them when `retryAt` comes.
 * Nothing else is received meanwhile: the queue's other messages wait, with their receive counts untouched.
 */
export interface HeldRound {
  /** The messages still to write, with their bodies. */
  pending: ReceivedMessage[];
  /** When the next attempt may start (ISO 8601). */
  retryAt: string;
  circuit: AirtableCircuit;
  /** When the round was first attempted (ISO 8601): a message may stay hidden at most 12 h after its receive. */
  heldSince: string;
  lastError: Failure | null;
  strikes: Record<string, number>;
}

/**
 * One round: the messages of a few receives, written together. It travels through the execution's state between
 * WriteToAirtable attempts; every message is in exactly one list, so each body is in the state once.
 */
export interface Round {
  /** Only on the first attempt: what the receive Map produced, valid messages and settled ones mixed. */
  items?: (ReceivedMessage | SettledMessage)[];
  /** Valid messages not written yet, with their bodies. */
  pending: ReceivedMessage[];
  written: WrittenMessage[];
  deadLetter: DeadLetterEntry[];
  /** Left for redelivery: the base is locked, or Airtable kept failing in ways that are not the message's fault. */
  release: ReleasedMessage[];
  /** When released messages become visible again (ISO 8601): when the base unlocks. */
  releaseAt: string | null;
  /** Settled in their Map iteration: dead-lettered by Validate. */
  settled: SettledMessage[];
  /** Messages received in this round. */
  received: number;
  /** WriteToAirtable attempts so far. */
  attempt: number;
  /** Set while pending messages wait for another attempt: when it may start (ISO 8601, a Wait state's timestamp). */
  retryAt: string | null;
  /**
   * Set when the round gave its messages back to the queue while the base still fails (it had been held as long as
   * SQS lets a message stay hidden): the drain waits until then and stops.
   */
  lockedUntil: string | null;
  /** How the base has been answering this round. */
  circuit: AirtableCircuit;
  /** When the round was first attempted (ISO 8601). */
  heldSince: string | null;
  /**
   * How long (seconds) a round may have been held and still be handed on with a fresh visibility timeout: SQS keeps a
   * message hidden at most 12 h after its receive. Set by the state machine from its own arithmetic.
   */
  holdLimitSeconds?: number;
  /** Set when the round is handed on to a new execution (its `pending` moved here); null otherwise. */
  held: HeldRound | null;
  /** The held messages' handles: DeleteWrittenMessages keeps them hidden for a fresh visibility timeout. */
  keepHidden: ReleasedMessage[];
  /** Attempts in which a record failed alone while the base answered the round's other writes, by MessageId. */
  strikes: Record<string, number>;
  /** Why the last attempt stopped early, if it did. */
  lastError: Failure | null;
  /** Airtable requests sent for this round, every attempt and bisection included. */
  requests: number;
  budget: RequestBudgetState;
}

/** What the round writer needs from the outside world; the handler passes real ones, tests may pass a clock. */
export interface RoundWriterOptions {
  writer: { upsert(events: readonly DonationCreatedEvent[]): Promise<WriteResult[]> };
  target: Pick<AirtableTarget, "requestsPerSecond" | "rateLimitPenaltyMs">;
  /** Epoch ms after which no new request starts (the Lambda's remaining time, less a request's timeout). */
  deadline: number;
  clock?: BudgetClock;
}

/** The round a drain starts with: nothing in it but the budget carried from the previous round. */
export function emptyRound(budget: RequestBudgetState = { recentAnswers: [] }): Round {
  return {
    pending: [],
    written: [],
    deadLetter: [],
    release: [],
    releaseAt: null,
    settled: [],
    received: 0,
    attempt: 0,
    retryAt: null,
    lockedUntil: null,
    circuit: { failures: 0, failingSince: null },
    heldSince: null,
    held: null,
    keepHidden: [],
    strikes: {},
    lastError: null,
    requests: 0,
    budget,
  };
}

interface Chunk {
  messages: ReceivedMessage[];
  events: DonationCreatedEvent[];
  /** Split off a request that met a 5xx while the base answered the others: it is looking for one record. */
  isolating?: boolean;
}

type Halt = { kind: "rate-limited" | "unavailable"; error: Error } | { kind: "deadline" };

/**
 * A Wait state's timestamp, rounded up to the whole second: Step Functions "considers the time value up to seconds
 * and truncates milliseconds" (Wait workflow state), so an exact timestamp could wake the writer up to 999 ms early.
 * (The writer also refuses to send into a lock, whatever wakes it: see `RequestBudget`.)
 */
export function waitTimestamp(epochMs: number): string {
  return new Date(Math.ceil(epochMs / 1000) * 1000).toISOString();
}

/**
 * One WriteToAirtable attempt over a round: upserts its pending messages 10 per request within the pipeline's share
 * of the base, and sorts every message into written, dead-letter, pending (retry) or release.
 *
 * - Copies of one event never share a request: the first writes, the copies follow its fate.
 * - A request Airtable refuses as a whole for one bad record (422, 400, 413) is split in halves until the bad record
 *   stands alone; only its message is dead-lettered, with Airtable's error. Every split request fits the share.
 * - A 429, 5xx, timeout or network failure is the base's failure, not the messages': it stops the attempt at once
 *   (nothing more is sent), and the next attempt waits out the lock (30 s) or backs off (2, 4, 8, 16, then 30 s).
 *   After {@link WritePolicy.circuitOpensAfter} such attempts in a row each attempt is a single trial request. When
 *   this execution's attempts run out the round is held and handed on (`held`), or, once it has been hidden as long as
 *   SQS allows, released for redelivery. Such messages are never dead-lettered.
 * - A configuration error (401/403/404, or a missing setting) is thrown: the execution fails, nothing is dead-lettered.
 * - Any other failure of a request (a bug, a reply nobody expected) is treated like a refusal: the record it is
 *   about is found by halving and dead-lettered with that error's name.
 */
export async function writeRound(input: Round, options: RoundWriterOptions): Promise<Round> {
  const clock = options.clock ?? { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
  const base = { ...emptyRound(input.budget), ...input };
  // Fresh lists: the input is never changed (locally it is the caller's object, not a copy).
  const round: Round = {
    ...base,
    pending: [...base.pending],
    written: [...base.written],
    deadLetter: [...base.deadLetter],
    release: [...base.release],
    settled: [...base.settled],
    attempt: base.attempt + 1,
    circuit: { ...base.circuit },
    strikes: { ...base.strikes },
    heldSince: base.heldSince ?? new Date(clock.now()).toISOString(),
    held: null,
    keepHidden: [],
  };
  delete round.items;
  if (input.items) {
    round.received = input.items.length;
    for (const item of input.items) {
      if ("outcome" in item) round.settled.push(item);
      else round.pending.push(item);
    }
  }

  // Validate has passed each of these; parse again here (pure and cheap) rather than carry the event through the state.
  const events = new Map<ReceivedMessage, DonationCreatedEvent>();
  const parsed: ReceivedMessage[] = [];
  for (const message of round.pending) {
    try {
      events.set(message, parseDonationEvent(message.Body));
      parsed.push(message);
    } catch (error) {
      round.deadLetter.push({ message, failure: failureOf(error as Error) });
    }
  }
  const groups = groupCopies(parsed, (message) => events.get(message)!);
  for (const { item, leader } of groups.conflicts) {
    const problem = `another message in this round (${leader.MessageId}) carries the same Id ${events.get(item)!.Id} with different values`;
    round.deadLetter.push({ message: item, failure: failureOf(new InvalidDonationEventError([problem])) });
  }

  const queue: Chunk[] = [];
  for (let start = 0; start < groups.leaders.length; start += AIRTABLE_MAX_RECORDS_PER_REQUEST) {
    const messages = groups.leaders.slice(start, start + AIRTABLE_MAX_RECORDS_PER_REQUEST);
    queue.push({ messages, events: messages.map((message) => events.get(message)!) });
  }

  const budget = new RequestBudget(options.target.requestsPerSecond, round.budget, clock);
  const fates = new Map<ReceivedMessage, WrittenMessage | DeadLetterEntry>();
  let halt = undefined as Halt | undefined;
  let fatal = undefined as unknown;

  const penaltyMs = options.target.rateLimitPenaltyMs ?? WritePolicy.rateLimitedWaitSeconds * 1000;
  let answeredRequests = 0;
  // The records of the last request that met a 5xx, until the base answers one. A 5xx for a part of them may follow
  // one record (keep halving); a 5xx for other records too, with no answer between, is the base's (stop).
  let lastFailed: Set<ReceivedMessage> | undefined;
  /** Records struck in this attempt (at most once each). */
  const struck = new Set<ReceivedMessage>();
  let blamed = 0;
  // An open circuit: the first request is a trial; a 5xx to it is the base's.
  let trial = round.circuit.failures >= WritePolicy.circuitOpensAfter;
  const lane = async (maxRequests = Infinity) => {
    let sent = 0;
    while (queue.length > 0 && !halt && fatal === undefined && sent < maxRequests) {
      if (clock.now() >= options.deadline) {
        halt ??= { kind: "deadline" };
        return;
      }
      const locked = budget.lockedUntil();
      if (locked !== undefined && locked >= options.deadline) {
        // Woken too early to wait out the lock in this invocation: wait in the state machine instead.
        halt ??= { kind: "rate-limited", error: new AirtableRateLimitedError(`Airtable's base is locked until ${new Date(locked).toISOString()} after a 429`, 429, undefined) };
        return;
      }
      const answered = await budget.take();
      const chunk = queue.shift();
      if (!chunk || halt || fatal !== undefined) {
        if (chunk) queue.unshift(chunk);
        answered({ sent: false });
        return;
      }
      round.requests++;
      sent++;
      try {
        const results = await options.writer.upsert(chunk.events);
        answeredRequests++;
        lastFailed = undefined;
        trial = false;
        chunk.messages.forEach((message, index) => {
          const { recordId, created } = results[index]!;
          fates.set(message, {
            MessageId: message.MessageId,
            ReceiptHandle: message.ReceiptHandle,
            eventId: chunk.events[index]!.Id,
            outcome: created ? "created" : "updated",
            recordId,
          });
        });
      } catch (error) {
        const previous = lastFailed;
        const alone = error instanceof AirtableUnavailableError && !trial && (!previous || chunk.messages.every((m) => previous.has(m)));
        if (error instanceof AirtableUnavailableError) lastFailed = new Set(chunk.messages);
        const single = chunk.messages.length === 1 ? chunk.messages[0]! : undefined;
        // A record alone in its request that fails while the base answers this round's other writes: a strike, one
        // per attempt. Only repeated strikes blame the record: a base that fails requests at random rarely fails the
        // same record's request in so many attempts.
        if (single && error instanceof AirtableUnavailableError && (answeredRequests > 0 || round.written.length > 0) && !struck.has(single)) {
          struck.add(single);
          round.strikes = { ...round.strikes, [single.MessageId]: (round.strikes[single.MessageId] ?? 0) + 1 };
        }
        if (single && (round.strikes[single.MessageId] ?? 0) >= WritePolicy.strikesToBlameARecord) {
          fates.set(single, { message: single, failure: failureOf(recordAloneFailed(error as AirtableUnavailableError)) });
          blamed++;
        } else if (alone && single && queue.length > 0) {
          // Others first: their answers tell whether this record or the base fails.
          queue.push(chunk);
        } else if (alone && chunk.messages.length > 1) {
          // A 5xx that may follow one of its records: halve it, at the back of the queue. The next answers decide: the
          // other half answered, keep halving; other records failing too, it is the base (stop, below).
          queue.push(...halves(chunk, true));
        } else if (error instanceof AirtableRateLimitedError || error instanceof AirtableUnavailableError) {
          // Stop every lane: a 429 locks the base for everyone, and a failing Airtable should not be hammered.
          queue.unshift(chunk);
          if (error instanceof AirtableRateLimitedError) budget.lock(clock.now() + penaltyMs);
          // Another lane may have halted meanwhile; a 429 outranks a 5xx (its wait is the longer one).
          if ((halt as Halt | undefined)?.kind !== "rate-limited") {
            halt = { kind: error instanceof AirtableRateLimitedError ? "rate-limited" : "unavailable", error };
          }
        } else if (isFatal(error)) {
          queue.unshift(chunk);
          fatal ??= error;
        } else {
          // Refused (422, 400, 413) or an unexpected failure of this request: the base answered, about this record.
          answeredRequests++;
          lastFailed = undefined;
          if (chunk.messages.length === 1) {
            fates.set(chunk.messages[0]!, { message: chunk.messages[0]!, failure: failureOf(error as Error) });
          } else {
            // Find the bad record: split the request in halves, each fitting the share like any other request.
            queue.unshift(...halves(chunk, false));
          }
        }
      } finally {
        answered();
      }
    }
  };
  // An open circuit: one trial request first; the rest of the round follows only if the base answers it.
  if (trial && queue.length > 0) await lane(1);
  const lanes = Math.min(options.target.requestsPerSecond, Math.max(1, queue.length));
  await Promise.all(Array.from({ length: lanes }, () => lane()));
  round.budget = budget.state();
  if (fatal !== undefined) throw fatal;
  const baseFailed = halt !== undefined && halt.kind !== "deadline";
  // The base answered, or the failures were a record's (it is blamed now): the circuit closes.
  if ((answeredRequests > 0 || blamed > 0) && !baseFailed) round.circuit = { failures: 0, failingSince: null };
  else if (baseFailed) {
    round.circuit = {
      failures: round.circuit.failures + 1,
      failingSince: round.circuit.failingSince ?? new Date(clock.now()).toISOString(),
    };
  }

  // Sort every message by its fate; copies follow their leader.
  const leaderOf = new Map(groups.copies.map(({ item, leader }) => [item, leader]));
  const stillPending: ReceivedMessage[] = [];
  for (const message of parsed) {
    if (groups.conflicts.some(({ item }) => item === message)) continue;
    const leader = leaderOf.get(message) ?? message;
    const fate = fates.get(leader);
    if (!fate) stillPending.push(message);
    else if ("failure" in fate) round.deadLetter.push(leader === message ? fate : { message, failure: fate.failure });
    else round.written.push(leader === message ? fate : { ...fate, MessageId: message.MessageId, ReceiptHandle: message.ReceiptHandle, outcome: "copy" });
  }
  round.pending = stillPending;
  round.retryAt = null;
  round.lastError = halt && halt.kind !== "deadline" ? failureOf(halt.error) : null;
  if (stillPending.length === 0) return round;

  const now = clock.now();
  const attemptsLeft = round.attempt < WritePolicy.maxAttempts;
  if (halt?.kind === "rate-limited" || halt?.kind === "unavailable") {
    // The base's failure, not the messages': they wait (never dead-lettered), and nothing else is received meanwhile.
    const { firstSeconds, rate, maxSeconds } = WritePolicy.unavailableBackoff;
    const retryAt =
      halt.kind === "rate-limited"
        ? waitTimestamp(budget.lockedUntil() ?? now + penaltyMs)
        : waitTimestamp(now + Math.min(maxSeconds, firstSeconds * rate ** (round.circuit.failures - 1)) * 1000);
    if (attemptsLeft) {
      round.retryAt = retryAt;
    } else if (canHoldLonger(round, now)) {
      hold(round, retryAt);
    } else {
      // Hidden as long as SQS allows: give them back when the next attempt would have come, and let the drain stop.
      round.lockedUntil = retryAt;
      releaseAll(round, retryAt);
    }
  } else if (attemptsLeft) {
    // Out of time, not out of luck: carry on at once in a fresh invocation.
    round.retryAt = new Date(now).toISOString();
  } else {
    releaseAll(round, new Date(now).toISOString());
  }
  return round;
}

/** Whether a round held since `heldSince` may be handed on with a fresh visibility timeout (SQS's 12 h bound). */
function canHoldLonger(round: Round, now: number): boolean {
  if (round.holdLimitSeconds === undefined || round.heldSince === null) return false;
  return now - Date.parse(round.heldSince) <= round.holdLimitSeconds * 1000;
}

function hold(round: Round, retryAt: string) {
  round.held = { pending: round.pending, retryAt, circuit: round.circuit, heldSince: round.heldSince!, lastError: round.lastError, strikes: round.strikes };
  round.keepHidden = round.pending.map(({ MessageId, ReceiptHandle }) => ({ MessageId, ReceiptHandle }));
  round.pending = [];
}

/** A request's two halves, each fitting the share like any other request. */
function halves(chunk: Chunk, isolating: boolean): Chunk[] {
  const half = Math.ceil(chunk.messages.length / 2);
  return [
    { messages: chunk.messages.slice(0, half), events: chunk.events.slice(0, half), isolating },
    { messages: chunk.messages.slice(half), events: chunk.events.slice(half), isolating },
  ];
}

/** The reason a record that fails alone (a 5xx for it, answers around it) is dead-lettered with. */
function recordAloneFailed(error: AirtableUnavailableError): AirtableUnavailableError {
  return new AirtableUnavailableError(
    `Airtable failed on this record alone (${error.status ?? "no answer"}) while it wrote the records sent beside it: ${error.message}`,
    error.status,
    error.airtableType,
  );
}

/** Errors that every message would meet (wrong token, base, table, setting): the execution stops instead. */
function isFatal(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  return name === ErrorName.AirtableConfiguration || name === ErrorName.PipelineConfiguration;
}

function releaseAll(round: Round, at: string) {
  round.release.push(...round.pending.map(({ MessageId, ReceiptHandle }) => ({ MessageId, ReceiptHandle })));
  round.releaseAt = at;
  round.pending = [];
}

/**
 * An error in the shape Step Functions gives a Catch (and the DLQ's reason attributes carry), bounded so that the
 * DLQ send cannot fail on it: the name within {@link MAX_ERROR_NAME_BYTES}, the message within
 * {@link MAX_ERROR_MESSAGE_BYTES} (Airtable's messages can quote whole field values), neither empty.
 */
export function failureOf(error: Error): Failure {
  const name = boundedErrorText(error?.name || "Error", MAX_ERROR_NAME_BYTES);
  const message = boundedErrorText(error?.message ?? String(error), MAX_ERROR_MESSAGE_BYTES);
  return { Error: name, Cause: JSON.stringify({ errorType: name, errorMessage: message }) };
}
