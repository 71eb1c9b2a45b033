/**
 * `npm run bench:emulator`: how fast the emulator answers with rate limiting off. Starts one on 127.0.0.1 (random
 * port), sends a fixed number of requests (bounded in count and in time) with some concurrency: upserts of 10
 * records on "Id" (a third of them repeats, so updates too) and list pages of 100. Prints requests/second and
 * latency percentiles.
 */
import { CommandLineError, parseCommandLine } from "@fundraise-sync/core/command-line";
import { DEFAULT_TOKEN } from "./config";
import { startAirtableEmulator } from "./server";
import { TABLE_PATH } from "./test-support";

const USAGE = `Usage: npm run bench:emulator -- [--requests N] [--concurrency N] [--max-seconds S]

How fast the emulator answers with rate limiting off: upserts of 10 records and list pages of 100 against an
emulator on a free loopback port. Prints requests/s and latency percentiles.

  --requests N      requests to send, 1 to 100,000 (default 3000)
  --concurrency N   requests in flight at once, 1 to 256 (default 16)
  --max-seconds S   stop sending after S seconds, 1 to 600 (default 60)
`;

/** One line `error: …` and exit 2: the command-line contract for bad input. */
function refuse(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function wholeNumber(text: string, flag: string, max: number): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value < 1 || value > max) refuse(`${flag} must be a whole number from 1 to ${max.toLocaleString("en-US")}, not "${text}"`);
  return value;
}

// `npm run bench:emulator | head`: the reader left; not an error worth a stack trace.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

let parsed: ReturnType<typeof parseCommandLine<{ requests: { type: "string" }; concurrency: { type: "string" }; "max-seconds": { type: "string" } }>>;
try {
  parsed = parseCommandLine(process.argv.slice(2), { requests: { type: "string" }, concurrency: { type: "string" }, "max-seconds": { type: "string" } });
} catch (error) {
  refuse(error instanceof CommandLineError ? error.message : String(error));
}
const { values } = parsed;
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const total = wholeNumber(values.requests ?? "3000", "--requests", 100_000);
const concurrency = wholeNumber(values.concurrency ?? "16", "--concurrency", 256);
const deadline = performance.now() + wholeNumber(values["max-seconds"] ?? "60", "--max-seconds", 600) * 1000;

const emulator = await startAirtableEmulator({ port: 0, host: "127.0.0.1", rateLimit: false, logger: { info() {}, warn: console.warn, error: console.error } });
const headers = { authorization: `Bearer ${DEFAULT_TOKEN}`, "content-type": "application/json" };
const upsertBody = (n: number) =>
  JSON.stringify({
    performUpsert: { fieldsToMergeOn: ["Id"] },
    records: Array.from({ length: 10 }, (_, i) => ({
      fields: {
        Id: `evt-${n % 3 === 0 ? i : n * 10 + i}`,
        "Creation Date": new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString(),
        "Donor Id": `donor-${i}`,
        "Fundraiser Id": "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
        "Donation Amount": 10 + i,
        "Donor Display Name": "Bench",
      },
    })),
  });

const latencies: number[] = [];
const statuses = new Map<number, number>();
let issued = 0;
const started = performance.now();

async function worker(): Promise<void> {
  while (issued < total && performance.now() < deadline) {
    const n = issued++;
    const isList = n % 5 === 4;
    const t0 = performance.now();
    const response = isList
      ? await fetch(`${emulator.url}${TABLE_PATH}?pageSize=100`, { headers })
      : await fetch(`${emulator.url}${TABLE_PATH}`, { method: "PATCH", headers, body: upsertBody(n) });
    await response.arrayBuffer();
    latencies.push(performance.now() - t0);
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  }
}

await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = (performance.now() - started) / 1000;
const onTable = emulator.records("appFundraiseSync1", "Donations").length;
await emulator.close();

latencies.sort((a, b) => a - b);
const pct = (p: number) => (latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(2);
const stats = emulator.stats();
console.log(`requests:     ${latencies.length} (${concurrency} concurrent; 80% upserts of 10 records, 20% lists of 100) in ${seconds.toFixed(2)} s`);
console.log(`throughput:   ${(latencies.length / seconds).toFixed(0)} requests/s (${((stats.records.created + stats.records.updated) / seconds).toFixed(0)} records written/s)`);
console.log(`latency (ms): p50 ${pct(50)}  p90 ${pct(90)}  p99 ${pct(99)}  max ${pct(100)}`);
console.log(`statuses:     ${[...statuses].map(([s, c]) => `${s}×${c}`).join(" ")}`);
console.log(`records:      created ${stats.records.created}, updated ${stats.records.updated}, on the table at the end ${onTable}`);
if ([...statuses.keys()].some((s) => s !== 200)) process.exitCode = 1;
