/**
 * Reconcile benchmark (`npm run bench:reconcile`): a base of N donations in the Airtable emulator, with Airtable's
 * real limiter on (5 requests/s per base, a 30 s lock after a 429), and the same N donations as an NDJSON export.
 * Runs `npm run reconcile` as its own process, as a person would, and measures what decides whether it is usable at
 * a month's close: the time (dominated by the base's pace: N / 100 pages at `--rps`), the requests and 429s the
 * base saw, and the command's peak memory (sampled from /proc), which must not grow with the pages read.
 *
 * A few records are made extras and duplicates, so the run reports differences without looking in any queue.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startAirtableEmulator } from "@fundraise-sync/airtable-emulator";
import { sampleDonations, serializeDonationEvent } from "@fundraise-sync/core";
import { ROOT, SCRIPTS } from "../run-cli";
import { UsageError, parseCommandLine } from "../options";
import { emulatorDataFile } from "./seed-base";

const DEFAULTS = { count: 100_000, minCount: 1_000, maxCount: 200_000, rps: 5, out: "bench-results/reconcile.json", sampleEveryMs: 100 } as const;
/** Donations left out of the source (extras in the base) and records written twice (duplicates). */
const EXTRAS = 5;
const DUPLICATES = 5;

const USAGE = `Usage: npm run bench:reconcile -- [--count N] [--rps N] [--out FILE]

  --count N   donations in the base and the source, ${DEFAULTS.minCount.toLocaleString("en-US")} to ${DEFAULTS.maxCount.toLocaleString("en-US")} (default ${DEFAULTS.count.toLocaleString("en-US")})
  --rps N     reconcile's pace, 1-5 requests/s (default ${DEFAULTS.rps}: the base to itself; 1 beside a pipeline)
  --out FILE  where the numbers go as JSON (default ${DEFAULTS.out})
`;

/** Peak resident memory of a process, sampled from /proc (Linux); undefined elsewhere. */
function sampleRss(pid: number): { stop(): number | undefined } {
  let peakKb: number | undefined;
  const read = async () => {
    try {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      // VmHWM is the kernel's own high-water mark: exact, whatever the sampling misses.
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
      if (Number.isFinite(hwm)) peakKb = Math.max(peakKb ?? 0, hwm);
    } catch {
      // gone, or not Linux
    }
  };
  const timer = setInterval(() => void read(), DEFAULTS.sampleEveryMs);
  return {
    stop() {
      clearInterval(timer);
      return peakKb === undefined ? undefined : Math.round(peakKb / 1024);
    },
  };
}

async function main() {
  const { values } = parseCommandLine(process.argv.slice(2), { count: { type: "string" }, rps: { type: "string" }, out: { type: "string" } });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const count = values.count === undefined ? DEFAULTS.count : Number(values.count);
  if (!Number.isInteger(count) || count < DEFAULTS.minCount || count > DEFAULTS.maxCount) {
    throw new UsageError(
      `--count must be a whole number from ${DEFAULTS.minCount.toLocaleString("en-US")} to ${DEFAULTS.maxCount.toLocaleString("en-US")}, not "${values.count}"`,
    );
  }
  const rps = values.rps === undefined ? DEFAULTS.rps : Number(values.rps);
  if (!Number.isInteger(rps) || rps < 1 || rps > 5) throw new UsageError(`--rps must be a whole number from 1 to 5, not "${values.rps}"`);
  const out = values.out ?? DEFAULTS.out;

  const dir = await mkdtemp(path.join(tmpdir(), "fundraise-bench-reconcile-"));
  try {
    // Arrange: the base holds every donation (a few twice); the source leaves a few out.
    const donations = sampleDonations(count);
    const dataFile = path.join(dir, "airtable.json");
    await writeFile(dataFile, emulatorDataFile([...donations, ...donations.slice(-DUPLICATES)]));
    const source = path.join(dir, "export.ndjson");
    await writeFile(source, `${donations.slice(EXTRAS).map(serializeDonationEvent).join("\n")}\n`);
    const emulator = await startAirtableEmulator({ port: 0, dataFile });
    try {
      console.log(`reconcile: ${count.toLocaleString("en-US")} donations in the base, ${(count - EXTRAS).toLocaleString("en-US")} in the source, at ${rps} request(s)/s`);
      // Act: the command in its own process (Node with tsx loaded, so the pid sampled is the command's own).
      const started = performance.now();
      const child = spawn(
        process.execPath,
        ["--import", "tsx", SCRIPTS.reconcile, "--source", source, "--rps", String(rps), "--airtable-port", String(emulator.port), "--json"],
        { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, AIRTABLE_TOKEN: "", AIRTABLE_BASE_ID: "" } },
      );
      const memory = sampleRss(child.pid!);
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      const seconds = (performance.now() - started) / 1000;
      const peakRssMb = memory.stop();

      // Assess
      const stats = emulator.stats();
      const report = JSON.parse(stdout) as { summary: { counts: Record<string, number> } };
      const pages = Math.ceil((count + DUPLICATES) / 100);
      const result = {
        date: new Date().toISOString(),
        donations: count,
        rps,
        exitCode: code,
        counts: report.summary.counts,
        seconds: Number(seconds.toFixed(1)),
        pages,
        paceFloorSeconds: Number(((pages - 1) / rps).toFixed(1)),
        requests: stats.requests,
        rateLimited: stats.rateLimited,
        peakRssMb,
      };
      console.log(
        `  ${result.seconds} s for ${pages} pages (the pace alone: ${result.paceFloorSeconds} s); ${stats.requests} requests, ${stats.rateLimited} answered 429` +
          `\n  peak memory ${peakRssMb ?? "?"} MB; counts ${JSON.stringify(report.summary.counts)}`,
      );
      await mkdir(path.dirname(out), { recursive: true });
      await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`written to ${out}`);
      const expected = { matches: count - EXTRAS - DUPLICATES, duplicated: DUPLICATES, extra: EXTRAS };
      if (code !== 1 || stats.rateLimited > 0 || Object.entries(expected).some(([outcome, n]) => report.summary.counts[outcome] !== n)) process.exitCode = 1;
    } finally {
      await emulator.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
