/** What `npm start` and `npm run run-once` both resolve: which SQS and which Airtable the pipeline talks to. */
import { DEFAULT_EMULATOR_CONFIG, type EmulatorConfig } from "@fundraise-sync/airtable-emulator";
import {
  airtablePortFrom,
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  flagOrEnv,
  localAirtableUrl,
  localSqsEndpoint,
  localTokenFrom,
  parseUrl,
  realAirtableFromEnv,
  sqsPortFrom,
  tableFrom,
  UsageError,
} from "./options";
import { AIRTABLE_REQUESTS_PER_SECOND } from "@fundraise-sync/core";

/** The flags `npm start` and `npm run run-once` share: which local servers, which token and table. */
export const SERVER_FLAGS = {
  "sqs-port": { type: "string" },
  "airtable-port": { type: "string" },
  token: { type: "string" },
  table: { type: "string" },
  "airtable-rps": { type: "string" },
} as const;

/** Resolves {@link SERVER_FLAGS} (flags, then environment, then defaults), checked. */
export function localServersFrom(values: {
  "sqs-port"?: string;
  "airtable-port"?: string;
  token?: string;
  table?: string;
  "airtable-rps"?: string;
}) {
  return {
    choice: serverChoice(sqsPortFrom(values["sqs-port"])),
    airtablePort: airtablePortFrom(values["airtable-port"]),
    token: localTokenFrom(values.token),
    tableName: tableFrom(values.table),
    airtableRequestsPerSecond: airtableRpsFrom(values["airtable-rps"]),
  };
}

/**
 * `--airtable-rps N`, else `AIRTABLE_REQUESTS_PER_SECOND`: the pipeline's share of the base, a whole number from 1 to
 * Airtable's 5; undefined leaves the stack's setting.
 */
export function airtableRpsFrom(flag: string | undefined): number | undefined {
  const text = flagOrEnv(flag, ENV.airtableRequestsPerSecond);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value < 1 || value > AIRTABLE_REQUESTS_PER_SECOND) {
    const what = flag !== undefined ? "--airtable-rps" : ENV.airtableRequestsPerSecond;
    throw new UsageError(`${what} must be a whole number of requests per second from 1 to ${AIRTABLE_REQUESTS_PER_SECOND}, not "${text}"`);
  }
  return value;
}

export interface ServerChoice {
  /** An SQS server that is already running (`AWS_ENDPOINT_URL_SQS`), or undefined for the local one on `sqsPort`. */
  sqsEndpoint?: string;
  sqsPort: number;
  /** The real Airtable, when configured by the environment; the emulator otherwise. */
  realAirtable?: { token: string; baseId: string; endpointUrl?: string };
}

/** `AWS_ENDPOINT_URL_SQS` and the real Airtable's variables, checked. */
export function serverChoice(sqsPort: number): ServerChoice {
  const configured = flagOrEnv(undefined, ENV.sqsEndpoint);
  return {
    sqsPort,
    sqsEndpoint: configured === undefined ? undefined : parseUrl(configured, ENV.sqsEndpoint),
    realAirtable: realAirtableFromEnv(),
  };
}

export const effectiveSqsEndpoint = (choice: ServerChoice) => choice.sqsEndpoint ?? localSqsEndpoint(choice.sqsPort);
export const emulatorUrl = (airtablePort: number) => localAirtableUrl(airtablePort);

/** The emulator's schema with the project's table renamed to `table` (so `--table` works against the emulator). */
export function emulatorConfigFor(table: string): EmulatorConfig {
  if (table === CLI_DEFAULTS.table) return DEFAULT_EMULATOR_CONFIG;
  return {
    bases: DEFAULT_EMULATOR_CONFIG.bases.map((base) => ({ ...base, tables: base.tables.map((t) => ({ ...t, name: table })) })),
  };
}

/** Resolves when something answers HTTP at `url`; a one-line {@link CommandFailure} naming `what` otherwise. */
export async function probe(url: string, what: string, hint: string): Promise<void> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(CLI_DEFAULTS.probeTimeoutMs) });
  } catch (error) {
    const reason = (error as Error).name === "TimeoutError" ? "no answer" : "nothing is listening";
    throw new CommandFailure(`${reason} at ${url} (${what}): ${hint}`);
  }
}
