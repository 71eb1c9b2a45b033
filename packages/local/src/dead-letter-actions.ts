/**
 * The DLQ's actions as one small interface, the shape the console shows: the same functions `npm run dlq` calls (one
 * implementation per action). The console imports these types only; the commands wire the implementation in.
 */
import {
  type DeadLetter,
  type DeadLetterQueues,
  checkBody,
  deleteDeadLetters,
  listDeadLetters,
  redriveDeadLetters,
  sendEditedBody,
  type DeadLetterSelection,
} from "./dead-letters";

type Selection = DeadLetterSelection;

/** One dead-lettered message, as the console shows it. */
export interface DeadLetterEntry {
  messageId: string;
  errorName?: string;
  /** The reason in words (Lambda's `errorMessage` when the cause is Lambda's JSON). */
  cause?: string;
  failedState?: string;
  /** How many times the source queue had delivered it when it was dead-lettered. */
  receiveCount?: string;
  executionArn?: string;
  sourceMessageId?: string;
  sentAt?: string;
  /** How many times it was redriven before, when the DLQ records it. */
  redriveCount?: number;
  body: string;
  /** The body's DonationCreated `Id`, when it has one. */
  eventId?: string;
  /** What Validate says about the body now: an invalid one only fails again if redriven unchanged. */
  verdict?: Verdict;
}

/** Validate's verdict on a body. */
export interface Verdict {
  valid: boolean;
  /** The error Validate would raise, e.g. `InvalidDonationEventError`, and each defect. */
  errorName?: string;
  problems?: string[];
  eventId?: string;
}

export interface ActionOutcome {
  ok: boolean;
  /** One line for a person: what was moved, sent or removed, and what was not. */
  detail: string;
}

export interface DeadLetterActions {
  /** Every message in the DLQ, read without consuming it. */
  list(): Promise<DeadLetterEntry[]>;
  validate(body: string): Promise<Verdict>;
  /** Back to the source queue, body byte for byte; `force` sends bodies that Validate refuses too. */
  redrive(selection: Selection, options: { force: boolean }): Promise<ActionOutcome>;
  delete(selection: Selection): Promise<ActionOutcome>;
  /** Sends an edited body to the source queue in place of the DLQ message `id` (which is then removed). */
  resend(id: string, body: string): Promise<ActionOutcome>;
}

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;

function toEntry(letter: DeadLetter): DeadLetterEntry {
  const { rawCause: _raw, verdict, ...rest } = letter;
  return { ...rest, verdict: toVerdict(verdict), ...(verdict.valid ? { eventId: verdict.eventId } : {}) };
}

function toVerdict(verdict: ReturnType<typeof checkBody>): Verdict {
  return verdict.valid ? { valid: true, eventId: verdict.eventId } : { valid: false, errorName: verdict.errorName, problems: verdict.problems };
}

/**
 * The DLQ actions on the local queues: the functions of `dead-letters.ts`, which `npm run dlq` calls too.
 */
export function localDeadLetterActions(queues: DeadLetterQueues): DeadLetterActions {
  return {
    list: async () => (await listDeadLetters(queues)).letters.map(toEntry),
    validate: async (body) => toVerdict(checkBody(body)),
    redrive: async (selection, { force }) => {
      const result = await redriveDeadLetters(queues, { selection, force });
      const parts = [`redriven ${result.redriven.length}`];
      if (result.leftInvalid.length > 0) parts.push(`left ${plural(result.leftInvalid.length, "body")} that can never pass Validate (redrive with force to send them anyway)`);
      if (result.failed.length > 0) parts.push(`failed ${result.failed.length}: ${result.failed.map((failure) => failure.reason).join("; ")}`);
      if (result.notFound.length > 0) parts.push(`not in the DLQ: ${result.notFound.join(", ")}`);
      return { ok: result.failed.length === 0 && result.notFound.length === 0, detail: parts.join("; ") };
    },
    delete: async (selection) => {
      const result = await deleteDeadLetters(queues, selection);
      const parts = [`deleted ${result.deleted.length}`];
      if (result.notFound.length > 0) parts.push(`not in the DLQ: ${result.notFound.join(", ")}`);
      return { ok: result.notFound.length === 0, detail: parts.join("; ") };
    },
    resend: async (id, body) => {
      const result = await sendEditedBody(queues, id, body);
      if (!result.sent) return { ok: false, detail: `not sent: ${result.verdict.problems.join("; ")}` };
      return { ok: true, detail: `sent as message ${result.newMessageId} (redrive ${result.redriveCount}); ${id} removed from the DLQ` };
    },
  };
}
