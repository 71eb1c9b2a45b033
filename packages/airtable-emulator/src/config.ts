import { createHash } from "node:crypto";
import { DONATION_TABLE_FIELDS } from "@fundraise-sync/core/donation-fields";

/**
 * The schema the emulator serves: bases → tables → fields. A JSON file of this shape is what `--config` reads.
 * Table and field ids are optional: when left out they are derived from the names, so they stay the same across
 * restarts (and a data file written by one run loads in the next).
 */

/** Field types the emulator validates. Anything else in a config is refused at start. */
export const FIELD_TYPES = [
  "singleLineText",
  "multilineText",
  "number",
  "currency",
  "percent",
  "date",
  "dateTime",
  "email",
  "checkbox",
  "singleSelect",
] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/** Field types that `performUpsert.fieldsToMergeOn` accepts (Airtable: text, number, select, date; not email/checkbox). */
export const MERGEABLE_FIELD_TYPES: ReadonlySet<FieldType> = new Set<FieldType>([
  "singleLineText",
  "multilineText",
  "number",
  "currency",
  "percent",
  "date",
  "dateTime",
  "singleSelect",
]);

export interface FieldConfig {
  name: string;
  type: FieldType;
  /** `fld` + 14 characters; derived from base, table and field name when left out. */
  id?: string;
  /** `singleSelect` only: the allowed choices (typecast may add more). */
  choices?: string[];
  /** Airtable's field options as the metadata API shows them (e.g. currency `{precision, symbol}`); defaults by type. */
  options?: Record<string, unknown>;
  description?: string;
}

export interface TableConfig {
  name: string;
  /** `tbl` + 14 characters; derived from base and table name when left out. */
  id?: string;
  fields: FieldConfig[];
  /** View names `view=` accepts (every view lists all records, in creation order). Default: ["Grid view"]. */
  views?: string[];
}

export interface BaseConfig {
  /** `app…` */
  id: string;
  tables: TableConfig[];
}

export interface EmulatorConfig {
  bases: BaseConfig[];
}

export const DEFAULT_BASE_ID = "appFundraiseSync1";
export const DEFAULT_TABLE_NAME = "Donations";
export const DEFAULT_TOKEN = "patLocalDevToken.fundraise-sync";
export const DEFAULT_PORT = 9325;
export const DEFAULT_VIEW_NAME = "Grid view";

/** The project's table: the fields the pipeline writes, from their one source in core. */
export const DEFAULT_EMULATOR_CONFIG: EmulatorConfig = {
  bases: [
    {
      id: DEFAULT_BASE_ID,
      tables: [
        {
          name: DEFAULT_TABLE_NAME,
          fields: DONATION_TABLE_FIELDS.map(({ name, type, options, description }) => ({
            name,
            type,
            description,
            ...(options === undefined ? {} : { options }),
          })),
        },
      ],
    },
  ],
};

/** A config that cannot be served: unknown type, duplicate name, malformed id. */
export class EmulatorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EmulatorConfigError";
  }
}

/** A field after normalization: id and choices always present. */
export interface FieldSchema {
  id: string;
  name: string;
  type: FieldType;
  /** singleSelect choices; mutable because typecast may add one. */
  choices: string[];
  /** As configured or created; the metadata API fills in per-type defaults when absent. */
  options?: Record<string, unknown>;
  description?: string;
}

export interface TableSchema {
  id: string;
  name: string;
  description?: string;
  fields: FieldSchema[];
  fieldsByName: Map<string, FieldSchema>;
  fieldsById: Map<string, FieldSchema>;
  views: string[];
}

