/** What `npm start` and `npm run run-once` both resolve: which SQS and which Airtable the pipeline talks to. */
import { DEFAULT_EMULATOR_CONFIG, type EmulatorConfig } from "@fundraise-sync/airtable-emulator";
import { EnvName } from "@fundraise-sync/core";
import {
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  flagOrEnv,
  localAirtableUrl,
  localSqsEndpoint,
  parseUrl,
  realAirtableFromEnv,
} from "./options";

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

/**
 * The write pacing the stack gives WriteToAirtable (`AIRTABLE_MIN_WRITE_INTERVAL_MS` in its Lambda environment), read
 * from the synthesized template: the handlers default to no pacing, and against a rate-limited Airtable (the emulator
 * has the real 5 requests/s on) unpaced writers earn 429s and a 30 s penalty.
 */
export function stackWriteIntervalMs(workflow: { template: Record<string, any>; constructIds: Record<string, string> }): number | undefined {
  for (const [logicalId, resource] of Object.entries(workflow.template.Resources as Record<string, any>)) {
    if (resource.Type !== "AWS::Lambda::Function" || workflow.constructIds[logicalId] !== "WriteToAirtable") continue;
    const value = resource.Properties?.Environment?.Variables?.[EnvName.AirtableMinWriteIntervalMs];
    return value === undefined ? undefined : Number(value);
  }
  return undefined;
}
