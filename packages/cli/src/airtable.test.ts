import { type AirtableEmulator, DEFAULT_BASE_ID, DEFAULT_EMULATOR_CONFIG, DEFAULT_TOKEN, startAirtableEmulator } from "@fundraise-sync/airtable-emulator";
import { DONATION_TABLE_FIELDS } from "@fundraise-sync/core";
import { afterEach, describe, expect, it } from "vitest";
import { closedPort, run } from "./run-cli";

/** The project's table with three faults: a field of the wrong type, one named in another case, one missing. */
const MISMATCHED = {
  bases: [
    {
      id: DEFAULT_BASE_ID,
      tables: [
        {
          name: "Donations",
          fields: [
            { name: "Id", type: "singleLineText" as const },
            { name: "creation date", type: "dateTime" as const },
            { name: "Fundraiser Id", type: "singleLineText" as const },
            { name: "Donation Amount", type: "singleLineText" as const },
            { name: "Donor Display Name", type: "multilineText" as const },
            { name: "Notes", type: "multilineText" as const },
          ],
        },
      ],
    },
  ],
};

describe("npm run airtable -- check|setup against the emulator", () => {
  let emulator: AirtableEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });
  const start = async (config = DEFAULT_EMULATOR_CONFIG) => {
    emulator = await startAirtableEmulator({ port: 0, rateLimit: false, config });
    return ["--airtable-port", String(emulator.port)];
  };

  it("check passes the project's table field by field, exit 0, with one request", async () => {
    // Arrange
    const port = await start();

    // Act
    const result = await run("airtable", ["check", ...port]);

    // Assess
    expect(result).toMatchObject({ code: 0, stderr: "" });
    for (const spec of DONATION_TABLE_FIELDS) expect(result.stdout).toMatch(new RegExp(`^  ok +${spec.name} +${spec.type}$`, "m"));
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe("the pipeline's writes will work");
    expect(emulator!.stats().requests).toBe(1);
  });

  it("check names each field that is missing, misnamed or of the wrong type, and ends with one error line, exit 1", async () => {
    // Arrange
    const port = await start(MISMATCHED);

    // Act
    const result = await run("airtable", ["check", ...port]);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^  missing +Creation Date +missing: there is "creation date", but names must match exactly \(dateTime\)$/m);
    expect(result.stdout).toMatch(/^  missing +Donor Id +missing \(singleLineText or multilineText\)$/m);
    expect(result.stdout).toMatch(/^  wrong +Donation Amount +is singleLineText; the pipeline needs currency or number$/m);
    expect(result.stdout).toMatch(/^  ok +Donor Display Name +multilineText$/m);
    expect(result.stdout).toContain("other fields, left alone: creation date, Notes");
    expect(result.stderr).toBe('error: 3 of 6 fields do not fit the pipeline ("Creation Date", "Donor Id", "Donation Amount"): fix them in Airtable; every write would fail\n');
  });

  it("check --json gives the findings", async () => {
    // Arrange
    const port = await start(MISMATCHED);

    // Act
    const result = await run("airtable", ["check", "--json", ...port]);

    // Assess
    expect(result.code).toBe(1);
    const check = JSON.parse(result.stdout);
    expect(check).toMatchObject({ tableName: "Donations", writable: false });
    expect(check.fields.map((finding: { status: string }) => finding.status)).toEqual(["ok", "missing", "missing", "ok", "wrong-type", "ok"]);
  });

  it("on a base without the table: check says to run setup; setup creates it; then check passes; setup again changes nothing", async () => {
    // Arrange
    const port = await start({ bases: [{ id: DEFAULT_BASE_ID, tables: [] }] });

    // Act / Assess: check
    const before = await run("airtable", ["check", ...port]);
    expect(before.code).toBe(1);
    expect(before.stderr).toBe(`error: no table "Donations" in base ${DEFAULT_BASE_ID}: create it with \`npm run airtable -- setup\`\n`);

    // Act / Assess: setup
    const setup = await run("airtable", ["setup", ...port]);
    expect(setup).toMatchObject({ code: 0, stderr: "" });
    expect(setup.stdout).toMatch(/^created table "Donations" \(tbl[A-Za-z0-9]{14}\) in base appFundraiseSync1 at http:\/\/127\.0\.0\.1:\d+ \(emulator\) with 6 fields$/m);
    expect(setup.stdout).toContain("the pipeline's writes will work");

    // Act / Assess: the table takes the pipeline's writes
    const after = await run("airtable", ["check", ...port]);
    expect(after.code).toBe(0);

    // Act / Assess: setup again is a read only
    emulator!.resetStats();
    const again = await run("airtable", ["setup", ...port]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already has table "Donations" \(tbl[A-Za-z0-9]{14}\): left as it is/);
    expect(emulator!.stats().byStatus).toEqual({ "200": 1 });
  });

  it("setup leaves an existing table that does not fit as it is, and says what is wrong, exit 1", async () => {
    // Arrange
    const port = await start(MISMATCHED);

    // Act
    const result = await run("airtable", ["setup", ...port]);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/already has table "Donations" .*: left as it is/);
    expect(result.stderr).toMatch(/^error: 3 of 6 fields do not fit the pipeline/);
    expect(emulator!.stats().byStatus).toEqual({ "200": 1 });
  });

  it("uses the real Airtable's variables when set, and says when the token is refused without printing it", async () => {
    // Arrange: the emulator stands in for api.airtable.com
    await start();
    const env = { AIRTABLE_BASE_ID: DEFAULT_BASE_ID, AIRTABLE_ENDPOINT_URL: emulator!.url };

    // Act
    const accepted = await run("airtable", ["check"], { ...env, AIRTABLE_TOKEN: DEFAULT_TOKEN });
    const refused = await run("airtable", ["check"], { ...env, AIRTABLE_TOKEN: "patWrongSecret123" });

    // Assess
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).not.toContain("(emulator)");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: Airtable refused the token \(GET \/v0\/meta\/bases\/appFundraiseSync1\/tables: HTTP 401 AUTHENTICATION_REQUIRED/);
    expect(refused.stderr + refused.stdout).not.toContain("patWrongSecret123");
  });

  it("says to start the emulator when nothing listens, exit 1", async () => {
    // Arrange
    const port = await closedPort();

    // Act
    const result = await run("airtable", ["check", "--airtable-port", String(port)]);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`error: nothing is listening at http://127.0.0.1:${port} (Airtable emulator): run \`npm start\` first`);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  });
});
