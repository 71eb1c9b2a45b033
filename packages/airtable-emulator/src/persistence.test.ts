import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME } from "./config";
import { startAirtableEmulator } from "./server";
import { EmulatorDataFileError } from "./store";
import { call, donationFields, TABLE_PATH } from "./test-support";

describe("persistence to a data file", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "airtable-emulator-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps records and typecast choices across a restart", async () => {
    // Arrange
    const dataFile = join(dir, "data.json");
    const config = {
      bases: [{ id: DEFAULT_BASE_ID, tables: [{ name: DEFAULT_TABLE_NAME, fields: [{ name: "Id", type: "singleLineText" as const }, { name: "Kind", type: "singleSelect" as const }] }] }],
    };
    const first = await startAirtableEmulator({ port: 0, rateLimit: false, dataFile, config });
    const created = await call(first, "POST", TABLE_PATH, { body: { typecast: true, records: [{ fields: { Id: "a", Kind: "gift" } }, { fields: { Id: "b" } }] } });
    await call(first, "DELETE", `${TABLE_PATH}/${created.body.records[1].id}`);
    await first.close();

    // Act
    const second = await startAirtableEmulator({ port: 0, rateLimit: false, dataFile, config });
    const listed = await call(second, "GET", TABLE_PATH);
    const reuseChoice = await call(second, "POST", TABLE_PATH, { body: { fields: { Kind: "gift" } } });
    await second.close();

    // Assess
    expect(listed.body.records).toEqual([created.body.records[0]]);
    expect(reuseChoice.status).toBe(200);
  });

  it("writes atomically under concurrent writes: valid JSON, every record, no temp files left", async () => {
    // Arrange
    const dataFile = join(dir, "data.json");
    const emulator = await startAirtableEmulator({ port: 0, rateLimit: false, dataFile });

    // Act: 20 concurrent creates of 10 records
    await Promise.all(
      Array.from({ length: 20 }, () =>
        call(emulator, "POST", TABLE_PATH, { body: { records: Array.from({ length: 10 }, () => ({ fields: donationFields() })) } }),
      ),
    );
    const onDiskBeforeClose = JSON.parse(await readFile(dataFile, "utf8"));
    await emulator.close();

    // Assess: each reply came after its write was on disk
    const tables = Object.values(onDiskBeforeClose.bases[DEFAULT_BASE_ID].tables) as { records: unknown[] }[];
    expect(tables[0]?.records).toHaveLength(200);
    expect(await readdir(dir)).toEqual(["data.json"]);
  });

  it("removes temp files a crashed run left, and refuses a corrupt data file", async () => {
    // Arrange
    const dataFile = join(dir, "data.json");
    await writeFile(join(dir, ".data.json.123.abc.tmp"), "{half");
    const emulator = await startAirtableEmulator({ port: 0, dataFile });
    await emulator.close();
    await writeFile(dataFile, "{not json");

    // Act
    const failure = await startAirtableEmulator({ port: 0, dataFile }).catch((e: unknown) => e);

    // Assess
    expect(await readdir(dir)).toEqual(["data.json"]);
    expect(failure).toBeInstanceOf(EmulatorDataFileError);
  });
});
