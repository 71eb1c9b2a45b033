import { describe, expect, it } from "vitest";
import type { DonationCreatedEvent } from "./donation-event";
import { toAirtableFields } from "./donation-fields";
import {
  type BaseRecord,
  type ReconcileFinding,
  Reconciliation,
  csvCell,
  fixableFindings,
  formatCents,
  isReconciled,
  locateFindings,
  parseWindowBound,
  reportCsvRow,
} from "./reconcile";
import type { SourceEntry } from "./reconcile-source";

/** A donation with a recognisable Id: `0000000n-…`. */
const donation = (n: number, overrides: Partial<DonationCreatedEvent> = {}): DonationCreatedEvent => ({
  Id: `${String(n).padStart(8, "0")}-8a57-4c3e-b1c2-6a0f4e9d2b17`,
  CreationDate: `2026-03-${String(n).padStart(2, "0")}T10:00:00.000Z`,
  UserId: `user-${n}`,
  FundraiserId: "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
  DonationAmount: 10 * n,
  DonorDisplayName: `Donor ${n}`,
  ...overrides,
});
const entry = (event: DonationCreatedEvent, line: number): SourceEntry => ({ where: `line ${line}`, valid: true, event });
/** The record the pipeline would have written for `event`. */
const record = (event: DonationCreatedEvent, recordId = `rec${event.Id.slice(0, 8)}`, fields: Record<string, unknown> = {}): BaseRecord => ({
  id: recordId,
  fields: { ...toAirtableFields(event), ...fields },
});

describe("reconciling a source with the base", () => {
  it("classifies one donation of each outcome, with totals on each side", () => {
    // Arrange
    const [matches, missing, differs, duplicated, extra, edited] = [1, 2, 3, 4, 5, 6].map((n) => donation(n));
    const reconciliation = new Reconciliation();
    [matches, missing, differs, duplicated, edited].forEach((event, index) => reconciliation.addSource(entry(event!, index + 1)));
    reconciliation.addSource({ where: "line 6", valid: false, problems: ["DonationAmount: must be greater than 0, got -5"], id: "x" });

    // Act
    for (const base of [
      record(matches!),
      record(differs!, "recDiffers", { "Donation Amount": 31, "Fundraiser Id": "7B0C9E52-2F3B-4A7E-9D0A-3C8F0E6B1A21" }),
      record(duplicated!, "recDup1"),
      record(duplicated!, "recDup2"),
      record(extra!, "recExtra"),
      // The display name edited by staff; the Guid typed in upper case and the date with another offset still match.
      record(edited!, "recEdited", { "Donor Display Name": "Anonymous", Id: edited!.Id.toUpperCase(), "Creation Date": "2026-03-06T11:00:00.000+01:00" }),
    ]) {
      reconciliation.addBaseRecord(base);
    }
    const { summary, findings } = reconciliation.finish();

    // Assess
    expect(summary.counts).toEqual({ matches: 2, missing: 1, differs: 1, duplicated: 1, extra: 1, invalid: 1 });
    expect(summary.displayTextEdited).toBe(1);
    expect(summary).toMatchObject({ sourceDonations: 5, baseRecords: 6, sourceTotalCents: 16_000, baseTotalCents: 10_00 + 31_00 + 2 * 40_00 + 50_00 + 60_00 });
    expect(summary.differenceCents).toBe(summary.baseTotalCents - summary.sourceTotalCents);
    expect(findings.map((finding) => [finding.outcome, finding.id.slice(0, 8)])).toEqual([
      ["missing", "00000002"],
      ["differs", "00000003"],
      ["duplicated", "00000004"],
      ["matches", "00000006"],
      ["extra", "00000005"],
      ["invalid", "x"],
    ]);
    expect(findings[1]).toMatchObject({
      sourceAmount: 30,
      baseAmount: 31,
      recordIds: ["recDiffers"],
      differences: [{ field: "Donation Amount", source: 30, base: 31, money: true, fixable: true }],
    });
    expect(findings[2]).toMatchObject({ recordIds: ["recDup1", "recDup2"] });
    expect(findings[3]!.differences).toEqual([{ field: "Donor Display Name", source: "Donor 6", base: "Anonymous", money: false, fixable: true }]);
    expect(findings[5]).toMatchObject({ where: "line 6", problems: ["DonationAmount: must be greater than 0, got -5"] });
    expect(isReconciled(summary)).toBe(false);
  });

  it("compares amounts to the cent and treats an empty cell as the source's null", () => {
    // Arrange
    const event = donation(1, { DonationAmount: 19.99, UserId: null, DonorDisplayName: null });
    const reconciliation = new Reconciliation();
    reconciliation.addSource(entry(event, 1));
    reconciliation.addBaseRecord(record(event, "rec1", { "Donation Amount": 19.990000001, "Donor Id": "" }));

    // Act
    const { summary } = reconciliation.finish();

    // Assess
    expect(summary.counts.matches).toBe(1);
    expect(isReconciled(summary)).toBe(true);
  });

  it("limits both sides to the window: a donation outside is not compared, one moved into it in the base differs", () => {
    // Arrange: the window is March 2 to March 4
    const reconciliation = new Reconciliation({ since: parseWindowBound("2026-03-02"), until: parseWindowBound("2026-03-04") });
    const [before, inside, movedIn] = [donation(1), donation(2), donation(5)];
    for (const [index, event] of [before, inside, movedIn].entries()) reconciliation.addSource(entry(event!, index + 1));

    // Act: the base holds all three; staff moved the third's date into the window
    reconciliation.addBaseRecord(record(before!));
    reconciliation.addBaseRecord(record(inside!));
    reconciliation.addBaseRecord(record(movedIn!, "recMoved", { "Creation Date": "2026-03-03T00:00:00.000Z" }));
    const { summary, findings } = reconciliation.finish();

    // Assess
    expect(summary.counts).toMatchObject({ matches: 1, differs: 1, missing: 0, extra: 0 });
    expect(summary).toMatchObject({ sourceDonations: 1, baseRecords: 2, outsideWindow: { source: 2, base: 1 } });
    expect(summary.sourceTotalCents).toBe(20_00);
    expect(summary.baseTotalCents).toBe(20_00 + 50_00);
    expect(findings[0]!.differences).toEqual([
      { field: "Creation Date", source: "2026-03-05T10:00:00.000Z", base: "2026-03-03T00:00:00.000Z", money: true, fixable: true },
    ]);
  });

  it("counts a repeated identical row once, and refuses a repeat with other values as invalid", () => {
    // Arrange
    const reconciliation = new Reconciliation();
    reconciliation.addSource(entry(donation(1), 1));
    reconciliation.addSource(entry(donation(1), 2));
    reconciliation.addSource(entry(donation(1, { DonationAmount: 99 }), 3));
    reconciliation.addBaseRecord(record(donation(1)));

    // Act
    const { summary, findings } = reconciliation.finish();

    // Assess
    expect(summary).toMatchObject({ repeatedInSource: 1, sourceDonations: 1, counts: { matches: 1, invalid: 1 } });
    expect(findings[0]).toMatchObject({ outcome: "invalid", where: "line 3", problems: ["Id: also at line 1 with other values (the source must hold one donation per Id)"] });
  });

  it("hands every judged donation, matches included, to onFinding", () => {
    // Arrange
    const reconciliation = new Reconciliation();
    reconciliation.addSource(entry(donation(1), 1));
    reconciliation.addBaseRecord(record(donation(1)));
    const seen: ReconcileFinding[] = [];

    // Act
    const { findings } = reconciliation.finish((finding) => seen.push(finding));

    // Assess
    expect(findings).toEqual([]);
    expect(seen).toEqual([{ outcome: "matches", id: donation(1).Id, where: "line 1", sourceAmount: 10, baseAmount: 10, recordIds: ["rec00000001"] }]);
  });
});