export interface BaseSchema {
  id: string;
  tables: TableSchema[];
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A stable 14-character id body from a seed, so derived ids survive restarts. */
function stableIdBody(seed: string): string {
  const digest = createHash("sha256").update(seed).digest();
  let out = "";
  for (let i = 0; i < 14; i++) out += ALPHANUMERIC[(digest[i] ?? 0) % ALPHANUMERIC.length];
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks a config (typically parsed from JSON, so `unknown`) and derives ids.
 *
 * @example
 * const bases = compileConfig(DEFAULT_EMULATOR_CONFIG); // bases[0].tables[0].id === "tbl…"
 */
export function compileConfig(config: unknown): BaseSchema[] {
  if (!isPlainObject(config) || !Array.isArray(config.bases) || config.bases.length === 0) {
    throw new EmulatorConfigError('config must be an object with a non-empty "bases" array');
  }
  const baseIds = new Set<string>();
  return config.bases.map((base: unknown, b): BaseSchema => {
    if (!isPlainObject(base) || typeof base.id !== "string" || !/^app[A-Za-z0-9]+$/.test(base.id)) {
      throw new EmulatorConfigError(`bases[${b}].id must be a string like "appXXXXXXXXXXXXXX"`);
    }
    const baseId = base.id;
    if (baseIds.has(baseId)) throw new EmulatorConfigError(`duplicate base id "${baseId}"`);
    baseIds.add(baseId);
    // An empty base is allowed: the metadata API can create its tables.
    if (!Array.isArray(base.tables)) throw new EmulatorConfigError(`base "${baseId}" must have a "tables" array`);
    const tableKeys = new Set<string>();
    const tables = base.tables.map((table: unknown, t): TableSchema => {
      const schema = compileTable(baseId, table, `base "${baseId}" tables[${t}]`);
      for (const key of [schema.name, schema.id]) {
        if (tableKeys.has(key)) throw new EmulatorConfigError(`duplicate table name or id "${key}" in base "${baseId}"`);
        tableKeys.add(key);
      }
      return schema;
    });
    return { id: baseId, tables };
  });
}

/**
 * Checks one table's config (from a config file, or a metadata API create request) and derives its ids.
 *
 * @throws {EmulatorConfigError} naming the problem, prefixed with `where`.
 */
export function compileTable(baseId: string, table: unknown, where: string): TableSchema {
  if (!isPlainObject(table) || typeof table.name !== "string" || table.name === "") {
    throw new EmulatorConfigError(`${where} must have a non-empty "name"`);
  }
  const tableName = table.name;
  const tableId = table.id === undefined ? `tbl${stableIdBody(`${baseId}/${tableName}`)}` : table.id;
  if (typeof tableId !== "string" || !/^tbl[A-Za-z0-9]+$/.test(tableId)) {
    throw new EmulatorConfigError(`${where}.id must be a string like "tblXXXXXXXXXXXXXX"`);
  }
  if (!Array.isArray(table.fields) || table.fields.length === 0) {
    throw new EmulatorConfigError(`table "${tableName}" must have a non-empty "fields" array`);
  }
  const fieldsByName = new Map<string, FieldSchema>();
  const fieldsById = new Map<string, FieldSchema>();
  const fields = table.fields.map((field: unknown, f): FieldSchema => {
    const fwhere = `table "${tableName}" fields[${f}]`;
    if (!isPlainObject(field) || typeof field.name !== "string" || field.name === "") {
      throw new EmulatorConfigError(`${fwhere} must have a non-empty "name"`);
    }
    if (typeof field.type !== "string" || !(FIELD_TYPES as readonly string[]).includes(field.type)) {
      throw new EmulatorConfigError(
        `${fwhere} ("${field.name}") has type ${JSON.stringify(field.type)}; expected one of ${FIELD_TYPES.join(", ")}`,
      );
    }
    const fieldId = field.id === undefined ? `fld${stableIdBody(`${baseId}/${tableName}/${field.name}`)}` : field.id;
    if (typeof fieldId !== "string" || !/^fld[A-Za-z0-9]+$/.test(fieldId)) {
      throw new EmulatorConfigError(`${fwhere}.id must be a string like "fldXXXXXXXXXXXXXX"`);
    }
    const choices = field.choices ?? [];
    if (!Array.isArray(choices) || !choices.every((c): c is string => typeof c === "string")) {
      throw new EmulatorConfigError(`${fwhere}.choices must be an array of strings`);
    }
    if (field.options !== undefined && !isPlainObject(field.options)) throw new EmulatorConfigError(`${fwhere}.options must be an object`);
    if (field.description !== undefined && typeof field.description !== "string") {
      throw new EmulatorConfigError(`${fwhere}.description must be a string`);
    }
    const schema: FieldSchema = {
      id: fieldId,
      name: field.name,
      type: field.type as FieldType,
      choices: [...choices],
      ...(field.options === undefined ? {} : { options: structuredClone(field.options) }),
      ...(field.description === undefined ? {} : { description: field.description }),
    };
    if (fieldsByName.has(schema.name) || fieldsById.has(schema.id)) {
      throw new EmulatorConfigError(`duplicate field "${schema.name}" in table "${tableName}"`);
    }
    fieldsByName.set(schema.name, schema);
    fieldsById.set(schema.id, schema);
    return schema;
  });
  const views = table.views ?? [DEFAULT_VIEW_NAME];
  if (!Array.isArray(views) || !views.every((v): v is string => typeof v === "string")) {
    throw new EmulatorConfigError(`table "${tableName}".views must be an array of strings`);
  }
  if (table.description !== undefined && typeof table.description !== "string") {
    throw new EmulatorConfigError(`table "${tableName}".description must be a string`);
  }
  return {
    id: tableId,
    name: tableName,
    ...(table.description === undefined ? {} : { description: table.description }),
    fields,
    fieldsByName,
    fieldsById,
    views: [...views],
  };
}

/** A stable `viw…` id for a view, derived like table and field ids. */
export const viewId = (baseId: string, tableId: string, view: string) => `viw${stableIdBody(`${baseId}/${tableId}/view/${view}`)}`;
