import { GetParametersCommand, type GetParametersCommandOutput, SSMClient } from "@aws-sdk/client-ssm";
import { AirtableConfigurationError, ConfigurationUnavailableError } from "@fundraise-sync/core/errors";

/**
 * Values SST keeps in SSM for a function's `bind` (`Config.Secret`, `Config.Parameter`), fetched the way
 * `sst/node/config` fetches them (same paths, same fallback for secrets), with one difference that matters: a failed
 * fetch is not remembered. `sst/node/config` fetches at import, and a module whose import failed stays failed for the
 * life of the Lambda instance, so one SSM throttle at a cold start would fail every later invocation of it.
 */

/** The part of an SSM client this needs (a real `SSMClient`; tests of the caching rules pass their own). */
export interface ParameterStore {
  send(command: GetParametersCommand): Promise<Pick<GetParametersCommandOutput, "Parameters" | "InvalidParameters">>;
}

export type BoundKind = "Secret" | "Parameter";

const fetched = new Map<string, string>();
let defaultStore: ParameterStore | undefined;

/** Forgets what was fetched (tests only: a Lambda instance keeps its values for its life). */
export function forgetFetchedValues(): void {
  fetched.clear();
}

/**
 * The value of a bound secret or parameter, from SSM on first use (then remembered for the instance's life).
 * @throws ConfigurationUnavailableError when SSM cannot be read (retryable; only this invocation fails)
 * @throws AirtableConfigurationError when the value is not set, naming the command that sets it
 */
export async function fetchBoundValue(kind: BoundKind, name: string, store?: ParameterStore): Promise<string> {
  const key = `${kind}/${name}`;
  const known = fetched.get(key);
  if (known !== undefined) return known;

  const ssm = store ?? (defaultStore ??= new SSMClient({ region: process.env.SST_REGION }));
  const primary = `${process.env.SST_SSM_PREFIX ?? ""}${kind}/${name}/value`;
  // `sst secrets set --fallback` stores a value for every stage without one of its own.
  const fallback = `/sst/${process.env.SST_APP}/.fallback/${kind}/${name}/value`;
  const paths = kind === "Secret" ? [primary, fallback] : [primary];
  let reply: Awaited<ReturnType<ParameterStore["send"]>>;
  try {
    reply = await ssm.send(new GetParametersCommand({ Names: paths, WithDecryption: true }));
  } catch (error) {
    const reason = (error as Error)?.name || "Error";
    throw new ConfigurationUnavailableError(`Could not read ${kind} ${name} from SSM (${reason}): this invocation fails and is retried`);
  }
  const byPath = new Map((reply.Parameters ?? []).map(({ Name, Value }) => [Name, Value]));
  const value = paths.map((path) => byPath.get(path)).find((found) => found !== undefined && found !== "");
  if (value === undefined) {
    const stage = process.env.SST_STAGE ?? "<stage>";
    const how =
      kind === "Secret"
        ? `run \`npx sst secrets set ${name} <value> --stage ${stage}\``
        : `set it in stacks/settings.ts and deploy stage ${stage} again`;
    throw new AirtableConfigurationError(`${kind} ${name} is not set for stage "${stage}": ${how}`, undefined, undefined);
  }
  fetched.set(key, value);
  return value;
}
