#!/usr/bin/env -S npx tsx
/**
 * `npm run emulator -- [options]`: starts the Airtable emulator in the foreground. Like every command of the project:
 * one line `error: …` on stderr, exit 2 for bad input (a flag, a value, a config or data file), 1 when it cannot run
 * (a port in use, an address it cannot bind); Ctrl-C closes it cleanly (and flushes the data file).
 */
import { readFile } from "node:fs/promises";
import { CommandLineError, parseCommandLine } from "@fundraise-sync/core/command-line";
import { watchInterrupts } from "@fundraise-sync/core/interrupt";
import { EmulatorConfigError, compileConfig, type EmulatorConfig } from "./config";
import { defaults, startAirtableEmulator, type Logger } from "./server";
import { EmulatorDataFileError } from "./store";

const USAGE = `Usage: npm run emulator -- [options]    (or, from its package: airtable-emulator [options])

  --port N          port to listen on (default ${defaults.port}; 0 = any free port)
  --host HOST       address to bind (default ${defaults.host})
  --data FILE       persist records to FILE (JSON, written atomically); in memory without it
  --config FILE     JSON config of bases/tables/fields (default: the Donations table)
  --token TOKEN     the bearer token to accept (default ${defaults.token})
  --no-rate-limit   turn off Airtable's 5 requests/second/base limit
  --quiet           do not log each request
  --help            show this help
`;

class UsageError extends Error {}

function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65_535) throw new UsageError(`--port must be an integer from 0 to 65535, not "${text}"`);
  return Number(text);
}

async function loadConfig(path: string): Promise<EmulatorConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read --config ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config ${path} is not valid JSON: ${(error as Error).message}`);
  }
  compileConfig(config); // throws EmulatorConfigError naming the problem
  return config as EmulatorConfig;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseCommandLine(argv, {
    port: { type: "string" },
    host: { type: "string" },
    data: { type: "string" },
    config: { type: "string" },
    token: { type: "string" },
    "no-rate-limit": { type: "boolean" },
    quiet: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.token !== undefined && values.token.trim() === "") throw new UsageError("--token must not be empty");
  const config = values.config === undefined ? defaults.config : await loadConfig(values.config);
  const logger: Logger = {
    info: values.quiet ? () => undefined : (m) => console.log(m),
    warn: (m) => console.warn(`warning: ${m}`),
    error: (m) => console.error(`error: ${m}`),
  };
  const emulator = await startAirtableEmulator({
    port: values.port === undefined ? defaults.port : parsePort(values.port),
    host: values.host ?? defaults.host,
    token: values.token ?? defaults.token,
    config,
    dataFile: values.data,
    rateLimit: values["no-rate-limit"] ? false : defaults.rateLimit,
    logger,
  });
  // Listen for Ctrl-C before saying we are ready: a signal sent on the first line must find its handler. One press
  // is one interrupt (on a terminal npm and tsx relay a press as several signals; watchInterrupts reads the key).
  // Still watching while it exits: a late second signal must find a handler, not the default that kills the process.
  // (Node gives the terminal back its mode at exit.)
  watchInterrupts((count, what) => {
    if (count > 1) process.exit(130); // a second Ctrl-C: give up waiting
    console.log(`\n${what}: closing`);
    emulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`error while closing: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  });

  const tables = config.bases.flatMap((b) => b.tables.map((t) => `${b.id}/${t.name}`)).join(", ");
  console.log(`Airtable emulator listening on ${emulator.url}`);
  console.log(`  bases/tables: ${tables}`);
  console.log(`  token:        ${values.token ?? defaults.token}`);
  console.log(`  rate limit:   ${values["no-rate-limit"] ? "off" : `${defaults.rateLimit.requestsPerSecond}/s per base, ${defaults.rateLimit.penaltyMs / 1000} s penalty`}`);
  console.log(`  data:         ${values.data ?? "in memory"}`);
  console.log(`  admin:        ${emulator.url}/__emulator/{stats,faults,reset}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const badInput =
    error instanceof UsageError ||
    error instanceof CommandLineError ||
    error instanceof EmulatorConfigError ||
    error instanceof EmulatorDataFileError;
  const code = (error as NodeJS.ErrnoException).code;
  const message =
    badInput ? (error as Error).message
    : code === "EADDRINUSE" ? `the port is already in use (${(error as Error).message}): is \`npm start\` running? it starts an emulator too`
    : code === "EADDRNOTAVAIL" || code === "ENOTFOUND" ? `cannot bind that host (${(error as Error).message})`
    : `unexpected error: ${(error as Error).message}`;
  process.stderr.write(`error: ${message.split("\n")[0]}\n`);
  process.exit(badInput ? 2 : 1);
});
