import { defineConfig } from "vitest/config";

/**
 * The tests that start no server: core logic, the stack's template (synthesized once by the global setup), the graph
 * conversion, the commands' wording and the docs' links. `npm run test:unit` runs these alone
 * (`vitest.unit.config.ts`); `npm test` runs them with everything else.
 */
export const UNIT_TESTS = [
  "packages/core/src/**/*.test.ts",
  "stacks/**/*.test.ts",
  "packages/functions/src/**/*.test.ts",
  "packages/console/src/graph.test.ts",
  "packages/cli/src/format.test.ts",
  "packages/cli/src/drain-history.test.ts",
  "packages/cli/src/console-feed.test.ts",
  "packages/local/src/sfn-history.test.ts",
  "test/**/*.test.ts",
];

/** Core tests that talk to a real SQS server or the Airtable emulator over HTTP: not unit tests. */
export const SERVER_TESTS_IN_CORE = [
  "packages/core/src/airtable-writer.test.ts",
  "packages/core/src/event-bus.test.ts",
  "packages/core/src/write-round.test.ts",
];

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "stacks/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Most test files wait (long polls, retry intervals, Airtable's pace), not compute: five files at once on two
    // cores take the suite from about 500 s to about 120 s (six made the share test in write-round flaky). Each file runs in its own process, on free ports.
    maxWorkers: 5,
    reporters: ["default", "./test/slowest-files.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
