import type { IncomingMessage } from "node:http";

/**
 * What a server on the loopback interface accepts, so that a web page the developer happens to visit cannot use it:
 * the `Host` must be a loopback name with the server's port (a DNS-rebinding page sends its own host name), and a
 * request that changes something must not come from another origin (CSRF: browsers send `Origin` with every POST,
 * PUT, PATCH and DELETE; scripts and CLIs send none, and are allowed).
 */
export interface LocalGuard {
  /** Undefined when the request may go on; else why it is refused (for a 403's body). */
  check(req: Pick<IncomingMessage, "method" | "headers">): string | undefined;
  /** The `host:port` names accepted. */
  hosts: ReadonlySet<string>;
}

const LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]"];
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * A guard for a server listening on `port` (on `boundHost`, which is accepted too when it is a specific address).
 *
 * @example
 * const guard = localGuard(server.address().port);
 * const refused = guard.check(req);
 * if (refused) return res.writeHead(403).end(refused);
 */
export function localGuard(port: number, boundHost = "127.0.0.1"): LocalGuard {
  const names = new Set(LOOPBACK_NAMES);
  if (boundHost !== "0.0.0.0" && boundHost !== "::" && boundHost !== "") names.add(boundHost.includes(":") ? `[${boundHost}]` : boundHost);
  const hosts = new Set([...names].map((name) => `${name}:${port}`));
  return {
    hosts,
    check(req) {
      const host = String(req.headers.host ?? "").toLowerCase();
      if (!hosts.has(host)) return `refused: Host "${host}" is not this server's loopback address (${[...hosts][0]})`;
      if (SAFE_METHODS.has((req.method ?? "GET").toUpperCase())) return undefined;
      const origin = req.headers.origin;
      if (origin !== undefined) {
        let originHost: string | undefined;
        try {
          const url = new URL(origin);
          originHost = url.protocol === "http:" ? url.host : undefined;
        } catch {
          originHost = undefined; // "null" (a sandboxed frame, a file:) is no origin of ours
        }
        if (originHost === undefined || !hosts.has(originHost)) return `refused: a request from the origin "${origin}" may not change anything here`;
      }
      const site = req.headers["sec-fetch-site"];
      if (site !== undefined && site !== "same-origin" && site !== "none") return `refused: a ${site} request may not change anything here`;
      return undefined;
    },
  };
}
