import { AIRTABLE_REQUESTS_PER_SECOND } from "./limits";

/**
 * How long each of `concurrency` parallel writers waits after Airtable answers before its next request, so that
 * together they never exceed `requestsPerSecond`: `concurrency / rate` seconds.
 *
 * The wait starts at the *answer*, not at the send, and that is what makes it exact without a safety margin: Airtable
 * has seen a request before it answers it, and the next request from the same slot leaves no sooner than the interval
 * after that answer, so Airtable sees one slot's requests at least the interval apart, whatever the network or event
 * loop jitter. With `concurrency` slots, any one-second window then holds at most `rate` requests. (Counting from the
 * send instead needs a margin: a request delayed on its way in can land closer to the next one; a 429 locks the base
 * for 30 s, so that is never worth the risk.)
 */
export function writeIntervalMs(concurrency: number, requestsPerSecond = AIRTABLE_REQUESTS_PER_SECOND): number {
  return Math.ceil((concurrency * 1000) / requestsPerSecond);
}
