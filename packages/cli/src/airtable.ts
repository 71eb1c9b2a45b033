/**
 * `npm run airtable -- check|setup`: reads the target base's schema through Airtable's metadata API and says, field by
 * field, whether the pipeline's writes will work (`check`), or creates the Donations table on a base that lacks it
 * (`setup`; an existing table is never changed). The target is the real Airtable when `AIRTABLE_TOKEN` and
 * `AIRTABLE_BASE_ID` are set, else the emulator `npm start` runs.
 */
import {
  AIRTABLE_API_URL,
  AirtableConfigurationError,
  type AirtableTableModel,
  type SchemaTarget,
  type TableCheck,
  checkDonationTable,
  createTable,
  donationTableRequest,
  readBaseTables,
} from "@fundraise-sync/core";
import {
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  UsageError,
  airtablePortFrom,
  isConnectionRefused,
  localTokenFrom,
  parseCommandLine,
  realAirtableFromEnv,
  runCommand,
  tableFrom,
} from "./options";
import { emulatorUrl } from "./servers";

const USAGE = `Usage: npm run airtable -- <command> [options]

Commands:
  check                reads the base's schema and says, field by field, what is missing or of the wrong type
                       for the pipeline; exit 0 only when its writes will work (token scope: schema.bases:read)
    --json             the findings as JSON
  setup                creates the table with the pipeline's fields on a base that lacks it, then checks it;
                       an existing table is never changed (token scope: schema.bases:write)

Options:
  --table NAME         the table's name or tbl… id (default ${CLI_DEFAULTS.table})
  --airtable-port N    the local emulator's port (env ${ENV.airtablePort}; default ${CLI_DEFAULTS.airtablePort})
  --token TOKEN        the local emulator's token (env ${ENV.localToken}; default ${CLI_DEFAULTS.localToken})
  -h, --help           show this help

Target: ${ENV.airtableToken} + ${ENV.airtableBaseId} set → the real Airtable (${ENV.airtableEndpointUrl} overrides its URL);
neither → the Airtable emulator that \`npm start\` runs (base ${CLI_DEFAULTS.baseId}).
Each command makes one or two requests, which count against the base's 5 requests/s like the pipeline's.
Exit codes: 0 writes will work; 1 the table is missing or a field does not fit, or Airtable is unreachable or
refused the token; 2 bad input.
`;

const pad = (text: string, width: number) => text.padEnd(width);

/** The findings as people read them, one line per field. */
function describeCheck(check: TableCheck, where: string): string[] {
  if (!check.table) return [`${where}: no table "${check.tableName}"`];
  const lines = [`${where}, table "${check.table.name}" (${check.table.id}):`];
  const width = Math.max(...check.fields.map((finding) => finding.spec.name.length)) + 2;
  for (const { spec, status, actualType, nearName } of check.fields) {
    const needs = spec.accepts.join(" or ");
    const detail =
      status === "ok" ? actualType!
      : status === "wrong-type" ? `is ${actualType}; the pipeline needs ${needs}`
      : nearName !== undefined ? `missing: there is "${nearName}", but names must match exactly (${needs})`
      : `missing (${needs})`;
    lines.push(`  ${pad(status === "wrong-type" ? "wrong" : status, 9)}${pad(spec.name, width)}${detail}`);
  }
  if (check.otherFields.length > 0) lines.push(`  other fields, left alone: ${check.otherFields.join(", ")}`);
  return lines;
}

/** The one line that ends a check that failed. */
function failure(check: TableCheck, baseId: string, tables: readonly AirtableTableModel[]): CommandFailure {
  if (!check.table) {
    const near = findTable(tables, check.tableName);
    return new CommandFailure(
      near === undefined ? `no table "${check.tableName}" in base ${baseId}: create it with \`npm run airtable -- setup\``
      : `no table "${check.tableName}" in base ${baseId}, but there is "${near.name}": names must match exactly (--table "${near.name}")`,
    );
  }
  const bad = check.fields.filter((finding) => finding.status !== "ok").map((finding) => `"${finding.spec.name}"`);
  return new CommandFailure(
    `${bad.length} of ${check.fields.length} fields do not fit the pipeline (${bad.join(", ")}): fix them in Airtable; every write would fail`,
  );
}

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    { json: { type: "boolean" }, table: { type: "string" }, "airtable-port": { type: "string" }, token: { type: "string" } },
    true,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (command !== "check" && command !== "setup") {
    throw new UsageError(command === undefined ? "give a command: check or setup (see --help)" : `unknown command "${command}": use check or setup`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (command === "setup" && values.json) throw new UsageError("--json goes with check, not setup");
  const tableName = tableFrom(values.table);
  const real = realAirtableFromEnv();
  if (real && (values["airtable-port"] !== undefined || values.token !== undefined)) {
    throw new UsageError(`--airtable-port and --token are for the emulator; ${ENV.airtableToken} and ${ENV.airtableBaseId} are set`);
  }
  const target: SchemaTarget = real ?? {
    token: localTokenFrom(values.token),
    baseId: CLI_DEFAULTS.baseId,
    endpointUrl: emulatorUrl(airtablePortFrom(values["airtable-port"])),
  };
  const endpoint = target.endpointUrl ?? AIRTABLE_API_URL;
  const where = `base ${target.baseId} at ${endpoint}${real ? "" : " (emulator)"}`;

  try {
    let tables = await readBaseTables(target);
    if (command === "setup") {
      const existing = findTable(tables, tableName);
      if (existing) {
        console.log(`${where} already has table "${existing.name}" (${existing.id}): left as it is`);
      } else {
        if (tableName.startsWith("tbl")) throw new UsageError(`no table with id ${tableName} in base ${target.baseId}: give --table a name to create`);
        const created = await createTable(target, donationTableRequest(tableName));
        console.log(`created table "${created.name}" (${created.id}) in ${where} with ${created.fields.length} fields`);
        tables = [...tables, created];
      }
    }
    const check = checkDonationTable(tables, tableName);
    if (values.json) console.log(JSON.stringify(check, null, 2));
    else for (const line of describeCheck(check, where)) console.log(line);
    if (!check.writable) throw failure(check, target.baseId, tables);
    if (!values.json) console.log("the pipeline's writes will work");
    return 0;
  } catch (error) {
    if (isConnectionRefused(error) && !real) {
      throw new CommandFailure(
        `nothing is listening at ${endpoint} (Airtable emulator): run \`npm start\` first, or set ${ENV.airtableToken} and ${ENV.airtableBaseId} for the real Airtable`,
      );
    }
    if (error instanceof AirtableConfigurationError) throw new CommandFailure(error.message);
    throw error;
  }
}

function findTable(tables: readonly AirtableTableModel[], tableName: string): AirtableTableModel | undefined {
  // Airtable refuses a second table whose name differs only in case, so look for the existing one that way.
  return tables.find((table) => table.id === tableName || table.name.toLowerCase() === tableName.toLowerCase());
}

runCommand(main, import.meta.url);
