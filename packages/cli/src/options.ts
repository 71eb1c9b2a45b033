/**
 * What the local commands (`npm start`, `npm run publish`, `npm run run-once`, `npm run dlq`) share: their defaults in
 * one object, the environment variables they read, argument parsing, and the one way they end (exit codes).
 *
 * Exit codes: 0 done; 1 an operational failure (a server unreachable, a publish or an execution failed);
 * 2 bad input (a flag, a value, a file), always as ONE line on stderr starting `error:`.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME, DEFAULT_TOKEN } from "@fundraise-sync/airtable-emulator";
import { SQSClient } from "@aws-sdk/client-sqs";
import {
  CommandLineError,
  DEAD_LETTER_QUEUE_NAME,
  EventTooLargeError,
  SOURCE_QUEUE_NAME,
  parseCommandLine as parseFlags,
} from "@fundraise-sync/core";

/** Every default of the local commands, in one place. */
export const CLI_DEFAULTS = {
  /** Everything local binds to loopback only: the SQS server and the emulator accept any request. */
  host: "127.0.0.1",
  sqsPort: 9324,
  airtablePort: 9325,
  baseId: DEFAULT_BASE_ID,
  table: DEFAULT_TABLE_NAME,
  /** The emulator's bearer token: not a secret, printed at start. */
  localToken: DEFAULT_TOKEN,
  /** The web console `npm start` serves (`--console-port`, `--no-console`). */
  consolePort: 9326,
  /** The local Step Functions API `npm start` serves (`--sfn-port`), and the commands read (`executions`, `story`). */
  sfnPort: 9327,
  /** How often `npm start` starts an execution (the deployed schedule is minutes; locally, quicker feedback). */
  everySeconds: 10,
  /** Sample donations `npm run publish` sends without --file. */
  publishCount: 10,
  /** The most `--count` accepts: enough for any local load test, far from memory trouble. */
  maxPublishCount: 100_000,
  /** The account id in fauxqs's queue URLs. */
  localAccountId: "000000000000",
  /** Region and credentials the SDK insists on, even for a local server; never sent anywhere real. */
  localRegion: "us-east-1",
  localCredentials: { accessKeyId: "local", secretAccessKey: "local" },
  sourceQueueName: SOURCE_QUEUE_NAME,
  deadLetterQueueName: DEAD_LETTER_QUEUE_NAME,
  /** How often the progress line polls the queue during an execution. */
  progressIntervalMs: 1000,
  // The DLQ's own timings (hold, give back, long poll) live with its operations: DEAD_LETTER_TIMINGS in dead-letters.ts.
  /** How long a command waits for a server to answer a probe before saying it is not running. */
  probeTimeoutMs: 2000,
} as const;

/** The environment variables the commands read (flags win over them). */
export const ENV = {
  sqsPort: "SQS_PORT",
  airtablePort: "AIRTABLE_EMULATOR_PORT",
  localToken: "AIRTABLE_LOCAL_TOKEN",
  everySeconds: "DRAIN_EVERY_SECONDS",
  consolePort: "CONSOLE_PORT",
  sfnPort: "SFN_PORT",
  /** An SQS server that is already running (the SDK reads it too). */
  sqsEndpoint: "AWS_ENDPOINT_URL_SQS",
  queueUrl: "QUEUE_URL",
  dlqUrl: "DLQ_URL",
  /** Both set: write to the real Airtable instead of the emulator. */
  airtableToken: "AIRTABLE_TOKEN",
  airtableBaseId: "AIRTABLE_BASE_ID",
  airtableEndpointUrl: "AIRTABLE_ENDPOINT_URL",
  /** The pipeline's share of the base's requests per second (`--airtable-rps`). */
  airtableRequestsPerSecond: "AIRTABLE_REQUESTS_PER_SECOND",
} as const;

/** Bad input: the command prints one line and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** An operational failure the command has already explained: print the message, exit 1. */
export class CommandFailure extends Error {
  override readonly name = "CommandFailure";
}

/** The shared flag parser (core's `parseCommandLine`), its errors as {@link UsageError}s. */
export function parseCommandLine<T extends Parameters<typeof parseFlags>[1]>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseFlags(argv, options, allowPositionals);
  } catch (error) {
    if (error instanceof CommandLineError) throw new UsageError(error.message);
    throw error;
  }
}

