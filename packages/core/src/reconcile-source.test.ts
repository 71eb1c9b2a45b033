import { describe, expect, it } from "vitest";
import {
  SourceFormatError,
  type SourceEntry,
  csvRecords,
  detectSourceFormat,
  parseAmountCell,
  readCsv,
  readJsonArray,
  readNdjson,
} from "./reconcile-source";

async function* linesOf(text: string) {
  // As node:readline gives them: split on LF, CR LF, or CR.
  for (const line of text.split(/\r\n|\n|\r/)) yield line;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const ID = "0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17";
const FUNDRAISER = "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21";
const HEADER = "Id,CreationDate,UserId,FundraiserId,DonationAmount,DonorDisplayName";

describe("reading a CSV source", () => {
  it("reads quoted commas, a BOM, CRLF line ends and amounts written as 1,000.00, normalized as Validate does", async () => {
    // Arrange
    const csv =
      `\uFEFF${HEADER}\r\n` +
      `${ID.toUpperCase()},2026-03-01T10:00:00.1234567Z,user-1,${FUNDRAISER},"1,000.00","Lovelace, Ada"\r\n` +
      `\r\n` +
      `1d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17,2026-03-02T11:00:00+01:00,,${FUNDRAISER},$25.5,\r\n`;

    // Act
    const entries = await collect(readCsv(linesOf(csv)));

    // Assess
    expect(entries).toEqual([
      {
        where: "line 2",
        valid: true,
        event: {
          Id: ID,
          CreationDate: "2026-03-01T10:00:00.123Z",
          UserId: "user-1",
          FundraiserId: FUNDRAISER,
          DonationAmount: 1000,
          DonorDisplayName: "Lovelace, Ada",
        },
      },
      {
        where: "line 4",
        valid: true,
        event: {
          Id: "1d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17",
          CreationDate: "2026-03-02T10:00:00.000Z",
          UserId: null,
          FundraiserId: FUNDRAISER,
          DonationAmount: 25.5,
          DonorDisplayName: null,
        },
      },
    ]);
  });

  it("gives Validate's reason for an invalid row, naming its line, and keeps the claimed Id", async () => {
    // Arrange
    const csv = `${HEADER}\n${ID},2026-03-01T10:00:00Z,u,${FUNDRAISER},-5,A\n${ID},,u,not-a-guid,ten,A\n`;

    // Act
    const entries = await collect(readCsv(linesOf(csv)));

    // Assess
    expect(entries).toEqual<SourceEntry[]>([
      { where: "line 2", valid: false, id: ID, creationDate: "2026-03-01T10:00:00Z", problems: ["DonationAmount: must be greater than 0, got -5"] },
      {
        where: "line 3",
        valid: false,
        id: ID,
        problems: [
          "CreationDate: is missing",
          'FundraiserId: must be a Guid like "0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17", got the string "not-a-guid"',
          'DonationAmount: must be a number, got the string "ten"',
        ],
      },
    ]);
  });

  it("refuses a header without the event's properties, naming the missing ones", async () => {
    await expect(collect(readCsv(linesOf("id,amount\n1,2\n")))).rejects.toThrow(
      new SourceFormatError(
        "the CSV header must name the event's properties (Id, CreationDate, UserId, FundraiserId, DonationAmount, DonorDisplayName); missing: Id, CreationDate, UserId, FundraiserId, DonationAmount, DonorDisplayName",
      ),
    );
  });

  it("keeps a line break and doubled quotes inside a quoted field, and counts lines from where a record starts", async () => {
    // Act
    const records = await collect(csvRecords(linesOf('a,b\n"x\n""y""",z\nlast,row')));

    // Assess
    expect(records).toEqual([
      { fields: ["a", "b"], line: 1 },
      { fields: ['x\n"y"', "z"], line: 2 },
      { fields: ["last", "row"], line: 4 },
    ]);
  });

  it.each([
    ["1,000.00", 1000],
    ["$1,234,567.89", 1234567.89],
    ["25.5", 25.5],
    [" 12 ", 12],
    ["1,00", "1,00"],
    ["ten", "ten"],
  ])("reads the amount %j as %j", (cell, expected) => {
    expect(parseAmountCell(cell)).toBe(expected);
  });
});

describe("reading JSON sources", () => {
  it("judges each NDJSON line, skipping blank ones, naming lines from 1", async () => {
    // Arrange
    const good = JSON.stringify({ Id: ID, CreationDate: "2026-03-01T10:00:00Z", UserId: null, FundraiserId: FUNDRAISER, DonationAmount: 5, DonorDisplayName: null });

    // Act
    const entries = await collect(readNdjson(linesOf(`${good}\n\nnot json\n`)));

    // Assess
    expect(entries.map((entry) => [entry.where, entry.valid])).toEqual([
      ["line 1", true],
      ["line 3", false],
    ]);
    expect(entries[1]).toMatchObject({ problems: [expect.stringMatching(/^the body is not JSON/)] });
  });

  it("judges each element of a JSON array, and refuses a broken array as a whole", () => {
    // Act
    const entries = [...readJsonArray(`[{"Id":"${ID}"}]`)];

    // Assess
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ where: "element 1", valid: false, id: ID });
    expect(() => [...readJsonArray("[{")]).toThrow(SourceFormatError);
  });

  it.each([
    ["export.csv", "{", "csv"],
    ["export.ndjson", "[", "ndjson"],
    ["export.json", "[", "json"],
    ["export.json", "{", "ndjson"],
    ["export.txt", "I", "csv"],
  ] as const)("detects %s starting with %j as %s", (name, first, format) => {
    expect(detectSourceFormat(name, first)).toBe(format);
  });
});
