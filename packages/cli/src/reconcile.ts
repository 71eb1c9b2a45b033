/**
 * `npm run reconcile -- --source FILE`: does the base hold every donation of the platform's export, once, with the
 * right values? Reads the source through Validate, lists the base at a pace (`--rps`), classifies each donation
 * (core's `Reconciliation`), looks for the missing ones in the queue and the DLQ, prints a summary and the
 * differences, and with `--fix` sends the missing and differing donations through the pipeline (onto the queue).
 * It never edits or deletes a record of the base.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { access, constants, open, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface as createLineReader } from "node:readline";
import { createInterface } from "node:readline/promises";
import { GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import {
  AIRTABLE_MAX_PAGE_SIZE,
  AIRTABLE_REQUESTS_PER_SECOND,
  AirtableConfigurationError,
  AirtableRecordRejectedError,
  AirtableUnavailableError,
  type DonationLocation,
  type ReadProgress,
  type ReconcileFinding,
  type ReconcileOutcome,
  type ReconcileSummary,
  type ReconcileWindow,
  type SourceEntry,
  REPORT_CSV_HEADER,
  Reconciliation,
  SourceFormatError,
  SqsEventBus,
  csvCell,
  detectSourceFormat,
  fixableFindings,
  formatCents,
  isReconciled,
  locateFindings,
  parseWindowBound,
  readBase,
  readCsv,
  readJsonArray,
  readNdjson,
  reportCsvRow,
} from "@fundraise-sync/core";
import { watchInterrupts } from "@fundraise-sync/core/interrupt";
import { eventIdOf, listDeadLetters, peekSourceQueue, resolveDeadLetterQueues } from "@fundraise-sync/local/dead-letters";
import {
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  UsageError,
  airtablePortFrom,
  ensureAwsEnvironment,
  flagOrEnv,
  isConnectionRefused,
  localQueueUrl,
  localSqsEndpoint,
  localTokenFrom,
  parseCommandLine,
  parseUrl,
  realAirtableFromEnv,
  runCommand,
  sqsClient,
  sqsEndpointFor,
  sqsPortFrom,
  tableFrom,
} from "./options";
import { emulatorUrl, probe } from "./servers";

/** Reconcile's defaults, in one place. */
export const RECONCILE_DEFAULTS = {
  /** Its share of the base: 1 request/s, so the pipeline's default 4 still fits Airtable's 5. */
  requestsPerSecond: 1,
  /** Findings listed per outcome in the text report; `--json` and `--report` have them all. */
  listedPerOutcome: 50,
  /** How often the progress line is redrawn at most. */
  progressEveryMs: 250,
} as const;

/** Exit code of a command a person stopped with Ctrl-C (128 + SIGINT). */
const INTERRUPTED = 130;

