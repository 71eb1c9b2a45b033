import { describe, expect, it } from "vitest";
import type { DonationCreatedEvent } from "./donation-event";
import { groupCopies } from "./duplicates";

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

/** Messages as the round holds them: a label and the event each carries. */
const round = (...events: DonationCreatedEvent[]) => events.map((event, index) => ({ label: `m${index + 1}`, event }));
const labels = (items: { label: string }[]) => items.map((item) => item.label);

describe("groupCopies", () => {
  it("makes every message a leader when no event repeats", () => {
    // Arrange
    const messages = round(A, B, C);

    // Act
    const groups = groupCopies(messages, (m) => m.event);

    // Assert
    expect(labels(groups.leaders)).toEqual(["m1", "m2", "m3"]);
    expect(groups.copies).toEqual([]);
    expect(groups.conflicts).toEqual([]);
  });

  it("lets the first copy of an event lead and ties later identical copies to it", () => {
    // Arrange
    const messages = round(B, A, C, A, A);

    // Act
    const groups = groupCopies(messages, (m) => m.event);

    // Assert
    expect(labels(groups.leaders)).toEqual(["m1", "m2", "m3"]);
    expect(groups.copies.map(({ item, leader }) => [item.label, leader.label])).toEqual([
      ["m4", "m2"],
      ["m5", "m2"],
    ]);
  });

  it("treats an Id with different values as a conflict, not a copy", () => {
    // Arrange
    const messages = round(A, donation(A.Id, { DonationAmount: 999 }));

    // Act
    const groups = groupCopies(messages, (m) => m.event);

    // Assert
    expect(labels(groups.leaders)).toEqual(["m1"]);
    expect(groups.copies).toEqual([]);
    expect(groups.conflicts.map(({ item, leader }) => [item.label, leader.label])).toEqual([["m2", "m1"]]);
  });

  it("compares whole events: a different display name is a conflict", () => {
    // Arrange
    const messages = round(C, donation(C.Id, { DonorDisplayName: "Li Hua" }));

    // Act
    const groups = groupCopies(messages, (m) => m.event);

    // Assert
    expect(groups.conflicts).toHaveLength(1);
  });
});
