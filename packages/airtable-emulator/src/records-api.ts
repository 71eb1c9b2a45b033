import type { FieldSchema, TableSchema } from "./config";
import { MERGEABLE_FIELD_TYPES } from "./config";
import { ApiErrors } from "./errors";
import { normalizeCell, type CellValue } from "./fields";
import { compileFormula } from "./formula";
import { randomId, type EmulatorRecord, type TableStore } from "./store";

/**
 * The record endpoints' logic, free of HTTP: each function takes a table and a parsed request, validates the whole
 * request first, then applies it (so a write is all-or-nothing) and returns the reply body.
 */

export const MAX_RECORDS_PER_WRITE = 10;
export const MAX_PAGE_SIZE = 100;
const MAX_ITERATORS = 1000;

type Json = Record<string, unknown>;

export interface WriteEffects {
  created: number;
  updated: number;
  deleted: number;
}

export interface ApiContext {
  now(): number;
  newRecordId(table: TableStore): string;
}

function isPlainObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkKeys(body: Json, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw ApiErrors.invalidRequest(`Unknown parameter "${key}".`);
  }
}

function optionalBoolean(body: Json, key: string): boolean {
  const value = body[key];
  if (value === undefined) return false;
  if (typeof value !== "boolean") throw ApiErrors.invalidRequest(`"${key}" must be a boolean.`);
  return value;
}

function resolveField(table: TableSchema, key: string): FieldSchema {
  const field = table.fieldsByName.get(key) ?? table.fieldsById.get(key);
  if (!field) throw ApiErrors.unknownField(key);
  return field;
}

/** Shapes a stored record for a reply: fields in schema order, by name or id, optionally only some. */
export function presentRecord(
  table: TableSchema,
  record: EmulatorRecord,
  options: { byFieldId?: boolean; only?: ReadonlySet<string> } = {},
): Json {
  const fields: Json = {};
  for (const field of table.fields) {
    const value = record.fields[field.name];
    if (value === undefined || (options.only && !options.only.has(field.name))) continue;
    fields[options.byFieldId ? field.id : field.name] = value;
  }
  return { id: record.id, createdTime: record.createdTime, fields };
}

interface ValidatedFields {
  values: Map<FieldSchema, CellValue | undefined>;
  newChoices: [FieldSchema, string][];
}

function validateFields(table: TableSchema, raw: unknown, typecast: boolean, withId: boolean): ValidatedFields {
  if (!isPlainObject(raw)) throw ApiErrors.invalidRecords(withId);
  const values = new Map<FieldSchema, CellValue | undefined>();
  const newChoices: [FieldSchema, string][] = [];
  for (const [key, value] of Object.entries(raw)) {
    const field = resolveField(table, key);
    const cell = normalizeCell(field, value, typecast);
    values.set(field, cell.value);
    if (cell.newChoice !== undefined) newChoices.push([field, cell.newChoice]);
  }
  return { values, newChoices };
}

function applyChoices(validated: ValidatedFields[]): void {
  for (const v of validated) for (const [field, choice] of v.newChoices) if (!field.choices.includes(choice)) field.choices.push(choice);
}

function writeFields(record: EmulatorRecord, values: Map<FieldSchema, CellValue | undefined>, replace: boolean): void {
  if (replace) record.fields = {};
  for (const [field, value] of values) {
    if (value === undefined) delete record.fields[field.name];
    else record.fields[field.name] = value;
  }
}

/** The raw `fields` objects of a write body, for fault rules that match on a value. */
export function rawRecordFields(body: unknown): Json[] {
  if (!isPlainObject(body)) return [];
  if (isPlainObject(body.fields)) return [body.fields];
  if (Array.isArray(body.records)) return body.records.filter(isPlainObject).map((r) => (isPlainObject(r.fields) ? r.fields : {}));
  return [];
}