const USAGE = `Usage: npm run reconcile -- --source FILE [options]

Compares a source of truth (the platform's export of DonationCreated events) with the Airtable base, and says per
donation: matches, missing (and whether it waits in the queue or in the DLQ, with the reason), differs (which
money fields: amount, date, fundraiser, donor; display text edited in the base is shown apart and left alone),
duplicated (more than one record with its Id), extra (in the base, not in the source) or invalid in the source
(Validate's reason). Values are compared as Validate normalizes them. Nothing in the base is ever changed.

  --source FILE       NDJSON or a JSON array of events, or CSV whose header names the events' properties
                      (Id, CreationDate, UserId, FundraiserId, DonationAmount, DonorDisplayName)
  --since DATE        only donations from DATE on (CreationDate; 2026-03-01 or an ISO date-time with a zone)
  --until DATE        only donations before DATE
  --json              the summary and every difference as JSON
  --report F.csv      every compared donation, one row each, for a spreadsheet
  --fix               send the missing and differing donations through the pipeline (onto the queue, validated
                      and upserted like any other), after listing them and asking; extras and duplicates are
                      for a person to decide
  --yes               with --fix: do not ask (needed when stdin is not a terminal)
  --rps N             requests per second to the base, 1-${AIRTABLE_REQUESTS_PER_SECOND} (default ${RECONCILE_DEFAULTS.requestsPerSecond}; Airtable allows 5 for all its
                      clients, the pipeline takes 4 by default)
  --queue-url URL     the donations queue (env ${ENV.queueUrl}; default the local one on --sqs-port)
  --dlq-url URL       its dead-letter queue (env ${ENV.dlqUrl}; default the queue's RedrivePolicy target)
  --sqs-port N        the local SQS server's port (env ${ENV.sqsPort}; default ${CLI_DEFAULTS.sqsPort})
  --airtable-port N   the Airtable emulator's port (env ${ENV.airtablePort}; default ${CLI_DEFAULTS.airtablePort})
  --token TOKEN       the emulator's token (env ${ENV.localToken}; default ${CLI_DEFAULTS.localToken})
  --table NAME        the table (default ${CLI_DEFAULTS.table})
  -h, --help          show this help

Target: ${ENV.airtableToken} + ${ENV.airtableBaseId} set → the real Airtable (token scope data.records:read);
neither → the emulator \`npm start\` runs. ${ENV.sqsEndpoint}: another SQS server.
Looking for missing donations in the queue counts one receive of each waiting message (SQS cannot look otherwise).
Exit codes: 0 the base matches the source; 1 anything differs, or a server unreachable; 2 bad input;
130 interrupted (Ctrl-C: nothing was changed).
`;

