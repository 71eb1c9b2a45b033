import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: commands run from it, as `npm run` does. */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

export type LocalCommand = "start" | "publish" | "run-once" | "dlq";

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The caller's environment without what would point a command at a real Airtable or AWS queue. */
function safeEnvironment(env: Record<string, string>): NodeJS.ProcessEnv {
  const { AIRTABLE_TOKEN: _t, AIRTABLE_BASE_ID: _b, QUEUE_URL: _q, DLQ_URL: _d, ...inherited } = process.env;
  return { ...inherited, ...env };
}

/** Starts a local command as `npm run` does (tsx on this Node, from the repository root). For tests. */
export function spawnCommand(command: LocalCommand, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [TSX, `packages/cli/src/${command}.ts`, ...args], {
    cwd: ROOT,
    env: safeEnvironment(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs a local command to its end. For tests. */
export function runCommandToEnd(command: LocalCommand, args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCommand(command, args, env);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
