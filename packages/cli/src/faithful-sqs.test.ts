import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { ErrorName, sampleDonation, serializeDonationEvent } from "@fundraise-sync/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { run } from "./run-cli";

/** Names SQS accepts and the unpatched local server refused: every one outside Unicode's basic plane. */
const ASTRAL_NAMES = ["Zoë 🎉", "👩‍👩‍👧 the Okafors", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 Ltd", "李华 🧧"];

/** As under `npm start`: SQS with SQLite persistence on. */
describe("the local SQS server is as faithful as SQS, with persistence on (patches/fauxqs+2.4.1.patch)", () => {
  let pipeline: LocalPipeline;
  let dir: string;
  let env: Record<string, string>;
  let queueFlags: string[];
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "fundraise-faithful-"));
    pipeline = await startLocalPipeline({
      workflow: inject("workflow"),
      sqsPort: 0,
      sqsDataDir: path.join(dir, "sqs"),
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
    });
    env = { AWS_ENDPOINT_URL_SQS: pipeline.sqsEndpoint };
    queueFlags = ["--queue-url", pipeline.queueUrls.source];
  });
  afterAll(async () => {
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const dlqDepth = async () => {
    const { Attributes } = await pipeline.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: pipeline.queueUrls.deadLetter,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return { visible: Number(Attributes?.ApproximateNumberOfMessages), inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible) };
  };

  it("carries emoji donor names from `npm run publish` to the Airtable record byte for byte", async () => {
    // Arrange
    const events = ASTRAL_NAMES.map((name) => sampleDonation({ DonorDisplayName: name }));
    const file = path.join(dir, "astral.ndjson");
    await writeFile(file, `${events.map(serializeDonationEvent).join("\n")}\n`);

    // Act
    const published = await run("publish", ["--file", file, ...queueFlags], env);
    const summary = await pipeline.workflow.execute();

    // Assert: read back over Airtable's HTTP API, as a person's tools would
    expect(published).toMatchObject({ code: 0, stderr: "" });
    expect(published.stdout).toMatch(/^published 4, failed 0/);
    expect(summary).toMatchObject({ status: "SUCCEEDED", written: 4, deadLettered: 0 });
    const { endpointUrl, token, baseId, tableName } = pipeline.airtable;
    const response = await fetch(`${endpointUrl}/v0/${baseId}/${encodeURIComponent(tableName)}`, { headers: { Authorization: `Bearer ${token}` } });
    const { records } = (await response.json()) as { records: { fields: Record<string, unknown> }[] };
    const nameOf = (id: string) => records.find((record) => record.fields.Id === id)?.fields["Donor Display Name"] as string;
    for (const event of events) {
      expect(Buffer.from(nameOf(event.Id), "utf8")).toEqual(Buffer.from(event.DonorDisplayName!, "utf8"));
    }
  });

  it("lets `dlq list` look at dead letters, emoji bodies too, without losing or hiding any", async () => {
    // Arrange: three malformed bodies dead-lettered by a drain
    const bodies = ['{"DonorDisplayName":"Zoë 🎉"}', '{"Id":"🎉"}', "not json 👩‍👩‍👧"];
    const file = path.join(dir, "malformed.ndjson");
    await writeFile(file, `${bodies.join("\n")}\n`);
    expect((await run("publish", ["--raw", "--file", file, ...queueFlags], env)).code).toBe(0);
    expect(await pipeline.workflow.execute()).toMatchObject({ status: "SUCCEEDED", deadLettered: 3 });

    // Act: look twice
    const first = await run("dlq", ["list", "--json", ...queueFlags], env);
    const afterFirst = await dlqDepth();
    const second = await run("dlq", ["list", "--json", ...queueFlags], env);

    // Assert: every letter listed each time with its body byte for byte, and all of them visible again at once
    expect(first).toMatchObject({ code: 0, stderr: "" });
    const listed = (result: { stdout: string }) =>
      (JSON.parse(result.stdout) as { body: string; errorName: string }[]).map((letter) => [letter.body, letter.errorName]).sort();
    const expected = bodies.map((body) => [body, ErrorName.InvalidDonationEvent]).sort();
    expect(listed(first)).toEqual(expected);
    expect(listed(second)).toEqual(expected);
    expect(afterFirst).toEqual({ visible: 3, inFlight: 0 });
    expect(await dlqDepth()).toEqual({ visible: 3, inFlight: 0 });
  });
});
