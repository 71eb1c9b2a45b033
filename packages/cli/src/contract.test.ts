import { beforeAll, describe, expect, it } from "vitest";
import { closedPort, type InProcessScript, run, runInProcess, type Script } from "./run-cli";

/**
 * The command-line contract (README: "The command-line contract"), command by command and flag class by flag
 * class: every refusal is ONE line on stderr starting `error: `, no stack trace; exit 2 for bad input, 1 for a
 * server that cannot be reached. Nothing here needs a server: the unreachable ones point at a closed port.
 *
 * The commands' `main`s run in this process (what `runCommand` prints and exits with, without a second of tsx start
 * per row); the bench and the emulator, which have entry points of their own, and a sample of the others are run as
 * `npm run` runs them, to prove that the process prints the same one line and exits with the same code.
 */

type Row = [script: Script, args: string[], code: 1 | 2, message: RegExp, env?: Record<string, string>];

/** Replaced by a port where nothing listens. */
const DEAD = "<dead-port>";

const ROWS: Row[] = [
  // start
  ["start", ["--bogus"], 2, /^unknown option --bogus \(see --help\)$/],
  ["start", ["extra"], 2, /^unexpected argument "extra"/],
  ["start", ["--every"], 2, /^--every needs a value$/],
  ["start", ["--every", "soon"], 2, /^--every must be a number of seconds greater than 0/],
  ["start", ["--every", "-1"], 2, /^--every must be a number of seconds greater than 0 .*not "-1"$/],
  ["start", ["--every", "99999999999"], 2, /at most 2,147,483, not "99999999999"$/],
  ["start", ["--sqs-port", "-1"], 2, /^--sqs-port must be an integer from 0 to 65535, not "-1"$/],
  ["start", ["--airtable-port", "70000"], 2, /^--airtable-port must be an integer from 0 to 65535/],
  ["start", ["--table", ""], 2, /^--table must not be empty$/],
  ["start", [], 2, /^set both AIRTABLE_TOKEN and AIRTABLE_BASE_ID/, { AIRTABLE_TOKEN: "patX" }],
  ["start", ["--airtable-rps", "9"], 2, /^--airtable-rps must be a whole number of requests per second from 1 to 5, not "9"$/],
  ["start", ["--airtable-rps", "-2"], 2, /^--airtable-rps must be a whole number of requests per second from 1 to 5, not "-2"$/],
  ["start", ["--console-port", "abc"], 2, /^--console-port must be an integer from 0 to 65535, not "abc"$/],
  ["start", ["--console-port", "0", "--no-console"], 2, /^give --console-port or --no-console, not both$/],
  ["start", ["--sfn-port", "abc"], 2, /^--sfn-port must be an integer from 0 to 65535, not "abc"$/],
  ["start", ["--sfn-port", "0", "--no-sfn"], 2, /^give --sfn-port or --no-sfn, not both$/],
  // publish
  ["publish", ["--count", "-3"], 2, /^--count must be an integer from 1 to 100,000, not "-3"$/],
  ["publish", ["--count", "0"], 2, /^--count must be an integer from 1 to 100,000, not "0"$/],
  ["publish", ["--count", "1.5"], 2, /^--count must be an integer from 1 to 100,000/],
  ["publish", ["--count", "99999999999"], 2, /^--count must be an integer from 1 to 100,000, not "99999999999"$/],
  ["publish", ["--count"], 2, /^--count needs a value$/],
  ["publish", ["--raw", "--bogus"], 2, /^unknown option --bogus/],
  ["publish", ["--raw"], 2, /^--raw needs --file$/],
  ["publish", ["--count", "2", "--file", "x.json"], 2, /^give --count or --file, not both$/],
  ["publish", ["--file", "/nonexistent/events.ndjson"], 2, /^cannot read --file \/nonexistent\/events\.ndjson: ENOENT$/],
  ["publish", ["--queue-url", "not a url"], 2, /^--queue-url must be an http\(s\) URL/],
  ["publish", ["--sqs-port", DEAD], 1, /^nothing is listening at http:\/\/127\.0\.0\.1:\d+ \(SQS\): run `npm start` first$/],
  // run-once
  ["run-once", ["--json=yes"], 2, /^--json takes no value$/],
  ["run-once", ["now"], 2, /^unexpected argument "now"/],
  ["run-once", ["--airtable-rps", "0"], 2, /^--airtable-rps must be a whole number/],
  ["run-once", ["--sqs-port", DEAD], 1, /^nothing is listening at http:\/\/127\.0\.0\.1:\d+ \(SQS\): run `npm start` first$/],
  ["run-once", ["--stage", "prod", "--sqs-port", "9324"], 2, /^--sqs-port is for the local runtime, not --stage$/],
  ["run-once", ["--stage", "no_such!"], 2, /^--stage must be a stage name/],
  ["run-once", ["--no-wait"], 2, /^--no-wait goes with --stage$/],
  // executions
  ["executions", ["--max", "0"], 2, /^--max must be an integer from 1 to 500, not "0"$/],
  ["executions", ["--status", "DONE"], 2, /^--status must be one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, not "DONE"$/],
  ["executions", ["--stage", "prod", "--sfn-port", "9327"], 2, /^give --stage or --sfn-port, not both$/],
  ["executions", ["--sfn-port", "-1"], 2, /^--sfn-port must be an integer from 0 to 65535, not "-1"$/],
  ["executions", ["--sfn-port", DEAD], 1, /^cannot reach the Step Functions API at http:\/\/127\.0\.0\.1:\d+: is `npm start` running \(with --sfn-port \d+\)\?$/],
  // console
  ["console", ["--bogus"], 2, /^unknown option --bogus \(see --help\)$/],
  ["console", ["--poll", "1"], 2, /^--poll must be at least 2 seconds, not "1"$/],
  ["console", ["--stage", "prod", "--sqs-port", "9324"], 2, /^--sqs-port is for the local runtime, not --stage$/],
  ["console", ["--stage", "prod", "--sfn-port", "9327"], 2, /^give --stage or --sfn-port, not both$/],
  ["console", ["--port", "0", "--sfn-port", DEAD], 1, /^cannot reach the Step Functions API at http:\/\/127\.0\.0\.1:\d+: is `npm start` running \(with --sfn-port \d+\)\?$/],
  // story
  ["story", [], 2, /^give --id EVENT_ID or --message-id ID \(one of them\)$/],
  ["story", ["--id", "a", "--message-id", "b"], 2, /^give --id EVENT_ID or --message-id ID/],
  ["story", ["--id", " "], 2, /^--id must not be empty$/],
  ["story", ["--id", "a", "--since", "soon"], 2, /^--since must be a duration such as 30m, 24h or 7d, not "soon"$/],
  ["story", ["--id", "a", "--sfn-port", DEAD], 1, /^cannot reach the Step Functions API at http:\/\/127\.0\.0\.1:\d+/],
  // dlq
  ["dlq", [], 2, /^give a command: list, redrive, delete or resend/],
  ["dlq", ["resend"], 2, /^resend needs --id ID \(one dead letter\) and --file F/],
  ["dlq", ["resend", "--id", "x", "--file", "/nonexistent/edited.json"], 2, /^cannot read --file \/nonexistent\/edited.json: ENOENT$/],
  ["dlq", ["resend", "--id", "x", "--all"], 2, /^--all goes with delete, not resend$/],
  ["dlq", ["purge"], 2, /^unknown command "purge"/],
  ["dlq", ["list", "--bogus"], 2, /^unknown option --bogus \(see --help\)$/],
  ["dlq", ["list", "--max", "3"], 2, /^--max goes with redrive, not list$/],
  ["dlq", ["redrive", "--max", "-1"], 2, /^--max must be a positive integer, not "-1"$/],
  ["dlq", ["redrive", "--max", "99999999999999999999"], 2, /^--max must be a positive integer/],
  ["dlq", ["redrive", "--json"], 2, /^--json goes with list, not redrive$/],
  ["dlq", ["delete"], 2, /^delete needs exactly one of --id ID, --error NAME or --all$/],
  ["dlq", ["delete", "--all", "--id", "x"], 2, /^delete needs exactly one of/],
  ["dlq", ["delete", "--error", ""], 2, /^--error must name an ErrorName/],
  ["dlq", ["delete", "--all"], 2, /^stdin is not a terminal, so I cannot ask: add --yes/],
  ["dlq", ["redrive", "--stage", "prod"], 2, /^stdin is not a terminal, so I cannot ask before redrive on stage prod: add --yes$/],
  ["dlq", ["list", "--stage", "prod", "--queue-url", "http://127.0.0.1:9/q"], 2, /^--queue-url and --stage name the queues twice: give one$/],
  ["dlq", ["list", "--yes", "--stage", "prod"], 2, /^--yes goes with delete, not list$/],
  ["dlq", ["list", "--sqs-port", DEAD], 1, /^cannot reach the SQS server at http:\/\/127\.0\.0\.1:\d+: is `npm start` running\?$/],
  ["dlq", ["delete", "--all", "--yes", "--sqs-port", DEAD], 1, /^cannot reach the SQS server/],
  // airtable
  ["airtable", [], 2, /^give a command: check or setup/],
  ["airtable", ["verify"], 2, /^unknown command "verify"/],
  ["airtable", ["check", "extra"], 2, /^unexpected argument "extra"$/],
  ["airtable", ["setup", "--json"], 2, /^--json goes with check, not setup$/],
  ["airtable", ["check", "--airtable-port", "-1"], 2, /^--airtable-port must be an integer from 0 to 65535, not "-1"$/],
  ["airtable", ["check"], 2, /^AIRTABLE_BASE_ID must look like "appXXXXXXXXXXXXXX"/, { AIRTABLE_TOKEN: "patX", AIRTABLE_BASE_ID: "base1" }],
  ["airtable", ["check", "--airtable-port", DEAD], 1, /^nothing is listening at http:\/\/127\.0\.0\.1:\d+ \(Airtable emulator\)/],
  // reconcile
  ["reconcile", [], 2, /^give --source FILE: the platform's export to compare with the base/],
  ["reconcile", ["--source", "x.csv", "--rps", "9"], 2, /^--rps must be a whole number of requests per second from 1 to 5, not "9"$/],
  ["reconcile", ["--source", "x.csv", "--rps", "-1"], 2, /^--rps must be a whole number of requests per second from 1 to 5, not "-1"$/],
  ["reconcile", ["--source", "x.csv", "--since", "March"], 2, /^--since must be a date like 2026-03-01 or a date-time with a zone/],
  ["reconcile", ["--source", "x.csv", "--since", "2026-03-05", "--until", "2026-03-01"], 2, /^--since \(2026-03-05\) must be before --until \(2026-03-01\)$/],
  ["reconcile", ["--source", "x.csv", "--yes"], 2, /^--yes goes with --fix$/],
  ["reconcile", ["--source", "x.csv", "--fix"], 2, /^stdin is not a terminal, so I cannot ask: add --yes/],
  ["reconcile", ["--source", "x.csv", "--report", "/nonexistent/dir/report.csv"], 2, /^cannot write --report \/nonexistent\/dir\/report\.csv: ENOENT$/],
  ["reconcile", ["--source", "/nonexistent/export.csv"], 2, /^cannot read --source \/nonexistent\/export\.csv: ENOENT$/],
  ["reconcile", ["--source", "package.json", "--airtable-port", DEAD], 1, /^nothing is listening at http:\/\/127\.0\.0\.1:\d+ \(Airtable emulator\): run `npm start` first/],
  // bench
  ["bench", ["--bogus"], 2, /^unknown option --bogus \(see --help\)$/],
  ["bench", ["--count", "-5"], 2, /^--count must be a whole number from 30 to 20000, not "-5"$/],
  ["bench", ["--count", "99999999"], 2, /^--count must be a whole number from 30 to 20000, not "99999999"$/],
  ["bench", ["--scenario", "fast"], 2, /^--scenario must be one of /],
  // bench:reconcile
  ["bench:reconcile", ["--count", "5"], 2, /^--count must be a whole number from 1,000 to 200,000, not "5"$/],
  // emulator
  ["emulator", ["--bogus"], 2, /^unknown option --bogus \(see --help\)$/],
  ["emulator", ["--port", "-1"], 2, /^--port must be an integer from 0 to 65535, not "-1"$/],
  ["emulator", ["--config", "/nonexistent/config.json"], 2, /^cannot read --config \/nonexistent\/config\.json: ENOENT$/],
  ["emulator", ["serve"], 2, /^unexpected argument "serve"/],
  // bench:emulator
  ["bench:emulator", ["--bogus"], 2, /^unknown option --bogus \(see --help\)$/],
  ["bench:emulator", ["--requests", "-3"], 2, /^--requests must be a whole number from 1 to 100,000, not "-3"$/],
  ["bench:emulator", ["--concurrency", "1000"], 2, /^--concurrency must be a whole number from 1 to 256, not "1000"$/],
  // bundle-sizes
  ["bundle-sizes", ["--bogus"], 2, /^unknown option --bogus \(see --help\)$/],
  ["bundle-sizes", ["extra"], 2, /^unexpected argument "extra"/],
];

describe("the command-line contract", () => {
  let dead: string;
  beforeAll(async () => {
    dead = String(await closedPort());
  });

  const inProcess = (script: Script): script is InProcessScript => !["bench", "bench:reconcile", "emulator", "bench:emulator", "bundle-sizes"].includes(script);

  it.each(ROWS)("%s %j → exit %i, one line: %s", async (script, args, code, message, env = {}) => {
    // Act
    const argv = args.map((arg) => (arg === DEAD ? dead : arg));
    const environment = { AWS_ENDPOINT_URL_SQS: "", ...env };
    const result = inProcess(script) ? await runInProcess(script, argv, environment) : await run(script, argv, environment);

    // Assess
    expect(result.stderr).toMatch(/^error: [^\n]*\n$/);
    expect(result.stderr.slice("error: ".length).trimEnd()).toMatch(message);
    expect(result.code).toBe(code);
    expect(result.stdout).not.toMatch(/^\s+at /m);
  });

  // One bad-input row and one unreachable-server row per command with a `main`, through a real process.
  const THROUGH_A_PROCESS = ROWS.filter(([script]) => inProcess(script)).filter(
    ([script, , code], index, rows) => rows.findIndex(([other, , otherCode]) => other === script && otherCode === code) === index,
  );

  it.each(THROUGH_A_PROCESS)("as a process: %s %j → exit %i, one line: %s", async (script, args, code, message, env = {}) => {
    // Act
    const result = await run(script, args.map((arg) => (arg === DEAD ? dead : arg)), { AWS_ENDPOINT_URL_SQS: "", ...env });

    // Assess
    expect(result.stderr).toMatch(/^error: [^\n]*\n$/);
    expect(result.stderr.slice("error: ".length).trimEnd()).toMatch(message);
    expect(result.code).toBe(code);
  });

  it("covers every command", () => {
    const covered = new Set(ROWS.map(([script]) => script));
    expect([...covered].sort()).toEqual([
      "airtable",
      "bench",
      "bench:emulator",
      "bench:reconcile",
      "bundle-sizes",
      "console",
      "dlq",
      "emulator",
      "executions",
      "publish",
      "reconcile",
      "run-once",
      "start",
      "story",
    ]);
  });
});
