/**
 * Airtable's error replies. Every failure the emulator answers is one of these, so the status, `type` and message
 * live in one place. Where Airtable's exact wording is not published, the README says which one was chosen.
 */

/** The JSON body of an error reply: `{"error": {"type", "message"}}`, or the bare `{"error": "NOT_FOUND"}`. */
export type AirtableErrorBody = { error: { type: string; message?: string } } | { error: string };

/** An error reply to send; thrown anywhere in request handling and turned into the response. */
export class AirtableApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly headers: Readonly<Record<string, string>>;
  /** True for the bare `{"error": "NOT_FOUND"}` body of an unknown route. */
  readonly bare: boolean;

  constructor(status: number, type: string, message: string, options: { headers?: Record<string, string>; bare?: boolean } = {}) {
    super(message);
    this.name = "AirtableApiError";
    this.status = status;
    this.type = type;
    this.headers = options.headers ?? {};
    this.bare = options.bare ?? false;
  }

  get body(): AirtableErrorBody {
    return this.bare ? { error: this.type } : { error: { type: this.type, message: this.message } };
  }
}

export const MODEL_NOT_FOUND_MESSAGE =
  "Invalid permissions, or the requested model was not found. Check that both your user and your token have the required permissions, and that the model names and/or ids are correct.";
export const RATE_LIMIT_MESSAGE = "Rate limit exceeded. Please try again later";
export const PARAMETER_VALIDATION_MESSAGE = "Invalid request: parameter validation failed. Check your request data.";

const err = (status: number, type: string, message: string) => new AirtableApiError(status, type, message);

/** Factories, one per failure Airtable can answer. */
export const ApiErrors = {
  authenticationRequired: () => err(401, "AUTHENTICATION_REQUIRED", "Authentication required"),
  modelNotFound: () => err(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", MODEL_NOT_FOUND_MESSAGE),
  /** Unknown route or method: Airtable answers a bare string. */
  routeNotFound: () => new AirtableApiError(404, "NOT_FOUND", "", { bare: true }),
  /** A record id in the URL path that the table does not hold (body recorded from api.airtable.com). */
  recordNotFound: () => err(404, "MODEL_ID_NOT_FOUND", "Record not found"),
  /** A record id in a request body or `records[]` query that the table does not hold. */
  rowDoesNotExist: (id: string) => err(422, "ROW_DOES_NOT_EXIST", `Record ID ${id} does not exist in this table`),
  invalidJson: () => err(400, "INVALID_REQUEST_UNKNOWN", "Invalid request: the request body is not valid JSON"),
  bodyTooLarge: (maxBytes: number) =>
    err(413, "REQUEST_TOO_LARGE", `Request body is too large (the limit is ${maxBytes} bytes)`),
  invalidRequest: (detail?: string) =>
    err(422, "INVALID_REQUEST_UNKNOWN", detail === undefined ? PARAMETER_VALIDATION_MESSAGE : `${PARAMETER_VALIDATION_MESSAGE} ${detail}`),
  /** A parameter Airtable knows but the emulator does not implement: refused, never silently ignored. */
  unsupported: (what: string) =>
    err(422, "INVALID_REQUEST_UNKNOWN", `The Airtable emulator does not support ${what}`),
  missingField: (field: string) =>
    err(422, "INVALID_REQUEST_MISSING_FIELDS", `Could not find field "${field}" in the request body`),
  invalidRecords: (withId: boolean) =>
    err(
      422,
      "INVALID_RECORDS",
      withId
        ? 'You must provide an array of up to 10 record objects, each with an "id" string and a "fields" object.'
        : 'You must provide an array of up to 10 record objects, each with a "fields" object.',
    ),
  tooManyDeletes: () => err(422, "INVALID_RECORDS", "You must provide an array of up to 10 record ids to delete."),
  unknownField: (name: string) => err(422, "UNKNOWN_FIELD_NAME", `Unknown field name: "${name}"`),
  invalidValue: (fieldName: string, detail?: string) =>
    err(422, "INVALID_VALUE_FOR_COLUMN", `Field "${fieldName}" cannot accept the provided value${detail ? `: ${detail}` : ""}`),
  invalidSelectOption: (choice: string) =>
    err(422, "INVALID_MULTIPLE_CHOICE_OPTIONS", `Insufficient permissions to create new select option ""${choice}""`),
  invalidFormula: (detail: string) =>
    err(422, "INVALID_FILTER_BY_FORMULA", `The formula for filtering records is invalid: ${detail}`),
  viewNotFound: (view: string) => err(422, "VIEW_NAME_NOT_FOUND", `Could not find view "${view}" in this table`),
  iteratorNotAvailable: () =>
    err(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE", "The offset is not valid or has expired; restart the listing"),
  upsertMultipleMatches: (index: number, fields: string[]) =>
    err(
      422,
      "INVALID_VALUE_FOR_COLUMN",
      `Multiple records match the fieldsToMergeOn values (${fields.map((f) => `"${f}"`).join(", ")}) of record ${index}: an upsert can update at most one record`,
    ),
  rateLimited: () => err(429, "RATE_LIMIT_REACHED", RATE_LIMIT_MESSAGE),
};

/** Airtable-shaped error types for injected faults, by status. */
export const FAULT_TYPES: Readonly<Record<number, { type: string; message: string }>> = {
  400: { type: "INVALID_REQUEST_UNKNOWN", message: "Invalid request" },
  401: { type: "AUTHENTICATION_REQUIRED", message: "Authentication required" },
  403: { type: "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", message: MODEL_NOT_FOUND_MESSAGE },
  404: { type: "NOT_FOUND", message: "Could not find what you are looking for" },
  422: { type: "INVALID_REQUEST_UNKNOWN", message: "The operation cannot be processed" },
  429: { type: "RATE_LIMIT_REACHED", message: RATE_LIMIT_MESSAGE },
  500: { type: "SERVER_ERROR", message: "Server error" },
  502: { type: "BAD_GATEWAY", message: "Bad gateway" },
  503: { type: "SERVICE_UNAVAILABLE", message: "Service unavailable" },
  504: { type: "GATEWAY_TIMEOUT", message: "Gateway timeout" },
};
