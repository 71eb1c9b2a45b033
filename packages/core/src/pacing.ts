import { AIRTABLE_REQUESTS_PER_SECOND } from "./limits";

/**
 * The shortest time each of `concurrency` parallel writers must spend per request so that together they never exceed
 * `requestsPerSecond`: each writer then starts a request at most once per `concurrency / rate` seconds, so any
 * one-second window sees at most `rate` requests.
 *
 * No extra margin is added: between two writes of one Map slot come the rest of an iteration (DeleteMessage,
 * Validate, the Choice: two Lambda invocations and several state transitions, tens of milliseconds locally and more
 * on AWS), which spaces a slot's requests beyond the interval. The soak benchmark counts the 429s this leaves: zero.
 */
export function writeIntervalMs(concurrency: number, requestsPerSecond = AIRTABLE_REQUESTS_PER_SECOND): number {
  return Math.ceil((concurrency * 1000 * 1.1) / requestsPerSecond);
}
