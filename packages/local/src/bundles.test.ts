import { readFile, stat, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import {
  DeadLetterAttribute,
  EnvName,
  ErrorName,
  parseDonationEvent,
  sampleDonation,
  serializeDonationEvent,
  toAirtableFields,
} from "@fundraise-sync/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { readableCause } from "./lambda-cause";
import { type LocalPipeline, startLocalPipeline } from "./pipeline";
import { accountFor, drainUntilEmpty } from "./testing";
import type { TaskHandler } from "./workflow";

const workflow = inject("workflow");
const MAX_BUNDLE_BYTES = 100 * 1024;

/** The message the source code's validation gives for a body (what the bundle must give too). */
function sourceValidationMessage(body: string): string {
  try {
    parseDonationEvent(body);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${body} is valid`);
}

describe("the function bundles sst deploy would upload", () => {
  it("are each under 100 KB (`npm run bundle-sizes` prints them)", async () => {
    // Arrange: every function of the stack but SST's own custom-resource handler (not built by esbuild)
    const functions = Object.entries(workflow.template.Resources as Record<string, { Type: string }>)
      .filter(([, resource]) => resource.Type === "AWS::Lambda::Function")
      .map(([logicalId]) => workflow.constructIds[logicalId])
      .filter((name) => name !== "CustomResourceHandler");

    // Assert
    expect(Object.keys(workflow.bundles).sort()).toEqual(functions.sort());
    expect(functions).toContain("WriteToAirtable");
    for (const [name, file] of Object.entries(workflow.bundles)) {
      expect((await stat(file)).size, name).toBeLessThan(MAX_BUNDLE_BYTES);
    }
  });

  describe("run the synthesized drain as the source does (bundled handlers, real SQS and Airtable emulator)", () => {
    let pipeline: LocalPipeline;
    const timeoutBefore = process.env[EnvName.AirtableRequestTimeoutMs];
    beforeAll(async () => {
      process.env[EnvName.AirtableRequestTimeoutMs] = "300"; // a hung request surfaces quickly as a timeout
      const handlers: Record<string, TaskHandler> = {};
      for (const [name, file] of Object.entries(workflow.bundles)) {
        // The same code, beside the original (so `@aws-sdk/*`, left out as Lambda provides it, resolves), without the
        // source-map comment: SST moved the map away for upload, and the test runner would complain it is missing.
        const copy = file.replace(/\.mjs$/, ".under-test.mjs");
        await writeFile(copy, (await readFile(file, "utf8")).replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n"));
        handlers[name] = ((await import(pathToFileURL(copy).href)) as { handler: TaskHandler }).handler;
      }
      pipeline = await startLocalPipeline({ workflow, sqsPort: 0, emulator: { port: 0, rateLimit: false }, airtableRequestsPerSecond: 5, handlers });
    });
    afterAll(async () => {
      if (timeoutBefore === undefined) delete process.env[EnvName.AirtableRequestTimeoutMs];
      else process.env[EnvName.AirtableRequestTimeoutMs] = timeoutBefore;
      await pipeline?.close();
    });

    it("writes the same fields through the airtable client, times a hung request out, and dead-letters with the same messages", async () => {
      // Arrange: valid donations (one emoji name), invalid bodies, and one Airtable request that hangs
      const events = [sampleDonation({ DonorDisplayName: "Zoë 🎉" }), sampleDonation(), sampleDonation({ UserId: null, DonorDisplayName: null })];
      const invalidBodies = [
        serializeDonationEvent({ ...sampleDonation(), DonationAmount: -5 }),
        '{"Id":"not-a-guid","CreationDate":"2018-02-30T10:00:00Z"}',
        "not json",
      ];
      for (const body of [...events.map(serializeDonationEvent), ...invalidBodies]) {
        await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: body }));
      }
      pipeline.emulator!.faults.add({ hang: true, operation: "write", times: 1 });

      // Act
      const summaries = await drainUntilEmpty(pipeline);

      // Assert
      const outcome = await accountFor(pipeline, { validIds: events.map((e) => e.Id), invalidBodies });
      expect(outcome).toMatchObject({ missing: [], duplicated: [], invalidNotDeadLettered: [], deadLettersWithoutReason: [], leftInSourceQueue: 0 });
      for (const event of events) {
        const record = outcome.records.find((r) => r.fields.Id === event.Id);
        expect(record?.fields).toEqual(toAirtableFields(parseDonationEvent(serializeDonationEvent(event))));
      }
      expect(pipeline.emulator!.stats().hung).toBe(1);
      // The hung request timed out and its records were sent again (halved: a 5xx or timeout may follow a record).
      expect(pipeline.emulator!.stats().requests).toBeGreaterThanOrEqual(2);
      expect(summaries.every((s) => s.status === "SUCCEEDED")).toBe(true);
      for (const letter of outcome.deadLetters) {
        expect(letter.attributes[DeadLetterAttribute.ErrorName]).toBe(ErrorName.InvalidDonationEvent);
        expect(readableCause(letter.attributes[DeadLetterAttribute.ErrorCause]!)).toBe(sourceValidationMessage(letter.body));
      }
    });
  });
});
