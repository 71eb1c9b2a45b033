import { isDeepStrictEqual } from "node:util";
import type { DonationCreatedEvent } from "./donation-event";

/** How the messages of one round relate by event `Id`. */
export interface CopyGroups<T> {
  /** The first message of each event: the only one that writes. */
  leaders: T[];
  /** Later messages carrying the same event as a leader: they follow its fate (written, dead-lettered or kept). */
  copies: { item: T; leader: T }[];
  /** Later messages with a leader's `Id` but different values: which one is right is a person's call. */
  conflicts: { item: T; leader: T }[];
}

/**
 * Groups a round's messages by the event they carry.
 *
 * SQS delivers at least once, so one event may arrive twice in a round. Airtable refuses an upsert request whose
 * records share the merge value, and its upsert is not atomic across concurrent requests for one key, so only the
 * first copy writes: copies never share a request, nor race each other.
 *
 * @param items the round's messages, in receive order.
 * @param eventOf the validated event a message carries.
 */
export function groupCopies<T>(items: readonly T[], eventOf: (item: T) => DonationCreatedEvent): CopyGroups<T> {
  const groups: CopyGroups<T> = { leaders: [], copies: [], conflicts: [] };
  const firstById = new Map<string, { item: T; event: DonationCreatedEvent }>();
  for (const item of items) {
    const event = eventOf(item);
    const first = firstById.get(event.Id);
    if (!first) {
      firstById.set(event.Id, { item, event });
      groups.leaders.push(item);
    } else if (isDeepStrictEqual(first.event, event)) {
      groups.copies.push({ item, leader: first.item });
    } else {
      groups.conflicts.push({ item, leader: first.item });
    }
  }
  return groups;
}
