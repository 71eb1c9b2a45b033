/**
 * Where a donation is now, beyond the history: the interface is defined beside its implementation
 * (`@fundraise-sync/local/whereabouts`); the console imports its types only and is handed one.
 */
export type { BaseRecord, QueuedMessage, Whereabouts } from "@fundraise-sync/local/whereabouts";
