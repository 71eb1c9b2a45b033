/**
 * `npm run bench:emulator`: how fast the emulator answers with rate limiting off. Starts one on 127.0.0.1 (random
 * port), sends a fixed number of requests (bounded in count and in time) with some concurrency: upserts of 10
 * records on "Id" (a third of them repeats, so updates too) and list pages of 100. Prints requests/second and
 * latency percentiles.
 */
import { parseArgs } from "node:util";
import { DEFAULT_TOKEN } from "./config";
import { startAirtableEmulator } from "./server";
import { TABLE_PATH } from "./test-support";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "3000" },
    concurrency: { type: "string", default: "16" },
    "max-seconds": { type: "string", default: "60" },
  },
});
const total = Math.min(Number(values.requests), 100_000);
const concurrency = Math.min(Number(values.concurrency), 256);
const deadline = performance.now() + Math.min(Number(values["max-seconds"]), 600) * 1000;
if (!Number.isInteger(total) || total < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error("bench: --requests and --concurrency must be positive integers");
  process.exit(2);
}

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
