import { randomBytes } from "node:crypto";
import { open, readFile, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { compileConfig, compileTable, type BaseSchema, type EmulatorConfig, type FieldConfig, type TableSchema } from "./config";
import type { CellValue } from "./fields";

/** A record as stored and as `emulator.records()` returns it: fields keyed by field name, empty values left out. */
export interface EmulatorRecord {
  id: string;
  createdTime: string;
  fields: Record<string, CellValue>;
}

export interface TableStore {
  schema: TableSchema;
  /** Insertion order is creation order, which is the order lists return. */
  records: Map<string, EmulatorRecord>;
  /** Upsert lookup indexes, built on first use per set of merge fields and kept up to date by every write. */
  mergeIndexes?: Map<string, { fieldNames: string[]; byKey: Map<string, Set<EmulatorRecord>> }>;
}

export interface BaseStore {
  schema: BaseSchema;
  /** By table name and by table id. */
  tables: Map<string, TableStore>;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** `prefix` + 14 random alphanumerics, like Airtable's record (`rec`) and iterator (`itr`) ids. */
export function randomId(prefix: string): string {
  const bytes = randomBytes(14);
  let out = prefix;
  for (const byte of bytes) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
  return out;
}

/**
 * The data file: one JSON document, version-tagged. Tables are keyed by id; names are kept for people reading it.
 * A table created through the metadata API also keeps its definition (`created`), so it exists after a restart.
 */
interface DataFile {
  version: 1;
  bases: Record<
    string,
    {
      tables: Record<
        string,
        { name: string; choices: Record<string, string[]>; records: EmulatorRecord[]; created?: { description?: string; fields: FieldConfig[] } }
      >;
    }
  >;
}

/** A data file that cannot be read (bad JSON, wrong shape). */
export class EmulatorDataFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EmulatorDataFileError";
  }
}

export class Store {
  bases = new Map<string, BaseStore>();
  /** Ids of the tables the metadata API created (not in the config). */
  private created = new Set<string>();

  constructor(private readonly config: EmulatorConfig) {
    this.clear();
  }

  /** Empties every table and restores the configured schema (typecast-added choices go too). */
  clear(): void {
    this.bases = new Map();
    this.created = new Set();
    for (const schema of compileConfig(this.config)) {
      const tables = new Map<string, TableStore>();
      for (const table of schema.tables) {
        const store: TableStore = { schema: table, records: new Map() };
        tables.set(table.name, store);
        tables.set(table.id, store);
      }
      this.bases.set(schema.id, { schema, tables });
    }
  }

  /**
   * Adds a table to a base (the metadata API's create). The caller has checked the name is free.
   * @throws {EmulatorConfigError} when the definition is invalid.
   */
  addTable(baseId: string, definition: { id?: string; name: string; description?: string; fields: FieldConfig[] }): TableStore {
    const base = this.bases.get(baseId);
    if (!base) throw new Error(`no base "${baseId}"`);
    const schema = compileTable(baseId, definition, `table "${definition.name}"`);
    const store: TableStore = { schema, records: new Map() };
    base.schema.tables.push(schema);
    base.tables.set(schema.name, store);
    base.tables.set(schema.id, store);
    this.created.add(schema.id);
    return store;
  }

  table(baseId: string, tableIdOrName: string): TableStore | undefined {
    return this.bases.get(baseId)?.tables.get(tableIdOrName);
  }

  newRecordId(table: TableStore): string {
    for (;;) {
      const id = randomId("rec");
      if (!table.records.has(id)) return id;
    }
  }

  toJSON(): DataFile {
    const data: DataFile = { version: 1, bases: {} };
    for (const [baseId, base] of this.bases) {
      const tables: DataFile["bases"][string]["tables"] = {};
      for (const table of base.schema.tables) {
        const store = base.tables.get(table.id) as TableStore;
        const choices: Record<string, string[]> = {};
        for (const field of table.fields) if (field.type === "singleSelect") choices[field.name] = field.choices;
        tables[table.id] = { name: table.name, choices, records: [...store.records.values()] };
        if (this.created.has(table.id)) {
          const fields = table.fields.map(({ id, name, type, choices: fieldChoices, options, description }): FieldConfig => ({
            id,
            name,
            type,
            ...(fieldChoices.length > 0 ? { choices: fieldChoices } : {}),
            ...(options === undefined ? {} : { options }),
            ...(description === undefined ? {} : { description }),
          }));
          tables[table.id]!.created = { ...(table.description === undefined ? {} : { description: table.description }), fields };
        }
      }
      data.bases[baseId] = { tables };
    }
    return data;
  }

