/**
 * The console's server: the page, a JSON API, a live stream (server-sent events) and the DLQ actions. Binds
 * 127.0.0.1 only; every request must name this server's loopback address as its `Host` (DNS rebinding), and every
 * request that changes something must come from the console's own page or from no browser at all (CSRF).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { localGuard, type LocalGuard } from "@fundraise-sync/airtable-emulator";
import { buildPage, type PageBundle } from "./build";
import { type CommandContext, Commands, type Selection } from "./commands";
import type { DeadLetterActions, DeadLetterEntry } from "./dlq-actions";
import { eventIdOf, lite } from "./events";
import { type AslDefinition, definitionToGraph, type StateGraph } from "./graph";
import type { History } from "./history";
import type { QueueDepths } from "./queues";
import type { BaseRecord, QueuedMessage, Whereabouts } from "./whereabouts";

export interface ConsoleOptions {
  /** 0 picks a free port. */
  port: number;
  history: History;
  /** The synthesized definition the local runtime executes. */
  definition: AslDefinition;
  /** Reads both queues' depths without touching a message. */
  queueDepths: () => Promise<QueueDepths>;
  /** The stack's alarms as the local runtime computes them (read with the queues); none shown when absent. */
  alarms?: () => Promise<ConsoleAlarm[]>;
  deadLetters: DeadLetterActions;
  /** Where a donation is now (queue, base), for a story no execution tells; without it a story reads the history only. */
  whereabouts?: Whereabouts;
  /** Flags the printed CLI commands need to reach this pipeline. */
  commands?: CommandContext;
  /** How often queue depths are read (ms). */
  pollMs?: number;
  /** A page bundle built beforehand (tests share one); built at start otherwise. */
  page?: PageBundle;
}

/** One of the stack's alarms, as the header shows it (the same names as on AWS, e.g. `AirtableFailingAlarm`). */
export interface ConsoleAlarm {
  name: string;
  state: "OK" | "ALARM";
  reason: string;
}

export const CONSOLE_DEFAULTS = { host: "127.0.0.1", port: 9326, pollMs: 1000 } as const;

