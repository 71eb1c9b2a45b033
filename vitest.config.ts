import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "stacks/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Most test files wait (long polls, retry intervals, Airtable's pace), not compute: four files at once on two
    // cores take the suite from about 460 s to about 175 s. Each file runs in its own process, on free ports.
    maxWorkers: 4,
    reporters: ["default", "./test/slowest-files.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
