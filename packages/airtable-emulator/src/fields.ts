import type { FieldSchema } from "./config";
import { ApiErrors } from "./errors";

/**
 * Cell values as Airtable validates them. A normalized value is what the emulator stores and returns;
 * `undefined` means "empty", which Airtable leaves out of responses.
 */
export type CellValue = string | number | boolean;

export interface NormalizedCell {
  value: CellValue | undefined;
  /** singleSelect + typecast: a choice to add to the field once the whole request is valid. */
  newChoice?: string;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
// ISO 8601 as Airtable takes it: a date, optionally a time (minutes, seconds, any fraction digits), optionally a zone.
const DATE_TIME_RE = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const NUMERIC_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || value === "" || (Array.isArray(value) && value.length === 0);
}

function parseDate(text: string): string | undefined {
  const m = DATE_RE.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  const iso = new Date(ms).toISOString().slice(0, 10);
  return iso === text ? iso : undefined; // rejects 2024-02-30
}

/** ISO 8601 → "2018-06-10T14:03:27.123Z" (fractions past milliseconds are truncated, as Airtable stores ms). */
export function parseDateTime(text: string): string | undefined {
  const m = DATE_TIME_RE.exec(text);
  if (!m) return undefined;
  const [, day, hh = "00", mm = "00", ss = "00", fraction = "", zone = "Z"] = m;
  if (parseDate(day ?? "") === undefined) return undefined;
  const ms = (fraction + "000").slice(0, 3);
  const normalizedZone = zone === "Z" ? "Z" : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  const time = Date.parse(`${day}T${hh}:${mm}:${ss}.${ms}${normalizedZone}`);
  if (Number.isNaN(time) || Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 59) return undefined;
  return new Date(time).toISOString();
}

/**
 * Validates one incoming cell value against its field, coercing when `typecast` is on.
 * Throws the Airtable 422 for a value the field cannot take.
 *
 * @example
 * normalizeCell(amountField, "25.5", true) // { value: 25.5 }
 */
export function normalizeCell(field: FieldSchema, raw: unknown, typecast: boolean): NormalizedCell {
  if (isEmpty(raw)) return { value: undefined };
  const invalid = () => ApiErrors.invalidValue(field.name);
  switch (field.type) {
    case "singleLineText":
    case "multilineText": {
      if (typeof raw === "string") return { value: raw };
      if (typecast && (typeof raw === "number" || typeof raw === "boolean")) return { value: String(raw) };
      throw invalid();
    }
    case "number":
    case "currency":
    case "percent": {
      if (typeof raw === "number" && Number.isFinite(raw)) return { value: raw };
      if (typecast && typeof raw === "string" && NUMERIC_RE.test(raw.trim())) return { value: Number(raw.trim()) };
      throw invalid();
    }
    case "date": {
      if (typeof raw !== "string") throw invalid();
      const date = parseDate(raw);
      if (date !== undefined) return { value: date };
      if (typecast) {
        const dateTime = parseDateTime(raw);
        if (dateTime !== undefined) return { value: dateTime.slice(0, 10) };
      }
      throw invalid();
    }
    case "dateTime": {
      if (typeof raw !== "string") throw invalid();
      const dateTime = parseDateTime(raw);
      if (dateTime === undefined) throw invalid();
      return { value: dateTime };
    }
    case "email": {
      if (typeof raw === "string" && EMAIL_RE.test(raw)) return { value: raw };
      throw invalid();
    }
    case "checkbox": {
      if (raw === false) return { value: undefined };
      if (raw === true) return { value: true };
      if (typecast && (raw === "true" || raw === "false")) return { value: raw === "true" ? true : undefined };
      throw invalid();
    }
    case "singleSelect": {
      let choice: string;
      if (typeof raw === "string") choice = raw;
      else if (typecast && (typeof raw === "number" || typeof raw === "boolean")) choice = String(raw);
      else throw invalid();
      if (field.choices.includes(choice)) return { value: choice };
      if (!typecast) throw ApiErrors.invalidSelectOption(choice);
      return { value: choice, newChoice: choice };
    }
  }
}
