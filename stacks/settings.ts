import { AIRTABLE_REQUESTS_PER_SECOND, DEFAULT_AIRTABLE_SHARE_PER_SECOND } from "@fundraise-sync/core/limits";

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
   * The pipeline's share of the Airtable base's 5 requests/s, 1 to 5: every request it sends (retries and the requests
   * that find a refused record included) fits it. Leave room for the base's other clients (see the README).
   */
  airtableRequestsPerSecond: number;
  /**
   * An existing SNS topic (ARN) every alarm notifies. Without it the stack creates `<stage>-fundraise-sync-alarms`;
   * either way its ARN is the stack's `AlarmTopicArn` output.
   */
  alarmTopicArn?: string;
  /** E-mail addresses subscribed to the alarm topic (each must confirm AWS's e-mail before anything arrives). */
  alarmEmails?: string[];
  /** `OldestDonationAlarm` fires when the oldest donation in the queue is older than this (minutes). */
  oldestDonationAlarmMinutes: number;
}

export const DEFAULT_STAGE_SETTINGS: StageSettings = {
  schedule: "rate(5 minutes)",
  logExecutionData: false,
  airtableTableName: "Donations",
  airtableRequestsPerSecond: DEFAULT_AIRTABLE_SHARE_PER_SECOND,
  oldestDonationAlarmMinutes: 60,
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
  const share = settings.airtableRequestsPerSecond;
  if (!Number.isInteger(share) || share < 1 || share > AIRTABLE_REQUESTS_PER_SECOND) {
    throw new Error(
      `airtableRequestsPerSecond for stage "${stage}" must be a whole number from 1 to ${AIRTABLE_REQUESTS_PER_SECOND} (Airtable's limit per base), got ${share}`,
    );
  }
  return { ...settings, airtableBaseId };
}

/** Validate runs for a whole received batch at once: it calls no one, so nothing limits it. */
export const VALIDATE_CONCURRENCY = 10;

/**
 * Lambda timeouts. WriteToAirtable writes a whole round (3 requests, more when it isolates a refused record) and stops
 * starting requests a request timeout before its own end, so whatever it did not send is simply retried.
 */
export const FUNCTION_TIMEOUT_SECONDS = { validate: 10, writeToAirtable: 60, deleteMessages: 20 } as const;
export const AIRTABLE_REQUEST_TIMEOUT_MS = 10_000;

/** Rounds one execution drains at most: sized from the worst-case history (checked in `stacks/Workflow.test.ts`). */
export const MAX_ROUNDS_PER_EXECUTION = 5;

/** How often SQS delivers a message before its own redrive policy moves it to the DLQ (a backstop only). */
export const MAX_RECEIVE_COUNT = 5;