describe("where missing donations are, and what --fix sends", () => {
  const missingOne: ReconcileFinding = { outcome: "missing", id: "a" };
  const missingTwo: ReconcileFinding = { outcome: "missing", id: "b" };
  const missingThree: ReconcileFinding = { outcome: "missing", id: "c" };
  const blankedDonor: ReconcileFinding = {
    outcome: "differs",
    id: "d",
    differences: [{ field: "Donor Id", source: null, base: "user-9", money: true, fixable: false }],
  };
  const extra: ReconcileFinding = { outcome: "extra", id: "e" };

  it("places them in the queue or the DLQ with its reason, and sends only what is not on its way already", () => {
    // Act
    const located = locateFindings(
      [missingOne, missingTwo, missingThree, blankedDonor, extra],
      new Set(["a"]),
      new Map([["b", { messageId: "m-1", errorName: "AirtableRecordRejectedError", cause: "422" }]]),
    );

    // Assess
    expect(located.map((finding) => finding.location)).toEqual([
      { in: "queue" },
      { in: "dead-letter-queue", messageId: "m-1", errorName: "AirtableRecordRejectedError", cause: "422" },
      undefined,
      undefined,
      undefined,
    ]);
    expect(fixableFindings(located).map((finding) => finding.id)).toEqual(["b", "c"]);
  });
});

describe("the report's pieces", () => {
  it("writes a CSV row a spreadsheet reads safely", () => {
    // Act
    const row = reportCsvRow({
      outcome: "differs",
      id: "=cmd",
      where: "line 3",
      sourceAmount: 1000,
      baseAmount: 10,
      recordIds: ["rec1"],
      differences: [{ field: "Donation Amount", source: 1000, base: 10, money: true, fixable: true }],
    });

    // Assess
    expect(row).toBe("differs,'=cmd,line 3,1000.00,10.00,rec1,Donation Amount: 1000 → 10,,");
    expect(csvCell('say "hi", then')).toBe('"say ""hi"", then"');
    expect(csvCell("-12.50")).toBe("-12.50");
  });

  it.each([
    ["2026-03-01", "2026-03-01T00:00:00.000Z"],
    ["2026-03-01T10:00:00+02:00", "2026-03-01T08:00:00.000Z"],
    ["2026-03-01T10:00:00", undefined],
    ["March", undefined],
    ["2026-02-30", undefined],
  ])("reads the window bound %j as %j", (text, expected) => {
    expect(parseWindowBound(text)).toBe(expected);
  });

  it("formats cents as dollars with separators", () => {
    expect(formatCents(123_456_78)).toBe("123,456.78");
    expect(formatCents(-5)).toBe("-0.05");
  });
});