/** A flag's value, else the environment variable's, else undefined. Empty strings count as unset. */
export function flagOrEnv(flag: string | undefined, envName: string): string | undefined {
  if (flag !== undefined) return flag;
  const value = process.env[envName];
  return value === undefined || value === "" ? undefined : value;
}

export function parsePort(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65_535) throw new UsageError(`${what} must be an integer from 0 to 65535, not "${text}"`);
  return Number(text);
}

/** A whole number from 1 to `max` (people count from 1); a clear message for 0, negatives, fractions and huge ones. */
export function parsePositiveInteger(text: string, what: string, max = Number.MAX_SAFE_INTEGER): number {
  const range = max === Number.MAX_SAFE_INTEGER ? "a positive integer" : `an integer from 1 to ${max.toLocaleString("en-US")}`;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new UsageError(`${what} must be ${range}, not "${text}"`);
  return Number(text);
}

/** Longest schedule `setInterval` can keep (2^31 - 1 ms); beyond it Node fires every millisecond instead. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

export function parsePositiveSeconds(text: string, what: string, max = MAX_TIMER_SECONDS): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new UsageError(`${what} must be a number of seconds greater than 0 and at most ${max.toLocaleString("en-US")}, not "${text}"`);
  }
  return value;
}

export function parseUrl(text: string, what: string): string {
  try {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
    return text.replace(/\/+$/, "");
  } catch {
    throw new UsageError(`${what} must be an http(s) URL, not "${text}"`);
  }
}

/** The SQS port: `--sqs-port`, `SQS_PORT`, or the default. */
export function sqsPortFrom(flag: string | undefined): number {
  const text = flagOrEnv(flag, ENV.sqsPort);
  return text === undefined ? CLI_DEFAULTS.sqsPort : parsePort(text, flag !== undefined ? "--sqs-port" : ENV.sqsPort);
}

export function airtablePortFrom(flag: string | undefined): number {
  const text = flagOrEnv(flag, ENV.airtablePort);
  return text === undefined ? CLI_DEFAULTS.airtablePort : parsePort(text, flag !== undefined ? "--airtable-port" : ENV.airtablePort);
}

export function localTokenFrom(flag: string | undefined): string {
  const token = flagOrEnv(flag, ENV.localToken) ?? CLI_DEFAULTS.localToken;
  if (token.trim() === "") throw new UsageError("--token must not be empty");
  return token;
}

export function tableFrom(flag: string | undefined): string {
  const table = flag ?? CLI_DEFAULTS.table;
  if (table.trim() === "") throw new UsageError("--table must not be empty");
  return table;
}

export const localSqsEndpoint = (port: number) => `http://${CLI_DEFAULTS.host}:${port}`;
export const localAirtableUrl = (port: number) => `http://${CLI_DEFAULTS.host}:${port}`;
export const localQueueUrl = (endpoint: string, queueName: string) =>
  `${endpoint.replace(/\/+$/, "")}/${CLI_DEFAULTS.localAccountId}/${queueName}`;

/** The real Airtable, when `AIRTABLE_TOKEN` and `AIRTABLE_BASE_ID` are both set; undefined when neither is. */
export function realAirtableFromEnv(): { token: string; baseId: string; endpointUrl?: string } | undefined {
  const token = flagOrEnv(undefined, ENV.airtableToken);
  const baseId = flagOrEnv(undefined, ENV.airtableBaseId);
  if (token === undefined && baseId === undefined) return undefined;
  if (token === undefined || baseId === undefined) {
    throw new UsageError(`set both ${ENV.airtableToken} and ${ENV.airtableBaseId} to write to the real Airtable, or neither for the emulator`);
  }
  if (!/^app[A-Za-z0-9]+$/.test(baseId)) throw new UsageError(`${ENV.airtableBaseId} must look like "appXXXXXXXXXXXXXX", not "${baseId}"`);
  const endpoint = flagOrEnv(undefined, ENV.airtableEndpointUrl);
  return { token, baseId, ...(endpoint === undefined ? {} : { endpointUrl: parseUrl(endpoint, ENV.airtableEndpointUrl) }) };
}

/** True for an endpoint or queue URL on AWS itself (then real credentials and region apply). */
export function isAwsUrl(url: string): boolean {
  return /(^|\.)amazonaws\.com(\.cn)?$/.test(new URL(url).hostname);
}

