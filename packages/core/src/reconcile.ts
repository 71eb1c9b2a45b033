/**
 * Reconciliation: does the base hold every donation of a source of truth, once, with the right values?
 *
 * {@link Reconciliation} takes the source's entries (see `reconcile-source.ts`), then the base's records one page at
 * a time, and classifies each donation: matches, missing, differs, duplicated, extra, or invalid in the source.
 * Values are compared as Validate normalizes them (lower-case Guids, UTC to the millisecond, amounts to the cent).
 * The base is streamed: memory holds the source (compactly) and what did not match, never the base's pages.
 *
 * Pure: no I/O. The command (`packages/cli/src/reconcile.ts`) reads the file, the base and the queues.
 */
import type { DonationCreatedEvent } from "./donation-event";
import { DonationField } from "./donation-fields";
import type { SourceEntry } from "./reconcile-source";

/** What reconcile found about one donation. */
export type ReconcileOutcome = "matches" | "missing" | "differs" | "duplicated" | "extra" | "invalid";

/** Every outcome, in the order a report lists them. */
export const RECONCILE_OUTCOMES: readonly ReconcileOutcome[] = ["matches", "missing", "differs", "duplicated", "extra", "invalid"];

/**
 * The fields whose difference changes the books: amount, date, fundraiser, donor. The display name is text that
 * staff may edit on purpose: a difference there is reported apart and leaves the donation matching.
 */
export const MONEY_FIELDS = [DonationField.DonationAmount, DonationField.CreationDate, DonationField.FundraiserId, DonationField.DonorId] as const;
export const DISPLAY_FIELDS = [DonationField.DonorDisplayName] as const;

/** A `CreationDate` window: `since` included, `until` excluded; ISO 8601 UTC to the millisecond. */
export interface ReconcileWindow {
  since?: string;
  until?: string;
}

/** One field that differs: the source's value against the base's (null: empty). */
export interface FieldDifference {
  field: string;
  source: string | number | null;
  base: string | number | null;
  /** A money field (amount, date, fundraiser, donor), not display text. */
  money: boolean;
  /**
   * False when the pipeline cannot make the base hold the source's value: the source has no value and the base
   * has one (the pipeline never blanks a cell, so that staff's entries survive a redelivery).
   */
  fixable: boolean;
}

/** Where a missing (or differing) donation is on its way, when reconcile looked. */
export type DonationLocation =
  | { in: "queue" }
  | { in: "dead-letter-queue"; messageId: string; errorName?: string; cause?: string };

/** One donation that did not simply match (or, in a full report, did). */
export interface ReconcileFinding {
  outcome: ReconcileOutcome;
  /** The event Id (lower case); for a base record without one, `(none)`. */
  id: string;
  /** Where it is in the source (`line 3`, `element 2`). */
  where?: string;
  /** The source's amount in dollars. */
  sourceAmount?: number;
  /** The base's amount in dollars (its first record's). */
  baseAmount?: number;
  /** The base's records with this Id (`rec…`). */
  recordIds?: string[];
  /** For differs (money fields) and for matches with display text edited in the base. */
  differences?: FieldDifference[];
  /** For missing and differs: in the queue or in the DLQ, when found there. */
  location?: DonationLocation;
  /** For invalid: Validate's problems, e.g. `DonationAmount: must be greater than 0, got -5`. */
  problems?: string[];
}

export interface ReconcileSummary {
  /** Donations per outcome. */
  counts: Record<ReconcileOutcome, number>;
  /** Matching donations whose display text differs in the base (left alone: staff may have edited it). */
  displayTextEdited: number;
  /** Valid donations of the source in the window (each Id once). */
  sourceDonations: number;
  /** The base's records in the window. */
  baseRecords: number;
  /** Sum of the source's amounts in the window, in cents. */
  sourceTotalCents: number;
  /** Sum of the base's amounts in the window (every record, duplicates and extras included), in cents. */
  baseTotalCents: number;
  /** base − source, in cents. */
  differenceCents: number;
  /** Source entries that repeat an Id with the same values (counted once). */
  repeatedInSource: number;
  /** Entries of the source and records of the base outside the window (not compared). */
  outsideWindow: { source: number; base: number };
  window: ReconcileWindow;
}

/** A base record as Airtable lists it. */
export interface BaseRecord {
  id: string;
  fields: Record<string, unknown>;
}

/** A base record's values, normalized as Validate normalizes an event's. */
interface NormalizedRecord {
  date: string | null;
  donorId: string | null;
  fundraiserId: string | null;
  amountCents: number | null;
  displayName: string | null;
}

