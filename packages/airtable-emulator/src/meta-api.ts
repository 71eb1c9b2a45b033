/**
 * Airtable's metadata API for tables, as far as the emulator's schema goes: `GET /v0/meta/bases/{baseId}/tables`
 * describes every table (ids, fields with their types and options, views), and `POST` of the same path creates one.
 * Field types the emulator cannot validate are refused with "does not support", never created half-way.
 */
import { createHash } from "node:crypto";
import { FIELD_TYPES, type FieldConfig, type FieldSchema, type FieldType, type TableSchema, viewId } from "./config";
import { AirtableApiError, ApiErrors } from "./errors";

/** Airtable types that exist but that the emulator does not validate: creating one is refused as unsupported. */
const OTHER_AIRTABLE_TYPES = new Set([
  "multipleSelects",
  "url",
  "phoneNumber",
  "richText",
  "multipleAttachments",
  "multipleRecordLinks",
  "singleCollaborator",
  "multipleCollaborators",
  "rating",
  "duration",
  "barcode",
]);

/** Airtable refuses these as a table's first (primary) field. */
const NOT_PRIMARY = new Set<FieldType>(["checkbox", "singleSelect"]);

const DATE_FORMATS: Record<string, string> = { local: "l", friendly: "LL", us: "M/D/YYYY", european: "D/M/YYYY", iso: "YYYY-MM-DD" };
const TIME_FORMATS: Record<string, string> = { "12hour": "h:mma", "24hour": "HH:mm" };

/** What GET shows for a configured field without options: Airtable's defaults for a new field of that type. */
function defaultOptions(type: FieldType): Record<string, unknown> | undefined {
  switch (type) {
    case "number":
    case "percent":
      return { precision: 0 };
    case "currency":
      return { precision: 2, symbol: "$" };
    case "date":
      return { dateFormat: { name: "iso" } };
    case "dateTime":
      return { dateFormat: { name: "iso" }, timeFormat: { name: "24hour" }, timeZone: "utc" };
    case "checkbox":
      return { icon: "check", color: "greenBright" };
    default:
      return undefined;
  }
}

/** Read format of date/time options: Airtable adds the `format` string that goes with each named format. */
function readOptions(field: FieldSchema, baseId: string): Record<string, unknown> | undefined {
  if (field.type === "singleSelect") {
    return { choices: field.choices.map((name) => ({ id: `sel${stableBody(`${baseId}/${field.id}/${name}`)}`, name })) };
  }
  const options = structuredClone(field.options ?? defaultOptions(field.type));
  if (options === undefined) return undefined;
  for (const [key, formats] of [["dateFormat", DATE_FORMATS], ["timeFormat", TIME_FORMATS]] as const) {
    const format = options[key] as { name?: string; format?: string } | undefined;
    if (format?.name !== undefined && format.format === undefined && formats[format.name] !== undefined) {
      options[key] = { ...format, format: formats[format.name] };
    }
  }
  return options;
}

function stableBody(seed: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const digest = createHash("sha256").update(seed).digest();
  let out = "";
  for (let i = 0; i < 14; i++) out += alphabet[(digest[i] ?? 0) % alphabet.length];
  return out;
}

