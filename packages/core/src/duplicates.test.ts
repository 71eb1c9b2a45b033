import { describe, expect, it } from "vitest";
import { type DonationCreatedEvent, parseDonationEvent, serializeDonationEvent } from "./donation-event";
import { findEarlierCopy } from "./duplicates";
import { ErrorName, InvalidDonationEventError } from "./errors";

const donation = (id: string, overrides: Partial<DonationCreatedEvent> = {}): DonationCreatedEvent => ({
  Id: id,
  CreationDate: "2018-06-10T14:03:27.123Z",
  UserId: null,
  FundraiserId: "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
  DonationAmount: 25.5,
  DonorDisplayName: "Ada L.",
  ...overrides,
});

const A = donation("0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17");
const B = donation("11111111-2222-4333-8444-555555555555", { DonationAmount: 10 });
const C = donation("99999999-8888-4777-8666-555555555555", { DonorDisplayName: "李华" });

describe("findEarlierCopy", () => {
  describe.each<{ case: string; bodies: string[]; event: DonationCreatedEvent; index: number; expected: number | undefined }>([
    {
      case: "the first copy of an event",
      bodies: [serializeDonationEvent(A), serializeDonationEvent(B), serializeDonationEvent(A)],
      event: A,
      index: 0,
      expected: undefined,
    },
    {
      case: "a message that has no copy before it",
      bodies: [serializeDonationEvent(A), serializeDonationEvent(B), serializeDonationEvent(C)],
      event: C,
      index: 2,
      expected: undefined,
    },
    {
      case: "a later identical copy",
      bodies: [serializeDonationEvent(B), serializeDonationEvent(A), serializeDonationEvent(C), serializeDonationEvent(A)],
      event: A,
      index: 3,
      expected: 1,
    },
    {
      case: "the third copy (points at the first, which is the one that writes)",
      bodies: [serializeDonationEvent(A), serializeDonationEvent(A), serializeDonationEvent(A)],
      event: A,
      index: 2,
      expected: 0,
    },
    {
      case: "a copy the producer wrote with 7 fractional digits and an upper-case Id (the same event once parsed)",
      bodies: [
        JSON.stringify({ ...A, Id: A.Id.toUpperCase(), CreationDate: "2018-06-10T14:03:27.1234567Z" }),
        serializeDonationEvent(A),
      ],
      event: A,
      index: 1,
      expected: 0,
    },
    {
      case: "a message after invalid ones (they are dead-lettered on their own path, not counted as copies)",
      bodies: [
        "not json",
        JSON.stringify({ ...A, DonationAmount: -5 }),
        JSON.stringify({ Id: A.Id }),
        serializeDonationEvent(A),
      ],
      event: A,
      index: 3,
      expected: undefined,
    },
  ])("$case", ({ bodies, event, index, expected }) => {
    it(`answers ${String(expected)}`, () => {
      // Act
      const earlier = findEarlierCopy(event, index, bodies);

      // Assert
      expect(earlier).toBe(expected);
    });
  });

  it("only looks before the message, never at later copies", () => {
    // Arrange: the same event at 0 and 2; asked about position 0
    const bodies = [serializeDonationEvent(A), serializeDonationEvent(B), serializeDonationEvent(A)];

    // Act + Assert: position 0 writes, position 2 is the copy
    expect(findEarlierCopy(A, 0, bodies)).toBeUndefined();
    expect(findEarlierCopy(parseDonationEvent(bodies[2]!), 2, bodies)).toBe(0);
  });

  it("refuses a message whose Id an earlier message carries with different values", () => {
    // Arrange: same Id, another amount: which one is right is a person's call
    const conflicting = donation(A.Id, { DonationAmount: 250 });
    const bodies = [serializeDonationEvent(B), serializeDonationEvent(A), serializeDonationEvent(conflicting)];

    // Act
    let thrown: unknown;
    try {
      findEarlierCopy(conflicting, 2, bodies);
    } catch (error) {
      thrown = error;
    }

    // Assert: dead-lettered with a reason naming the earlier message and the Id
    expect(thrown).toBeInstanceOf(InvalidDonationEventError);
    const error = thrown as InvalidDonationEventError;
    expect(error.name).toBe(ErrorName.InvalidDonationEvent);
    expect(error.problems).toEqual([
      `another message in this batch (position 2) carries the same Id ${A.Id} with different values`,
    ]);
  });
});
