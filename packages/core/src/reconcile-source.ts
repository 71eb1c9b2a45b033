/**
 * Reading a source of truth for `npm run reconcile`: the platform's export of DonationCreated events, as NDJSON, a
 * JSON array or CSV whose header names the events' properties. Each entry becomes the message body Validate would
 * see, so that a row is judged by the very rules the pipeline applies (`parseDonationEvent`).
 *
 * Pure: the caller hands in the file's lines (NDJSON, CSV: streamed) or its whole text (a JSON array).
 */
import { InvalidDonationEventError } from "./errors";
import { type DonationCreatedEvent, parseDonationEvent } from "./donation-event";

/** The formats a source may be in. */
export type SourceFormat = "ndjson" | "json" | "csv";

/** The properties of a DonationCreated event, as a CSV header must name them. */
export const SOURCE_CSV_COLUMNS = ["Id", "CreationDate", "UserId", "FundraiserId", "DonationAmount", "DonorDisplayName"] as const;

/** The source cannot be read as a whole (bad input, exit 2): a header without the event's columns, a broken array. */
export class SourceFormatError extends Error {
  override readonly name = "SourceFormatError";
}

/** One entry of the source: a valid event, or Validate's refusal. `where` counts from 1 (`line 3`, `element 2`). */
export type SourceEntry =
  | { where: string; valid: true; event: DonationCreatedEvent }
  | { where: string; valid: false; problems: string[]; /** What the entry says its Id and date are, when it says. */ id?: string; creationDate?: string };

/**
 * The format from the file's name, else from its first non-blank character (`[` a JSON array, `{` NDJSON,
 * anything else CSV).
 */
export function detectSourceFormat(fileName: string, firstNonBlank: string | undefined): SourceFormat {
  const lower = fileName.toLowerCase();
  if (lower.endsWith(".csv")) return "csv";
  if (lower.endsWith(".ndjson") || lower.endsWith(".jsonl")) return "ndjson";
  if (firstNonBlank === "[") return "json";
  if (firstNonBlank === "{") return "ndjson";
  return "csv";
}

/** Judges one body with Validate's own parser. */
export function judgeBody(body: string, where: string): SourceEntry {
  try {
    return { where, valid: true, event: parseDonationEvent(body) };
  } catch (error) {
    if (!(error instanceof InvalidDonationEventError)) throw error;
    const claimed = claimedIdentity(body);
    return { where, valid: false, problems: [...error.problems], ...claimed };
  }
}

/** The Id and CreationDate an invalid body carries, if it carries strings there (to place it in a window). */
function claimedIdentity(body: string): { id?: string; creationDate?: string } {
  try {
    const value = JSON.parse(body) as Record<string, unknown>;
    if (typeof value !== "object" || value === null) return {};
    return {
      ...(typeof value.Id === "string" && value.Id !== "" ? { id: value.Id.toLowerCase() } : {}),
      ...(typeof value.CreationDate === "string" ? { creationDate: value.CreationDate } : {}),
    };
  } catch {
    return {};
  }
}

/** NDJSON: one event per non-blank line. */
export async function* readNdjson(lines: AsyncIterable<string>): AsyncGenerator<SourceEntry> {
  let number = 0;
  for await (const line of lines) {
    number++;
    const text = number === 1 ? stripBom(line) : line;
    if (text.trim() === "") continue;
    yield judgeBody(text, `line ${number}`);
  }
}

/** A JSON array of events, from the file's whole text. @throws {SourceFormatError} when it is not a JSON array. */
export function* readJsonArray(text: string): Generator<SourceEntry> {
  let array: unknown;
  try {
    array = JSON.parse(stripBom(text));
  } catch (error) {
    throw new SourceFormatError(`starts with "[" but is not a valid JSON array: ${(error as Error).message}`);
  }
  if (!Array.isArray(array)) throw new SourceFormatError("is not a JSON array of events");
  for (const [index, element] of array.entries()) {
    // A string element is judged as the body it holds, like a message on the queue.
    yield judgeBody(typeof element === "string" ? element : JSON.stringify(element), `element ${index + 1}`);
  }
}

