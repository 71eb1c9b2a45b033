/**
 * The dead-letter queue's operations, one implementation each, shared by `npm run dlq` and the web console:
 *
 * - {@link listDeadLetters}: every message with why it is there, without consuming it;
 * - {@link checkBody}: a body's verdict from the same validation the state machine's Validate runs;
 * - {@link redriveDeadLetters}: back to the donations queue, byte for byte, counting redrives; bodies that can never
 *   pass Validate stay unless forced;
 * - {@link deleteDeadLetters}: by ids, by ErrorName, or all;
 * - {@link sendEditedBody}: a corrected body to the donations queue once it passes Validate, replacing a dead letter;
 * - {@link peekSourceQueue}: what waits in the donations queue, given back at once (reconcile's "waiting in the queue").
 *
 * SQS cannot read a message without receiving it. Every operation therefore receives the whole DLQ (hiding each
 * message for {@link DEAD_LETTER_TIMINGS.holdSeconds}), acts on the messages it selected, and makes the others visible
 * again at once. The DLQ has no redrive policy of its own (checked), so receiving never moves a message toward a
 * receive limit; SQS counts each receive in `ApproximateReceiveCount`, which nothing acts on.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import {
  DeadLetterAttribute,
  ErrorName,
  InvalidDonationEventError,
  SQS_MAX_MESSAGES_PER_RECEIVE,
  parseDonationEvent,
} from "@fundraise-sync/core";
import { readableCause } from "./lambda-cause";

/** How long the operations hold messages, and how they give them back. */
export const DEAD_LETTER_TIMINGS = {
  /** A received message stays hidden this long while an operation works through the queue. */
  holdSeconds: 30,
  /** Messages not acted on become visible again after this long: at once (fauxqs is patched for 0, see patches/). */
  restoreSeconds: 0,
  /** Long polling asks every SQS server, so one empty answer means: nothing left to receive. */
  receiveWaitSeconds: 2,
} as const;

/** The two queues every operation needs. */
export interface DeadLetterQueues {
  sqs: SQSClient;
  /** The donations queue: where redriven and edited bodies go. */
  sourceUrl: string;
  /** Its dead-letter queue. */
  deadLetterUrl: string;
}

/** The DLQ cannot be worked on as asked (its configuration, or a message not there); the message says why. */
export class DeadLetterQueueError extends Error {
  override readonly name: string = "DeadLetterQueueError";
}

/** The message asked for is not in the DLQ (a wrong id, or one already redriven or deleted): nothing was done. */
export class DeadLetterNotFoundError extends DeadLetterQueueError {
  override readonly name = "DeadLetterNotFoundError";
}

/**
 * What Validate would say about a body. `valid: false` means the body can never pass, whatever Airtable's state:
 * redriving it unchanged only dead-letters it again.
 */
export type BodyVerdict =
  | { valid: true; /** The event's Id, normalised as the pipeline writes it. */ eventId: string }
  | {
      valid: false;
      /** Always `InvalidDonationEventError`: the name Validate fails with. */
      errorName: typeof ErrorName.InvalidDonationEvent;
      /** Each defect, e.g. `DonationAmount: must be greater than 0, got -5`. */
      problems: string[];
      /** The whole message, as the DLQ's ErrorCause would carry it. */
      reason: string;
    };

/** One dead-lettered message. */
export interface DeadLetter {
  messageId: string;
  /** Why it failed, e.g. `InvalidDonationEventError`; undefined when SQS's own redrive policy moved it. */
  errorName?: string;
  /** `ErrorCause` made readable: Lambda's `errorMessage`, else the raw cause. */
  cause?: string;
  rawCause?: string;
  failedState?: string;
  /** How many times SQS had delivered it from the donations queue when it was dead-lettered. */
  receiveCount?: string;
  executionArn?: string;
  sourceMessageId?: string;
  /** When it entered the DLQ (ISO 8601). */
  sentAt?: string;
  /** How many times it was redriven before (0 for a first failure). */
  redriveCount: number;
  body: string;
  /** What Validate says about the body now. */
  verdict: BodyVerdict;
}

/**
 * Runs a body through the state machine's own validation (`parseDonationEvent`, which the Validate handler calls).
 * Anything else it throws is a bug, not a verdict, and propagates.
 */
export function checkBody(body: string): BodyVerdict {
  try {
    return { valid: true, eventId: parseDonationEvent(body).Id };
  } catch (error) {
    if (!(error instanceof InvalidDonationEventError)) throw error;
    return { valid: false, errorName: ErrorName.InvalidDonationEvent, problems: [...error.problems], reason: error.message };
  }
}

/**
 * The DLQ of a donations queue, from its `RedrivePolicy` (`deadLetterTargetArn` is `arn:aws:sqs:region:account:name`),
 * unless `deadLetterUrl` is given.
 */
