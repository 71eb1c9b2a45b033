/**
 * `npm run bundle-sizes`: synthesizes the stack offline (esbuild bundles every function as `sst deploy` would) and
 * prints each function's bundle size. Not a test: it measures; `stacks/bundles.test.ts` holds the 100 KB line.
 */
import { stat } from "node:fs/promises";
import { CommandLineError, parseCommandLine } from "@fundraise-sync/core/command-line";
import { synthesizeWorkflow } from "./synthesize";

const USAGE = `Usage: npm run bundle-sizes

Synthesizes the stack offline (every function bundled by esbuild, as \`sst deploy\` does) and prints each Lambda
bundle's size. Takes no flags but --help.
`;

try {
  const { values } = parseCommandLine(process.argv.slice(2), {});
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
} catch (error) {
  process.stderr.write(`error: ${error instanceof CommandLineError ? error.message : String(error)}\n`);
  process.exit(2);
}

const { bundles } = await synthesizeWorkflow("test");
const rows = await Promise.all(
  Object.entries(bundles).map(async ([name, file]) => ({ name, bytes: (await stat(file)).size, file: file.slice(process.cwd().length + 1) })),
);
const width = Math.max(...rows.map((row) => row.name.length));
for (const { name, bytes, file } of rows.sort((a, b) => b.bytes - a.bytes)) {
  console.log(`${name.padEnd(width)}  ${(bytes / 1024).toFixed(1).padStart(6)} KB  ${file}`);
}
