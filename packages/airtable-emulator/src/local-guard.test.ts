import { request } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME } from "./config";
import { localGuard } from "./local-guard";
import { startAirtableEmulator, type AirtableEmulator } from "./server";
import { call, donationFields, TABLE_PATH } from "./test-support";

/** A raw request with exactly these headers (fetch will not send a forged Host). */
function raw(
  url: string,
  method: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the emulator's admin paths refuse other sites (CSRF, DNS rebinding)", () => {
  let emulator: AirtableEmulator;
  let host: string;
  beforeEach(async () => {
    emulator = await startAirtableEmulator({ port: 0, rateLimit: false });
    host = `127.0.0.1:${emulator.port}`;
    await call(emulator, "POST", TABLE_PATH, { body: { records: [{ fields: donationFields() }] } });
  });
  afterEach(() => emulator.close());

  const recordCount = () => emulator.records(DEFAULT_BASE_ID, DEFAULT_TABLE_NAME).length;

  it("refuses a reset posted by a page of another origin, and keeps the data", async () => {
    // Act
    const reply = await raw(`${emulator.url}/__emulator/reset?all=1`, "POST", { host, origin: "http://evil.example" });

    // Assert
    expect(reply.status).toBe(403);
    expect(reply.body).toContain("evil.example");
    expect(recordCount()).toBe(1);
  });

  it("refuses a fault injection sent with a rebound Host name", async () => {
    // Act
    const reply = await raw(`${emulator.url}/__emulator/faults`, "POST", { host: `attacker.example:${emulator.port}`, "content-type": "application/json" });

    // Assert
    expect(reply.status).toBe(403);
    expect(emulator.faults.list()).toEqual([]);
  });

  it("refuses reading donors' records through a rebound Host name", async () => {
    const reply = await raw(`${emulator.url}/__emulator/records/${DEFAULT_BASE_ID}/${encodeURIComponent(DEFAULT_TABLE_NAME)}`, "GET", {
      host: `attacker.example:${emulator.port}`,
    });
    expect(reply.status).toBe(403);
    expect(reply.body).not.toContain("Ada");
  });

  it("refuses a cross-site request that hides its origin (Origin: null, Sec-Fetch-Site: cross-site)", async () => {
    const nullOrigin = await raw(`${emulator.url}/__emulator/reset?all=1`, "POST", { host, origin: "null" });
    const crossSite = await raw(`${emulator.url}/__emulator/reset?all=1`, "POST", { host, "sec-fetch-site": "cross-site" });
    expect([nullOrigin.status, crossSite.status]).toEqual([403, 403]);
    expect(recordCount()).toBe(1);
  });

  it("accepts the same request from its own origin, from localhost, and from a script that sends no Origin", async () => {
    const own = await raw(`${emulator.url}/__emulator/reset`, "POST", { host, origin: `http://${host}` });
    const localhost = await raw(`${emulator.url}/__emulator/stats`, "GET", { host: `localhost:${emulator.port}` });
    const script = await raw(`${emulator.url}/__emulator/reset?all=1`, "POST", { host });
    expect([own.status, localhost.status, script.status]).toEqual([200, 200, 200]);
    expect(recordCount()).toBe(0);
  });
});

describe("the emulator's records API keeps donors' data on the machine", () => {
  let emulator: AirtableEmulator;
  let host: string;
  const auth = { authorization: "Bearer patLocalDevToken.fundraise-sync" };
  beforeEach(async () => {
    emulator = await startAirtableEmulator({ port: 0, rateLimit: false });
    host = `127.0.0.1:${emulator.port}`;
    await call(emulator, "POST", TABLE_PATH, { body: { records: [{ fields: donationFields() }] } });
  });
  afterEach(() => emulator.close());

  it("refuses a read through a rebound Host name (DNS rebinding)", async () => {
    // Act
    const reply = await raw(`${emulator.url}${TABLE_PATH}`, "GET", { ...auth, host: `evil.example:${emulator.port}` });

    // Assert
    expect(reply.status).toBe(403);
    expect(reply.body).not.toContain("recordId");
    expect(reply.body).not.toMatch(/"records"/);
  });

  it("grants no CORS read to a page of another site, and grants it to a page served from loopback", async () => {
    // Act
    const foreign = await raw(`${emulator.url}${TABLE_PATH}`, "GET", { ...auth, host, origin: "https://evil.example" });
    const local = await raw(`${emulator.url}${TABLE_PATH}`, "GET", { ...auth, host, origin: "http://localhost:3000" });

    // Assert: a browser withholds a reply without the grant from the page that asked
    expect(foreign.headers["access-control-allow-origin"]).toBeUndefined();
    expect(local.headers["access-control-allow-origin"]).toBe("http://localhost:3000");
    expect(local.status).toBe(200);
  });
});

describe("localGuard", () => {
  const guard = localGuard(9326);
  it.each([
    ["GET", { host: "127.0.0.1:9326" }, true],
    ["GET", { host: "localhost:9326" }, true],
    ["GET", { host: "[::1]:9326" }, true],
    ["GET", { host: "127.0.0.1:9999" }, false],
    ["GET", { host: "rebind.example:9326" }, false],
    ["GET", {}, false],
    ["POST", { host: "127.0.0.1:9326", origin: "http://127.0.0.1:9326" }, true],
    ["POST", { host: "127.0.0.1:9326", origin: "http://localhost:9326" }, true],
    ["POST", { host: "127.0.0.1:9326", origin: "https://127.0.0.1:9326" }, false],
    ["DELETE", { host: "127.0.0.1:9326", origin: "http://127.0.0.1:9327" }, false],
    ["POST", { host: "127.0.0.1:9326", "sec-fetch-site": "same-site" }, false],
    ["POST", { host: "127.0.0.1:9326", "sec-fetch-site": "same-origin" }, true],
    // A cross-origin page can read nothing from a GET and changes nothing with one
    ["GET", { host: "127.0.0.1:9326", origin: "http://evil.example" }, true],
  ])("%s with %j → allowed %s", (method, headers, allowed) => {
    expect(guard.check({ method, headers }) === undefined).toBe(allowed);
  });
});
