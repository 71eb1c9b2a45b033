import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import {
  DeadLetterAttribute,
  type DonationCreatedEvent,
  ErrorName,
  SqsEventBus,
  sampleDonation,
  serializeDonationEvent,
  toAirtableFields,
} from "@fundraise-sync/core";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { drainUntilEmpty } from "@fundraise-sync/local/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runInProcess } from "./run-cli";

/** Creates records in the pipeline's emulator as staff (or a broken integration) would: plain creates, no upsert. */
async function createRecords(pipeline: LocalPipeline, fields: Record<string, unknown>[]): Promise<void> {
  const { endpointUrl, baseId, tableName, token } = pipeline.airtable;
  for (let start = 0; start < fields.length; start += 10) {
    const response = await fetch(`${endpointUrl}/v0/${baseId}/${encodeURIComponent(tableName)}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ records: fields.slice(start, start + 10).map((f) => ({ fields: f })) }),
    });
    expect(response.status).toBe(200);
  }
}

interface Report {
  summary: { counts: Record<string, number>; sourceTotalCents: number; baseTotalCents: number; differenceCents: number; displayTextEdited: number };
  findings: { outcome: string; id: string; location?: { in: string; errorName?: string }; problems?: string[]; differences?: { field: string }[] }[];
}

const at = (day: number, amount: number, name: string): Partial<DonationCreatedEvent> => ({
  CreationDate: `2026-03-${String(day).padStart(2, "0")}T12:00:00.000Z`,
  DonationAmount: amount,
  DonorDisplayName: name,
});

describe("npm run reconcile against the emulator and the local queues", () => {
  let pipeline: LocalPipeline;
  let dir: string;
  let env: Record<string, string>;
  let flags: string[];
  // One donation of each outcome.
  const matches = sampleDonation(at(1, 1000, "Lovelace, Ada"), 1);
  const queued = sampleDonation(at(2, 20, "Queued"), 2);
  const deadLettered = sampleDonation(at(3, 30, "Refused"), 3);
  const missing = sampleDonation(at(4, 40, "Missing"), 4);
  const differs = sampleDonation(at(5, 50, "Differs"), 5);
  const duplicated = sampleDonation(at(6, 60, "Twice"), 6);
  const extra = sampleDonation(at(7, 70, "Extra"), 7);
  const edited = sampleDonation(at(8, 80, "Grace H."), 8);
  const invalidBody = JSON.stringify({ ...sampleDonation({}, 9), DonationAmount: -5 });
  const source = [matches, queued, deadLettered, missing, differs, duplicated, edited];

  const reconcile = async (args: string[]) => {
    const result = await runInProcess("reconcile", [...args, ...flags], env);
    return { ...result, report: args.includes("--json") ? (JSON.parse(result.stdout) as Report) : undefined };
  };
  const outcomeOf = (report: Report, id: string) => report.findings.find((finding) => finding.id === id);

  beforeAll(async () => {
    pipeline = await startLocalPipeline({ workflow: inject("workflow"), sqsPort: 0, emulator: { port: 0, rateLimit: false }, airtableRequestsPerSecond: 5 });
    dir = await mkdtemp(path.join(tmpdir(), "fundraise-reconcile-"));
    env = { AWS_ENDPOINT_URL_SQS: pipeline.sqsEndpoint };
    flags = ["--queue-url", pipeline.queueUrls.source, "--airtable-port", new URL(pipeline.airtable.endpointUrl).port, "--rps", "5"];
    await createRecords(pipeline, [
      toAirtableFields(matches),
      { ...toAirtableFields(differs), "Donation Amount": 5 }, // someone typed 5 for 50
      toAirtableFields(duplicated),
      toAirtableFields(duplicated),
      toAirtableFields(extra),
      { ...toAirtableFields(edited), "Donor Display Name": "Grace Hopper" }, // staff's edit, on purpose
    ]);
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish([queued]);
    await pipeline.sqs.send(
      new SendMessageCommand({
        QueueUrl: pipeline.queueUrls.deadLetter,
        MessageBody: serializeDonationEvent(deadLettered),
        MessageAttributes: {
          [DeadLetterAttribute.ErrorName]: { DataType: "String", StringValue: ErrorName.AirtableRecordRejected },
          [DeadLetterAttribute.ErrorCause]: { DataType: "String", StringValue: "Airtable rejected the record (422 INVALID_VALUE_FOR_COLUMN)" },
        },
      }),
    );
    await writeFile(path.join(dir, "source.ndjson"), [...source.map(serializeDonationEvent), invalidBody].join("\n"));
  });
  afterAll(async () => {
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reports one donation of each outcome, where the missing ones are, and the totals; exit 1", async () => {
    // Act
    const { code, report, stderr } = await reconcile(["--source", path.join(dir, "source.ndjson"), "--json"]);

    // Assess
    expect(stderr).toBe("");
    expect(code).toBe(1);
    expect(report!.summary.counts).toEqual({ matches: 2, missing: 3, differs: 1, duplicated: 1, extra: 1, invalid: 1 });
    expect(report!.summary.displayTextEdited).toBe(1);
    expect(outcomeOf(report!, queued.Id)).toMatchObject({ outcome: "missing", location: { in: "queue" } });
    expect(outcomeOf(report!, deadLettered.Id)).toMatchObject({
      outcome: "missing",
      location: { in: "dead-letter-queue", errorName: ErrorName.AirtableRecordRejected },
    });
    expect(outcomeOf(report!, missing.Id)).toMatchObject({ outcome: "missing" });
    expect(outcomeOf(report!, missing.Id)!.location).toBeUndefined();
    expect(outcomeOf(report!, differs.Id)).toMatchObject({ outcome: "differs", differences: [{ field: "Donation Amount" }] });
    expect(outcomeOf(report!, duplicated.Id)).toMatchObject({ outcome: "duplicated" });
    expect(outcomeOf(report!, extra.Id)).toMatchObject({ outcome: "extra" });
    expect(outcomeOf(report!, edited.Id)).toMatchObject({ outcome: "matches", differences: [{ field: "Donor Display Name" }] });
    expect(report!.findings.find((finding) => finding.outcome === "invalid")).toMatchObject({
      problems: ["DonationAmount: must be greater than 0, got -5"],
    });
    // Source: 1000 + 20 + 30 + 40 + 50 + 60 + 80; base: 1000 + 5 + 60 + 60 + 70 + 80.
    expect(report!.summary).toMatchObject({ sourceTotalCents: 128_000, baseTotalCents: 127_500, differenceCents: -500 });
  });

  it("prints the report at a glance, then --fix sends the missing and differing donations through the pipeline; a second run finds them matching, a second --fix sends nothing", async () => {
    // Act: fix, then let the pipeline drain as its schedule would
    const fixed = await reconcile(["--source", path.join(dir, "source.ndjson"), "--fix", "--yes"]);
    await drainUntilEmpty(pipeline);

    // Assess: the report at a glance (counts, totals), then the differences
    expect(fixed.code).toBe(1);
    expect(fixed.stdout.split("\n").slice(1, 9)).toEqual([
      "  matches            2  (1 with display text edited in the base, left alone)",
      "  missing            3  (1 waiting in the queue, 1 in the DLQ)",
      "  differs            1  (money fields differ)",
      "  duplicated         1  (more than one record with the Id: a person decides which to delete)",
      "  extra              1  (in the base, not in the source: a person decides)",
      "  invalid            1  (in the source: Validate would dead-letter them)",
      "  total      source $1,280.00, base $1,275.00, difference -$5.00",
      "the base does not match the source: 7 donations to look at",
    ]);
    expect(fixed.stdout).toContain(`${differs.Id}  line 5  Donation Amount: 50 → 5`);
    expect(fixed.stdout).toContain(`${deadLettered.Id}  line 3  $30.00  in the DLQ (`);
    expect(fixed.stdout).toContain(`; ${ErrorName.AirtableRecordRejected}: Airtable rejected the record (422 INVALID_VALUE_FOR_COLUMN))`);

    // Assess: three sent (the queued one was on its way already), the base untouched by reconcile itself
    expect(fixed.stdout).toContain("--fix: 3 donations to send through the pipeline");
    expect(fixed.stdout).toContain("extras and duplicates are left alone");
    expect(fixed.stdout).toMatch(/^sent 3, failed 0: /m);

    // Act
    const { report } = await reconcile(["--source", path.join(dir, "source.ndjson"), "--json"]);
    const again = await reconcile(["--source", path.join(dir, "source.ndjson"), "--fix", "--yes"]);

    // Assess: what a person must decide stays; everything the pipeline could correct matches
    expect(report!.summary.counts).toEqual({ matches: 6, missing: 0, differs: 0, duplicated: 1, extra: 1, invalid: 1 });
    expect(outcomeOf(report!, edited.Id)!.differences).toEqual([expect.objectContaining({ field: "Donor Display Name", base: "Grace Hopper" })]);
    expect(again.stdout).toContain("--fix: nothing to send");
    expect(again.stdout).not.toMatch(/^sent /m);
  });

  it("reads a CSV export (quoted commas, BOM, CRLF, 1,000.00) within a window, exit 0, with a spreadsheet report", async () => {
    // Arrange: the matching donations of March 1 to 5 as CSV, and one of March 9 the window cuts out
    const header = "Id,CreationDate,UserId,FundraiserId,DonationAmount,DonorDisplayName";
    const row = (event: DonationCreatedEvent, amount: string) =>
      [event.Id, event.CreationDate, event.UserId ?? "", event.FundraiserId, `"${amount}"`, `"${event.DonorDisplayName ?? ""}"`].join(",");
    const outside = sampleDonation(at(9, 5, "Later"), 10);
    const csv = `\uFEFF${[header, row(matches, "1,000.00"), row(queued, "20.00"), row(deadLettered, "30"), row(missing, "40"), row(differs, "50.00"), row(outside, "5")].join("\r\n")}\r\n`;
    await writeFile(path.join(dir, "export.csv"), csv);
    const reportFile = path.join(dir, "report.csv");

    // Act
    const result = await reconcile(["--source", path.join(dir, "export.csv"), "--since", "2026-03-01", "--until", "2026-03-06", "--report", reportFile]);

    // Assess: duplicated (6th), extra (7th) and edited (8th) fall outside the window
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}matches {12}5$/m);
    expect(result.stdout).toContain("outside the window: 1 of the source, 4 of the base");
    expect(result.stdout).toContain("the base matches the source");
    const rows = (await readFile(reportFile, "utf8")).trimEnd().split("\r\n");
    expect(rows[0]).toBe("outcome,Id,source,source amount,base amount,base records,differences,where,reason");
    expect(rows.slice(1).map((line) => line.split(",")[0])).toEqual(["matches", "matches", "matches", "matches", "matches"]);
    expect(rows[1]).toMatch(new RegExp(`^matches,${matches.Id},line 2,1000.00,1000.00,rec\\w+,,,$`));
  });

  it.each([
    [["--source", "/nonexistent/export.csv"], /^cannot read --source \/nonexistent\/export\.csv: ENOENT$/],
    [["--source", "<dir>/bad-header.csv"], /^--source .*bad-header\.csv the CSV header must name the event's properties .*missing: CreationDate, /],
    [["--source", "<dir>/broken.json"], /^--source .*broken\.json starts with "\[" but is not a valid JSON array/],
  ])("refuses a source it cannot read as bad input: %j", async (args, message) => {
    // Arrange
    await writeFile(path.join(dir, "bad-header.csv"), "Id,Amount\nx,1\n");
    await writeFile(path.join(dir, "broken.json"), "[{");

    // Act
    const result = await reconcile(args.map((arg) => arg.replace("<dir>", dir)));

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^error: [^\n]*\n$/);
    expect(result.stderr.slice("error: ".length).trimEnd()).toMatch(message);
  });
});
