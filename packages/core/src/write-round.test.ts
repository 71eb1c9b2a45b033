import { type AirtableEmulator, DEFAULT_BASE_ID, DEFAULT_TABLE_NAME, DEFAULT_TOKEN, startAirtableEmulator } from "@fundraise-sync/airtable-emulator";
import { afterEach, describe, expect, it } from "vitest";
import { type AirtableTarget, DonationWriter } from "./airtable-writer";
import { type DonationCreatedEvent, serializeDonationEvent } from "./donation-event";
import { DonationField } from "./donation-fields";
import { ErrorName } from "./errors";
import type { ReceivedMessage } from "./queue";
import { sampleDonation } from "./sample-donations";
import type { BudgetClock } from "./request-budget";
import { type Round, type RoundWriterOptions, WritePolicy, emptyRound, writeRound } from "./write-round";

let emulator: AirtableEmulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function writerFor(options: Parameters<typeof startAirtableEmulator>[0], requestsPerSecond: number) {
  emulator = await startAirtableEmulator({ port: 0, ...options });
  const target: AirtableTarget = {
    token: DEFAULT_TOKEN,
    baseId: DEFAULT_BASE_ID,
    tableName: DEFAULT_TABLE_NAME,
    endpointUrl: emulator.url,
    requestTimeoutMs: 2_000,
    requestsPerSecond,
  };
  return { emulator, options: { writer: new DonationWriter(target), target, deadline: Date.now() + 60_000 } };
}

let sequence = 0;
/** A message as ReceiveBatch hands it on, carrying `event` (or a raw body). */
const message = (event: DonationCreatedEvent | string): ReceivedMessage => {
  sequence++;
  return {
    MessageId: `m-${sequence}`,
    ReceiptHandle: `rh-${sequence}`,
    Body: typeof event === "string" ? event : serializeDonationEvent(event),
    Attributes: { ApproximateReceiveCount: "1" },
  };
};
const firstAttempt = (messages: ReceivedMessage[]): Round => ({ ...emptyRound(), items: messages });

/** A clock that moves only when the writer sleeps on it (HTTP to the emulator takes no clock time): 30 s locks, instantly. */
function manualClock(start = Date.now()): BudgetClock {
  let now = start;
  return { now: () => now, sleep: async (ms) => void (now += Math.max(0, ms)) };
}

/** The options' writer, recording the clock time each request leaves at. */
function timedWriter(options: RoundWriterOptions, clock: BudgetClock) {
  const sentAt: number[] = [];
  const writer = { upsert: (events: readonly DonationCreatedEvent[]) => (sentAt.push(clock.now()), options.writer.upsert(events)) };
  return { sentAt, options: { ...options, writer, clock, deadline: Number.MAX_SAFE_INTEGER } };
}
const idsOf = (emulator: AirtableEmulator) => emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME).map((r) => r.fields[DonationField.Id]);