/**
 * CSV (RFC 4180: quoted fields may hold commas, doubled quotes and line breaks; a BOM and CRLF line ends are fine)
 * whose header names the event's properties ({@link SOURCE_CSV_COLUMNS}; other columns are ignored). Cells become
 * the JSON values Validate expects: an empty `UserId` or `DonorDisplayName` is null, an empty required cell is
 * missing, and an amount may be written with thousands separators (`1,000.00`) or a leading `$`.
 *
 * @throws {SourceFormatError} when the header lacks one of the columns.
 */
export async function* readCsv(lines: AsyncIterable<string>): AsyncGenerator<SourceEntry> {
  let header: string[] | undefined;
  let columns: Map<string, number> | undefined;
  for await (const { fields, line } of csvRecords(lines)) {
    if (header === undefined) {
      header = fields.map((name) => name.trim());
      columns = new Map(header.map((name, index) => [name, index]));
      const missing = SOURCE_CSV_COLUMNS.filter((name) => !columns!.has(name));
      if (missing.length > 0) {
        throw new SourceFormatError(
          `the CSV header must name the event's properties (${SOURCE_CSV_COLUMNS.join(", ")}); missing: ${missing.join(", ")}`,
        );
      }
      continue;
    }
    if (fields.length === 1 && fields[0]!.trim() === "") continue; // a blank line
    const event: Record<string, unknown> = {};
    for (const name of SOURCE_CSV_COLUMNS) {
      const cell = fields[columns!.get(name)!];
      const value = csvValue(name, cell);
      if (value !== undefined) event[name] = value;
    }
    yield judgeBody(JSON.stringify(event), `line ${line}`);
  }
  if (header === undefined) throw new SourceFormatError("is empty: no CSV header");
}

/** A CSV cell as the JSON value an event would carry; undefined leaves the property out (Validate: "is missing"). */
function csvValue(column: (typeof SOURCE_CSV_COLUMNS)[number], cell: string | undefined): unknown {
  if (cell === undefined) return undefined;
  if (column === "UserId" || column === "DonorDisplayName") return cell === "" ? null : cell;
  if (cell.trim() === "") return undefined;
  if (column === "DonationAmount") return parseAmountCell(cell);
  return cell.trim();
}

/**
 * `1,000.00`, `$25.50`, `12` → numbers; anything else stays a string, so Validate says what is wrong with it
 * (`must be a number, got the string "ten"`).
 */
export function parseAmountCell(cell: string): number | string {
  const text = cell.trim().replace(/^\$/, "");
  if (/^-?\d{1,3}(,\d{3})+(\.\d+)?$/.test(text)) return Number(text.replace(/,/g, ""));
  if (/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  return cell;
}

/** CSV records from lines (line ends already removed), with the line each starts on, counted from 1. */
export async function* csvRecords(lines: AsyncIterable<string>): AsyncGenerator<{ fields: string[]; line: number }> {
  let number = 0;
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let started = 0;
  for await (const raw of lines) {
    number++;
    let text = number === 1 ? stripBom(raw) : raw;
    // A lone \r left by a CR LF split elsewhere.
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (!quoted) {
      started = number;
    } else {
      field += "\n"; // a line break inside a quoted field
    }
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i++;
          } else {
            quoted = false;
          }
        } else {
          field += c;
        }
      } else if (c === '"' && field === "") {
        quoted = true;
      } else if (c === ",") {
        fields.push(field);
        field = "";
      } else {
        field += c;
      }
    }
    if (quoted) continue;
    fields.push(field);
    yield { fields, line: started };
    fields = [];
    field = "";
  }
  if (quoted) {
    fields.push(field);
    yield { fields, line: started };
  }
}

const stripBom = (text: string) => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