/** POST /v0/{base}/{table}: `{fields}` (one record; replies with it) or `{records: [{fields}]}` (many). */
export function createRecords(store: TableStore, body: unknown, ctx: ApiContext, effects: WriteEffects): Json {
  if (!isPlainObject(body)) throw ApiErrors.invalidRequest();
  checkKeys(body, ["fields", "records", "typecast", "returnFieldsByFieldId"]);
  const typecast = optionalBoolean(body, "typecast");
  const byFieldId = optionalBoolean(body, "returnFieldsByFieldId");
  const table = store.schema;
  if (body.records !== undefined && body.fields !== undefined) {
    throw ApiErrors.invalidRequest('Send either "fields" (one record) or "records" (many), not both.');
  }
  const single = body.records === undefined;
  let inputs: unknown[];
  if (single) {
    if (body.fields === undefined) throw ApiErrors.missingField("fields");
    inputs = [body.fields];
  } else {
    if (!Array.isArray(body.records) || body.records.length === 0 || body.records.length > MAX_RECORDS_PER_WRITE) {
      throw ApiErrors.invalidRecords(false);
    }
    inputs = body.records.map((r: unknown) => {
      if (!isPlainObject(r) || r.fields === undefined || Object.keys(r).some((k) => k !== "fields")) throw ApiErrors.invalidRecords(false);
      return r.fields;
    });
  }
  const validated = inputs.map((fields) => validateFields(table, fields, typecast, false));
  // Everything is valid: apply.
  applyChoices(validated);
  const createdTime = new Date(ctx.now()).toISOString();
  const created = validated.map((v) => {
    const record: EmulatorRecord = { id: ctx.newRecordId(store), createdTime, fields: {} };
    writeFields(record, v.values, true);
    store.records.set(record.id, record);
    reindex(store, record);
    return presentRecord(table, record, { byFieldId });
  });
  effects.created += created.length;
  return single ? (created[0] as Json) : { records: created };
}

/** PATCH/PUT /v0/{base}/{table}/{recordId} with `{fields}`. */
export function updateOneRecord(
  store: TableStore,
  recordId: string,
  body: unknown,
  replace: boolean,
  effects: WriteEffects,
): Json {
  if (!isPlainObject(body)) throw ApiErrors.invalidRequest();
  checkKeys(body, ["fields", "typecast", "returnFieldsByFieldId"]);
  const typecast = optionalBoolean(body, "typecast");
  const byFieldId = optionalBoolean(body, "returnFieldsByFieldId");
  const record = store.records.get(recordId);
  if (!record) throw ApiErrors.recordNotFound();
  if (body.fields === undefined) throw ApiErrors.missingField("fields");
  const validated = validateFields(store.schema, body.fields, typecast, true);
  applyChoices([validated]);
  unindex(store, record);
  writeFields(record, validated.values, replace);
  reindex(store, record);
  effects.updated++;
  return presentRecord(store.schema, record, { byFieldId });
}

function mergeKey(values: (CellValue | undefined)[]): string {
  let key = "";
  for (const v of values) key += `${v === undefined ? "u" : typeof v === "string" ? "s" : typeof v === "number" ? "n" : "b"}${v ?? ""}\u0000`;
  return key;
}


function recordMergeKey(record: EmulatorRecord, fieldNames: string[]): string {
  return mergeKey(fieldNames.map((name) => record.fields[name]));
}

/** The table's index for these merge fields (built once, then maintained by `unindex`/`reindex`). */
function mergeIndex(store: TableStore, fieldNames: string[]): Map<string, Set<EmulatorRecord>> {
  const signature = fieldNames.join("\u0000");
  store.mergeIndexes ??= new Map();
  let index = store.mergeIndexes.get(signature);
  if (!index) {
    index = { fieldNames, byKey: new Map() };
    store.mergeIndexes.set(signature, index);
    for (const record of store.records.values()) addToIndex(index.byKey, recordMergeKey(record, fieldNames), record);
  }
  return index.byKey;
}

function addToIndex(byKey: Map<string, Set<EmulatorRecord>>, key: string, record: EmulatorRecord): void {
  const set = byKey.get(key);
  if (set) set.add(record);
  else byKey.set(key, new Set([record]));
}

/** Call before a record's fields change or it is deleted. */
function unindex(store: TableStore, record: EmulatorRecord): void {
  for (const { fieldNames, byKey } of store.mergeIndexes?.values() ?? []) {
    const key = recordMergeKey(record, fieldNames);
    const set = byKey.get(key);
    set?.delete(record);
    if (set?.size === 0) byKey.delete(key);
  }
}

/** Call after a record is created or its fields changed. */
function reindex(store: TableStore, record: EmulatorRecord): void {
  for (const { fieldNames, byKey } of store.mergeIndexes?.values() ?? []) addToIndex(byKey, recordMergeKey(record, fieldNames), record);
}

/**
 * PATCH/PUT /v0/{base}/{table} with `{records: [{id, fields}]}`, or an upsert with `performUpsert`.
 * Upsert: per record, no match on the merge fields → create; one match → update; several → the request fails.
 */
