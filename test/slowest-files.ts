import type { Reporter, TestModule } from "vitest/node";

/** How many files the summary names. */
const SHOWN = 8;

/**
 * Prints the slowest test files after the run (import plus tests and hooks), so that the next file that makes
 * `npm test` slow is seen in the run that adds it, not months later.
 */
export default class SlowestFiles implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const timed = testModules
      .map((module) => {
        const { collectDuration, duration } = module.diagnostic();
        return { file: module.relativeModuleId, seconds: (collectDuration + duration) / 1000 };
      })
      .sort((a, b) => b.seconds - a.seconds)
      .slice(0, SHOWN);
    if (timed.length === 0) return;
    const width = Math.max(...timed.map(({ file }) => file.length));
    console.log(`\nslowest test files (import + tests, each in its own worker):`);
    for (const { file, seconds } of timed) console.log(`  ${file.padEnd(width)}  ${seconds.toFixed(1).padStart(6)} s`);
  }
}
