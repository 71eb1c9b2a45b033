/**
 * One drain at a time on a local queue, across processes: `npm start` and `npm run run-once` take a lock file under
 * `.local/drains/` (one per SQS endpoint) before they drain. `npm start` holds it for its whole run and answers a
 * loopback control call, so that `run-once` asks it to drain now instead of starting a second drain beside it.
 * (The state machine's lease cannot see this: each process runs its own interpreter, with its own in-memory lease.)
 */
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { DrainSummary } from "./workflow";

/** Who holds a queue's drain lock. */
export interface DrainHolder {
  pid: number;
  command: "npm start" | "npm run run-once";
  sqsEndpoint: string;
  since: string;
  /** `npm start` only: where to ask it for a drain (loopback), and the token that call must carry. */
  control?: { url: string; token: string };
}

/** The lock folder, relative to the repository root (where the npm scripts run). */
export const DRAIN_LOCK_DIR = ".local/drains";

/** Is `pid` a live process running one of this project's local commands (not a stranger that reused the pid)? */
export function isLocalCommand(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(path.join("packages", "cli", "src"));
  } catch {
    return true; // no /proc (macOS): trust the pid
  }
}

/** The lock of one SQS endpoint's queues. Synchronous: it is a few bytes, and it must be released on `exit`. */
export class DrainLock {
  readonly file: string;
  private held = false;

  constructor(
    readonly sqsEndpoint: string,
    dir = path.resolve(process.cwd(), DRAIN_LOCK_DIR),
  ) {
    this.file = path.join(dir, `${sqsEndpoint.replace(/[^A-Za-z0-9.-]+/g, "_")}.json`);
  }

  get isHeld(): boolean {
    return this.held;
  }

  /** Who holds the lock now, if a live local command does. */
  holder(): DrainHolder | undefined {
    let holder: DrainHolder;
    try {
      holder = JSON.parse(readFileSync(this.file, "utf8")) as DrainHolder;
    } catch {
      return undefined;
    }
    return holder.pid === process.pid || isLocalCommand(holder.pid) ? holder : undefined;
  }

  /**
   * Takes the lock, or says who holds it. A lock left by a process that is gone is taken over. The file is
   * written whole under another name and then linked into place, so a reader never sees half of it.
   * @returns undefined once this process holds the lock; the live holder otherwise.
   */
  tryAcquire(who: Pick<DrainHolder, "command" | "control">): DrainHolder | undefined {
    if (this.held) return undefined;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const holder: DrainHolder = { pid: process.pid, sqsEndpoint: this.sqsEndpoint, since: new Date().toISOString(), ...who };
    const draft = `${this.file}.${process.pid}.tmp`;
    writeFileSync(draft, JSON.stringify(holder), { mode: 0o600 }); // the control token is in it
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          linkSync(draft, this.file);
          this.held = true;
          process.once("exit", () => this.release());
          return undefined;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
          const current = this.holder();
          if (current) return current;
          unlinkSync(this.file); // stale: its process is gone
        }
      }
      return this.holder();
    } finally {
      unlinkSync(draft);
    }
  }

  /** Removes a lock found stale by other means (its control call unanswered), unless someone else took it since. */
  breakStale(stale: DrainHolder): void {
    try {
      const current = JSON.parse(readFileSync(this.file, "utf8")) as DrainHolder;
      if (current.pid === stale.pid && current.since === stale.since) unlinkSync(this.file);
    } catch {
      // already gone
    }
  }

  /** Gives the lock up (only if this process holds it). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      if ((JSON.parse(readFileSync(this.file, "utf8")) as DrainHolder).pid === process.pid) unlinkSync(this.file);
    } catch {
      // already gone
    }
  }
}

/** Why a control call was refused or failed. */
export class DrainControlError extends Error {
  override readonly name = "DrainControlError";
  constructor(
    message: string,
    /** Nothing listens where the lock says: the holder is gone (its pid reused by another local command). */
    readonly unreachable = false,
  ) {
    super(message);
  }
}

/** The control call's path. */
const DRAIN_PATH = "/drain";

/**
 * `npm start`'s loopback control server: `POST /drain` with its bearer token runs `drainNow` and answers with the
 * execution's summary (JSON). Requests with another Host, with an Origin (a web page), or without the token are refused.
 */
export async function startDrainControl(drainNow: () => Promise<DrainSummary>): Promise<{ url: string; token: string; close(): Promise<void> }> {
  const token = randomBytes(24).toString("hex");
  const server = http.createServer((request, response) => {
    const answer = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    const { port } = server.address() as AddressInfo;
    if (request.headers.host !== `127.0.0.1:${port}` || request.headers.origin !== undefined) return answer(403, { error: "refused" });
    if (request.headers.authorization !== `Bearer ${token}`) return answer(401, { error: "token" });
    if (request.method !== "POST" || request.url !== DRAIN_PATH) return answer(404, { error: "POST /drain only" });
    drainNow().then(
      (summary) => answer(200, summary),
      (error: unknown) => answer(503, { error: (error as Error).message }),
    );
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Asks the `npm start` that holds the lock to drain now, and waits (however long the drain takes) for its summary.
 * @throws DrainControlError when it cannot be reached or refuses.
 */
export function requestDrain(control: NonNullable<DrainHolder["control"]>): Promise<DrainSummary> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${control.url}${DRAIN_PATH}`, { method: "POST", headers: { authorization: `Bearer ${control.token}` } }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        try {
          const parsed = JSON.parse(body) as DrainSummary & { error?: unknown };
          if (response.statusCode === 200) resolve(parsed);
          else reject(new DrainControlError(String((parsed as { error?: unknown }).error ?? `HTTP ${response.statusCode}`)));
        } catch {
          reject(new DrainControlError(`HTTP ${response.statusCode}: not JSON`));
        }
      });
    });
    request.on("error", (error: NodeJS.ErrnoException) => reject(new DrainControlError(error.message, error.code === "ECONNREFUSED")));
    request.end();
  });
}