/**
 * Where the SQS client connects, for commands that take a queue URL: `AWS_ENDPOINT_URL_SQS` if set; else, for a
 * queue URL that is not on AWS, that URL's origin; else undefined (the SDK's AWS endpoint) for an AWS queue URL.
 */
export function sqsEndpointFor(queueUrl: string): string | undefined {
  const configured = flagOrEnv(undefined, ENV.sqsEndpoint);
  if (configured !== undefined) return parseUrl(configured, ENV.sqsEndpoint);
  return isAwsUrl(queueUrl) ? undefined : new URL(queueUrl).origin;
}

/**
 * The SDK needs a region and credentials even for a local server. Dummies are set only when the endpoint is not
 * AWS, so a real profile or SSO session is never shadowed. On AWS the region defaults to the queue URL's.
 */
export function ensureAwsEnvironment(endpoint: string | undefined, queueUrl?: string): void {
  if (endpoint !== undefined && !isAwsUrl(endpoint)) {
    process.env.AWS_REGION ??= CLI_DEFAULTS.localRegion;
    process.env.AWS_ACCESS_KEY_ID ??= CLI_DEFAULTS.localCredentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY ??= CLI_DEFAULTS.localCredentials.secretAccessKey;
    return;
  }
  const region = queueUrl === undefined ? undefined : /^sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(new URL(queueUrl).hostname)?.[1];
  if (region !== undefined) process.env.AWS_REGION ??= region;
}

/** Resolves a path against the repository root (npm runs scripts there, whatever the caller's directory). */
export const fromRoot = (relative: string) => path.resolve(process.cwd(), relative);

/** Connection errors the SDK or fetch report when nothing listens: worth a hint rather than a stack. */
export function isConnectionRefused(error: unknown): boolean {
  for (let e: any = error; e; e = e.cause) {
    if (e.code === "ECONNREFUSED" || e.code === "ECONNRESET" || e.name === "TimeoutError" || e.name === "AbortError") return true;
    if (Array.isArray(e.errors) && e.errors.some(isConnectionRefused)) return true;
  }
  return false;
}

/** How a command ended: its exit code, and for a refusal the one line it prints on stderr. */
export interface CommandOutcome {
  code: number;
  /** `error: …`, one line, for exit 1 (something outside the input failed) and 2 (bad input). */
  errorLine?: string;
}

/**
 * Runs a command's main to its outcome, never throwing: a {@link UsageError} or an {@link EventTooLargeError} (bad
 * input) → exit 2; anything else → exit 1; each with one line, never a stack trace. `main` may return an exit code.
 * {@link runCommand} prints it and ends the process; tests call this in-process.
 */
export async function settleCommand(main: (argv: string[]) => Promise<number | void>, argv: string[]): Promise<CommandOutcome> {
  try {
    return { code: (await main(argv)) ?? 0 };
  } catch (error) {
    const badInput = error instanceof UsageError || error instanceof EventTooLargeError;
    let message = error instanceof Error ? error.message : String(error);
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") message += " (is `npm start` already running? --help lists the port flags)";
    return { code: badInput ? 2 : 1, errorLine: `error: ${message.split("\n")[0]}` };
  }
}

/**
 * Runs a command's main and ends the process, when the module at `moduleUrl` is the program Node was started with
 * (`npm run <command>`); when it is only imported (a test that drives `main` in-process), does nothing.
 */
export function runCommand(main: (argv: string[]) => Promise<number | void>, moduleUrl: string): void {
  if (process.argv[1] === undefined || path.resolve(process.argv[1]) !== fileURLToPath(moduleUrl)) return;
  // `npm run dlq -- list | head`: the reader left; that is not an error worth a stack trace.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
  void settleCommand(main, process.argv.slice(2)).then(({ code, errorLine }) => {
    if (errorLine === undefined) {
      process.exitCode = code;
      return;
    }
    process.stderr.write(`${errorLine}\n`);
    process.exit(code);
  });
}

/** The SQS client for a command: at the endpoint when one is given, else AWS's. */
export function sqsClient(endpoint: string | undefined): SQSClient {
  return new SQSClient(endpoint === undefined ? {} : { endpoint });
}