describe("writeRound against the Airtable emulator", () => {
  it("writes 60 donations in 6 requests without a 429 from a base that allows exactly the share", async () => {
    // Arrange: the emulator enforces 3 requests/s with a 30 s lock; the pipeline's share is 3
    const { emulator, options } = await writerFor({ rateLimit: { requestsPerSecond: 3, penaltyMs: 30_000 } }, 3);
    const events = Array.from({ length: 60 }, () => sampleDonation());

    // Act
    const round = await writeRound(firstAttempt(events.map(message)), options);

    // Assert
    expect(emulator.stats()).toMatchObject({ requests: 6, rateLimited: 0 });
    expect(round).toMatchObject({ received: 60, pending: [], deadLetter: [], retryAt: null, requests: 6 });
    expect(round.written.map((w) => w.eventId).sort()).toEqual(events.map((e) => e.Id).sort());
    expect(round.written.every((w) => w.outcome === "created")).toBe(true);
    expect(round.budget.recentAnswers.length).toBeGreaterThan(0);
  });

  it("never puts two copies of one event in a request: the first writes, the copy follows it", async () => {
    // Arrange
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    const [a, b] = [sampleDonation(), sampleDonation()];
    const messages = [message(a!), message(b!), message(a!)];

    // Act
    const round = await writeRound(firstAttempt(messages), options);

    // Assert
    expect(emulator.stats().requests).toBe(1);
    expect(round.written.map((w) => [w.MessageId, w.outcome])).toEqual([
      [messages[0]!.MessageId, "created"],
      [messages[1]!.MessageId, "created"],
      [messages[2]!.MessageId, "copy"],
    ]);
    expect(idsOf(emulator).sort()).toEqual([a!.Id, b!.Id].sort());
  });

  it("dead-letters a message whose Id another message carries with different values, and writes the first", async () => {
    // Arrange
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    const original = sampleDonation();
    const conflicting = { ...original, DonationAmount: original.DonationAmount + 1 };
    const messages = [message(original), message(conflicting)];

    // Act
    const round = await writeRound(firstAttempt(messages), options);

    // Assert
    expect(round.written.map((w) => w.MessageId)).toEqual([messages[0]!.MessageId]);
    expect(round.deadLetter).toHaveLength(1);
    expect(round.deadLetter[0]!.message.Body).toBe(messages[1]!.Body);
    expect(round.deadLetter[0]!.failure.Error).toBe(ErrorName.InvalidDonationEvent);
    expect(JSON.parse(round.deadLetter[0]!.failure.Cause).errorMessage).toContain(`(${messages[0]!.MessageId}) carries the same Id`);
    expect(idsOf(emulator)).toEqual([original.Id]);
  });

  it("finds two refused records among ten by halving, and writes the other eight once", async () => {
    // Arrange
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    const events = Array.from({ length: 10 }, (_, i) => sampleDonation({ DonorDisplayName: i === 2 || i === 7 ? "Refused" : `Donor ${i}` }));
    emulator.faults.failWhen({ field: DonationField.DonorDisplayName, equals: "Refused" }, { status: 422, type: "INVALID_VALUE_FOR_COLUMN" });
    const messages = events.map(message);

    // Act
    const round = await writeRound(firstAttempt(messages), options);

    // Assert
    expect(round.deadLetter.map((d) => d.message.MessageId).sort()).toEqual([messages[2]!.MessageId, messages[7]!.MessageId].sort());
    expect(round.deadLetter.every((d) => d.failure.Error === ErrorName.AirtableRecordRejected)).toBe(true);
    expect(round.written).toHaveLength(8);
    expect(emulator.stats().records.created).toBe(8);
    expect(round.requests).toBe(emulator.stats().requests);
  });

  it("stops at a 429 and asks to retry after Airtable's 30 s lock; the next attempt writes the rest", async () => {
    // Arrange
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    const messages = Array.from({ length: 30 }, () => message(sampleDonation()));
    emulator.faults.failNext(1, { status: 429 });
    const before = Date.now();
    const clock = manualClock(before);
    const timed = timedWriter(options, clock);

    // Act
    const paused = await writeRound(firstAttempt(messages), timed.options);
    const resumed = await writeRound(paused, timed.options);

    // Assert: the 429 stopped every lane; nothing was dead-lettered
    expect(paused.deadLetter).toEqual([]);
    expect(paused.written.length + paused.pending.length).toBe(30);
    expect(paused.pending.length).toBeGreaterThanOrEqual(10);
    expect(Date.parse(paused.retryAt!) - before).toBeGreaterThanOrEqual(WritePolicy.rateLimitedWaitSeconds * 1000);
    expect(paused.lastError?.Error).toBe(ErrorName.AirtableRateLimited);
    expect(resumed).toMatchObject({ pending: [], retryAt: null, attempt: 2, deadLetter: [] });
    expect(resumed.written).toHaveLength(30);
    expect(emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME)).toHaveLength(30);
  });

  it("sends nothing before the lock ends, however early the next attempt is woken (AWS's Wait truncates to the second)", async () => {
    // Arrange: a 429 at a time with milliseconds, then a wake-up 999 ms before it (as a truncated Wait would)
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    emulator.faults.failNext(1, { status: 429 });
    const clock = manualClock(Date.parse("2026-12-01T10:00:00.400Z"));
    const timed = timedWriter(options, clock);
    const paused = await writeRound(firstAttempt([message(sampleDonation())]), timed.options);
    const lockEnds = clock.now() + WritePolicy.rateLimitedWaitSeconds * 1000;
    clock.sleep(Date.parse(paused.retryAt!) - clock.now() - 999);

    // Act
    const resumed = await writeRound(paused, timed.options);

    // Assert: the retry time is a whole second at or after the lock's end; the second request left after it
    expect(Date.parse(paused.retryAt!) % 1000).toBe(0);
    expect(Date.parse(paused.retryAt!)).toBeGreaterThanOrEqual(lockEnds);
    expect(timed.sentAt).toHaveLength(2);
    expect(timed.sentAt[1]!).toBeGreaterThanOrEqual(lockEnds);
    expect(resumed.written).toHaveLength(1);
  });

  it("asks to wait again, sending nothing, when woken too early to wait out the lock before its deadline", async () => {
    // Arrange
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    emulator.faults.failNext(1, { status: 429 });
    const clock = manualClock();
    const timed = timedWriter(options, clock);
    const paused = await writeRound(firstAttempt([message(sampleDonation())]), timed.options);

    // Act: a continuation (or redelivery) 5 s into the lock, with 10 s left in the invocation
    clock.sleep(5_000);
    const again = await writeRound(paused, { ...timed.options, deadline: clock.now() + 10_000 });

    // Assert
    expect(timed.sentAt).toHaveLength(1);
    expect(again.retryAt).toBe(paused.retryAt);
    expect(again.pending).toHaveLength(1);
  });

  it("holds the round for a new execution, never dead-letters it, when 429s outlast this execution's attempts", async () => {
    // Arrange
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    emulator.faults.failNext(WritePolicy.maxAttempts, { status: 429 });
    let round: Round = { ...firstAttempt([message(sampleDonation()), message(sampleDonation())]), holdLimitSeconds: 3600 };
    const { options: timedOptions } = timedWriter(options, manualClock());

    // Act
    for (let attempt = 0; attempt < WritePolicy.maxAttempts; attempt++) round = await writeRound(round, timedOptions);

    // Assert
    expect(round).toMatchObject({ pending: [], written: [], deadLetter: [], release: [], retryAt: null, lockedUntil: null });
    expect(round.held?.pending).toHaveLength(2);
    expect(round.keepHidden.map((m) => m.MessageId)).toEqual(round.held!.pending.map((m) => m.MessageId));
    expect(round.held?.circuit.failures).toBe(WritePolicy.maxAttempts);
  });

  it("backs off 2, 4, 8, 16 s on 5xx, holds the round after the last attempt, and writes it once the base is back", async () => {
    // Arrange
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    emulator.faults.failNext(WritePolicy.maxAttempts, { status: 503 });
    const donation = sampleDonation();
    let round: Round = { ...firstAttempt([message(donation)]), holdLimitSeconds: 3600 };
    const waits: number[] = [];
    for (let attempt = 0; attempt < WritePolicy.maxAttempts; attempt++) {
      const before = Date.now();
      round = await writeRound(round, options);
      // Rounded up to a whole second for the Wait state: floor gives the backoff itself.
      if (round.retryAt) waits.push(Math.floor((Date.parse(round.retryAt) - before) / 1000));
    }
    const held = round.held!;

    // Act: the next execution resumes it (what ResumeHeldRound passes), the base answers again
    const resumed = await writeRound({ ...emptyRound(round.budget), pending: held.pending, retryAt: held.retryAt, circuit: held.circuit, heldSince: held.heldSince, holdLimitSeconds: 3600 }, options);

    // Assert
    // Each wait is the backoff, rounded up to the next whole second for the Wait state (a loaded machine may cross one).
    [2, 4, 8, 16].forEach((backoff, index) => expect(waits[index]).toBeGreaterThanOrEqual(backoff));
    [2, 4, 8, 16].forEach((backoff, index) => expect(waits[index]).toBeLessThanOrEqual(backoff + 1));
    expect(waits).toHaveLength(4);
    expect(round.deadLetter).toEqual([]);
    expect(held.circuit.failingSince).not.toBeNull();
    expect(held.lastError?.Error).toBe(ErrorName.AirtableUnavailable);
    expect(resumed.written.map((w) => w.eventId)).toEqual([donation.Id]);
    expect(resumed.circuit).toEqual({ failures: 0, failingSince: null });
    expect(resumed.held).toBeNull();
  });

  it("dead-letters a record that Airtable answers 500 to alone, while it writes every record beside it", async () => {
    // Arrange: 30 donations, one of which the base fails on (a 500 for any request that holds it)
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    const poison = sampleDonation({ DonorDisplayName: "Breaks The Base" });
    const donations = [...Array.from({ length: 14 }, () => sampleDonation()), poison, ...Array.from({ length: 15 }, () => sampleDonation())];
    emulator.faults.failWhen({ field: "Donor Display Name", equals: "Breaks The Base" }, { status: 500 });

    // Act: attempts as the state machine makes them (it waits between them)
    let round: Round = { ...firstAttempt(donations.map(message)), holdLimitSeconds: 3600 };
    const attempts: Round[] = [];
    do {
      round = await writeRound(round, options);
      attempts.push(round);
    } while (round.retryAt !== null);

    // Assert: written in the first attempt; the record alone then fails in each attempt (a strike each), and is
    // dead-lettered at the fifth, before the round would be held
    expect(attempts).toHaveLength(WritePolicy.strikesToBlameARecord);
    expect(attempts[0]!.written).toHaveLength(29);
    expect(round.written.map((w) => w.eventId).sort()).toEqual(donations.filter((d) => d !== poison).map((d) => d.Id).sort());
    expect(round.deadLetter).toHaveLength(1);
    expect(JSON.parse(round.deadLetter[0]!.message.Body).Id).toBe(poison.Id);
    expect(round.deadLetter[0]!.failure.Error).toBe(ErrorName.AirtableUnavailable);
    expect(round.deadLetter[0]!.failure.Cause).toContain("failed on this record alone");
    expect(round).toMatchObject({ pending: [], retryAt: null, held: null });
    expect(round.circuit.failures).toBe(0);
  });

  it("dead-letters nothing when the base goes down in the middle of a round: it stops and retries", async () => {
    // Arrange: the base answers the first request, then fails every one
    const { emulator, options } = await writerFor({ rateLimit: false }, 1);
    const donations = Array.from({ length: 30 }, () => sampleDonation());
    let answered = 0;
    const writer = {
      upsert: async (events: readonly DonationCreatedEvent[]) => {
        if (answered++ === 1) emulator.faults.add({ status: 503 });
        return options.writer.upsert(events);
      },
    };

    // Act
    const round = await writeRound({ ...firstAttempt(donations.map(message)), holdLimitSeconds: 3600 }, { ...options, writer });

    // Assert: one request written, one 503, one half tried (a 503 again: the base), then a wait
    expect(round.written).toHaveLength(10);
    expect(round.deadLetter).toEqual([]);
    expect(round.pending).toHaveLength(20);
    expect(round.retryAt).not.toBeNull();
    expect(emulator.stats().requests).toBe(3);
  });

  it("sends one trial request per attempt once the circuit is open, and the rest of the round once it is answered", async () => {
    // Arrange: 40 donations (4 requests); the circuit has been open for a while
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    const open = { failures: WritePolicy.circuitOpensAfter + 1, failingSince: new Date(Date.now() - 60_000).toISOString() };
    const round: Round = { ...firstAttempt(Array.from({ length: 40 }, () => message(sampleDonation()))), circuit: open };
    emulator.faults.failNext(1, { status: 503 });

    // Act
    const failed = await writeRound(round, options);
    const requestsWhileDown = emulator.stats().requests;
    const healed = await writeRound(failed, options);

    // Assert
    expect(requestsWhileDown).toBe(1);
    expect(failed.circuit.failures).toBe(WritePolicy.circuitOpensAfter + 2);
    expect(failed.circuit.failingSince).toBe(open.failingSince);
    expect(failed.retryAt).not.toBeNull();
    expect(Date.parse(failed.retryAt!) - Date.now()).toBeGreaterThan((WritePolicy.unavailableBackoff.maxSeconds - 2) * 1000);
    expect(healed.written).toHaveLength(40);
    expect(healed.circuit).toEqual({ failures: 0, failingSince: null });
  });

  it("gives a held round back to the queue once SQS could no longer keep it hidden, and lets the drain stop", async () => {
    // Arrange: held for longer than the limit
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);
    emulator.faults.failNext(1, { status: 503 });
    const round: Round = {
      ...emptyRound(),
      pending: [message(sampleDonation())],
      attempt: WritePolicy.maxAttempts - 1,
      heldSince: new Date(Date.now() - 2 * 3600_000).toISOString(),
      holdLimitSeconds: 3600,
    };

    // Act
    const after = await writeRound(round, options);

    // Assert
    expect(after.held).toBeNull();
    expect(after.deadLetter).toEqual([]);
    expect(after.release).toHaveLength(1);
    expect(after.releaseAt).toBe(after.lockedUntil);
    expect(after.lockedUntil).not.toBeNull();
  });

  it("throws a configuration error (wrong token) so the execution fails and nothing is dead-lettered", async () => {
    // Arrange
    const { options } = await writerFor({ rateLimit: false, token: "patSomeoneElse.x" }, 4);

    // Act
    const writing = writeRound(firstAttempt([message(sampleDonation())]), options);

    // Assert
    await expect(writing).rejects.toMatchObject({ name: ErrorName.AirtableConfiguration });
  });

  it("starts no request after its deadline, and asks to carry on at once", async () => {
    // Arrange
    const { emulator, options } = await writerFor({ rateLimit: false }, 4);

    // Act
    const round = await writeRound(firstAttempt([message(sampleDonation())]), { ...options, deadline: Date.now() - 1 });

    // Assert
    expect(emulator.stats().requests).toBe(0);
    expect(round.pending).toHaveLength(1);
    expect(Date.parse(round.retryAt!)).toBeLessThanOrEqual(Date.now());
  });

  it("keeps messages settled in their Map iteration apart, counted as received", async () => {
    // Arrange
    const { options } = await writerFor({ rateLimit: false }, 4);
    const valid = message(sampleDonation());

    // Act
    const round = await writeRound(
      { ...emptyRound(), items: [valid, { MessageId: "invalid-1", outcome: "dead-lettered" }] },
      options,
    );

    // Assert
    expect(round.received).toBe(2);
    expect(round.settled).toEqual([{ MessageId: "invalid-1", outcome: "dead-lettered" }]);
    expect(round.written.map((w) => w.MessageId)).toEqual([valid.MessageId]);
    expect(round).not.toHaveProperty("items");
  });
});
