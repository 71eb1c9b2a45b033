import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  DEFAULT_EMULATOR_CONFIG,
  DEFAULT_PORT,
  DEFAULT_TOKEN,
  type EmulatorConfig,
} from "./config";
import { AirtableApiError, ApiErrors, FAULT_TYPES } from "./errors";
import { FaultController, FaultRuleError, validateFaultRule, type FaultRule } from "./faults";
import { localGuard, type LocalGuard } from "./local-guard";
import { RateLimiter, type Clock, type RateLimitOptions } from "./rate-limit";
import {
  createRecords,
  deleteRecords,
  getRecord,
  listOptionsFromBody,
  listOptionsFromQuery,
  ListIterators,
  listRecords,
  rawRecordFields,
  updateOneRecord,
  updateRecords,
  type ApiContext,
  type WriteEffects,
} from "./records-api";
import { parseCreateTable, tableModel } from "./meta-api";
import { cloneStats, countResponse, emptyStats, type Stats } from "./stats";
import { DataFileWriter, Store, type EmulatorRecord, type TableStore } from "./store";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface AirtableEmulatorOptions {
  /** TCP port; 0 picks a free one. */
  port?: number;
  host?: string;
  /** The only bearer token accepted. */
  token?: string;
  /** Bases → tables → fields. */
  config?: EmulatorConfig;
  /** JSON file to load records from at start and write (atomically) after each change. In memory when absent. */
  dataFile?: string;
  /** Airtable's per-base limit, or false to turn it off. */
  rateLimit?: Partial<RateLimitOptions> | false;
  /** Larger request bodies get a 413. */
  maxBodyBytes?: number;
  /** Time source for the rate limiter and `createdTime`. */
  clock?: Clock;
  /** Where the emulator reports; `info` gets one line per request. */
  logger?: Logger;
}

const silentLogger: Logger = {
  info: () => undefined,
  warn: (message) => console.warn(`[airtable-emulator] ${message}`),
  error: (message) => console.error(`[airtable-emulator] ${message}`),
};

/** Every option's default, in one place. */
export const defaults = {
  port: DEFAULT_PORT,
  host: "127.0.0.1",
  token: DEFAULT_TOKEN,
  config: DEFAULT_EMULATOR_CONFIG,
  dataFile: undefined as string | undefined,
  rateLimit: { requestsPerSecond: 5, penaltyMs: 30_000 } as RateLimitOptions,
  /** Airtable publishes no body limit; 2 MiB is far above 10 records and below anything a client should send. */
  maxBodyBytes: 2 * 1024 * 1024,
  clock: { now: () => Date.now() } as Clock,
  logger: silentLogger,
} as const;

export interface AirtableEmulator {
  /** e.g. "http://127.0.0.1:9325": pass it as airtable.js's `endpointUrl`. */
  url: string;
  port: number;
  /** Stops listening, drops open connections (hung requests too) and flushes the data file. */
  close(): Promise<void>;
  faults: FaultController;
  stats(): Stats;
  resetStats(): void;
  /** Clears records, fault rules, stats and rate-limit state (and empties the data file, if any). */
  reset(): Promise<void>;
  /** A copy of a table's records (table by name or id), in creation order. */
  records(baseId: string, table: string): EmulatorRecord[];
  /** Waits until every change is written to the data file. */
  flush(): Promise<void>;
}

const ADMIN_PREFIX = "/__emulator";
// No allow-origin here: only a page served from this machine's loopback may read the records (see allowLoopbackPage).
const CORS_HEADERS = {
  "access-control-allow-headers":
    "authorization,content-length,content-type,user-agent,x-airtable-application-id,x-airtable-user-agent,x-api-version,x-requested-with",
  "access-control-allow-methods": "DELETE,GET,OPTIONS,PATCH,POST,PUT",
};

type Operation =
  | { kind: "list"; via: "query" | "body" }
  | { kind: "get"; recordId: string }
  | { kind: "create" }
  | { kind: "updateMany"; replace: boolean }
  | { kind: "updateOne"; recordId: string; replace: boolean }
  | { kind: "deleteMany" }
  | { kind: "deleteOne"; recordId: string };

