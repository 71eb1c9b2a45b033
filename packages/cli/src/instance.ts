/**
 * Where one `npm start` keeps its state (queued messages, the emulator's records, the console's history). The default
 * ports use `.local/`; other ports get a folder of their own, so that a second `npm start` beside the first (say
 * `--sqs-port 9424 --airtable-port 9425`) neither overwrites the first's records nor brings back messages it deleted.
 * A folder is claimed by the process that uses it: a second process on the same folder is refused in one line.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isLocalCommand } from "@fundraise-sync/local/drain-lock";
import { CLI_DEFAULTS, CommandFailure } from "./options";

/** The folder every default path of `npm start` lives in. */
export const DEFAULT_DATA_DIR = ".local";

export interface InstancePorts {
  /** The local SQS server's port; undefined when an external SQS server is used (`AWS_ENDPOINT_URL_SQS`). */
  sqsPort?: number;
  /** The emulator's port; undefined when the real Airtable is used. */
  airtablePort?: number;
}

/**
 * `.local` for the default ports (a server that is not local, an external SQS or the real Airtable, counts as
 * default); `.local/ports-<sqs>-<airtable>` otherwise, with `external` and `airtable` for servers that are not local.
 * Relative to the repository root.
 */
export function instanceDataDir({ sqsPort, airtablePort }: InstancePorts): string {
  const usual = (port: number | undefined, defaultPort: number) => port === undefined || port === defaultPort;
  // With no local server at all there is nothing of the default instance's to keep: its own folder, not `.local`.
  const someLocal = sqsPort !== undefined || airtablePort !== undefined;
  if (someLocal && usual(sqsPort, CLI_DEFAULTS.sqsPort) && usual(airtablePort, CLI_DEFAULTS.airtablePort)) return DEFAULT_DATA_DIR;
  return path.join(DEFAULT_DATA_DIR, `ports-${sqsPort ?? "external"}-${airtablePort ?? "airtable"}`);
}

/** The paths of one instance's state, relative to the repository root: each survives a restart of `npm start`. */
export function instancePaths(dataDir: string) {
  return {
    /** fauxqs's SQLite data: the queued and dead-lettered messages. */
    sqsDataDir: path.join(dataDir, "sqs"),
    /** The emulator's records. */
    airtableDataFile: path.join(dataDir, "airtable.json"),
    /** The console's execution history. */
    consoleDataDir: path.join(dataDir, "console"),
    /** The receipts of the messages the drain in flight holds: what the next start gives back after a crash. */
    heldMessagesFile: path.join(dataDir, "held-messages.json"),
    /** The executions and their histories that the local Step Functions API serves. */
    sfnDataDir: path.join(dataDir, "sfn"),
  };
}

/**
 * Claims `dir` (absolute) for this process until it exits; refuses, in one line, a folder that another live
 * `npm start` uses. A claim whose process is gone (a `kill -9`) is taken over.
 */
export function claimDataDir(dir: string, shown: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "instance.json");
  try {
    const { pid } = JSON.parse(readFileSync(file, "utf8")) as { pid: number };
    if (pid !== process.pid && isLocalCommand(pid)) {
      throw new CommandFailure(`${shown} is in use by another npm start (pid ${pid}): stop it, or start this one on other ports (--sqs-port, --airtable-port)`);
    }
  } catch (error) {
    if (error instanceof CommandFailure) throw error;
    // no claim, or an unreadable one: take it
  }
  writeFileSync(file, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }));
  const release = () => {
    try {
      const { pid } = JSON.parse(readFileSync(file, "utf8")) as { pid: number };
      if (pid === process.pid) rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
  process.once("exit", release);
  return release;
}
