import type { AirtableTarget } from "@fundraise-sync/core/airtable-writer";
import { PipelineConfigurationError } from "@fundraise-sync/core/errors";
import {
  AIRTABLE_RATE_LIMIT_PENALTY_SECONDS,
  AIRTABLE_REQUESTS_PER_SECOND,
  DEFAULT_AIRTABLE_SHARE_PER_SECOND,
} from "@fundraise-sync/core/limits";
import { ConfigName, EnvName } from "@fundraise-sync/core/names";
import { fetchBoundValue } from "./bound-config";

/**
 * The one place where handler configuration is read, identical in Lambda, under `sst dev` and in the local runtime.
 *
 * SST binds a `Config.Secret` as `SST_Secret_value_<NAME>` and a `Config.Parameter` as `SST_Parameter_value_<NAME>`.
 * Deployed, those hold a marker and the values live in SSM: `bound-config.ts` fetches them (once they are found). The
 * local runtime sets the values themselves in the same variables. Plain values are read on every call so one process
 * can run several configurations (the local runtime's tests do).
 */
const FETCHED_BY_SST = /^__FETCH_FROM_(SSM__|SECRET__:)/;

async function bound(kind: "Secret" | "Parameter", name: string): Promise<string> {
  const raw = process.env[`SST_${kind}_value_${name}`];
  if (raw === undefined || raw === "") {
    throw new PipelineConfigurationError(`${kind} ${name} is not set: bind it to this function (or set it locally)`);
  }
  if (!FETCHED_BY_SST.test(raw)) return raw;
  return fetchBoundValue(kind, name);
}

function milliseconds(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new PipelineConfigurationError(`${name} must be a number of milliseconds, got "${raw}"`);
  }
  return value;
}

/** The pipeline's share of the base (`AIRTABLE_REQUESTS_PER_SECOND`): a whole number from 1 to Airtable's 5. */
function requestsPerSecond(): number {
  const raw = process.env[EnvName.AirtableRequestsPerSecond];
  if (raw === undefined || raw === "") return DEFAULT_AIRTABLE_SHARE_PER_SECOND;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > AIRTABLE_REQUESTS_PER_SECOND) {
    throw new PipelineConfigurationError(
      `${EnvName.AirtableRequestsPerSecond} must be a whole number from 1 to ${AIRTABLE_REQUESTS_PER_SECOND}, got "${raw}"`,
    );
  }
  return value;
}

/** Reads where and how to write donations. */
export async function readAirtableTarget(): Promise<AirtableTarget> {
  const [token, baseId, tableName] = await Promise.all([
    bound("Secret", ConfigName.AirtableToken),
    bound("Parameter", ConfigName.AirtableBaseId),
    bound("Parameter", ConfigName.AirtableTableName),
  ]);
  return {
    token,
    baseId,
    tableName,
    endpointUrl: process.env[EnvName.AirtableEndpointUrl] || undefined,
    requestTimeoutMs: milliseconds(EnvName.AirtableRequestTimeoutMs, 10_000),
    requestsPerSecond: requestsPerSecond(),
    rateLimitPenaltyMs: milliseconds(EnvName.AirtableRateLimitPenaltyMs, AIRTABLE_RATE_LIMIT_PENALTY_SECONDS * 1000),
  };
}