/** Maps method + path tail to an operation; undefined → Airtable's bare 404 (unknown route or method). */
function routeOperation(method: string, tail: string | undefined): Operation | undefined {
  if (tail === undefined) {
    switch (method) {
      case "GET":
        return { kind: "list", via: "query" };
      case "POST":
        return { kind: "create" };
      case "PATCH":
      case "PUT":
        return { kind: "updateMany", replace: method === "PUT" };
      case "DELETE":
        return { kind: "deleteMany" };
      default:
        return undefined;
    }
  }
  if (tail === "listRecords" && method === "POST") return { kind: "list", via: "body" };
  switch (method) {
    case "GET":
      return { kind: "get", recordId: tail };
    case "PATCH":
    case "PUT":
      return { kind: "updateOne", recordId: tail, replace: method === "PUT" };
    case "DELETE":
      return { kind: "deleteOne", recordId: tail };
    default:
      return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    ...CORS_HEADERS,
    ...headers,
  });
  res.end(text);
}

/** Grants CORS to a page served from a loopback origin (a local app using airtable.js in the browser), and to no other. */
function allowLoopbackPage(req: IncomingMessage, res: ServerResponse): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  try {
    const { hostname, protocol } = new URL(origin);
    if (protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(hostname)) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("vary", "Origin");
    }
  } catch {
    // "null" or garbage: no grant
  }
}

/** Resolves after `ms`, or early when the client goes away. */
function delay(ms: number, res: ServerResponse): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      res.off("close", done);
      resolve();
    }
    res.once("close", done);
  });
}

function untilClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => (res.destroyed ? resolve() : res.once("close", () => resolve())));
}

/** Reads the body up to `maxBytes`; past that, keeps draining (so the client can read the 413) and throws. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > maxBytes) {
      req.resume();
      reject(ApiErrors.bodyTooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        reject(ApiErrors.bodyTooLarge(maxBytes));
      } else {
        chunks.push(chunk);
      }
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseJson(buffer: Buffer): unknown {
  if (buffer.length === 0) return undefined;
  try {
    return JSON.parse(buffer.toString("utf8"));
  } catch {
    throw ApiErrors.invalidJson();
  }
}

function faultError(rule: FaultRule): AirtableApiError {
  const status = rule.status ?? 500;
  const defaultsForStatus = FAULT_TYPES[status] ?? { type: "SERVER_ERROR", message: "Injected fault" };
  const headers: Record<string, string> = {};
  if (rule.retryAfterSeconds !== undefined) headers["retry-after"] = String(rule.retryAfterSeconds);
  const message = rule.message ?? defaultsForStatus.message;
  if (status === 422 && rule.match && rule.message === undefined) {
    return new AirtableApiError(422, rule.type ?? "INVALID_VALUE_FOR_COLUMN", `Field "${rule.match.field}" cannot accept the provided value`, { headers });
  }
  return new AirtableApiError(status, rule.type ?? defaultsForStatus.type, message, { headers });
}

/**
 * Starts an Airtable emulator: a real HTTP server speaking Airtable's REST API for the configured bases.
 *
 * @example
 * const emulator = await startAirtableEmulator({ port: 0, rateLimit: false });
 * const base = new Airtable({ apiKey: DEFAULT_TOKEN, endpointUrl: emulator.url }).base(DEFAULT_BASE_ID);
 * await base(DEFAULT_TABLE_NAME).create({ Id: "a" });
 * await emulator.close();
 */