export async function resolveDeadLetterQueues(sqs: SQSClient, sourceUrl: string, deadLetterUrl?: string): Promise<DeadLetterQueues> {
  if (deadLetterUrl !== undefined) return { sqs, sourceUrl, deadLetterUrl };
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: sourceUrl, AttributeNames: ["RedrivePolicy"] }));
  const policy = Attributes?.RedrivePolicy;
  if (!policy) throw new DeadLetterQueueError(`${sourceUrl} has no RedrivePolicy: give the dead-letter queue's URL`);
  const arn = (JSON.parse(policy) as { deadLetterTargetArn?: string }).deadLetterTargetArn ?? "";
  const [, , , , account, name] = arn.split(":");
  if (!name) throw new DeadLetterQueueError(`cannot read the dead-letter queue from ${sourceUrl}'s RedrivePolicy ${policy}`);
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
  return { sqs, sourceUrl, deadLetterUrl: QueueUrl! };
}

/** What every operation reports besides its own counts. */
export interface SweepReport {
  /**
   * Messages SQS would not make visible again at once: not lost, they reappear when their hold
   * ({@link DEAD_LETTER_TIMINGS.holdSeconds}) runs out. Usually 0.
   */
  slowToReappear: number;
}

export interface DeadLetterList extends SweepReport {
  letters: DeadLetter[];
}

/** Every message in the DLQ with its reason and verdict. Consumes nothing: all are visible again when it returns. */
export async function listDeadLetters(queues: DeadLetterQueues): Promise<DeadLetterList> {
  const letters: DeadLetter[] = [];
  const { slowToReappear } = await sweep(queues, async (message) => {
    letters.push(toDeadLetter(message));
    return "keep";
  });
  return { letters, slowToReappear };
}

/** Which dead letters an operation acts on. */
export type DeadLetterSelection =
  | { ids: readonly string[] }
  | { errorName: string }
  | { all: true };

/** True when a dead letter is in the selection. */
export function isSelected(letter: Pick<DeadLetter, "messageId" | "errorName">, selection: DeadLetterSelection): boolean {
  if ("all" in selection) return true;
  if ("errorName" in selection) return letter.errorName === selection.errorName;
  return selection.ids.includes(letter.messageId);
}

export interface RedriveOptions {
  /** Default: every message. */
  selection?: DeadLetterSelection;
  /** Redrive bodies that can never pass Validate too (they will be dead-lettered again). */
  force?: boolean;
  /** Redrive at most this many (the rest stay). */
  max?: number;
}

export interface RedriveResult extends SweepReport {
  /** Sent back and removed from the DLQ. */
  redriven: { messageId: string; newMessageId: string; redriveCount: number }[];
  /** Left in the DLQ because their body can never pass Validate (without `force`). */
  leftInvalid: { messageId: string; problems: string[] }[];
  /** Could not be sent (or SQS stored other bytes): still in the DLQ. */
  failed: { messageId: string; reason: string }[];
  /** Selected ids that are not in the DLQ. */
  notFound: string[];
}

/**
 * Moves dead letters back to the donations queue: the original body byte for byte (checked by MD5), with
 * `RedriveCount` one higher than before and none of the reason attributes. The DLQ's copy is deleted only after the
 * send succeeded, so a crash in between can only duplicate a message, which the pipeline's upsert absorbs.
 */
export async function redriveDeadLetters(queues: DeadLetterQueues, options: RedriveOptions = {}): Promise<RedriveResult> {
  const { selection = { all: true }, force = false, max = Number.POSITIVE_INFINITY } = options;
  const result: RedriveResult = { redriven: [], leftInvalid: [], failed: [], notFound: [], slowToReappear: 0 };
  const seen = new Set<string>();
  const { slowToReappear } = await sweep(queues, async (message) => {
    const letter = toDeadLetter(message);
    seen.add(letter.messageId);
    if (!isSelected(letter, selection) || result.redriven.length >= max) return "keep";
    if (!letter.verdict.valid && !force) {
      result.leftInvalid.push({ messageId: letter.messageId, problems: letter.verdict.problems });
      return "keep";
    }
    try {
      const newMessageId = await sendToSource(queues, letter.body, letter.redriveCount + 1, message.MD5OfBody);
      result.redriven.push({ messageId: letter.messageId, newMessageId, redriveCount: letter.redriveCount + 1 });
      return "delete";
    } catch (error) {
      result.failed.push({ messageId: letter.messageId, reason: (error as Error).message });
      return "keep";
    }
  }, () => result.redriven.length >= max || allSeen(selection, seen));
  if ("ids" in selection) result.notFound = selection.ids.filter((id) => !seen.has(id));
  return { ...result, slowToReappear };
}

export interface DeleteResult extends SweepReport {
  /** The dead letters removed, as they were. */
  deleted: DeadLetter[];
  /** Selected ids that are not in the DLQ. */
  notFound: string[];
}

