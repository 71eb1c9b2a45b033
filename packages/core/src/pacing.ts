import { AIRTABLE_REQUESTS_PER_SECOND } from "./limits";

/**
 * The shortest time each of `concurrency` parallel writers must spend per request so that together they never exceed
 * `requestsPerSecond`: with each writer spaced `concurrency / rate` seconds apart, any one-second window sees at most
 * `rate` requests. A 5% margin absorbs clock and network jitter between our timer and Airtable's.
 */
export function writeIntervalMs(concurrency: number, requestsPerSecond = AIRTABLE_REQUESTS_PER_SECOND): number {
  return Math.ceil((concurrency * 1000 * 1.05) / requestsPerSecond);
}