export function updateRecords(
  store: TableStore,
  body: unknown,
  replace: boolean,
  ctx: ApiContext,
  effects: WriteEffects,
): Json {
  if (!isPlainObject(body)) throw ApiErrors.invalidRequest();
  checkKeys(body, ["records", "typecast", "returnFieldsByFieldId", "performUpsert"]);
  const typecast = optionalBoolean(body, "typecast");
  const byFieldId = optionalBoolean(body, "returnFieldsByFieldId");
  const table = store.schema;

  let mergeFields: FieldSchema[] | undefined;
  if (body.performUpsert !== undefined) {
    const upsert = body.performUpsert;
    if (!isPlainObject(upsert) || Object.keys(upsert).some((k) => k !== "fieldsToMergeOn")) {
      throw ApiErrors.invalidRequest('"performUpsert" must be an object with "fieldsToMergeOn".');
    }
    const names = upsert.fieldsToMergeOn;
    if (!Array.isArray(names) || names.length < 1 || names.length > 3 || !names.every((n) => typeof n === "string")) {
      throw ApiErrors.invalidRequest('"performUpsert.fieldsToMergeOn" must be an array of 1 to 3 field names or ids.');
    }
    mergeFields = (names as string[]).map((name) => {
      const field = resolveField(table, name);
      if (!MERGEABLE_FIELD_TYPES.has(field.type)) {
        throw ApiErrors.invalidRequest(`Field "${field.name}" (type ${field.type}) cannot be used in fieldsToMergeOn.`);
      }
      return field;
    });
  }

  if (body.records === undefined) throw ApiErrors.missingField("records");
  if (!Array.isArray(body.records) || body.records.length === 0 || body.records.length > MAX_RECORDS_PER_WRITE) {
    throw ApiErrors.invalidRecords(true);
  }

  interface Planned {
    validated: ValidatedFields;
    target: EmulatorRecord | undefined;
  }
  const planned: Planned[] = [];
  const seenKeys = new Set<string>();
  const seenIds = new Set<string>();
  body.records.forEach((raw: unknown, index: number) => {
    if (!isPlainObject(raw) || raw.fields === undefined || Object.keys(raw).some((k) => k !== "id" && k !== "fields")) {
      throw ApiErrors.invalidRecords(true);
    }
    if (raw.id !== undefined && typeof raw.id !== "string") throw ApiErrors.invalidRecords(true);
    if (raw.id === undefined && !mergeFields) throw ApiErrors.invalidRecords(true);
    const validated = validateFields(table, raw.fields, typecast, true);
    let target: EmulatorRecord | undefined;
    if (typeof raw.id === "string") {
      target = store.records.get(raw.id);
      if (!target) throw ApiErrors.rowDoesNotExist(raw.id);
    } else if (mergeFields) {
      const values = mergeFields.map((field) => validated.values.get(field));
      const missing = mergeFields.filter((_, i) => values[i] === undefined);
      if (missing.length > 0) {
        throw ApiErrors.invalidRequest(
          `Record ${index} has no value for fieldsToMergeOn field(s) ${missing.map((f) => `"${f.name}"`).join(", ")}.`,
        );
      }
      const key = mergeKey(values);
      if (seenKeys.has(key)) {
        throw ApiErrors.invalidRequest(
          `Records in one upsert request must have distinct fieldsToMergeOn values; record ${index} repeats an earlier one.`,
        );
      }
      seenKeys.add(key);
      const matches = [...(mergeIndex(store, mergeFields.map((f) => f.name)).get(key) ?? [])];
      if (matches.length > 1) throw ApiErrors.upsertMultipleMatches(index, mergeFields.map((f) => f.name));
      target = matches[0];
    }
    if (target) {
      if (seenIds.has(target.id)) {
        throw ApiErrors.invalidRequest(`Record ${target.id} appears more than once in the request.`);
      }
      seenIds.add(target.id);
    }
    planned.push({ validated, target });
  });

  // Everything is valid: apply.
  applyChoices(planned.map((p) => p.validated));
  const createdTime = new Date(ctx.now()).toISOString();
  const createdRecords: string[] = [];
  const updatedRecords: string[] = [];
  const records = planned.map(({ validated, target }) => {
    let record = target;
    if (record) {
      unindex(store, record);
      writeFields(record, validated.values, replace);
      updatedRecords.push(record.id);
    } else {
      record = { id: ctx.newRecordId(store), createdTime, fields: {} };
      writeFields(record, validated.values, true);
      store.records.set(record.id, record);
      createdRecords.push(record.id);
    }
    reindex(store, record);
    return presentRecord(table, record, { byFieldId });
  });
  effects.created += createdRecords.length;
  effects.updated += updatedRecords.length;
  return mergeFields ? { records, createdRecords, updatedRecords } : { records };
}