const OUTCOME_LABELS: Record<ReconcileOutcome, string> = {
  matches: "matches",
  missing: "missing",
  differs: "differs",
  duplicated: "duplicated",
  extra: "extra",
  invalid: "invalid",
};

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    source: { type: "string" },
    since: { type: "string" },
    until: { type: "string" },
    json: { type: "boolean" },
    report: { type: "string" },
    fix: { type: "boolean" },
    yes: { type: "boolean" },
    rps: { type: "string" },
    "queue-url": { type: "string" },
    "dlq-url": { type: "string" },
    "sqs-port": { type: "string" },
    "airtable-port": { type: "string" },
    token: { type: "string" },
    table: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.source === undefined || values.source.trim() === "") throw new UsageError("give --source FILE: the platform's export to compare with the base (see --help)");
  const window = windowFrom(values.since, values.until);
  const requestsPerSecond = values.rps === undefined ? RECONCILE_DEFAULTS.requestsPerSecond : rpsFrom(values.rps);
  if (values.yes && !values.fix) throw new UsageError("--yes goes with --fix");
  if (values.fix && values.json) throw new UsageError("--fix asks and lists as text: run --json without --fix");
  // Checked before anything is read, so a script learns at once that it must say --yes.
  if (values.fix && !values.yes && !process.stdin.isTTY) throw new UsageError("stdin is not a terminal, so I cannot ask: add --yes to send without asking");
  if (values.report !== undefined) await checkWritable(values.report);
  const tableName = tableFrom(values.table);
  const real = realAirtableFromEnv();
  if (real && (values["airtable-port"] !== undefined || values.token !== undefined)) {
    throw new UsageError(`--airtable-port and --token are for the emulator; ${ENV.airtableToken} and ${ENV.airtableBaseId} are set`);
  }
  const airtable = real ?? { token: localTokenFrom(values.token), baseId: CLI_DEFAULTS.baseId, endpointUrl: emulatorUrl(airtablePortFrom(values["airtable-port"])) };
  const queueFlag = flagOrEnv(values["queue-url"], ENV.queueUrl);
  const queueUrl =
    queueFlag === undefined
      ? localQueueUrl(localSqsEndpoint(sqsPortFrom(values["sqs-port"])), CLI_DEFAULTS.sourceQueueName)
      : parseUrl(queueFlag, values["queue-url"] !== undefined ? "--queue-url" : ENV.queueUrl);
  const dlqFlag = flagOrEnv(values["dlq-url"], ENV.dlqUrl);
  const dlqUrl = dlqFlag === undefined ? undefined : parseUrl(dlqFlag, values["dlq-url"] !== undefined ? "--dlq-url" : ENV.dlqUrl);

  // The source first, whole: a bad file is bad input before any request is made.
  const reconciliation = new Reconciliation(window);
  const sourceCount = await readSource(values.source, reconciliation);

  const where = `base ${airtable.baseId}, table "${tableName}"${real ? "" : ` (emulator at ${airtable.endpointUrl})`}`;
  if (!real) await probe(airtable.endpointUrl!, "Airtable emulator", "run `npm start` first, or set AIRTABLE_TOKEN and AIRTABLE_BASE_ID for the real Airtable");

  // Ctrl-C while the base is read (the long part): stop at once, nothing has been changed.
  const interrupt = new AbortController();
  const stopWatching = watchInterrupts(() => interrupt.abort(new Interrupted()));
  const progress = new ProgressLine(reconciliation.sourceDonationsInWindow, requestsPerSecond);
  try {
    for await (const page of readBase(
      { ...airtable, tableName, requestsPerSecond },
      { signal: interrupt.signal, onProgress: (read) => progress.show(read) },
    )) {
      for (const record of page) reconciliation.addBaseRecord(record);
    }
  } catch (error) {
    if (interrupt.signal.aborted) {
      progress.clear();
      console.error("interrupted: nothing was changed");
      return INTERRUPTED;
    }
    throw baseFailure(error, where);
  } finally {
    stopWatching();
    progress.clear();
  }

  const report = values.report === undefined ? undefined : new CsvReport(values.report);
  const { summary, findings: judged } = reconciliation.finish((finding) => report?.write(finding));
  await report?.close();

  // Where the missing ones are: only looked for when something is missing or differs.
  let findings = judged;
  const sqsEndpoint = sqsEndpointFor(queueUrl);
  ensureAwsEnvironment(sqsEndpoint, queueUrl);
  const sqs = sqsClient(sqsEndpoint);
  try {
    let queuesLooked: string | undefined;
    if (judged.some((finding) => finding.outcome === "missing" || finding.outcome === "differs")) {
      try {
        const located = await lookInQueues(sqs, queueUrl, dlqUrl);
        findings = locateFindings(judged, located.queued, located.deadLettered);
        queuesLooked = located.note;
      } catch (error) {
        const reason = isConnectionRefused(error) ? `cannot reach the SQS server at ${sqsEndpoint ?? "AWS"}` : (error as Error).message;
        if (values.fix) throw new CommandFailure(`${reason}: cannot look in the queues or send anything (nothing sent)`);
        queuesLooked = `could not look in the queues (${reason}): where the missing donations are is not known`;
      }
    }

    if (values.json) {
      console.log(JSON.stringify({ source: values.source, base: { baseId: airtable.baseId, tableName }, summary, findings }, null, 2));
    } else {
      for (const line of describe(summary, findings, { source: values.source, sourceCount, where, queuesLooked, report: values.report })) console.log(line);
    }
    if (values.fix) return await fix(findings, reconciliation, sqs, queueUrl, values.yes === true, summary);
    return isReconciled(summary) ? 0 : 1;
  } finally {
    sqs.destroy();
  }
}

class Interrupted extends Error {
  override readonly name = "Interrupted";
}

// --- Input ------------------------------------------------------------------------------------------------------

function windowFrom(since: string | undefined, until: string | undefined): ReconcileWindow {
  const bound = (text: string | undefined, flag: string) => {
    if (text === undefined) return undefined;
    const parsed = parseWindowBound(text);
    if (parsed === undefined) throw new UsageError(`${flag} must be a date like 2026-03-01 or a date-time with a zone like 2026-03-01T00:00:00Z, not "${text}"`);
    return parsed;
  };
  const window = { since: bound(since, "--since"), until: bound(until, "--until") };
  if (window.since !== undefined && window.until !== undefined && window.since >= window.until) {
    throw new UsageError(`--since (${since}) must be before --until (${until})`);
  }
  return Object.fromEntries(Object.entries(window).filter(([, value]) => value !== undefined));
}

