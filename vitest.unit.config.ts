import { defineConfig } from "vitest/config";
import base, { SERVER_TESTS_IN_CORE, UNIT_TESTS } from "./vitest.config.js";

/** `npm run test:unit`: the tests that start no server (see {@link UNIT_TESTS}); answers in well under 20 s. */
export default defineConfig({
  ...base,
  test: { ...base.test, include: UNIT_TESTS, exclude: ["**/node_modules/**", ...SERVER_TESTS_IN_CORE] },
});