  /** Loads a data file's records; tables and fields the config no longer has are skipped (and reported). */
  load(text: string, warn: (message: string) => void): void {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw new EmulatorDataFileError(`data file is not valid JSON (${(error as Error).message})`);
    }
    const file = data as Partial<DataFile>;
    if (typeof file !== "object" || file === null || file.version !== 1 || typeof file.bases !== "object" || file.bases === null) {
      throw new EmulatorDataFileError('data file must be an object with "version": 1 and "bases"');
    }
    for (const [baseId, base] of Object.entries(file.bases)) {
      for (const [tableId, saved] of Object.entries(base?.tables ?? {})) {
        let store = this.table(baseId, tableId) ?? this.table(baseId, saved.name);
        if (!store && saved.created && this.bases.has(baseId)) {
          try {
            store = this.addTable(baseId, { id: tableId, name: saved.name, ...saved.created });
          } catch (error) {
            throw new EmulatorDataFileError(`data file: table "${saved.name}" cannot be recreated: ${(error as Error).message}`);
          }
        }
        if (!store) {
          warn(`data file: skipping table "${saved.name}" (${baseId}/${tableId}): not in the config`);
          continue;
        }
        for (const [fieldName, choices] of Object.entries(saved.choices ?? {})) {
          const field = store.schema.fieldsByName.get(fieldName);
          if (field?.type === "singleSelect") for (const c of choices) if (!field.choices.includes(c)) field.choices.push(c);
        }
        const dropped = new Set<string>();
        for (const record of saved.records ?? []) {
          if (typeof record?.id !== "string" || typeof record.createdTime !== "string" || typeof record.fields !== "object") {
            throw new EmulatorDataFileError(`data file: malformed record in table "${saved.name}"`);
          }
          const fields: Record<string, CellValue> = {};
          for (const [name, value] of Object.entries(record.fields)) {
            if (store.schema.fieldsByName.has(name)) fields[name] = value;
            else dropped.add(name);
          }
          store.records.set(record.id, { id: record.id, createdTime: record.createdTime, fields });
        }
        if (dropped.size > 0) warn(`data file: table "${saved.name}": dropped values of unknown fields ${[...dropped].join(", ")}`);
      }
    }
  }
}

/**
 * Writes the data file atomically: the JSON goes to a temporary file in the same directory, is fsync'ed, then
 * renamed over the target, so a crash leaves either the old file or the new one, never half of one. Saves are
 * serialized and coalesced: a save requested while one is running waits for the next write, which includes it.
 */
export class DataFileWriter {
  private running: Promise<void> | undefined;
  private queued: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;

  constructor(
    readonly path: string,
    private readonly snapshot: () => string,
  ) {}

  /** Resolves once a write that includes every change made before the call is on disk. */
  save(): Promise<void> {
    if (this.queued) return this.queued.promise; // the next write will include this change
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.queued = { promise, resolve, reject };
    if (!this.running) this.startNext();
    return promise;
  }

  /** Waits for every requested write. */
  async flush(): Promise<void> {
    while (this.running || this.queued) await (this.queued?.promise ?? this.running)?.catch(() => undefined);
  }

  private startNext(): void {
    const batch = this.queued;
    if (!batch) return;
    this.queued = undefined;
    this.running = this.writeNow(this.snapshot())
      .then(batch.resolve, batch.reject)
      .finally(() => {
        this.running = undefined;
        this.startNext();
      });
  }

  private async writeNow(text: string): Promise<void> {
    const temp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.${randomId("")}.tmp`);
    const handle = await open(temp, "w");
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temp, this.path);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  /** Reads the file, or undefined when it does not exist yet; removes temp files a crashed run left behind. */
  async read(): Promise<string | undefined> {
    const dir = dirname(this.path);
    const prefix = `.${basename(this.path)}.`;
    const entries = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(
      entries.filter((name) => name.startsWith(prefix) && name.endsWith(".tmp")).map((name) => unlink(join(dir, name)).catch(() => undefined)),
    );
    try {
      return await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new EmulatorDataFileError(`cannot read data file ${this.path}: ${(error as Error).message}`);
    }
  }
}
