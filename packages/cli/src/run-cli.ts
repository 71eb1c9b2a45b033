import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Test support: runs a local command as `npm run` does and collects what a person would see. */

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

/** The commands in `packages/cli/src/` and the bench, by npm script name. */
export const SCRIPTS = {
  start: "packages/cli/src/start.ts",
  publish: "packages/cli/src/publish.ts",
  "run-once": "packages/cli/src/run-once.ts",
  dlq: "packages/cli/src/dlq.ts",
  airtable: "packages/cli/src/airtable.ts",
  bench: "packages/cli/src/bench/soak.ts",
  emulator: "packages/airtable-emulator/src/cli.ts",
} as const;
export type Script = keyof typeof SCRIPTS;

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command as `npm run` does (tsx on this Node, from the repository root), never against the caller's real
 * Airtable or queues: those variables are dropped unless `env` sets them. `input` is written to its stdin.
 */
export function run(script: Script, args: string[], env: Record<string, string> = {}, input?: string): Promise<Result> {
  const { AIRTABLE_TOKEN: _t, AIRTABLE_BASE_ID: _b, AIRTABLE_ENDPOINT_URL: _e, QUEUE_URL: _q, DLQ_URL: _d, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSX, SCRIPTS[script], ...args], {
      cwd: ROOT,
      env: { ...inherited, ...env },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    if (input !== undefined) child.stdin!.end(input);
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A port on 127.0.0.1 where nothing listens (one that was free a moment ago). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
