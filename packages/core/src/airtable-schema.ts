/**
 * Airtable's metadata API for the Donations table: read a base's tables (`GET /v0/meta/bases/{baseId}/tables`,
 * scope `schema.bases:read`), check the table against {@link DONATION_TABLE_FIELDS}, and create it
 * (`POST /v0/meta/bases/{baseId}/tables`, scope `schema.bases:write`). airtable.js has no metadata API, so this uses
 * `fetch`. Every request counts against the base's 5 requests/s like any other.
 */
import { DONATION_TABLE_FIELDS, type DonationFieldSpec } from "./donation-fields";
import { AirtableConfigurationError, AirtableRateLimitedError, AirtableUnavailableError } from "./errors";

export const AIRTABLE_API_URL = "https://api.airtable.com";

/** A field as the metadata API describes it. */
export interface AirtableFieldModel {
  id: string;
  name: string;
  type: string;
  description?: string;
  options?: Record<string, unknown>;
}

/** A table as the metadata API describes it. */
export interface AirtableTableModel {
  id: string;
  name: string;
  description?: string;
  primaryFieldId: string;
  fields: AirtableFieldModel[];
  views: { id: string; name: string; type: string }[];
}

/** The body of `POST /v0/meta/bases/{baseId}/tables`: the first field becomes the primary field. */
export interface CreateTableRequest {
  name: string;
  description?: string;
  fields: { name: string; type: string; description?: string; options?: Record<string, unknown> }[];
}

/** Which base, with which token. The token is never logged or put in a message. */
export interface SchemaTarget {
  token: string;
  baseId: string;
  /** Default {@link AIRTABLE_API_URL}; the emulator's URL locally. */
  endpointUrl?: string;
  /** Default 10 s. */
  requestTimeoutMs?: number;
}

/** Every table of a base. @throws {AirtableConfigurationError} token, scope or base refused; or a retryable error. */
export async function readBaseTables(target: SchemaTarget): Promise<AirtableTableModel[]> {
  const reply = await metaRequest(target, "GET", undefined, "schema.bases:read");
  return (reply as { tables: AirtableTableModel[] }).tables;
}

/** Creates a table. @throws {AirtableConfigurationError} also when Airtable refuses the table (422). */
export async function createTable(target: SchemaTarget, request: CreateTableRequest): Promise<AirtableTableModel> {
  return (await metaRequest(target, "POST", request, "schema.bases:write")) as AirtableTableModel;
}

/** What `setup` sends: the Donations table with {@link DONATION_TABLE_FIELDS}, under `tableName`. */
export function donationTableRequest(tableName: string): CreateTableRequest {
  return {
    name: tableName,
    description: "Donations, written by fundraise-sync from DonationCreated events (one record per event Id)",
    fields: DONATION_TABLE_FIELDS.map(({ name, type, options, description }) => ({
      name,
      type,
      description,
      ...(options === undefined ? {} : { options }),
    })),
  };
}

/** One field's finding: present with a type the writer's values fit, missing, or of a type that refuses them. */
export interface FieldFinding {
  spec: DonationFieldSpec;
  status: "ok" | "missing" | "wrong-type";
  /** The type found in the base. */
  actualType?: string;
  /** For a missing field: a field whose name differs only in case (writes name fields exactly). */
  nearName?: string;
}

export interface TableCheck {
  tableName: string;
  /** The table found (by name or id), or undefined when the base has none of that name. */
  table?: { id: string; name: string };
  fields: FieldFinding[];
  /** Fields the pipeline does not write; they are left alone. */
  otherFields: string[];
  /** True only when every field the writer sends exists with a type that takes its values. */
  writable: boolean;
}

/** Checks a base's tables for the Donations table `tableName` (a name or a `tbl…` id). Pure: no request. */
export function checkDonationTable(tables: readonly AirtableTableModel[], tableName: string): TableCheck {
  const table = tables.find((candidate) => candidate.name === tableName || candidate.id === tableName);
  if (!table) {
    return { tableName, fields: DONATION_TABLE_FIELDS.map((spec) => ({ spec, status: "missing" })), otherFields: [], writable: false };
  }
  const wanted = new Set<string>(DONATION_TABLE_FIELDS.map((spec) => spec.name));
  const fields = DONATION_TABLE_FIELDS.map((spec): FieldFinding => {
    const field = table.fields.find((candidate) => candidate.name === spec.name);
    if (!field) {
      const near = table.fields.find((candidate) => candidate.name.toLowerCase() === spec.name.toLowerCase());
      return { spec, status: "missing", ...(near ? { nearName: near.name } : {}) };
    }
    return { spec, status: spec.accepts.includes(field.type) ? "ok" : "wrong-type", actualType: field.type };
  });
  return {
    tableName,
    table: { id: table.id, name: table.name },
    fields,
    otherFields: table.fields.map((field) => field.name).filter((name) => !wanted.has(name)),
    writable: fields.every((finding) => finding.status === "ok"),
  };
}

async function metaRequest(target: SchemaTarget, method: "GET" | "POST", body: unknown, scope: string): Promise<unknown> {
  const base = (target.endpointUrl ?? AIRTABLE_API_URL).replace(/\/+$/, "");
  const url = `${base}/v0/meta/bases/${encodeURIComponent(target.baseId)}/tables`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(target.requestTimeoutMs ?? 10_000),
    });
  } catch (error) {
    const timedOut = (error as Error).name === "TimeoutError";
    const failure = new AirtableUnavailableError(
      timedOut ? `${base} did not answer within ${target.requestTimeoutMs ?? 10_000} ms` : `cannot reach ${base}: ${describeNetworkError(error)}`,
      undefined,
      undefined,
    );
    // Kept so that callers can tell "nothing listens" from other failures.
    Object.defineProperty(failure, "cause", { value: error });
    throw failure;
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (response.ok && json !== undefined) return json;
  const { type, message } = airtableError(json);
  const detail = `${method} /v0/meta/bases/${target.baseId}/tables: HTTP ${response.status}${type ? ` ${type}` : ""}${message ? `: ${message}` : ""}`;
  if (response.status === 401) {
    throw new AirtableConfigurationError(`Airtable refused the token (${detail})`, response.status, type);
  }
  if (response.status === 403 || response.status === 404) {
    throw new AirtableConfigurationError(
      `Airtable refused base ${target.baseId} (${detail}): the token needs the ${scope} scope and access to the base`,
      response.status,
      type,
    );
  }
  if (response.status === 429) throw new AirtableRateLimitedError(`Airtable's rate limit (${detail}): wait 30 s`, 429, type);
  if (response.status >= 500 || response.ok) throw new AirtableUnavailableError(`Airtable failed (${detail})`, response.status, type);
  throw new AirtableConfigurationError(`Airtable refused the request (${detail})`, response.status, type);
}

function airtableError(json: unknown): { type?: string; message?: string } {
  const error = (json as { error?: unknown } | undefined)?.error;
  if (typeof error === "string") return { type: error };
  if (error && typeof error === "object") {
    const { type, message } = error as { type?: unknown; message?: unknown };
    return { type: typeof type === "string" ? type : undefined, message: typeof message === "string" ? message : undefined };
  }
  return {};
}

/** fetch says only "fetch failed": the reason (ECONNREFUSED, "bad port", …) is in its cause chain. */
function describeNetworkError(error: unknown): string {
  let deepest = error as Error;
  for (let e: any = error; e; e = e.cause) {
    if (typeof e.code === "string") return e.code;
    deepest = e;
  }
  return deepest.message;
}