/** A table in the metadata API's shape. */
export function tableModel(baseId: string, table: TableSchema) {
  return {
    id: table.id,
    name: table.name,
    ...(table.description === undefined ? {} : { description: table.description }),
    primaryFieldId: table.fields[0]!.id,
    fields: table.fields.map((field) => {
      const options = readOptions(field, baseId);
      return {
        id: field.id,
        name: field.name,
        type: field.type,
        ...(field.description === undefined ? {} : { description: field.description }),
        ...(options === undefined ? {} : { options }),
      };
    }),
    views: table.views.map((name) => ({ id: viewId(baseId, table.id, name), name, type: "grid" })),
  };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

const invalid = (detail: string) => ApiErrors.invalidRequest(detail);

/** Checks one field's write-format options the way Airtable requires them for its type. */
function fieldOptions(name: string, type: FieldType, options: unknown): Record<string, unknown> | undefined {
  const where = `field "${name}" (${type})`;
  const need = (...keys: string[]) => {
    if (!isObject(options)) throw invalid(`${where} needs options with ${keys.join(", ")}`);
    const missing = keys.filter((key) => options[key] === undefined);
    if (missing.length > 0) throw invalid(`${where} needs options.${missing.join(", options.")}`);
    const extra = Object.keys(options).filter((key) => !keys.includes(key));
    if (extra.length > 0) throw invalid(`${where} does not take options.${extra[0]}`);
    return options;
  };
  const precision = (value: unknown, max: number) => {
    if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > max) {
      throw invalid(`${where}: options.precision must be an integer from 0 to ${max}`);
    }
  };
  const named = (value: unknown, key: string, formats: Record<string, string>) => {
    if (!isObject(value) || typeof value.name !== "string" || formats[value.name] === undefined) {
      throw invalid(`${where}: options.${key}.name must be one of ${Object.keys(formats).join(", ")}`);
    }
    if (value.format !== undefined && value.format !== formats[value.name]) {
      throw invalid(`${where}: options.${key}.format does not match its name "${value.name}"`);
    }
  };
  switch (type) {
    case "singleLineText":
    case "multilineText":
    case "email":
      if (options !== undefined) throw invalid(`${where} takes no options`);
      return undefined;
    case "number":
    case "percent":
      precision(need("precision").precision, 8);
      return options as Record<string, unknown>;
    case "currency": {
      const given = need("precision", "symbol");
      precision(given.precision, 7);
      if (typeof given.symbol !== "string") throw invalid(`${where}: options.symbol must be a string`);
      return given;
    }
    case "date":
      named(need("dateFormat").dateFormat, "dateFormat", DATE_FORMATS);
      return options as Record<string, unknown>;
    case "dateTime": {
      const given = need("dateFormat", "timeFormat", "timeZone");
      named(given.dateFormat, "dateFormat", DATE_FORMATS);
      named(given.timeFormat, "timeFormat", TIME_FORMATS);
      if (typeof given.timeZone !== "string" || given.timeZone === "") throw invalid(`${where}: options.timeZone must be a time zone`);
      return given;
    }
    case "checkbox": {
      const given = need("icon", "color");
      if (typeof given.icon !== "string" || typeof given.color !== "string") throw invalid(`${where}: options.icon and options.color must be strings`);
      return given;
    }
    case "singleSelect": {
      const given = need("choices");
      if (!Array.isArray(given.choices) || !given.choices.every((choice) => isObject(choice) && typeof choice.name === "string" && choice.name !== "")) {
        throw invalid(`${where}: options.choices must be an array of {name}`);
      }
      return given;
    }
  }
}

/**
 * Reads a create-table request (`{name, description?, fields: [{name, type, description?, options?}]}`) into the
 * emulator's table config, refusing what Airtable refuses: a name in use (case-insensitive), duplicate or empty field
 * names, unknown types, missing or malformed options, a primary field of a type that cannot be one.
 */
export function parseCreateTable(body: unknown, existing: readonly TableSchema[]): { name: string; description?: string; fields: FieldConfig[] } {
  if (!isObject(body)) throw invalid("the body must be an object with name and fields");
  const unknownKey = Object.keys(body).find((key) => !["name", "description", "fields"].includes(key));
  if (unknownKey !== undefined) throw invalid(`unknown property "${unknownKey}"`);
  const { name, description, fields } = body;
  if (typeof name !== "string" || name.trim() === "" || existing.some((table) => table.name.toLowerCase() === name.trim().toLowerCase())) {
    throw new AirtableApiError(422, "DUPLICATE_OR_EMPTY_TABLE_NAME", "Table name must be non-empty and unique in the base");
  }
  if (description !== undefined && typeof description !== "string") throw invalid("description must be a string");
  if (!Array.isArray(fields) || fields.length === 0) throw invalid("fields must be a non-empty array");
  const seen = new Set<string>();
  const parsed = fields.map((field: unknown, index): FieldConfig => {
    if (!isObject(field)) throw invalid(`fields[${index}] must be an object`);
    const extra = Object.keys(field).find((key) => !["name", "type", "description", "options"].includes(key));
    if (extra !== undefined) throw invalid(`fields[${index}]: unknown property "${extra}"`);
    if (typeof field.name !== "string" || field.name.trim() === "" || seen.has(field.name.trim().toLowerCase())) {
      throw new AirtableApiError(422, "DUPLICATE_OR_EMPTY_FIELD_NAME", "Field names must be non-empty and unique in the table (case-insensitive)");
    }
    seen.add(field.name.trim().toLowerCase());
    if (typeof field.type !== "string") throw invalid(`fields[${index}] needs a type`);
    if (OTHER_AIRTABLE_TYPES.has(field.type)) throw ApiErrors.unsupported(`the field type "${field.type}"`);
    if (!(FIELD_TYPES as readonly string[]).includes(field.type)) throw invalid(`fields[${index}]: unknown field type "${field.type}"`);
    const type = field.type as FieldType;
    if (index === 0 && NOT_PRIMARY.has(type)) throw invalid(`the first field is the primary field and cannot be ${type}`);
    if (field.description !== undefined && typeof field.description !== "string") throw invalid(`fields[${index}].description must be a string`);
    const options = fieldOptions(field.name, type, field.options);
    return {
      name: field.name.trim(),
      type,
      ...(type === "singleSelect" ? { choices: (options!.choices as { name: string }[]).map((choice) => choice.name) } : {}),
      ...(options === undefined || type === "singleSelect" ? {} : { options }),
      ...(field.description === undefined ? {} : { description: field.description }),
    };
  });
  return { name: name.trim(), ...(description === undefined ? {} : { description }), fields: parsed };
}
