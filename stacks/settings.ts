import { writeIntervalMs } from "@fundraise-sync/core/pacing";

/** What a stage may change. Everything else is fixed by Airtable's and AWS's limits (core `limits.ts`). */
export interface StageSettings {
  /** EventBridge schedule expression that starts a drain. */
  schedule: string;
  /** Log execution data (input/output of every state) to CloudWatch. Off by default: donor names are personal data. */
  logExecutionData: boolean;
  /** Airtable base id (`app…`): not a secret, but per stage. `AIRTABLE_BASE_ID` at deploy time overrides it. */
  airtableBaseId?: string;
  /** Airtable table the donations land in. */
  airtableTableName: string;
  /**
   * An existing SNS topic (ARN) every alarm notifies. Without it the stack creates `<stage>-fundraise-sync-alarms`;
   * either way its ARN is the stack's `AlarmTopicArn` output.
   */
  alarmTopicArn?: string;
  /** E-mail addresses subscribed to the alarm topic (each must confirm AWS's e-mail before anything arrives). */
  alarmEmails?: string[];
}

export const DEFAULT_STAGE_SETTINGS: StageSettings = {
  schedule: "rate(5 minutes)",
  logExecutionData: false,
  airtableTableName: "Donations",
};

/** Per-stage overrides: `sst deploy --stage dev` picks `dev`. */
export const STAGE_SETTINGS: Record<string, Partial<StageSettings>> = {
  dev: { schedule: "rate(1 minute)", logExecutionData: true },
  // Offline synthesis in the tests, and the local runtime: the emulator's base.
  test: { airtableBaseId: "appFundraiseSync1", alarmEmails: ["alarms@example.org"] },
  local: { airtableBaseId: "appFundraiseSync1", schedule: "rate(1 minute)" },
};

/** The settings of one stage. @throws if no Airtable base id is known for it. */
export function settingsFor(stage: string): StageSettings & { airtableBaseId: string } {
  const settings = { ...DEFAULT_STAGE_SETTINGS, ...STAGE_SETTINGS[stage] };
  const airtableBaseId = process.env.AIRTABLE_BASE_ID || settings.airtableBaseId;
  if (!airtableBaseId) {
    throw new Error(
      `No Airtable base id for stage "${stage}": run with AIRTABLE_BASE_ID=app… or add it to STAGE_SETTINGS in stacks/settings.ts`,
    );
  }
  return { ...settings, airtableBaseId };
}

/**
 * Map concurrency: 5 writers, each waiting {@link WRITE_INTERVAL_MS} after Airtable answers, keep a base at Airtable's 5
 * requests/second without a 429 (a 429 costs 30 s of the base's throughput).
 */
export const MAP_MAX_CONCURRENCY = 5;
export const WRITE_INTERVAL_MS = writeIntervalMs(MAP_MAX_CONCURRENCY);

/** Lambda timeouts; the Airtable request times out well within WriteToAirtable's so it fails as retryable. */
export const FUNCTION_TIMEOUT_SECONDS = { validate: 10, writeToAirtable: 30, deleteMessage: 10 } as const;
export const AIRTABLE_REQUEST_TIMEOUT_MS = 10_000;

/** Batches one execution drains at most: sized from the worst-case history (checked in `stacks/Workflow.test.ts`). */
export const MAX_BATCHES_PER_EXECUTION = 15;

/** How often SQS delivers a message before its own redrive policy moves it to the DLQ (a backstop only). */
export const MAX_RECEIVE_COUNT = 5;