/** Deletes the selected dead letters for good. List first (or {@link isSelected} on a list) to show what will go. */
export async function deleteDeadLetters(queues: DeadLetterQueues, selection: DeadLetterSelection): Promise<DeleteResult> {
  const deleted: DeadLetter[] = [];
  const seen = new Set<string>();
  const { slowToReappear } = await sweep(
    queues,
    async (message) => {
      const letter = toDeadLetter(message);
      seen.add(letter.messageId);
      if (!isSelected(letter, selection)) return "keep";
      deleted.push(letter);
      return "delete";
    },
    () => allSeen(selection, seen),
  );
  return { deleted, notFound: "ids" in selection ? selection.ids.filter((id) => !seen.has(id)) : [], slowToReappear };
}

export type SendEditedResult =
  | { sent: true; newMessageId: string; redriveCount: number; verdict: BodyVerdict & { valid: true } }
  | { sent: false; verdict: BodyVerdict & { valid: false } };

/**
 * Sends a corrected body to the donations queue in place of the dead letter `replaces`, only if it passes Validate
 * (an invalid body is refused: nothing is sent or deleted). The dead letter is deleted after the send succeeded.
 *
 * @throws {DeadLetterNotFoundError} when `replaces` is not in the DLQ (nothing sent).
 */
export async function sendEditedBody(queues: DeadLetterQueues, replaces: string, body: string): Promise<SendEditedResult> {
  const verdict = checkBody(body);
  if (!verdict.valid) return { sent: false, verdict };
  let outcome: SendEditedResult | undefined;
  await sweep(queues, async (message) => {
    if (outcome !== undefined || message.MessageId !== replaces) return "keep";
    const redriveCount = toDeadLetter(message).redriveCount + 1;
    outcome = { sent: true, newMessageId: await sendToSource(queues, body, redriveCount), redriveCount, verdict };
    return "delete";
  }, (message) => message.MessageId === replaces);
  if (outcome === undefined) throw new DeadLetterNotFoundError(`not in the dead-letter queue: ${replaces} (nothing sent)`);
  return outcome;
}

/** A message of the donations queue, as {@link peekSourceQueue} saw it. */
export interface QueuedMessage {
  messageId: string;
  body: string;
  /** The body's event Id (lower case) when it has one, valid or not. */
  eventId?: string;
}

/**
 * Every message waiting in the donations queue (visible ones; those a drain holds are not seen), given back at once.
 * Unlike the DLQ, the donations queue has a redrive policy: each look counts one receive of every waiting message
 * toward its `maxReceiveCount` (5), after which SQS moves a message to the DLQ without a reason. SQS has no other
 * way to look, so call this only when there is something to look for (reconcile does, once per run).
 */
export async function peekSourceQueue(sqs: SQSClient, sourceUrl: string): Promise<{ messages: QueuedMessage[] } & SweepReport> {
  const messages: QueuedMessage[] = [];
  const { slowToReappear } = await sweep(
    { sqs, sourceUrl, deadLetterUrl: sourceUrl },
    async (message) => {
      const body = message.Body ?? "";
      messages.push({ messageId: message.MessageId ?? "", body, eventId: eventIdOf(body) });
      return "keep";
    },
    () => false,
    { refuseRedrivePolicy: false },
  );
  return { messages, slowToReappear };
}

/** The event Id a body carries (lower case), valid or not; undefined when it carries none. */
export function eventIdOf(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { Id?: unknown } | null)?.Id;
    return typeof id === "string" && id !== "" ? id.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

// --- Internals --------------------------------------------------------------------------------------------------

/** With a selection by ids, the sweep can stop once each was received. */
const allSeen = (selection: DeadLetterSelection, seen: Set<string>) => "ids" in selection && selection.ids.every((id) => seen.has(id));

async function sendToSource(queues: DeadLetterQueues, body: string, redriveCount: number, originalMd5?: string): Promise<string> {
  const sent = await queues.sqs.send(
    new SendMessageCommand({
      QueueUrl: queues.sourceUrl,
      MessageBody: body,
      MessageAttributes: { [DeadLetterAttribute.RedriveCount]: { DataType: "Number", StringValue: String(redriveCount) } },
    }),
  );
  if (originalMd5 !== undefined && sent.MD5OfMessageBody !== undefined && sent.MD5OfMessageBody !== originalMd5) {
    // The copy is in the donations queue already; the original stays too, and the upsert absorbs the double.
    throw new Error(`the copy's MD5 ${sent.MD5OfMessageBody} differs from the original's ${originalMd5}`);
  }
  return sent.MessageId ?? "";
}

