import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { formatWithOptions } from "node:util";
import { settleCommand } from "./options";

/** Test support: runs a local command as `npm run` does and collects what a person would see. */

/** The repository root: commands run from it, as `npm run` does. */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

/** The commands in `packages/cli/src/` and the bench, by npm script name. */
export const SCRIPTS = {
  start: "packages/cli/src/start.ts",
  publish: "packages/cli/src/publish.ts",
  "run-once": "packages/cli/src/run-once.ts",
  dlq: "packages/cli/src/dlq.ts",
  executions: "packages/cli/src/executions.ts",
  story: "packages/cli/src/story.ts",
  console: "packages/cli/src/console.ts",
  airtable: "packages/cli/src/airtable.ts",
  reconcile: "packages/cli/src/reconcile.ts",
  bench: "packages/cli/src/bench/soak.ts",
  emulator: "packages/airtable-emulator/src/cli.ts",
  "bench:emulator": "packages/airtable-emulator/src/bench.ts",
  "bench:reconcile": "packages/cli/src/bench/reconcile.ts",
  "bundle-sizes": "stacks/bundle-sizes.ts",
} as const;
export type Script = keyof typeof SCRIPTS;

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The caller's environment without what would point a command at a real Airtable or AWS queue, plus `env` (which may
 * set them again).
 */
function commandEnvironment(env: Record<string, string>): NodeJS.ProcessEnv {
  const { AIRTABLE_TOKEN: _t, AIRTABLE_BASE_ID: _b, AIRTABLE_ENDPOINT_URL: _e, QUEUE_URL: _q, DLQ_URL: _d, ...inherited } = process.env;
  return { ...inherited, ...env };
}

/** Starts a command as `npm run` does (tsx on this Node, from the repository root), in {@link commandEnvironment}. */
export function spawnCommand(script: Script, args: string[], env: Record<string, string> = {}, withInput = false): ChildProcess {
  return spawn(process.execPath, [TSX, SCRIPTS[script], ...args], {
    cwd: ROOT,
    env: commandEnvironment(env),
    stdio: [withInput ? "pipe" : "ignore", "pipe", "pipe"],
  });
}

/** Runs a command as `npm run` does, to its end (see {@link spawnCommand}). `input` is written to its stdin. */
export function run(script: Script, args: string[], env: Record<string, string> = {}, input?: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawnCommand(script, args, env, input !== undefined);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    if (input !== undefined) child.stdin!.end(input);
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The commands whose `main` can be driven in-process (the bench and the emulator keep their own entry points). */
const IN_PROCESS = {
  start: () => import("./start"),
  publish: () => import("./publish"),
  "run-once": () => import("./run-once"),
  dlq: () => import("./dlq"),
  executions: () => import("./executions"),
  story: () => import("./story"),
  console: () => import("./console"),
  airtable: () => import("./airtable"),
  reconcile: () => import("./reconcile"),
} satisfies Partial<Record<Script, () => Promise<{ main: (argv: string[]) => Promise<number | void> }>>>;
export type InProcessScript = keyof typeof IN_PROCESS;

/** Only one in-process command at a time: each borrows the process's environment and output streams. */
let running: Promise<unknown> = Promise.resolve();

/**
 * Runs a command's `main` in this process, with what `runCommand` would print and exit with: for the tests where
 * the process boundary is not what is tested (a refusal's line and exit code), about a second faster per command
 * than {@link run}. The environment is the same as {@link run}'s for the call; stdout and stderr are collected.
 */
export function runInProcess(script: InProcessScript, args: string[], env: Record<string, string> = {}): Promise<Result> {
  const call = running.then(async () => {
    const { main } = await IN_PROCESS[script]();
    const saved = { env: process.env, out: process.stdout.write, err: process.stderr.write, log: console.log, error: console.error, warn: console.warn };
    let stdout = "";
    let stderr = "";
    const toOut = (...parts: unknown[]) => void (stdout += `${formatWithOptions({}, ...parts)}\n`);
    const toErr = (...parts: unknown[]) => void (stderr += `${formatWithOptions({}, ...parts)}\n`);
    process.env = commandEnvironment(env);
    process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
    Object.assign(console, { log: toOut, error: toErr, warn: toErr });
    try {
      const { code, errorLine } = await settleCommand(main, args);
      if (errorLine !== undefined) stderr += `${errorLine}\n`;
      return { code, stdout, stderr };
    } finally {
      process.env = saved.env;
      process.stdout.write = saved.out;
      process.stderr.write = saved.err;
      Object.assign(console, { log: saved.log, error: saved.error, warn: saved.warn });
    }
  });
  running = call.catch(() => undefined);
  return call;
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
