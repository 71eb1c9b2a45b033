import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_BASE_ID } from "./config";
import { startAirtableEmulator, type AirtableEmulator } from "./server";
import { call, donationFields, TABLE_PATH } from "./test-support";

describe("fault injection", () => {
  let emulator: AirtableEmulator;
  beforeEach(async () => {
    emulator = await startAirtableEmulator({ port: 0, rateLimit: false });
  });
  afterEach(async () => {
    await emulator.close();
  });

  it("fails the next N requests from code, then serves normally", async () => {
    // Arrange
    emulator.faults.failNext(2, { status: 500 });

    // Act
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(emulator, "GET", TABLE_PATH)).status);

    // Assess
    expect(statuses).toEqual([500, 500, 200]);
    expect(emulator.faults.list()).toEqual([]);
    expect(emulator.stats().injectedFaults).toBe(2);
  });

  it("sends 503 with Retry-After and an Airtable-shaped body", async () => {
    // Arrange
    emulator.faults.failNext(1, { status: 503, retryAfterSeconds: 7 });

    // Act
    const reply = await call(emulator, "GET", TABLE_PATH);

    // Assess
    expect(reply.status).toBe(503);
    expect(reply.headers.get("retry-after")).toBe("7");
    expect(reply.body).toEqual({ error: { type: "SERVICE_UNAVAILABLE", message: "Service unavailable" } });
  });

  it("counts injected 429s apart from rate-limited ones", async () => {
    // Arrange
    emulator.faults.failNext(1, { status: 429 });

    // Act
    const reply = await call(emulator, "GET", TABLE_PATH);

    // Assess
    expect(reply.body.error.type).toBe("RATE_LIMIT_REACHED");
    expect(emulator.stats()).toMatchObject({ injected429: 1, rateLimited: 0 });
  });

  it("fails a seeded fraction of requests reproducibly", async () => {
    // Arrange
    const run = async () => {
      await emulator.reset();
      emulator.faults.failFraction(0.5, { status: 502, seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push((await call(emulator, "GET", TABLE_PATH)).status);
      return statuses;
    };

    // Act
    const first = await run();
    const second = await run();

    // Assess
    expect(first).toEqual(second);
    const failed = first.filter((s) => s === 502).length;
    expect(failed).toBeGreaterThan(8);
    expect(failed).toBeLessThan(32);
  });

  it("adds latency", async () => {
    // Arrange
    emulator.faults.addLatency(150);

    // Act
    const started = performance.now();
    const reply = await call(emulator, "GET", TABLE_PATH);

    // Assess
    expect(reply.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it("leaves a request hanging until the client gives up, and close() still works", async () => {
    // Arrange
    emulator.faults.hang();

    // Act
    const outcome = await call(emulator, "GET", TABLE_PATH, { signal: AbortSignal.timeout(200) }).catch((e: Error) => e.name);
    const next = await call(emulator, "GET", TABLE_PATH);
    emulator.faults.hang({ times: 5 });
    const pending = call(emulator, "GET", TABLE_PATH).catch(() => "dropped");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await emulator.close();

    // Assess
    expect(outcome).toBe("TimeoutError");
    expect(next.status).toBe(200);
    expect(await pending).toBe("dropped");
    expect(emulator.stats().hung).toBe(2);
  });

  it("fails only the write holding a matching value", async () => {
    // Arrange
    emulator.faults.failWhen({ field: "Donor Display Name", equals: "FAIL" });

    // Act
    const good = await call(emulator, "POST", TABLE_PATH, { body: { records: [{ fields: donationFields() }] } });
    const bad = await call(emulator, "POST", TABLE_PATH, {
      body: { records: [{ fields: donationFields() }, { fields: donationFields({ "Donor Display Name": "FAIL" }) }] },
    });

    // Assess
    expect(good.status).toBe(200);
    expect(bad.status).toBe(422);
    expect(bad.body).toEqual({ error: { type: "INVALID_VALUE_FOR_COLUMN", message: 'Field "Donor Display Name" cannot accept the provided value' } });
    expect(emulator.records(DEFAULT_BASE_ID, "Donations")).toHaveLength(1);
  });

  it("scopes rules to a base and to reads or writes", async () => {
    // Arrange
    emulator.faults.add({ status: 500, operation: "write" });
    emulator.faults.add({ status: 503, baseId: "appOther" });

    // Act
    const read = await call(emulator, "GET", TABLE_PATH);
    const write = await call(emulator, "POST", TABLE_PATH, { body: { fields: {} } });

    // Assess
    expect(read.status).toBe(200);
    expect(write.status).toBe(500);
  });

  it("is programmable over HTTP: add, list, remove, clear", async () => {
    // Act
    const added = await call(emulator, "POST", "/__emulator/faults", { body: { status: 503, times: 1, retryAfterSeconds: 2 } });
    const listed = await call(emulator, "GET", "/__emulator/faults");
    const failed = await call(emulator, "GET", TABLE_PATH);
    const many = await call(emulator, "POST", "/__emulator/faults", {
      body: { rules: [{ match: { field: "Id", equals: "x" }, status: 422 }, { latencyMs: 10 }] },
    });
    const removed = await call(emulator, "DELETE", `/__emulator/faults/${many.body.rules[0].id}`);
    const cleared = await call(emulator, "DELETE", "/__emulator/faults");
    const invalid = await call(emulator, "POST", "/__emulator/faults", { body: { status: 200 } });

    // Assess
    expect(added.body.rules[0]).toMatchObject({ status: 503, times: 1, id: expect.any(String) });
    expect(listed.body.rules).toHaveLength(1);
    expect(failed.status).toBe(503);
    expect(failed.headers.get("retry-after")).toBe("2");
    expect(many.body.rules).toHaveLength(2);
    expect(removed.status).toBe(200);
    expect(cleared.body.rules).toEqual([]);
    expect(emulator.faults.list()).toEqual([]);
    expect(invalid.status).toBe(400);
  });
});

describe("counters", () => {
  it("counts requests per base and status, records written, and resets over HTTP", async () => {
    // Arrange
    const emulator = await startAirtableEmulator({ port: 0, rateLimit: false });
    try {
      const created = await call(emulator, "POST", TABLE_PATH, { body: { records: [{ fields: { Id: "a" } }, { fields: { Id: "b" } }] } });
      await call(emulator, "PATCH", TABLE_PATH, { body: { records: [{ id: created.body.records[0].id, fields: { Id: "c" } }] } });
      await call(emulator, "DELETE", `${TABLE_PATH}/${created.body.records[1].id}`);
      await call(emulator, "GET", TABLE_PATH, { token: null });

      // Act
      const stats = await call(emulator, "GET", "/__emulator/stats");
      const resetStats = await call(emulator, "POST", "/__emulator/reset");
      const afterStats = emulator.stats();
      const resetAll = await call(emulator, "POST", "/__emulator/reset?all=1");

      // Assess
      expect(stats.body).toMatchObject({
        requests: 4,
        byStatus: { "200": 3, "401": 1 },
        byBase: { [DEFAULT_BASE_ID]: { requests: 4, byStatus: { "200": 3, "401": 1 } } },
        records: { created: 2, updated: 1, deleted: 1 },
      });
      expect(resetStats.body).toEqual({ reset: "stats" });
      expect(afterStats.requests).toBe(0);
      expect(emulator.records(DEFAULT_BASE_ID, "Donations")).toEqual([]);
      expect(resetAll.body).toEqual({ reset: "all" });
    } finally {
      await emulator.close();
    }
  });
});
