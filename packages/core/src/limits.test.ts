import { describe, expect, it } from "vitest";
import { ErrorName, InvalidDonationEventError } from "./errors";
import {
  ATTRIBUTE_VALUE_LIMITS,
  DEAD_LETTER_ATTRIBUTE_BOUNDS,
  DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES,
  DONATIONS_QUEUE_MAX_MESSAGE_BYTES,
  MAX_ERROR_CAUSE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_ERROR_NAME_BYTES,
  MAX_EVENT_BYTES,
  REDRIVE_ATTRIBUTE_MAX_BYTES,
  SQS_MAX_MESSAGE_ATTRIBUTES,
} from "./limits";
import { jsonStringBytes, lambdaErrorCause, type MessageAttributeInput, sqsMessageBytes } from "./message-size";
import { DeadLetterAttribute, type DeadLetterAttributeName } from "./names";
import { failureOf } from "./write-round";

/** Text that is hard on every bound at once: JSON escapes, control characters, DEL, line breaks, 4-byte characters. */
const NASTY = `"quoted" \\ \u0001\u001f\x7F\n\r 🎉 李 `.repeat(500);

/** The longest ErrorCause core can produce: an invalid event whose every field is wrong with the nastiest values. */
const worstInvalidEventCause = () =>
  lambdaErrorCause(new InvalidDonationEventError(Array.from({ length: 40 }, (_, index) => `Field${index}: must be something, got ${NASTY}`)));

/** A value of exactly `bytes` UTF-8 bytes. */
const valueOf = (bytes: number, dataType: string) => (dataType === "Number" ? "9" : "x").repeat(bytes);

/** Every attribute at its bound, as SQS would count them. */
function attributesAtTheirBounds(names: readonly DeadLetterAttributeName[]): Record<string, MessageAttributeInput> {
  return Object.fromEntries(
    names.map((name) => {
      const { dataType, maxValueBytes } = DEAD_LETTER_ATTRIBUTE_BOUNDS[name];
      return [name, { DataType: dataType, StringValue: valueOf(maxValueBytes, dataType) }];
    }),
  );
}

describe("the size budget: body max + every attribute at its max ≤ each queue's maximum", () => {
  it("bounds every attribute the state machine or the tools set", () => {
    expect(Object.keys(DEAD_LETTER_ATTRIBUTE_BOUNDS).sort()).toEqual(Object.values(DeadLetterAttribute).sort());
    expect(Object.keys(DeadLetterAttribute).length).toBeLessThanOrEqual(SQS_MAX_MESSAGE_ATTRIBUTES);
  });

  it("donations queue: a body at the producer's limit with the largest RedriveCount a redrive adds fits", () => {
    // Arrange
    const redriven = sqsMessageBytes("x".repeat(MAX_EVENT_BYTES), attributesAtTheirBounds([DeadLetterAttribute.RedriveCount]));

    // Assert
    expect(String(Number.MAX_SAFE_INTEGER)).toHaveLength(ATTRIBUTE_VALUE_LIMITS.countDigits);
    expect(REDRIVE_ATTRIBUTE_MAX_BYTES).toBe(12 + 6 + 16);
    expect(redriven).toBe(3072 + 34);
    expect(redriven).toBeLessThanOrEqual(DONATIONS_QUEUE_MAX_MESSAGE_BYTES);
  });

  it("dead-letter queue: a body at the donations queue's maximum with every reason attribute at its bound fits", () => {
    // Arrange: the body may be anything the donations queue holds (a producer other than `publish` may send up to its
    // maximum without attributes; Validate then dead-letters it as too large)
    const worst = sqsMessageBytes("x".repeat(DONATIONS_QUEUE_MAX_MESSAGE_BYTES), attributesAtTheirBounds(Object.values(DeadLetterAttribute)));

    // Assert: the arithmetic written out in limits.ts
    expect(worst).toBe(3106 + 79 + (10 + 6 + MAX_ERROR_CAUSE_BYTES) + 97 + 274 + 34 + 149 + 34);
    expect(worst).toBe(6014);
    expect(worst).toBeLessThanOrEqual(DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES);
  });

  it("ErrorCause: an invalid event's Lambda cause stays within its bound, however long and odd the problems", () => {
    // Act
    const cause = worstInvalidEventCause();

    // Assert
    expect(Buffer.byteLength(cause, "utf8")).toBeLessThanOrEqual(MAX_ERROR_CAUSE_BYTES);
    expect(JSON.parse(cause)).toMatchObject({ errorType: ErrorName.InvalidDonationEvent, trace: [expect.stringMatching(/^InvalidDonationEventError: /)] });
  });

  it("...and has teeth: the same problems unbounded would not fit", () => {
    const problems = Array.from({ length: 40 }, (_, index) => `Field${index}: must be something, got ${NASTY}`);
    const unbounded = lambdaErrorCause(Object.assign(new Error(`Not a valid DonationCreated event: ${problems.join("; ")}`), { name: ErrorName.InvalidDonationEvent }));
    expect(Buffer.byteLength(unbounded, "utf8")).toBeGreaterThan(DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES);
  });

  it("ErrorName and ErrorCause of what WriteToAirtable dead-letters stay within their bounds, and are never empty", () => {
    // Arrange: an unexpected error with a silly name and an Airtable-style message quoting a whole field value
    const odd = Object.assign(new Error(`Field "DonorDisplayName" cannot accept the provided value: ${NASTY}`), { name: `Weird${"Error".repeat(40)}` });
    const empty = Object.assign(new Error(""), { name: "" });

    for (const error of [odd, empty]) {
      // Act
      const { Error: name, Cause } = failureOf(error);

      // Assert
      expect(jsonStringBytes(name)).toBeLessThanOrEqual(MAX_ERROR_NAME_BYTES);
      expect(Buffer.byteLength(Cause, "utf8")).toBeLessThanOrEqual(MAX_ERROR_CAUSE_BYTES);
      expect(name).not.toBe("");
      expect(JSON.parse(Cause).errorMessage).not.toBe("");
    }
  });

  it("every error name the pipeline defines fits ErrorName's bound", () => {
    for (const name of Object.values(ErrorName)) expect(name.length).toBeLessThanOrEqual(MAX_ERROR_NAME_BYTES);
  });

  it("an invalid event's message is cut to its bound, while every problem stays listed in full", () => {
    const error = new InvalidDonationEventError([`DonorDisplayName: ${NASTY}`, "Id: is missing"]);
    expect(jsonStringBytes(error.message)).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(error.message.endsWith("…")).toBe(true);
    expect(error.problems).toHaveLength(2);
    expect(error.problems[0]).toContain(NASTY);
  });
});