/** What is remembered per source donation: its event, and what the base holds for it so far. */
interface SourceDonation {
  event: DonationCreatedEvent;
  where: string;
  inWindow: boolean;
  /** The base's records with its Id. */
  recordIds?: string[];
  baseAmountCents?: number | null;
  /** The first record's differences (undefined: none). */
  differences?: FieldDifference[];
  /** A base record of it lies in the window (so it is judged even if the source's date is outside). */
  baseInWindow?: boolean;
}

interface ExtraRecords {
  recordIds: string[];
  amountCents: number | null;
}

/** Whole cents of a dollar amount ("amounts to the cent"). */
export const toCents = (dollars: number) => Math.round(dollars * 100);

/** Dollars from cents, for people: `1,234.50`. */
export const formatCents = (cents: number) =>
  `${cents < 0 ? "-" : ""}${(Math.abs(cents) / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

/**
 * Compares a source of truth with the base.
 *
 * @example
 * const reconciliation = new Reconciliation({ since: "2026-03-01T00:00:00.000Z" });
 * for await (const entry of readCsv(lines)) reconciliation.addSource(entry);
 * for await (const page of pages) for (const record of page) reconciliation.addBaseRecord(record);
 * const { summary, findings } = reconciliation.finish();
 */
export class Reconciliation {
  readonly #window: ReconcileWindow;
  readonly #source = new Map<string, SourceDonation>();
  readonly #invalid: ReconcileFinding[] = [];
  readonly #extras = new Map<string, ExtraRecords>();
  #repeated = 0;
  #sourceOutside = 0;
  #sourceOutsideValid = 0;
  #baseOutside = 0;
  #baseRecords = 0;
  #baseTotalCents = 0;
  #finished = false;

  constructor(window: ReconcileWindow = {}) {
    this.#window = window;
  }

  /** Valid donations of the source in the window so far (for an estimate of the base's size). */
  get sourceDonationsInWindow(): number {
    return this.#source.size - this.#sourceOutsideValid;
  }

  /** One entry of the source, in file order. */
  addSource(entry: SourceEntry): void {
    if (!entry.valid) {
      if (entry.creationDate !== undefined) {
        const date = new Date(entry.creationDate);
        if (!Number.isNaN(date.getTime()) && !this.#inWindow(date.toISOString())) {
          this.#sourceOutside++;
          return;
        }
      }
      this.#invalid.push({ outcome: "invalid", id: entry.id ?? "(none)", where: entry.where, problems: entry.problems });
      return;
    }
    const { event } = entry;
    const earlier = this.#source.get(event.Id);
    if (earlier !== undefined) {
      if (sameEvent(earlier.event, event)) {
        this.#repeated++;
      } else {
        this.#invalid.push({
          outcome: "invalid",
          id: event.Id,
          where: entry.where,
          problems: [`Id: also at ${earlier.where} with other values (the source must hold one donation per Id)`],
        });
      }
      return;
    }
    const inWindow = this.#inWindow(event.CreationDate);
    if (!inWindow) {
      this.#sourceOutside++;
      this.#sourceOutsideValid++;
    }
    this.#source.set(event.Id, { event, where: entry.where, inWindow });
  }

  /** One record of the base, in any order. */
  addBaseRecord(record: BaseRecord): void {
    const id = normalizeId(record.fields[DonationField.Id]);
    const values = normalizeRecord(record.fields);
    const inWindow = values.date === null ? isUnbounded(this.#window) : this.#inWindow(values.date);
    if (inWindow) {
      this.#baseRecords++;
      this.#baseTotalCents += values.amountCents ?? 0;
    } else {
      this.#baseOutside++;
    }
    const donation = id === undefined ? undefined : this.#source.get(id);
    if (donation === undefined) {
      if (!inWindow) return;
      // A record without an Id is its own extra; records sharing an Id not in the source are one extra, duplicated.
      const key = id ?? `(none):${record.id}`;
      const extra = this.#extras.get(key);
      if (extra) extra.recordIds.push(record.id);
      else this.#extras.set(key, { recordIds: [record.id], amountCents: values.amountCents });
      return;
    }
    if (inWindow) donation.baseInWindow = true;
    if (donation.recordIds === undefined) {
      donation.recordIds = [record.id];
      donation.baseAmountCents = values.amountCents;
      const differences = compare(donation.event, values);
      if (differences.length > 0) donation.differences = differences;
    } else {
      donation.recordIds.push(record.id);
    }
  }

  /**
   * The verdict. `onFinding` receives every judged donation, matches included, one at a time (for a full report);
   * the returned findings leave out the plain matches (those without display text edited).
   */
  finish(onFinding?: (finding: ReconcileFinding) => void): { summary: ReconcileSummary; findings: ReconcileFinding[] } {
    if (this.#finished) throw new Error("finish() was called already");
    this.#finished = true;
    const counts = Object.fromEntries(RECONCILE_OUTCOMES.map((outcome) => [outcome, 0])) as Record<ReconcileOutcome, number>;
    const findings: ReconcileFinding[] = [];
    let displayTextEdited = 0;
    let sourceDonations = 0;
    let sourceTotalCents = 0;
    const report = (finding: ReconcileFinding) => {
      counts[finding.outcome]++;
      onFinding?.(finding);
      if (finding.outcome !== "matches" || finding.differences !== undefined) findings.push(finding);
    };
    for (const [id, donation] of this.#source) {
      const { event, where } = donation;
      if (donation.inWindow) {
        sourceDonations++;
        sourceTotalCents += toCents(event.DonationAmount);
      } else if (!donation.baseInWindow) {
        continue;
      }
      const base = {
        where,
        sourceAmount: event.DonationAmount,
        ...(donation.recordIds ? { recordIds: donation.recordIds } : {}),
        ...(donation.baseAmountCents != null ? { baseAmount: donation.baseAmountCents / 100 } : {}),
      };
      if (donation.recordIds === undefined) {
        report({ outcome: "missing", id, ...base });
      } else if (donation.recordIds.length > 1) {
        report({ outcome: "duplicated", id, ...base, ...(donation.differences ? { differences: donation.differences } : {}) });
      } else if (donation.differences?.some((difference) => difference.money)) {
        report({ outcome: "differs", id, ...base, differences: donation.differences });
      } else {
        if (donation.differences) displayTextEdited++;
        report({ outcome: "matches", id, ...base, ...(donation.differences ? { differences: donation.differences } : {}) });
      }
    }
    for (const [key, extra] of this.#extras) {
      const id = key.startsWith("(none):") ? "(none)" : key;
      report({ outcome: "extra", id, recordIds: extra.recordIds, ...(extra.amountCents != null ? { baseAmount: extra.amountCents / 100 } : {}) });
    }
    for (const invalid of this.#invalid) report(invalid);
    return {
      summary: {
        counts,
        displayTextEdited,
        sourceDonations,
        baseRecords: this.#baseRecords,
        sourceTotalCents,
        baseTotalCents: this.#baseTotalCents,
        differenceCents: this.#baseTotalCents - sourceTotalCents,
        repeatedInSource: this.#repeated,
        outsideWindow: { source: this.#sourceOutside, base: this.#baseOutside },
        window: this.#window,
      },
      findings,
    };
  }

  /** The source's event for an Id (to send it again with `--fix`). */
  sourceEvent(id: string): DonationCreatedEvent | undefined {
    return this.#source.get(id)?.event;
  }

  #inWindow(isoUtc: string): boolean {
    const { since, until } = this.#window;
    // ISO 8601 UTC strings to the millisecond, all of one length: they order as text.
    return (since === undefined || isoUtc >= since) && (until === undefined || isoUtc < until);
  }
}

/** True when the base matches the source: nothing missing, differing, duplicated, extra or invalid. */
export function isReconciled(summary: ReconcileSummary): boolean {
  return RECONCILE_OUTCOMES.every((outcome) => outcome === "matches" || summary.counts[outcome] === 0);
}

/**
 * Places missing and differing donations on their way: waiting in the queue, or in the DLQ (with its reason). A
 * donation found in both is said to be in the queue (it will be written).
 */
export function locateFindings(
  findings: readonly ReconcileFinding[],
  queued: ReadonlySet<string>,
  deadLettered: ReadonlyMap<string, Omit<Extract<DonationLocation, { in: "dead-letter-queue" }>, "in">>,
): ReconcileFinding[] {
  return findings.map((finding) => {
    if (finding.outcome !== "missing" && finding.outcome !== "differs") return finding;
    if (queued.has(finding.id)) return { ...finding, location: { in: "queue" } };
    const letter = deadLettered.get(finding.id);
    return letter ? { ...finding, location: { in: "dead-letter-queue", ...letter } } : finding;
  });
}

/**
 * What `--fix` sends through the pipeline: missing donations and those whose money fields differ in a way the
 * pipeline can correct, unless a copy already waits in the queue. Never extras or duplicates (a person decides),
 * never a display-text edit. After the pipeline has written these, a second run finds nothing to send.
 */
export function fixableFindings(findings: readonly ReconcileFinding[]): ReconcileFinding[] {
  return findings.filter((finding) => {
    if (finding.location?.in === "queue") return false;
    if (finding.outcome === "missing") return true;
    return finding.outcome === "differs" && (finding.differences ?? []).some((difference) => difference.money && difference.fixable);
  });
}

/** Parses a `--since`/`--until` value: an ISO 8601 date (`2026-03-01`, midnight UTC) or date-time with a zone. */
export function parseWindowBound(text: string): string | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.exec(text);
  if (!match) return undefined;
  // Date rolls 2026-02-30 over to March: a day that does not exist is refused.
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) return undefined;
  const date = match[4] === undefined ? calendar : new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** The report's CSV columns, one row per judged donation (`--report F.csv`). */
export const REPORT_CSV_HEADER = ["outcome", "Id", "source", "source amount", "base amount", "base records", "differences", "where", "reason"];

/** One finding as a CSV row (RFC 4180 quoting), without the line end. */
export function reportCsvRow(finding: ReconcileFinding): string {
  const differences = (finding.differences ?? [])
    .map((d) => `${d.field}${d.money ? "" : " (display text)"}: ${d.source ?? "(empty)"} → ${d.base ?? "(empty)"}`)
    .join("; ");
  const location =
    finding.location?.in === "queue" ? "waiting in the queue"
    : finding.location?.in === "dead-letter-queue" ? `in the DLQ (${finding.location.messageId})`
    : "";
  const reason =
    finding.problems?.join("; ") ??
    (finding.location?.in === "dead-letter-queue" ? [finding.location.errorName, finding.location.cause].filter(Boolean).join(": ") : "");
  return [
    finding.outcome,
    finding.id,
    finding.where ?? "",
    finding.sourceAmount === undefined ? "" : finding.sourceAmount.toFixed(2),
    finding.baseAmount === undefined ? "" : finding.baseAmount.toFixed(2),
    (finding.recordIds ?? []).join(" "),
    differences,
    location,
    reason,
  ]
    .map(csvCell)
    .join(",");
}

/** A CSV cell, quoted when it must be; a leading `=`, `+`, `-` or `@` is prefixed so a spreadsheet never runs it. */
export function csvCell(value: string): string {
  const safe = /^[=+\-@]/.test(value) && !/^-?\d/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

// --- Internals --------------------------------------------------------------------------------------------------

const isUnbounded = (window: ReconcileWindow) => window.since === undefined && window.until === undefined;

function sameEvent(a: DonationCreatedEvent, b: DonationCreatedEvent): boolean {
  return (
    a.CreationDate === b.CreationDate &&
    a.UserId === b.UserId &&
    a.FundraiserId === b.FundraiserId &&
    toCents(a.DonationAmount) === toCents(b.DonationAmount) &&
    a.DonorDisplayName === b.DonorDisplayName
  );
}

function normalizeId(value: unknown): string | undefined {
  if (typeof value !== "string" || value.trim() === "") return undefined;
  return value.trim().toLowerCase();
}

const text = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : typeof value === "number" ? String(value) : null);

function normalizeRecord(fields: Record<string, unknown>): NormalizedRecord {
  const rawDate = fields[DonationField.CreationDate];
  let date: string | null = null;
  if (typeof rawDate === "string" && rawDate !== "") {
    const parsed = new Date(rawDate);
    date = Number.isNaN(parsed.getTime()) ? rawDate : parsed.toISOString();
  }
  const amount = fields[DonationField.DonationAmount];
  return {
    date,
    donorId: text(fields[DonationField.DonorId]),
    fundraiserId: text(fields[DonationField.FundraiserId])?.toLowerCase() ?? null,
    amountCents: typeof amount === "number" && Number.isFinite(amount) ? toCents(amount) : null,
    displayName: text(fields[DonationField.DonorDisplayName]),
  };
}

function compare(event: DonationCreatedEvent, record: NormalizedRecord): FieldDifference[] {
  const differences: FieldDifference[] = [];
  const check = (field: string, source: string | number | null, base: string | number | null, money: boolean) => {
    if (source === base) return;
    differences.push({ field, source, base, money, fixable: source !== null });
  };
  const sourceCents = toCents(event.DonationAmount);
  if (sourceCents !== record.amountCents) {
    differences.push({
      field: DonationField.DonationAmount,
      source: sourceCents / 100,
      base: record.amountCents === null ? null : record.amountCents / 100,
      money: true,
      fixable: true,
    });
  }
  check(DonationField.CreationDate, event.CreationDate, record.date, true);
  check(DonationField.FundraiserId, event.FundraiserId, record.fundraiserId, true);
  check(DonationField.DonorId, event.UserId === "" ? null : event.UserId, record.donorId, true);
  check(DonationField.DonorDisplayName, event.DonorDisplayName === "" ? null : event.DonorDisplayName, record.displayName, false);
  return differences;
}