/** DELETE one (`/{recordId}`) or many (`records[]=rec…`, up to 10). */
export function deleteRecords(store: TableStore, ids: string[], single: boolean, effects: WriteEffects): Json {
  if (single) {
    const id = ids[0] as string;
    const record = store.records.get(id);
    if (!record) throw ApiErrors.recordNotFound();
    unindex(store, record);
    store.records.delete(id);
    effects.deleted++;
    return { id, deleted: true };
  }
  if (ids.length === 0 || ids.length > MAX_RECORDS_PER_WRITE) throw ApiErrors.tooManyDeletes();
  for (const id of ids) if (!store.records.has(id)) throw ApiErrors.rowDoesNotExist(id);
  const unique = [...new Set(ids)];
  for (const id of unique) {
    unindex(store, store.records.get(id) as EmulatorRecord);
    store.records.delete(id);
  }
  effects.deleted += unique.length;
  return { records: ids.map((id) => ({ id, deleted: true })) };
}

/** GET /v0/{base}/{table}/{recordId}. */
export function getRecord(store: TableStore, recordId: string, byFieldId: boolean): Json {
  const record = store.records.get(recordId);
  if (!record) throw ApiErrors.recordNotFound();
  return presentRecord(store.schema, record, { byFieldId });
}

export interface ListOptions {
  pageSize?: number;
  maxRecords?: number;
  offset?: string;
  fields?: string[];
  sort?: { field: string; direction?: string }[];
  view?: string;
  filterByFormula?: string;
  cellFormat?: string;
  returnFieldsByFieldId?: boolean;
}

function positiveInt(value: unknown, name: string, max: number): number {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > max) {
    throw ApiErrors.invalidRequest(`"${name}" must be an integer from 1 to ${max}.`);
  }
  return n;
}

/** Reads list options from a GET query string; any parameter the emulator does not implement is refused. */
export function listOptionsFromQuery(query: URLSearchParams): ListOptions {
  const options: ListOptions = {};
  const sort: { field?: string; direction?: string }[] = [];
  for (const key of new Set(query.keys())) {
    const value = query.get(key) as string;
    const sortMatch = /^sort\[(\d+)\]\[(field|direction)\]$/.exec(key);
    if (sortMatch) {
      const entry = (sort[Number(sortMatch[1])] ??= {});
      entry[sortMatch[2] as "field" | "direction"] = value;
    } else if (/^fields\[\d*\]$/.test(key)) {
      (options.fields ??= []).push(...query.getAll(key));
    } else {
      switch (key) {
        case "pageSize":
        case "maxRecords":
          options[key] = positiveInt(value, key, key === "pageSize" ? MAX_PAGE_SIZE : Number.MAX_SAFE_INTEGER);
          break;
        case "offset":
        case "view":
        case "filterByFormula":
        case "cellFormat":
          options[key] = value;
          break;
        case "returnFieldsByFieldId":
          options.returnFieldsByFieldId = value === "true" || value === "1";
          break;
        case "timeZone":
        case "userLocale":
          break; // only shape cellFormat=string output, which is refused below
        default:
          throw ApiErrors.unsupported(`the query parameter "${key}"`);
      }
    }
  }
  if (sort.length > 0) {
    options.sort = [...sort].map((s) => {
      if (!s || s.field === undefined) throw ApiErrors.invalidRequest("Each sort entry needs a field.");
      return { field: s.field, direction: s.direction };
    });
  }
  return options;
}

