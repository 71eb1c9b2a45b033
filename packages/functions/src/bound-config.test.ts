import type { GetParametersCommand } from "@aws-sdk/client-ssm";
import { ErrorName } from "@fundraise-sync/core/errors";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ParameterStore, fetchBoundValue, forgetFetchedValues } from "./bound-config";

/** An SSM stand-in for the caching rules only (what SST stores where is SST's; see bound-config.ts). */
function parameterStore(values: Record<string, string>, failures: Error[] = []) {
  const asked: string[][] = [];
  const store: ParameterStore = {
    async send(command: GetParametersCommand) {
      const names = command.input.Names ?? [];
      asked.push(names);
      const failure = failures.shift();
      if (failure) throw failure;
      return {
        Parameters: names.filter((name) => name in values).map((Name) => ({ Name, Value: values[Name] })),
        InvalidParameters: names.filter((name) => !(name in values)),
      };
    },
  };
  return { store, asked };
}

const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
const PRIMARY = "/sst/fundraise-sync/prod/Secret/AIRTABLE_TOKEN/value";
const FALLBACK = "/sst/fundraise-sync/.fallback/Secret/AIRTABLE_TOKEN/value";

describe("fetchBoundValue (SST's bound secrets and parameters from SSM)", () => {
  beforeEach(() => {
    process.env.SST_APP = "fundraise-sync";
    process.env.SST_STAGE = "prod";
    process.env.SST_SSM_PREFIX = "/sst/fundraise-sync/prod/";
  });
  afterEach(() => {
    forgetFetchedValues();
    for (const name of ["SST_APP", "SST_STAGE", "SST_SSM_PREFIX"]) delete process.env[name];
  });

  it("fails only the invocation whose fetch failed: the next one fetches again and succeeds", async () => {
    // Arrange: SSM throttles the cold start's fetch
    const { store, asked } = parameterStore({ [PRIMARY]: "patToken.x" }, [throttled]);

    // Act
    const first = fetchBoundValue("Secret", "AIRTABLE_TOKEN", store);
    await expect(first).rejects.toMatchObject({ name: ErrorName.ConfigurationUnavailable });
    const second = await fetchBoundValue("Secret", "AIRTABLE_TOKEN", store);

    // Assert
    expect(second).toBe("patToken.x");
    expect(asked).toHaveLength(2);
  });

  it("says it could not read SSM without carrying anything secret", async () => {
    // Arrange
    const { store } = parameterStore({}, [throttled]);

    // Act
    const error = await fetchBoundValue("Secret", "AIRTABLE_TOKEN", store).catch((caught: Error) => caught);

    // Assert
    expect((error as Error).message).toBe("Could not read Secret AIRTABLE_TOKEN from SSM (ThrottlingException): this invocation fails and is retried");
  });

  it("remembers a fetched value for the instance's life", async () => {
    // Arrange
    const { store, asked } = parameterStore({ [PRIMARY]: "patToken.x" });

    // Act
    await fetchBoundValue("Secret", "AIRTABLE_TOKEN", store);
    await fetchBoundValue("Secret", "AIRTABLE_TOKEN", store);

    // Assert
    expect(asked).toEqual([[PRIMARY, FALLBACK]]);
  });

  it("uses the fallback secret (`sst secrets set --fallback`) when the stage has none of its own", async () => {
    // Arrange
    const { store } = parameterStore({ [FALLBACK]: "patFallback.x" });

    // Act
    const value = await fetchBoundValue("Secret", "AIRTABLE_TOKEN", store);

    // Assert
    expect(value).toBe("patFallback.x");
  });

  it("names the command that sets a token that is not set, as a configuration error (the drain ends AirtableMisconfigured)", async () => {
    // Arrange
    const { store } = parameterStore({});

    // Act
    const error = await fetchBoundValue("Secret", "AIRTABLE_TOKEN", store).catch((caught: Error) => caught);

    // Assert
    expect(error).toMatchObject({ name: ErrorName.AirtableConfiguration });
    expect((error as Error).message).toContain("npx sst secrets set AIRTABLE_TOKEN <value> --stage prod");
  });
});