function toDeadLetter(message: Message): DeadLetter {
  const attributes: Record<string, MessageAttributeValue> = message.MessageAttributes ?? {};
  const attribute = (name: string) => attributes[name]?.StringValue;
  const rawCause = attribute(DeadLetterAttribute.ErrorCause);
  const sent = message.Attributes?.SentTimestamp;
  const redriveCount = Number(attribute(DeadLetterAttribute.RedriveCount) ?? 0);
  const body = message.Body ?? "";
  return {
    messageId: message.MessageId ?? "",
    errorName: attribute(DeadLetterAttribute.ErrorName),
    cause: rawCause === undefined ? undefined : readableCause(rawCause),
    rawCause,
    failedState: attribute(DeadLetterAttribute.FailedState),
    receiveCount: attribute(DeadLetterAttribute.ReceiveCount),
    executionArn: attribute(DeadLetterAttribute.ExecutionArn),
    sourceMessageId: attribute(DeadLetterAttribute.SourceMessageId),
    sentAt: sent === undefined ? undefined : new Date(Number(sent)).toISOString(),
    redriveCount: Number.isSafeInteger(redriveCount) && redriveCount > 0 ? redriveCount : 0,
    body,
    verdict: checkBody(body),
  };
}

/** What an operation does with a message it received: delete it (it is dealt with) or give it back. */
type Disposition = "keep" | "delete";

/**
 * Receives every message of the DLQ once (by MessageId; a message received twice is handled once), hands each to
 * `handle`, deletes those it dealt with, and makes all the others visible again, even when `handle` throws.
 * `done` ends the sweep early once it returns true after a handled message.
 */
async function sweep(
  queues: DeadLetterQueues,
  handle: (message: Message) => Promise<Disposition>,
  done: (message: Message) => boolean = () => false,
  { refuseRedrivePolicy: refuse = true } = {},
): Promise<SweepReport> {
  const { sqs, deadLetterUrl } = queues;
  if (refuse) await refuseRedrivePolicy(queues);
  const kept = new Map<string, Message>();
  const handled = new Set<string>();
  let slowToReappear = 0;
  try {
    receive: for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: deadLetterUrl,
          MaxNumberOfMessages: SQS_MAX_MESSAGES_PER_RECEIVE,
          VisibilityTimeout: DEAD_LETTER_TIMINGS.holdSeconds,
          WaitTimeSeconds: DEAD_LETTER_TIMINGS.receiveWaitSeconds,
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["All"],
        }),
      );
      // Every received message is held until handled or given back, including those after an early end.
      const fresh: Message[] = [];
      for (const message of Messages) {
        const id = message.MessageId ?? "";
        // Received again (its hold ran out during a long sweep): only its newest receipt handle is valid.
        if (kept.has(id)) kept.set(id, message);
        if (handled.has(id) || fresh.some((other) => other.MessageId === id)) continue;
        kept.set(id, message);
        fresh.push(message);
      }
      if (fresh.length === 0) break;
      for (const message of fresh) {
        const id = message.MessageId ?? "";
        handled.add(id);
        if ((await handle(message)) === "delete") {
          await sqs.send(new DeleteMessageCommand({ QueueUrl: deadLetterUrl, ReceiptHandle: kept.get(id)!.ReceiptHandle! }));
          kept.delete(id);
        }
        if (done(message)) break receive;
      }
    }
  } finally {
    // Runs when `handle` throws too: whatever was not dealt with is given back before the error propagates.
    slowToReappear = await giveBack(queues, [...kept.values()]);
  }
  return { slowToReappear };
}

/** A DLQ with its own redrive policy would move messages on after N receives: no operation here may receive from it. */
async function refuseRedrivePolicy({ sqs, deadLetterUrl }: DeadLetterQueues): Promise<void> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetterUrl, AttributeNames: ["RedrivePolicy"] }));
  if (Attributes?.RedrivePolicy) {
    throw new DeadLetterQueueError(
      `${deadLetterUrl} has a RedrivePolicy of its own (${Attributes.RedrivePolicy}): reading it would move messages toward its receive limit`,
    );
  }
}

/** Makes held messages visible again after {@link DEAD_LETTER_TIMINGS.restoreSeconds}; returns how many SQS refused. */
async function giveBack({ sqs, deadLetterUrl }: DeadLetterQueues, messages: Message[]): Promise<number> {
  let failed = 0;
  for (let start = 0; start < messages.length; start += SQS_MAX_MESSAGES_PER_RECEIVE) {
    const chunk = messages.slice(start, start + SQS_MAX_MESSAGES_PER_RECEIVE);
    const reply = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: deadLetterUrl,
        Entries: chunk.map((message, index) => ({
          Id: String(index),
          ReceiptHandle: message.ReceiptHandle!,
          VisibilityTimeout: DEAD_LETTER_TIMINGS.restoreSeconds,
        })),
      }),
    );
    failed += reply.Failed?.length ?? 0;
  }
  return failed;
}
