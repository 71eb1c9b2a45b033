import type { Context } from "aws-lambda";
import { airtableHealthRecord } from "@fundraise-sync/core/airtable-health";
import { DonationWriter } from "@fundraise-sync/core/airtable-writer";
import { writeRound } from "@fundraise-sync/core/write-round";
import { readAirtableTarget } from "./config";
import type { WriteToAirtableInput, WriteToAirtableOutput } from "./contracts";

/** Time kept back at the end of an invocation: no request starts that could not finish (and report) in time. */
const END_MARGIN_MS = 2_000;

/**
 * WriteToAirtable: upserts a round's donations 10 per request within the pipeline's share of the base, and returns
 * the round with each message sorted (written, to dead-letter, to retry, held, to release). Configuration errors are
 * thrown, named for the state machine's Catch. Each attempt that reached the base logs the `AirtableFailing` metric.
 */
export async function handler(input: WriteToAirtableInput, context?: Pick<Context, "getRemainingTimeInMillis">): Promise<WriteToAirtableOutput> {
  const target = await readAirtableTarget();
  const remaining = context?.getRemainingTimeInMillis?.() ?? 60_000;
  const round = await writeRound(input, {
    writer: new DonationWriter(target),
    target,
    deadline: Date.now() + remaining - target.requestTimeoutMs - END_MARGIN_MS,
  });
  // Only in Lambda, where the log stream becomes a metric; the local runtime reads the round's circuit instead.
  const metric = process.env.AWS_LAMBDA_FUNCTION_NAME && airtableHealthRecord(round, input.requests ?? 0, process.env.SST_STAGE ?? "unknown");
  if (metric) console.log(JSON.stringify(metric));
  return round;
}