export async function startAirtableEmulator(options: AirtableEmulatorOptions = {}): Promise<AirtableEmulator> {
  const port = options.port ?? defaults.port;
  const host = options.host ?? defaults.host;
  const token = options.token ?? defaults.token;
  const config = options.config ?? defaults.config;
  const clock = options.clock ?? defaults.clock;
  const logger = options.logger ?? defaults.logger;
  const maxBodyBytes = options.maxBodyBytes ?? defaults.maxBodyBytes;
  const rateLimit = options.rateLimit === false ? undefined : { ...defaults.rateLimit, ...options.rateLimit };

  const store = new Store(config);
  const writer = options.dataFile ? new DataFileWriter(options.dataFile, () => JSON.stringify(store.toJSON())) : undefined;
  if (writer) {
    const text = await writer.read();
    if (text !== undefined) store.load(text, (m) => logger.warn(m));
  }
  const limiter = rateLimit ? new RateLimiter(rateLimit, clock) : undefined;
  const faults = new FaultController();
  const iterators = new ListIterators();
  let stats = emptyStats();
  const expectedAuth = `Bearer ${token}`;
  const ctx: ApiContext = { now: () => clock.now(), newRecordId: (table) => store.newRecordId(table) };

  async function persist(): Promise<void> {
    if (!writer) return;
    try {
      await writer.save();
    } catch (error) {
      logger.error(`could not write data file ${writer.path}: ${(error as Error).message}`);
    }
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<{ baseId?: string; status?: number }> {
    const method = req.method ?? "GET";
    const segments = url.pathname.split("/");
    // ["", "v0", base, table, tail?, ""?]: a trailing slash (airtable.js sends one) is the same route.
    if (segments[segments.length - 1] === "" && segments.length > 4) segments.pop();
    if (segments[1] === "v0" && segments[2] === "meta") return handleMeta(req, res, url, segments);
    if (segments[1] !== "v0" || segments.length < 4 || segments.length > 5) throw ApiErrors.routeNotFound();
    let baseId: string, tableKey: string, tail: string | undefined;
    try {
      [baseId, tableKey] = [decodeURIComponent(segments[2] as string), decodeURIComponent(segments[3] as string)];
      tail = segments[4] === undefined ? undefined : decodeURIComponent(segments[4]);
    } catch {
      throw ApiErrors.routeNotFound();
    }
    if (baseId === "" || tableKey === "" || tail === "" || baseId === "meta") throw ApiErrors.routeNotFound();
    const operation = routeOperation(method, tail);
    if (!operation) throw ApiErrors.routeNotFound();
    const result = { baseId };

    if (req.headers.authorization !== expectedAuth) throw ApiErrors.authenticationRequired();
    const table: TableStore | undefined = store.table(baseId, tableKey);
    if (!table) throw ApiErrors.modelNotFound();

    if (limiter && !limiter.admit(baseId)) {
      stats.rateLimited++;
      throw ApiErrors.rateLimited();
    }

    const isRead = operation.kind === "list" || operation.kind === "get";
    const applyFault = (decision: ReturnType<FaultController["decide"]>) => applyFaultDecision(decision, res);
    if (await applyFault(faults.decide({ baseId, operation: isRead ? "read" : "write" }))) return {};

    let body: unknown;
    if (method === "POST" || method === "PATCH" || method === "PUT") body = parseJson(await readBody(req, maxBodyBytes));
    else req.resume();

    if (!isRead && operation.kind !== "deleteOne" && operation.kind !== "deleteMany") {
      const records = rawRecordFields(body);
      if (records.length > 0 && (await applyFault(faults.decide({ baseId, operation: "write", records })))) return {};
    }

    const effects: WriteEffects = { created: 0, updated: 0, deleted: 0 };
    const noQuery = () => {
      const key = url.searchParams.keys().next().value;
      if (key !== undefined) throw ApiErrors.unsupported(`the query parameter "${key}" on this request`);
    };
    let reply: unknown;
    switch (operation.kind) {
      case "list":
        if (operation.via === "query") {
          reply = listRecords(table, listOptionsFromQuery(url.searchParams), iterators);
        } else {
          for (const key of url.searchParams.keys()) {
            if (key !== "timeZone" && key !== "userLocale") throw ApiErrors.unsupported(`the query parameter "${key}" on listRecords`);
          }
          reply = listRecords(table, listOptionsFromBody(body), iterators);
        }
        break;
      case "get": {
        let byFieldId = false;
        for (const [key, value] of url.searchParams) {
          if (key === "returnFieldsByFieldId") byFieldId = value === "true" || value === "1";
          else if (key === "cellFormat" && value !== "json") throw ApiErrors.unsupported(`cellFormat "${value}" (only "json")`);
          else if (key !== "cellFormat" && key !== "timeZone" && key !== "userLocale") {
            throw ApiErrors.unsupported(`the query parameter "${key}"`);
          }
        }
        reply = getRecord(table, operation.recordId, byFieldId);
        break;
      }
      case "create":
        noQuery();
        reply = createRecords(table, body, ctx, effects);
        break;
      case "updateMany":
        noQuery();
        reply = updateRecords(table, body, operation.replace, ctx, effects);
        break;
      case "updateOne":
        noQuery();
        reply = updateOneRecord(table, operation.recordId, body, operation.replace, effects);
        break;
      case "deleteOne":
        noQuery();
        reply = deleteRecords(table, [operation.recordId], true, effects);
        break;
      case "deleteMany": {
        const ids: string[] = [];
        for (const [key, value] of url.searchParams) {
          if (/^records\[\d*\]$/.test(key)) ids.push(value);
          else throw ApiErrors.unsupported(`the query parameter "${key}" on a delete`);
        }
        reply = deleteRecords(table, ids, false, effects);
        break;
      }
    }
    if (effects.created + effects.updated + effects.deleted > 0) {
      stats.records.created += effects.created;
      stats.records.updated += effects.updated;
      stats.records.deleted += effects.deleted;
      await persist();
    }
    sendJson(res, 200, reply);
    return { ...result, status: 200 };
  }

  /** Applies a fault decision: waits its latency, then hangs (true) or throws its error; false when there is none. */
  async function applyFaultDecision(decision: ReturnType<FaultController["decide"]>, res: ServerResponse): Promise<boolean> {
    await delay(decision.latencyMs, res);
    if (!decision.rule) return false;
    if (decision.rule.hang) {
      stats.hung++;
      await untilClosed(res);
      return true;
    }
    const error = faultError(decision.rule);
    stats.injectedFaults++;
    if (error.status === 429) stats.injected429++;
    throw error;
  }

  /**
   * The metadata API: `GET /v0/meta/bases/{baseId}/tables` (every table's schema) and `POST` (create a table).
   * Same token, same per-base rate limit, same fault rules (GET is a read, POST a write) as the records API.
   */
  async function handleMeta(req: IncomingMessage, res: ServerResponse, url: URL, segments: string[]): Promise<{ baseId?: string; status?: number }> {
    const method = req.method ?? "GET";
    if (segments.length !== 6 || segments[3] !== "bases" || segments[5] !== "tables" || (method !== "GET" && method !== "POST")) {
      throw ApiErrors.routeNotFound();
    }
    let baseId: string;
    try {
      baseId = decodeURIComponent(segments[4] as string);
    } catch {
      throw ApiErrors.routeNotFound();
    }
    if (req.headers.authorization !== expectedAuth) throw ApiErrors.authenticationRequired();
    const base = store.bases.get(baseId);
    if (!base) throw ApiErrors.modelNotFound();
    if (limiter && !limiter.admit(baseId)) {
      stats.rateLimited++;
      throw ApiErrors.rateLimited();
    }
    if (await applyFaultDecision(faults.decide({ baseId, operation: method === "GET" ? "read" : "write" }), res)) return {};
    const key = url.searchParams.keys().next().value;
    if (key !== undefined) throw ApiErrors.unsupported(`the query parameter "${key}" on the metadata API`);
    if (method === "GET") {
      req.resume();
      sendJson(res, 200, { tables: base.schema.tables.map((table) => tableModel(baseId, table)) });
      return { baseId, status: 200 };
    }
    const definition = parseCreateTable(parseJson(await readBody(req, maxBodyBytes)), base.schema.tables);
    const table = store.addTable(baseId, definition);
    await persist();
    sendJson(res, 200, tableModel(baseId, table.schema));
    return { baseId, status: 200 };
  }

  async function handleAdmin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? "GET";
    const path = url.pathname.slice(ADMIN_PREFIX.length).replace(/\/$/, "");
    const bad = (message: string) => sendJson(res, 400, { error: { type: "INVALID_ADMIN_REQUEST", message } });
    let body: unknown;
    if (method === "POST" || method === "PUT") {
      try {
        body = parseJson(await readBody(req, maxBodyBytes));
      } catch (error) {
        return bad(error instanceof Error ? error.message : "bad body");
      }
    } else {
      req.resume();
    }
    if (path === "/health" && method === "GET") return sendJson(res, 200, { ok: true });
    if (path === "/stats" && method === "GET") return sendJson(res, 200, cloneStats(stats));
    if (path === "/reset" && method === "POST") {
      const all = url.searchParams.get("all");
      if (all === "1" || all === "true") {
        await api.reset();
        return sendJson(res, 200, { reset: "all" });
      }
      api.resetStats();
      return sendJson(res, 200, { reset: "stats" });
    }
    if (path === "/faults") {
      if (method === "GET") return sendJson(res, 200, { rules: faults.list() });
      if (method === "DELETE") {
        faults.clear();
        return sendJson(res, 200, { rules: [] });
      }
      if (method === "POST") {
        const inputs = Array.isArray(body) ? body : typeof body === "object" && body !== null && "rules" in body ? (body as { rules: unknown }).rules : [body];
        if (!Array.isArray(inputs)) return bad('"rules" must be an array');
        try {
          inputs.forEach((input) => validateFaultRule(input)); // all valid before any is added
          return sendJson(res, 200, { rules: inputs.map((input) => faults.add(input)) });
        } catch (error) {
          if (error instanceof FaultRuleError) return bad(error.message);
          throw error;
        }
      }
    }
    const faultMatch = /^\/faults\/([^/]+)$/.exec(path);
    if (faultMatch && method === "DELETE") {
      const removed = faults.remove(decodeURIComponent(faultMatch[1] as string));
      return removed ? sendJson(res, 200, { removed: faultMatch[1] }) : sendJson(res, 404, { error: "NOT_FOUND" });
    }
    const recordsMatch = /^\/records\/([^/]+)\/([^/]+)$/.exec(path);
    if (recordsMatch && method === "GET") {
      const [baseId, table] = [decodeURIComponent(recordsMatch[1] as string), decodeURIComponent(recordsMatch[2] as string)];
      if (!store.table(baseId, table)) return sendJson(res, 404, { error: "NOT_FOUND" });
      return sendJson(res, 200, { records: api.records(baseId, table) });
    }
    return sendJson(res, 404, { error: "NOT_FOUND" });
  }

  const server = createServer((req, res) => {
    const started = performance.now();
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://emulator.local");
    } catch {
      sendJson(res, 404, { error: "NOT_FOUND" });
      return;
    }
    if (url.pathname === ADMIN_PREFIX || url.pathname.startsWith(`${ADMIN_PREFIX}/`)) {
      // The admin paths reset data, inject faults and read donors' records: never for another site's page.
      const refused = guard!.check(req);
      if (refused) {
        req.resume();
        logger.warn(`${req.method} ${url.pathname}: ${refused}`);
        sendJson(res, 403, { error: { type: "FORBIDDEN", message: refused } });
        return;
      }
      handleAdmin(req, res, url).catch((error: unknown) => {
        logger.error(`admin ${req.method} ${url.pathname}: ${(error as Error).stack ?? String(error)}`);
        sendJson(res, 500, { error: { type: "SERVER_ERROR", message: "Server error" } });
      });
      return;
    }
    // The records are donors' personal data: a DNS-rebinding page (a foreign Host) gets nothing, and a page from
    // another site cannot read a reply (no CORS grant), while a local app (any loopback origin) and scripts can.
    const foreignHost = guard!.check({ method: "GET", headers: req.headers });
    if (foreignHost) {
      req.resume();
      logger.warn(`${req.method} ${url.pathname}: ${foreignHost}`);
      sendJson(res, 403, { error: { type: "FORBIDDEN", message: foreignHost } });
      return;
    }
    allowLoopbackPage(req, res);
    if (req.method === "OPTIONS") {
      req.resume();
      res.writeHead(204, CORS_HEADERS).end();
      return;
    }
    let baseId: string | undefined = /^\/v0\/(?:meta\/bases\/)?([^/]+)\//.exec(url.pathname)?.[1];
    handleApi(req, res, url)
      .then((outcome) => outcome.status)
      .catch((error: unknown) => {
        if (error instanceof AirtableApiError) {
          if (error.status === 404 && error.bare) baseId = undefined;
          sendJson(res, error.status, error.body, error.headers as Record<string, string>);
          return error.status;
        }
        logger.error(`${req.method} ${url.pathname}: ${(error as Error).stack ?? String(error)}`);
        sendJson(res, 500, { error: { type: "SERVER_ERROR", message: "Server error" } });
        return 500;
      })
      .then((status) => {
        if (status === undefined) return; // left hanging by a fault rule
        countResponse(stats, baseId, status);
        logger.info(`${req.method} ${url.pathname}${url.search} → ${status} (${(performance.now() - started).toFixed(1)} ms)`);
      });
  });
  server.keepAliveTimeout = 5_000;
  let guard: LocalGuard | undefined; // set once the port is known

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  guard = localGuard(address.port, host);
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  const api: AirtableEmulator = {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    faults,
    stats: () => cloneStats(stats),
    resetStats: () => {
      stats = emptyStats();
    },
    reset: async () => {
      store.clear();
      faults.clear();
      iterators.clear();
      limiter?.reset();
      stats = emptyStats();
      await persist();
    },
    records: (baseId, tableName) => {
      const table = store.table(baseId, tableName);
      if (!table) throw new Error(`no table "${tableName}" in base "${baseId}"`);
      return [...table.records.values()].map((r) => structuredClone(r));
    },
    flush: async () => {
      await writer?.flush();
    },
    close: () => {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        await writer?.flush();
      })();
      return closing;
    },
  };
  return api;
}