/** Reads list options from a `POST …/listRecords` body. */
export function listOptionsFromBody(body: unknown): ListOptions {
  if (body === undefined) return {};
  if (!isPlainObject(body)) throw ApiErrors.invalidRequest();
  const options: ListOptions = {};
  for (const [key, value] of Object.entries(body)) {
    switch (key) {
      case "pageSize":
      case "maxRecords":
        options[key] = positiveInt(value, key, key === "pageSize" ? MAX_PAGE_SIZE : Number.MAX_SAFE_INTEGER);
        break;
      case "offset":
      case "view":
      case "filterByFormula":
      case "cellFormat":
        if (typeof value !== "string") throw ApiErrors.invalidRequest(`"${key}" must be a string.`);
        options[key] = value;
        break;
      case "fields":
        if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw ApiErrors.invalidRequest('"fields" must be an array of strings.');
        options.fields = value;
        break;
      case "sort":
        if (!Array.isArray(value) || !value.every((s) => isPlainObject(s) && typeof s.field === "string")) {
          throw ApiErrors.invalidRequest('"sort" must be an array of {field, direction} objects.');
        }
        options.sort = value as { field: string; direction?: string }[];
        break;
      case "returnFieldsByFieldId":
        if (typeof value !== "boolean") throw ApiErrors.invalidRequest('"returnFieldsByFieldId" must be a boolean.');
        options.returnFieldsByFieldId = value;
        break;
      case "timeZone":
      case "userLocale":
      case "method": // airtable.js puts its own `method: "post"` option into the body
        break;
      default:
        throw ApiErrors.unsupported(`the listRecords parameter "${key}"`);
    }
  }
  return options;
}

/** Snapshots of listings, so `offset` pages through the records as they were at the first page (like Airtable). */
export class ListIterators {
  private readonly iterators = new Map<string, string[]>();

  create(ids: string[]): string {
    const id = randomId("itr");
    this.iterators.set(id, ids);
    if (this.iterators.size > MAX_ITERATORS) {
      const oldest = this.iterators.keys().next().value as string;
      this.iterators.delete(oldest);
    }
    return id;
  }

  get(id: string): string[] | undefined {
    return this.iterators.get(id);
  }

  clear(): void {
    this.iterators.clear();
  }
}

function compareCells(a: CellValue | undefined, b: CellValue | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1; // empty cells sort first in ascending order
  if (b === undefined) return 1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** GET /v0/{base}/{table} and POST …/listRecords. */
export function listRecords(store: TableStore, options: ListOptions, iterators: ListIterators): Json {
  const table = store.schema;
  if (options.cellFormat !== undefined && options.cellFormat !== "json") {
    throw ApiErrors.unsupported(`cellFormat "${options.cellFormat}" (only "json")`);
  }
  if (options.view !== undefined && !table.views.includes(options.view)) throw ApiErrors.viewNotFound(options.view);
  const only = options.fields ? new Set(options.fields.map((f) => resolveField(table, f).name)) : undefined;
  const sort = (options.sort ?? []).map((s) => {
    const field = resolveField(table, s.field);
    if (s.direction !== undefined && s.direction !== "asc" && s.direction !== "desc") {
      throw ApiErrors.invalidRequest(`Sort direction must be "asc" or "desc", not "${s.direction}".`);
    }
    return { name: field.name, sign: s.direction === "desc" ? -1 : 1 };
  });
  const filter = options.filterByFormula ? compileFormula(options.filterByFormula, table) : undefined;
  const pageSize = options.pageSize ?? MAX_PAGE_SIZE;

  let ids: string[];
  let position: number;
  let iteratorId: string | undefined;
  if (options.offset !== undefined) {
    const [itr, next] = options.offset.split("/");
    const snapshot = itr === undefined ? undefined : iterators.get(itr);
    position = snapshot && next !== undefined ? snapshot.indexOf(next) : -1;
    if (!snapshot || position < 0) throw ApiErrors.iteratorNotAvailable();
    ids = snapshot;
    iteratorId = itr;
  } else {
    let records = [...store.records.values()];
    if (filter) records = records.filter(filter);
    if (sort.length > 0) {
      records.sort((r1, r2) => {
        for (const { name, sign } of sort) {
          const c = compareCells(r1.fields[name], r2.fields[name]);
          if (c !== 0) return c * sign;
        }
        return 0;
      });
    }
    if (options.maxRecords !== undefined) records = records.slice(0, options.maxRecords);
    ids = records.map((r) => r.id);
    position = 0;
  }
  const end = position + pageSize;
  const page: Json[] = [];
  for (const id of ids.slice(position, end)) {
    const record = store.records.get(id); // deleted since the first page: skipped
    if (record) page.push(presentRecord(table, record, { byFieldId: options.returnFieldsByFieldId, only }));
  }
  const reply: Json = { records: page };
  if (end < ids.length) {
    iteratorId ??= iterators.create(ids);
    reply.offset = `${iteratorId}/${ids[end]}`;
  }
  return reply;
}