export interface ConsoleServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The window over which the drain rate is measured (ms). */
const RATE_WINDOW_MS = 60_000;
/** Live state counters are pushed at most this often (ms): one push per event would flood a busy page. */
const ACTIVITY_PUSH_MS = 250;
const MAX_BODY_BYTES = 512 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/**
 * Starts the console.
 *
 * @example
 * const server = await startConsole({ port: 9326, history, definition, queueDepths, deadLetters });
 * console.log(`console: ${server.url}`);
 */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const { history } = options;
  const page = options.page ?? (await buildPage());
  const graph: StateGraph = definitionToGraph(options.definition);
  const context: CommandContext = options.commands ?? { connection: "" };
  const streams = new Set<ServerResponse>();
  let guard: LocalGuard | undefined;

  let queues: QueueDepths | undefined;
  let queueError: string | undefined;
  let alarms: ConsoleAlarm[] = [];
  let deadLetters: DeadLetterEntry[] = [];
  let deadLetterError: string | undefined;
  let dlqTotal = -1;
  let listing: Promise<void> | undefined;

  const push = (event: string, data: unknown) => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(frame);
  };

  // Every DLQ operation receives the whole queue, hiding each message while it works: two at once would each miss
  // what the other holds. So they run one after another.
  let dlqTurn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const next = dlqTurn.then(work, work);
    dlqTurn = next.catch(() => undefined);
    return next;
  };

  /** Lists the DLQ again (a list already waiting covers this call too). */
  const relist = () => {
    listing ??= exclusive(async () => {
      listing = undefined; // from here on, a new change needs a new list
      try {
        deadLetters = (await options.deadLetters.list()).map((entry) => ({ ...entry, eventId: entry.eventId ?? eventIdOf(entry.body) }));
        deadLetterError = undefined;
      } catch (error) {
        deadLetterError = (error as Error).message;
      }
      push("dlq", { entries: deadLetters, error: deadLetterError });
    });
    return listing;
  };

  const drainRate = () => {
    const since = Date.now() - RATE_WINDOW_MS;
    const written = history.records().filter((record) => (record as { at?: number }).at !== undefined && (record as { at: number }).at >= since).length;
    return { writtenPerSecond: written / (RATE_WINDOW_MS / 1000), windowSeconds: RATE_WINDOW_MS / 1000 };
  };

  const poll = async () => {
    try {
      queues = await options.queueDepths();
      queueError = undefined;
      // An alarm that cannot be read keeps its last state: the queues' line already says what is unreachable.
      if (options.alarms) alarms = await options.alarms().catch(() => alarms);
    } catch (error) {
      queueError = (error as Error).message;
    }
    push("queues", { queues, error: queueError, rate: drainRate(), alarms });
    // A send or a delete changes the DLQ's total; a list only moves messages between visible and in flight.
    const total = queues ? queues.deadLetter.visible + queues.deadLetter.inFlight + queues.deadLetter.delayed : dlqTotal;
    if (total !== dlqTotal) {
      dlqTotal = total;
      await relist();
    }
  };
  let polling = false;
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    void poll().finally(() => (polling = false));
  }, options.pollMs ?? CONSOLE_DEFAULTS.pollMs);

  let activityTimer: NodeJS.Timeout | undefined;
  const pushActivity = () => {
    activityTimer ??= setTimeout(() => {
      activityTimer = undefined;
      push("activity", history.activity());
    }, ACTIVITY_PUSH_MS);
  };
  const onExecution = (entry: unknown) => push("execution", entry);
  const onEvent = (name: string, event: unknown) => {
    push("event", { name, event });
    pushActivity();
  };
  const onAction = (action: unknown) => push("action", action);
  history.on("execution", onExecution);
  history.on("event", onEvent);
  history.on("activity", pushActivity);
  history.on("action", onAction);

  const snapshot = () => ({
    graph,
    startedAt: history.startedAt,
    executions: history.list(),
    activity: history.activity(),
    queues,
    queueError,
    alarms,
    rate: drainRate(),
    deadLetters,
    deadLetterError,
    actions: history.actions(),
    commands: context,
  });

  /** Runs a DLQ action, records it with its CLI command, refreshes the DLQ view. */
  const act = async (
    action: "redrive" | "delete" | "resend",
    command: string,
    ids: string[],
    run: () => Promise<{ ok: boolean; detail: string }>,
    alsoEventIds: string[] = [],
  ) => {
    const letters = deadLetters.filter((entry) => ids.includes(entry.messageId));
    let outcome: { ok: boolean; detail: string };
    try {
      outcome = await exclusive(run);
    } catch (error) {
      outcome = { ok: false, detail: (error as Error).message };
    }
    const entry = {
      at: Date.now(),
      action,
      command,
      ok: outcome.ok,
      // The DLQ's ids and the ids the message had in the source queue: a story finds the action from either.
      messageIds: [...ids, ...letters.map((letter) => letter.sourceMessageId).filter((id): id is string => id !== undefined)],
      eventIds: [...letters.map((letter) => letter.eventId ?? eventIdOf(letter.body)), ...alsoEventIds].filter((id): id is string => id !== undefined),
      detail: outcome.detail,
    };
    await history.recordAction(entry);
    await relist();
    return entry;
  };

  const selectionFrom = (body: Record<string, unknown>): { selection: Selection; ids: string[] } => {
    if (body.all === true) return { selection: { all: true }, ids: deadLetters.map((entry) => entry.messageId) };
    if (typeof body.errorName === "string" && body.errorName !== "") {
      const errorName = body.errorName;
      return { selection: { errorName }, ids: deadLetters.filter((entry) => entry.errorName === errorName).map((entry) => entry.messageId) };
    }
    const ids = Array.isArray(body.ids) ? body.ids.filter((id): id is string => typeof id === "string" && id !== "") : [];
    if (ids.length === 0) throw new HttpError(400, "choose messages: ids (a non-empty list), errorName, or all: true");
    return { selection: { ids }, ids };
  };

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? "GET";
    const pathname = url.pathname;
    if (method === "GET" && (pathname === "/" || pathname === "/index.html")) return sendText(res, 200, "text/html; charset=utf-8", INDEX_HTML);
    if (method === "GET" && pathname === "/app.js") return sendText(res, 200, "text/javascript; charset=utf-8", page["app.js"]);
    if (method === "GET" && pathname === "/app.css") return sendText(res, 200, "text/css; charset=utf-8", page["app.css"]);
    if (method === "GET" && pathname === "/favicon.ico") return sendText(res, 204, "image/x-icon", "");
    if (method === "GET" && pathname === "/api/snapshot") return sendJson(res, 200, snapshot());
    if (method === "GET" && pathname === "/api/stream") return openStream(req, res);
    if (method === "GET" && pathname === "/api/records") return sendJson(res, 200, { records: history.records() });
    if (method === "GET" && pathname === "/api/story") {
      const q = url.searchParams.get("q")?.trim() ?? "";
      if (q === "") throw new HttpError(400, "give an event Id or an SQS MessageId: ?q=…");
      // A DLQ copy's MessageId, its source MessageId or its body's event Id: all the same message.
      const isLetter = (entry: DeadLetterEntry, ids: Set<string>, eventIds: Set<string>) =>
        ids.has(entry.messageId) ||
        (entry.sourceMessageId !== undefined && ids.has(entry.sourceMessageId)) ||
        (entry.eventId !== undefined && eventIds.has(entry.eventId));
      const seeds = deadLetters.filter((entry) => isLetter(entry, new Set([q]), new Set([q.toLowerCase()])));
      const story = await history.story(q, {
        messageIds: seeds.flatMap((entry) => [entry.messageId, ...(entry.sourceMessageId ? [entry.sourceMessageId] : [])]),
        eventIds: seeds.flatMap((entry) => (entry.eventId ? [entry.eventId] : [])),
      });
      const ids = new Set([q, ...story.messageIds]);
      const eventIds = new Set([q.toLowerCase(), ...story.eventIds]);
      const inDeadLetterQueue = deadLetters.filter((entry) => isLetter(entry, ids, eventIds));
      const ask = <T>(look: Promise<T[] | undefined> | undefined) => (look ?? Promise.resolve(undefined)).catch(() => undefined);
      const [inQueue, inBase] = await Promise.all([
        ask<QueuedMessage>(options.whereabouts?.inQueue({ messageIds: [...ids], eventIds: [...eventIds] })),
        ask<BaseRecord>(options.whereabouts?.inBase([...eventIds])),
      ]);
      return sendJson(res, 200, { ...story, deadLetters: inDeadLetterQueue, inQueue, inBase });
    }
    const events = /^\/api\/executions\/([^/]+)\/events$/.exec(pathname);
    if (method === "GET" && events) {
      const list = await history.events(decodeURIComponent(events[1]!));
      if (!list) throw new HttpError(404, `no execution ${events[1]} in the history`);
      return sendJson(res, 200, { events: url.searchParams.get("lite") === "1" ? list.map(lite) : list });
    }

    // Everything below changes something (or spends a receive): JSON bodies only, so a plain HTML form cannot post.
    if (method !== "POST") throw new HttpError(pathname.startsWith("/api/") ? 405 : 404, `${method} ${pathname}: not here`);
    if (!String(req.headers["content-type"] ?? "").startsWith("application/json")) throw new HttpError(415, "send JSON (content-type: application/json)");
    const body = await readJson(req);
    // On a deployed stage, a change names the stage it is meant for (the page asks first, naming it).
    if (context.stage !== undefined && pathname !== "/api/dlq/refresh" && pathname !== "/api/dlq/validate" && body.stage !== context.stage) {
      throw new HttpError(409, `this console acts on stage ${context.stage}: confirm by naming it (stage: "${context.stage}")`);
    }
    switch (pathname) {
      case "/api/dlq/refresh":
        await relist();
        return sendJson(res, 200, { entries: deadLetters, error: deadLetterError });
      case "/api/dlq/validate": {
        if (typeof body.body !== "string") throw new HttpError(400, "body must be the message body, a string");
        return sendJson(res, 200, await options.deadLetters.validate(body.body));
      }
      case "/api/dlq/redrive": {
        const chosen = selectionFrom(body);
        // The CLI's redrive takes ids or nothing (all): an ErrorName group is redriven by its ids.
        const selection = "errorName" in chosen.selection ? { ids: chosen.ids } : chosen.selection;
        const force = body.force === true;
        const command = Commands.redrive(context, selection, force);
        return sendJson(res, 200, await act("redrive", command, chosen.ids, () => options.deadLetters.redrive(selection, { force })));
      }
      case "/api/dlq/delete": {
        const { selection, ids } = selectionFrom(body);
        return sendJson(res, 200, await act("delete", Commands.delete(context, selection), ids, () => options.deadLetters.delete(selection)));
      }
      case "/api/dlq/resend": {
        if (typeof body.id !== "string" || typeof body.body !== "string") throw new HttpError(400, "give id (the DLQ MessageId) and body (the edited body)");
        const { id, body: edited } = body as { id: string; body: string };
        // Validate first: an edit that would fail again is shown, and nothing is sent.
        const verdict = await options.deadLetters.validate(edited);
        if (!verdict.valid) return sendJson(res, 422, { ok: false, verdict });
        const entry = await act("resend", Commands.resend(context, id), [id], () => options.deadLetters.resend(id, edited), verdict.eventId ? [verdict.eventId] : []);
        return sendJson(res, entry.ok ? 200 : 500, { ...entry, verdict });
      }
    }
    throw new HttpError(404, `POST ${pathname}: not here`);
  }

  function openStream(req: IncomingMessage, res: ServerResponse) {
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive" });
    // A reload catches up from this: the whole state, then every change.
    res.write(`retry: 1000\nevent: hello\ndata: ${JSON.stringify(snapshot())}\n\n`);
    streams.add(res);
    const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    req.on("close", () => {
      clearInterval(heartbeat);
      streams.delete(res);
    });
  }

  const server = createServer((req, res) => {
    const refused = guard!.check(req);
    if (refused) {
      req.resume();
      sendJson(res, 403, { error: refused });
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://console.local");
    } catch {
      sendJson(res, 400, { error: "bad URL" });
      return;
    }
    route(req, res, url).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      sendJson(res, status, { error: (error as Error).message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, CONSOLE_DEFAULTS.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  guard = localGuard(port, CONSOLE_DEFAULTS.host);
  void poll();

  return {
    url: `http://${CONSOLE_DEFAULTS.host}:${port}`,
    port,
    close: async () => {
      clearInterval(timer);
      clearTimeout(activityTimer);
      history.off("execution", onExecution);
      history.off("event", onEvent);
      history.off("activity", pushActivity);
      history.off("action", onAction);
      for (const res of streams) res.end();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await dlqTurn;
    },
  };
}

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fundraise-sync · local console</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<div id="root"></div>
<script type="module" src="/app.js"></script>
</body>
</html>
`;

function sendText(res: ServerResponse, status: number, type: string, text: string) {
  res.writeHead(status, {
    "content-type": type,
    "content-length": String(Buffer.byteLength(text)),
    "cache-control": "no-store",
    // The page loads nothing from elsewhere; say so to the browser too.
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    "x-content-type-options": "nosniff",
  });
  res.end(text);
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)), "cache-control": "no-store" });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `bodies over ${MAX_BODY_BYTES} bytes are refused`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
    return parsed as Record<string, unknown>;
  } catch {
    throw new HttpError(400, "the request body is not a JSON object");
  }
}
