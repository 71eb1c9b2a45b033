import { randomUUID } from "node:crypto";
import type { DonationCreatedEvent } from "./donation-event";

const DONORS = ["Ada L.", "Grace H.", "Alan T.", "Katherine J.", "Søren K.", "Zoë Ø.", "李华", "Amélie P.", "Nnamdi O."];
const AMOUNTS = [5, 10, 20, 25, 25.5, 50, 75, 100, 250, 1000];

/**
 * Realistic sample donations for local runs, benchmarks and tests: Guids, a UTC creation date at Newtonsoft's
 * 7-digit precision, some anonymous donors (null UserId and name), unicode names.
 */
export function sampleDonation(overrides: Partial<DonationCreatedEvent> = {}, seq = Math.floor(Math.random() * 1e6)): DonationCreatedEvent {
  const anonymous = seq % 7 === 3;
  const now = new Date().toISOString().replace(/\.(\d{3})Z$/, (_, ms: string) => `.${ms}${String(seq % 10_000).padStart(4, "0")}Z`);
  return {
    Id: randomUUID(),
    CreationDate: now,
    UserId: anonymous ? null : randomUUID(),
    FundraiserId: randomUUID(),
    DonationAmount: AMOUNTS[seq % AMOUNTS.length]!,
    DonorDisplayName: anonymous ? null : DONORS[seq % DONORS.length]!,
    ...overrides,
  };
}

/** `count` sample donations. */
export function sampleDonations(count: number): DonationCreatedEvent[] {
  return Array.from({ length: count }, (_, seq) => sampleDonation({}, seq));
}