function rpsFrom(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > AIRTABLE_REQUESTS_PER_SECOND) {
    throw new UsageError(`--rps must be a whole number of requests per second from 1 to ${AIRTABLE_REQUESTS_PER_SECOND}, not "${text}"`);
  }
  return value;
}

async function checkWritable(file: string): Promise<void> {
  try {
    await access(path.dirname(path.resolve(file)), constants.W_OK);
  } catch (error) {
    throw new UsageError(`cannot write --report ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Reads the source into the reconciliation (NDJSON and CSV line by line); returns how many entries it held. */
async function readSource(file: string, reconciliation: Reconciliation): Promise<number> {
  let first: string | undefined;
  try {
    if (!(await stat(file)).isFile()) throw Object.assign(new Error("not a file"), { code: "EISDIR" });
    const handle = await open(file, "r");
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(4096), 0, 4096, 0);
      first = /\S/.exec(buffer.subarray(0, bytesRead).toString("utf8").replace(/^\uFEFF/, ""))?.[0];
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new UsageError(`cannot read --source ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (first === undefined) throw new UsageError(`--source ${file} is empty`);
  const format = detectSourceFormat(file, first);
  let count = 0;
  try {
    const entries: AsyncIterable<SourceEntry> | Iterable<SourceEntry> =
      format === "json" ? readJsonArray(await readFile(file, "utf8"))
      : format === "csv" ? readCsv(lines(file))
      : readNdjson(lines(file));
    for await (const entry of entries) {
      reconciliation.addSource(entry);
      count++;
    }
  } catch (error) {
    if (error instanceof SourceFormatError) throw new UsageError(`--source ${file} ${error.message}`);
    throw error;
  }
  if (count === 0) throw new UsageError(`--source ${file} holds no donations`);
  return count;
}

/** A file's lines without their line ends (LF or CR LF), streamed. */
function lines(file: string): AsyncIterable<string> {
  return createLineReader({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Number.POSITIVE_INFINITY });
}

// --- The base and the queues --------------------------------------------------------------------------------------

function baseFailure(error: unknown, where: string): Error {
  if (error instanceof AirtableConfigurationError) return new CommandFailure(`${where}: ${error.message.replace("data.records:write", "data.records:read")}`);
  if (error instanceof AirtableRecordRejectedError && error.airtableType === "LIST_RECORDS_ITERATOR_NOT_AVAILABLE") {
    return new CommandFailure(`${where}: Airtable ended the listing before its last page (its iterator expired): run reconcile again`);
  }
  if (error instanceof AirtableRecordRejectedError) {
    return new CommandFailure(`${where} refused the listing (${error.message}): run \`npm run airtable -- check\``);
  }
  if (error instanceof AirtableUnavailableError) return new CommandFailure(`${where}: ${error.message}`);
  return error as Error;
}

/** The donations waiting in the queue, and those in the DLQ with their reason, by event Id. */
async function lookInQueues(sqs: SQSClient, queueUrl: string, dlqUrl: string | undefined) {
  const queues = await resolveDeadLetterQueues(sqs, queueUrl, dlqUrl);
  const deadLettered = new Map<string, Omit<Extract<DonationLocation, { in: "dead-letter-queue" }>, "in">>();
  // Receiving counts toward the queue's redrive limit: look in it only when something waits there.
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
  );
  const inFlight = Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  const waiting = Number(Attributes?.ApproximateNumberOfMessages ?? 0) > 0;
  // Both sweeps end on an empty long poll: side by side, that wait is paid once.
  const [{ letters }, { messages }] = await Promise.all([
    listDeadLetters(queues),
    waiting ? peekSourceQueue(sqs, queueUrl) : Promise.resolve({ messages: [] }),
  ]);
  for (const letter of letters) {
    const id = eventIdOf(letter.body);
    if (id !== undefined) deadLettered.set(id, { messageId: letter.messageId, errorName: letter.errorName, cause: letter.cause });
  }
  const queued = new Set<string>();
  for (const message of messages) if (message.eventId !== undefined) queued.add(message.eventId);
  const note = inFlight > 0 ? `${inFlight} message${inFlight === 1 ? " was" : "s were"} in flight (held by a drain) and could not be looked at: run again after the drain` : undefined;
  return { queued, deadLettered, note };
}

// --- Output -------------------------------------------------------------------------------------------------------

const money = (cents: number) => `${cents < 0 ? "-" : ""}$${formatCents(Math.abs(cents))}`;
const dollars = (amount: number | undefined) => (amount === undefined ? "" : money(Math.round(amount * 100)));
const count = (n: number) => n.toLocaleString("en-US");

function locationText(location: DonationLocation | undefined): string {
  if (location === undefined) return "";
  if (location.in === "queue") return "waiting in the queue";
  const reason = [location.errorName, location.cause].filter(Boolean).join(": ");
  return `in the DLQ (${location.messageId}${reason ? `; ${reason}` : ""})`;
}

function differenceText(finding: ReconcileFinding, money: boolean): string {
  return (finding.differences ?? [])
    .filter((difference) => difference.money === money)
    .map((d) => `${d.field}: ${JSON.stringify(d.source)} → ${JSON.stringify(d.base)}${d.fixable ? "" : " (the pipeline never blanks a value: a person must)"}`)
    .join("; ");
}

/** The summary at a glance, then the differences, outcome by outcome. */
function describe(
  summary: ReconcileSummary,
  findings: readonly ReconcileFinding[],
  context: { source: string; sourceCount: number; where: string; queuesLooked?: string; report?: string },
): string[] {
  const { counts } = summary;
  const windowText =
    summary.window.since || summary.window.until ? `, CreationDate from ${summary.window.since ?? "the start"} until ${summary.window.until ?? "now"}` : "";
  const out = [
    `reconciled ${context.source} (${count(summary.sourceDonations)} donations${windowText}) with ${context.where} (${count(summary.baseRecords)} records)`,
  ];
  const missing = findings.filter((finding) => finding.outcome === "missing");
  const notes: Record<ReconcileOutcome, string> = {
    matches: summary.displayTextEdited > 0 ? `${count(summary.displayTextEdited)} with display text edited in the base, left alone` : "",
    missing:
      counts.missing > 0
        ? [
            `${count(missing.filter((f) => f.location?.in === "queue").length)} waiting in the queue`,
            `${count(missing.filter((f) => f.location?.in === "dead-letter-queue").length)} in the DLQ`,
          ].join(", ")
        : "",
    differs: counts.differs > 0 ? "money fields differ" : "",
    duplicated: counts.duplicated > 0 ? "more than one record with the Id: a person decides which to delete" : "",
    extra: counts.extra > 0 ? "in the base, not in the source: a person decides" : "",
    invalid: counts.invalid > 0 ? "in the source: Validate would dead-letter them" : "",
  };
  for (const outcome of Object.keys(OUTCOME_LABELS) as ReconcileOutcome[]) {
    out.push(`  ${OUTCOME_LABELS[outcome].padEnd(11)}${count(counts[outcome]).padStart(9)}${notes[outcome] ? `  (${notes[outcome]})` : ""}`);
  }
  out.push(`  total      source ${money(summary.sourceTotalCents)}, base ${money(summary.baseTotalCents)}, difference ${money(summary.differenceCents)}`);
  const extras: string[] = [];
  if (summary.repeatedInSource > 0) extras.push(`${count(summary.repeatedInSource)} repeated rows of the source counted once`);
  if (summary.outsideWindow.source + summary.outsideWindow.base > 0) {
    extras.push(`outside the window: ${count(summary.outsideWindow.source)} of the source, ${count(summary.outsideWindow.base)} of the base`);
  }
  if (extras.length > 0) out.push(`  (${extras.join("; ")})`);
  if (context.queuesLooked) out.push(`  ${context.queuesLooked}`);
  const reconciled = isReconciled(summary);
  const toLook = counts.missing + counts.differs + counts.duplicated + counts.extra + counts.invalid;
  out.push(reconciled ? "the base matches the source" : `the base does not match the source: ${count(toLook)} donation${toLook === 1 ? "" : "s"} to look at`);
  if (context.report) out.push(`every compared donation is in ${context.report}`);

  const section = (title: string, chosen: readonly ReconcileFinding[], line: (finding: ReconcileFinding) => string) => {
    if (chosen.length === 0) return;
    out.push("", title);
    for (const finding of chosen.slice(0, RECONCILE_DEFAULTS.listedPerOutcome)) out.push(`  ${line(finding)}`);
    if (chosen.length > RECONCILE_DEFAULTS.listedPerOutcome) {
      out.push(`  … and ${count(chosen.length - RECONCILE_DEFAULTS.listedPerOutcome)} more (--json or --report F.csv lists them all)`);
    }
  };
  const of = (outcome: ReconcileOutcome) => findings.filter((finding) => finding.outcome === outcome);
  const head = (finding: ReconcileFinding) => `${finding.id}  ${finding.where ?? ""}`.trimEnd();
  section("missing from the base", of("missing"), (f) => `${head(f)}  ${dollars(f.sourceAmount)}${f.location ? `  ${locationText(f.location)}` : ""}`);
  section("differs (source → base)", of("differs"), (f) => `${head(f)}  ${differenceText(f, true)}${f.location ? `  (${locationText(f.location)})` : ""}`);
  section("duplicated in the base (reconcile never deletes: a person decides)", of("duplicated"), (f) => `${head(f)}  ${dollars(f.sourceAmount)}  records ${f.recordIds!.join(", ")}`);
  section("extra: in the base, not in the source (left for a person to decide)", of("extra"), (f) => `${f.id}  ${dollars(f.baseAmount)}  records ${f.recordIds!.join(", ")}`);
  section("invalid in the source (Validate's reason)", of("invalid"), (f) => `${f.where}  ${f.id}  ${f.problems!.join("; ")}`);
  section("display text edited in the base (left alone)", of("matches"), (f) => `${head(f)}  ${differenceText(f, false)}`);
  return out;
}

/** `--report F.csv`: one row per compared donation, written as the verdict is reached (matches too). */
class CsvReport {
  readonly #stream;
  #error: Error | undefined;
  constructor(readonly file: string) {
    this.#stream = createWriteStream(file);
    this.#stream.on("error", (error) => (this.#error = error));
    this.#stream.write(`${REPORT_CSV_HEADER.map(csvCell).join(",")}\r\n`);
  }
  write(finding: ReconcileFinding): void {
    this.#stream.write(`${reportCsvRow(finding)}\r\n`);
  }
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#stream.end(resolve));
    if (this.#error) throw new CommandFailure(`cannot write --report ${this.file}: ${this.#error.message}`);
  }
}

/** On a terminal: pages read, records, and an estimate of the time left (if the base is about the source's size). */
class ProgressLine {
  readonly #enabled = process.stderr.isTTY === true;
  #shownAt = 0;
  #shown = false;
  constructor(
    private readonly expectedRecords: number,
    private readonly requestsPerSecond: number,
  ) {}

  show(read: ReadProgress): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (read.waitingUntil === undefined && now - this.#shownAt < RECONCILE_DEFAULTS.progressEveryMs) return;
    this.#shownAt = now;
    let line = `reading the base: ${count(read.pages)} page${read.pages === 1 ? "" : "s"}, ${count(read.records)} records`;
    if (read.waitingUntil !== undefined) {
      line += `; Airtable answered 429: waiting out its lock, ${Math.ceil((read.waitingUntil - now) / 1000)} s`;
    } else {
      const pagesLeft = Math.ceil(Math.max(0, this.expectedRecords - read.records) / AIRTABLE_MAX_PAGE_SIZE);
      if (pagesLeft > 0) line += `; about ${formatDuration(pagesLeft / this.requestsPerSecond)} left`;
    }
    process.stderr.write(`\r\x1b[2K${line}`);
    this.#shown = true;
  }

  clear(): void {
    if (this.#shown) process.stderr.write("\r\x1b[2K");
    this.#shown = false;
  }
}

const formatDuration = (seconds: number) =>
  seconds < 90 ? `${Math.ceil(seconds)} s` : seconds < 5400 ? `${Math.round(seconds / 60)} min` : `${(seconds / 3600).toFixed(1)} h`;

// --- Fix ----------------------------------------------------------------------------------------------------------

/**
 * Sends the missing and differing donations onto the queue, as the source has them, after listing them and asking.
 * What waits in the queue already is not sent again, nor what the pipeline cannot correct; the base is not touched.
 */
async function fix(
  findings: readonly ReconcileFinding[],
  reconciliation: Reconciliation,
  sqs: SQSClient,
  queueUrl: string,
  yes: boolean,
  summary: ReconcileSummary,
): Promise<number> {
  const chosen = fixableFindings(findings);
  const exit = isReconciled(summary) ? 0 : 1;
  if (chosen.length === 0) {
    console.log("\n--fix: nothing to send (what is missing or differs already waits in the queue, or only a person can correct it)");
    return exit;
  }
  console.log(`\n--fix: ${chosen.length} donation${chosen.length === 1 ? "" : "s"} to send through the pipeline (onto ${queueUrl}):`);
  for (const finding of chosen.slice(0, RECONCILE_DEFAULTS.listedPerOutcome)) {
    console.log(`  ${finding.outcome.padEnd(8)} ${finding.id}  ${dollars(finding.sourceAmount)}`);
  }
  if (chosen.length > RECONCILE_DEFAULTS.listedPerOutcome) console.log(`  … and ${chosen.length - RECONCILE_DEFAULTS.listedPerOutcome} more`);
  if (findings.some((finding) => finding.outcome === "extra" || finding.outcome === "duplicated")) {
    console.log("  extras and duplicates are left alone: reconcile never deletes or edits a record");
  }
  const answer = yes ? "yes" : await confirm(`Send ${chosen.length === 1 ? "it" : `these ${chosen.length}`}?`);
  if (answer !== "yes") {
    console.log(answer === "interrupted" ? "\nnothing sent (interrupted)" : "nothing sent");
    return answer === "interrupted" ? INTERRUPTED : exit;
  }
  const events = chosen.map((finding) => reconciliation.sourceEvent(finding.id)!);
  let report;
  try {
    report = await new SqsEventBus(sqs, queueUrl).publish(events);
  } catch (error) {
    if (isConnectionRefused(error)) throw new CommandFailure(`cannot reach the queue ${queueUrl} (nothing sent)`);
    throw error;
  }
  console.log(
    `sent ${report.published.length}, failed ${report.failed.length}: the pipeline validates and writes them at its next drain; ` +
      "run reconcile again after it to see them match",
  );
  for (const failure of report.failed.slice(0, 10)) console.log(`  failed ${failure.eventId}: ${failure.code}: ${failure.reason}`);
  if (report.published.length === 0 && report.failed.length > 0) throw new CommandFailure(`nothing could be sent to ${queueUrl}: ${report.failed[0]!.reason}`);
  return exit;
}

/** Asks on the terminal: "yes", "no", or "interrupted" for Ctrl-C or Ctrl-D at the prompt. */
async function confirm(question: string): Promise<"yes" | "no" | "interrupted"> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  const interrupted = new Promise<"interrupted">((resolve) => prompt.once("SIGINT", () => resolve("interrupted")));
  try {
    const answer = prompt.question(`${question} [y/N] `).then(
      (text): "yes" | "no" => (/^y(es)?$/i.test(text.trim()) ? "yes" : "no"),
      () => "interrupted" as const,
    );
    return await Promise.race([answer, interrupted]);
  } finally {
    prompt.close();
  }
}

runCommand(main, import.meta.url);
