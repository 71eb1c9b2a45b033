import { isDeepStrictEqual } from "node:util";
import { type DonationCreatedEvent, parseDonationEvent } from "./donation-event";
import { InvalidDonationEventError } from "./errors";

/**
 * Finds an earlier message in the same received batch that carries this same event.
 *
 * Airtable's upsert is not atomic across concurrent requests for one key: two copies of an event written by two Map
 * iterations at once could both create a record. So only the first copy in a batch writes; later copies are deleted
 * once validated (the first copy stays queued until it is written or dead-lettered, so nothing is lost).
 *
 * @param batchBodies the bodies of every message in the batch, in receive order.
 * @returns the index of the earlier copy, or undefined if this message is the first.
 * @throws {InvalidDonationEventError} if an earlier message has the same `Id` but different values: which one is right
 *   is a person's call, so this one is dead-lettered rather than silently dropped or overwritten.
 */
export function findEarlierCopy(
  event: DonationCreatedEvent,
  index: number,
  batchBodies: readonly string[],
): number | undefined {
  for (let earlier = 0; earlier < Math.min(index, batchBodies.length); earlier++) {
    const other = tryParse(batchBodies[earlier] ?? "");
    if (other?.Id !== event.Id) continue;
    if (isDeepStrictEqual(other, event)) return earlier;
    throw new InvalidDonationEventError([
      `another message in this batch (position ${earlier + 1}) carries the same Id ${event.Id} with different values`,
    ]);
  }
  return undefined;
}

function tryParse(body: string): DonationCreatedEvent | undefined {
  try {
    return parseDonationEvent(body);
  } catch {
    return undefined; // an invalid earlier message is dead-lettered on its own path
  }
}
