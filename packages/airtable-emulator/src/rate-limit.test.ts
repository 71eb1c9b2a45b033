import { afterEach, describe, expect, it } from "vitest";
import { startAirtableEmulator, type AirtableEmulator } from "./server";
import { call, TABLE_PATH } from "./test-support";

describe("rate limiting like Airtable", () => {
  let emulator: AirtableEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
  });

  it("allows 5 requests per second, answers 429 to the 6th, then keeps the base limited for the penalty", async () => {
    // Arrange: a hand-moved clock
    let now = 1_000_000;
    emulator = await startAirtableEmulator({ port: 0, clock: { now: () => now } });
    const statuses: number[] = [];

    // Act
    for (let i = 0; i < 6; i++) statuses.push((await call(emulator, "GET", TABLE_PATH)).status);
    const limited = await call(emulator, "GET", TABLE_PATH);
    now += 29_999;
    const stillLimited = await call(emulator, "GET", TABLE_PATH);
    now += 1;
    const after = await call(emulator, "GET", TABLE_PATH);

    // Assess
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(limited.body).toEqual({ error: { type: "RATE_LIMIT_REACHED", message: "Rate limit exceeded. Please try again later" } });
    expect(stillLimited.status).toBe(429);
    expect(after.status).toBe(200);
    expect(emulator.stats().rateLimited).toBe(3);
  });

  it("uses a sliding one-second window", async () => {
    // Arrange
    let now = 0;
    emulator = await startAirtableEmulator({ port: 0, clock: { now: () => now } });

    // Act: 5 requests spread over 0.8 s, then one at 1.0 s (the first has left the window)
    for (let i = 0; i < 5; i++) {
      expect((await call(emulator, "GET", TABLE_PATH)).status).toBe(200);
      now += 200;
    }
    const sixth = await call(emulator, "GET", TABLE_PATH);
    const seventh = await call(emulator, "GET", TABLE_PATH);

    // Assess
    expect(sixth.status).toBe(200);
    expect(seventh.status).toBe(429);
  });

  it("counts only authenticated requests to real bases, and reset() lifts the penalty", async () => {
    // Arrange
    emulator = await startAirtableEmulator({ port: 0, rateLimit: { requestsPerSecond: 2, penaltyMs: 60_000 } });
    for (let i = 0; i < 5; i++) await call(emulator, "GET", TABLE_PATH, { token: "wrong" });
    for (let i = 0; i < 5; i++) await call(emulator, "GET", "/v0/appNope/Donations");

    // Act
    const ok = [await call(emulator, "GET", TABLE_PATH), await call(emulator, "GET", TABLE_PATH)];
    const limited = await call(emulator, "GET", TABLE_PATH);
    await emulator.reset();
    const afterReset = await call(emulator, "GET", TABLE_PATH);

    // Assess
    expect(ok.map((r) => r.status)).toEqual([200, 200]);
    expect(limited.status).toBe(429);
    expect(afterReset.status).toBe(200);
  });

  it("works with a real, shortened penalty", async () => {
    // Arrange
    emulator = await startAirtableEmulator({ port: 0, rateLimit: { requestsPerSecond: 1, penaltyMs: 150 } });
    await call(emulator, "GET", TABLE_PATH);

    // Act
    const limited = await call(emulator, "GET", TABLE_PATH);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = await call(emulator, "GET", TABLE_PATH);

    // Assess
    expect(limited.status).toBe(429);
    expect(after.status).toBe(200);
  });
});
