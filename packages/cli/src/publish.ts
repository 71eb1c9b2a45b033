/**
 * `npm run publish -- [--count N] [--file F] [--raw] [--queue-url URL]`: puts DonationCreated events on the donations
 * queue, as the web application does.
 */
import { readFile } from "node:fs/promises";
import {
  type DonationCreatedEvent,
  InvalidDonationEventError,
  type PublishReport,
  type RawMessage,
  SqsEventBus,
  assertFitsQueue,
  parseDonationEvent,
  sampleDonations,
  serializeDonationEvent,
} from "@fundraise-sync/core";
import { probe } from "./servers";
import {
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  UsageError,
  isAwsUrl,
  ensureAwsEnvironment,
  flagOrEnv,
  localQueueUrl,
  localSqsEndpoint,
  parseCommandLine,
  parsePositiveInteger,
  parseUrl,
  runCommand,
  sqsClient,
  sqsEndpointFor,
  sqsPortFrom,
} from "./options";

/** Failures listed one per line; the rest are counted. */
const MAX_FAILURES_LISTED = 10;

const USAGE = `Usage: npm run publish -- [options]

Publishes DonationCreated events to the donations queue, in the web application's wire format.

  --count N          N realistic sample donations, 1 to ${CLI_DEFAULTS.maxPublishCount.toLocaleString("en-US")} (default ${CLI_DEFAULTS.publishCount})
  --file F           events from F instead: a JSON array of events, or NDJSON (one event per line);
                     each is validated (exit 2 naming the line or element, counted from 1, of the first invalid one)
  --raw              with --file: send each line (NDJSON) or array element as is, unvalidated; a string
                     element is sent as its text. For putting malformed messages on the queue (DLQ tests)
  --queue-url URL    the queue (env ${ENV.queueUrl}; default the local one,
                     ${localQueueUrl(localSqsEndpoint(CLI_DEFAULTS.sqsPort), CLI_DEFAULTS.sourceQueueName)})
  --sqs-port N       port of the local SQS server (env ${ENV.sqsPort}; default ${CLI_DEFAULTS.sqsPort})
  -h, --help         show this help

Environment: ${ENV.sqsEndpoint} (SQS endpoint; default the queue URL's server, or AWS for an AWS queue URL),
AWS_REGION / AWS credentials (local dummies when talking to a local server and unset).
Exit codes: 0 all published; 1 the queue unreachable, or any event failed (the first ${MAX_FAILURES_LISTED} are listed);
2 bad input (an event over the queue's size limit too).
`;

/** A file's entries: each with where it came from (for error messages) and its text or parsed value. */
interface Entry {
  where: string;
  text: string;
}

/** Splits a file into entries: a JSON array (elements) or NDJSON (non-blank lines). */
function entriesOf(text: string, file: string, raw: boolean): Entry[] {
  if (text.trimStart().startsWith("[")) {
    let array: unknown;
    try {
      array = JSON.parse(text);
    } catch (error) {
      if (!raw) throw new UsageError(`${file} starts with "[" but is not a valid JSON array: ${(error as Error).message}`);
    }
    if (Array.isArray(array)) {
      return array.map((element: unknown, index) => ({
        // Counted from 1, like NDJSON lines: people read "element 1" as the first.
        where: `${file} element ${index + 1}`,
        text: typeof element === "string" && raw ? element : JSON.stringify(element),
      }));
    }
  }
  return text
    .split(/\r?\n/)
    .map((line, index) => ({ where: `${file} line ${index + 1}`, text: line }))
    .filter((entry) => entry.text.trim() !== "");
}

async function readEntries(file: string, raw: boolean): Promise<Entry[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read --file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const entries = entriesOf(text, file, raw);
  if (entries.length === 0) throw new UsageError(`${file} holds no events`);
  return entries;
}

function validate(entries: Entry[]): DonationCreatedEvent[] {
  return entries.map(({ where, text }) => {
    try {
      return parseDonationEvent(text);
    } catch (error) {
      if (error instanceof InvalidDonationEventError) throw new UsageError(`${where}: ${error.message}`);
      throw error;
    }
  });
}

/** A raw message's id for the report: the body's Id when it has one, else where it came from. */
function rawMessage({ where, text }: Entry): RawMessage {
  try {
    const id = (JSON.parse(text) as { Id?: unknown }).Id;
    if (typeof id === "string" && id !== "") return { id, body: text };
  } catch {
    // malformed on purpose, likely: name it by its place in the file
  }
  return { id: where, body: text };
}

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    count: { type: "string" },
    file: { type: "string" },
    raw: { type: "boolean" },
    "queue-url": { type: "string" },
    "sqs-port": { type: "string" },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.count !== undefined && values.file !== undefined) throw new UsageError("give --count or --file, not both");
  if (values.raw && values.file === undefined) throw new UsageError("--raw needs --file");
  const count = values.count === undefined ? CLI_DEFAULTS.publishCount : parsePositiveInteger(values.count, "--count", CLI_DEFAULTS.maxPublishCount);
  const queueFlag = flagOrEnv(values["queue-url"], ENV.queueUrl);
  const queueUrl =
    queueFlag === undefined
      ? localQueueUrl(localSqsEndpoint(sqsPortFrom(values["sqs-port"])), CLI_DEFAULTS.sourceQueueName)
      : parseUrl(queueFlag, values["queue-url"] !== undefined ? "--queue-url" : ENV.queueUrl);

  // Read and check everything before sending anything: a bad file publishes nothing.
  const entries = values.file === undefined ? undefined : await readEntries(values.file, values.raw ?? false);
  const events = entries === undefined ? sampleDonations(count) : values.raw ? undefined : validate(entries);

  const messages: RawMessage[] = events
    ? events.map((event) => ({ id: event.Id, body: serializeDonationEvent(event) }))
    : entries!.map(rawMessage);
  // An oversized event is bad input (exit 2), found before any request.
  assertFitsQueue(messages);

  const endpoint = sqsEndpointFor(queueUrl);
  ensureAwsEnvironment(endpoint, queueUrl);
  // One line when the local server is not running, rather than one failure per event.
  if (endpoint !== undefined && !isAwsUrl(endpoint)) await probe(endpoint, "SQS", "run `npm start` first");
  const sqs = sqsClient(endpoint);
  try {
    const report: PublishReport = await new SqsEventBus(sqs, queueUrl).publishRaw(messages);
    const [first] = report.failed;
    if (report.published.length === 0 && first !== undefined && report.failed.every((failure) => failure.code === "RequestFailed")) {
      // Nothing got through and every failure is the same request error: the queue is unreachable, say it once.
      throw new CommandFailure(`cannot reach ${queueUrl}: ${first.reason} (nothing published)`);
    }
    console.log(`published ${report.published.length}, failed ${report.failed.length} (to ${queueUrl})`);
    for (const failure of report.failed.slice(0, MAX_FAILURES_LISTED)) console.log(`  failed ${failure.eventId}: ${failure.code}: ${failure.reason}`);
    if (report.failed.length > MAX_FAILURES_LISTED) console.log(`  … and ${report.failed.length - MAX_FAILURES_LISTED} more`);
    return report.failed.length > 0 ? 1 : 0;
  } finally {
    sqs.destroy();
  }
}

runCommand(main, import.meta.url);
