/**
 * Which state machine (and queues) a command works on: the local runtime's Step Functions API (`npm start`, on
 * `--sfn-port`), or a deployed stage (`--stage NAME`), whose CloudFormation stack outputs give the state machine's
 * ARN and the queue URLs. Credentials for a stage come from the SDK's usual chain (environment, profile, SSO); they are
 * never read, printed or stored here.
 */
import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { SFNClient } from "@aws-sdk/client-sfn";
import { LOCAL_STATE_MACHINE_ARN } from "@fundraise-sync/local/workflow";
import { CLI_DEFAULTS, CommandFailure, ENV, UsageError, ensureAwsEnvironment, flagOrEnv, parsePort } from "./options";

/** The SST app's name (`sst.config.ts`) and the stack's id: SST v2 names the stack `<stage>-<app>-<id>`. */
export const APP_NAME = "fundraise-sync";
export const STACK_ID = "Workflow";

/** The stack outputs a command reads (`stacks/Workflow.ts`). */
export const STACK_OUTPUTS = { queueUrl: "QueueUrl", deadLetterQueueUrl: "DeadLetterQueueUrl", stateMachineArn: "StateMachineArn" } as const;

export interface SfnTarget {
  /** `local` or the stage's name. */
  stage: string | undefined;
  /** How to name it to a person: `the local runtime (http://127.0.0.1:9327)` or `stage prod (prod-fundraise-sync-Workflow, eu-west-1)`. */
  label: string;
  sfn: SFNClient;
  /** Where the SFN client connects; undefined for AWS. */
  endpoint: string | undefined;
  stateMachineArn: string;
  /** The stage's queues (from its outputs); undefined locally, where the SQS commands have their own flags. */
  queueUrl?: string;
  deadLetterQueueUrl?: string;
  /** One line for "cannot reach it". */
  unreachableHint: string;
}

/** The flags every command that reads executions takes. */
export const TARGET_FLAGS = {
  stage: { type: "string" },
  "sfn-port": { type: "string" },
} as const;

/** SST v2's stack name for a stage. */
export const stackName = (stage: string) => `${stage}-${APP_NAME}-${STACK_ID}`;

/** A stage name as SST takes it (letters, digits and dashes, starting with a letter). */
export function parseStage(text: string): string {
  if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(text)) throw new UsageError(`--stage must be a stage name (letters, digits and -, starting with a letter), not "${text}"`);
  return text;
}

/** The outputs a command needs, or a one-line failure naming what is missing. */
export function targetFromOutputs(stage: string, outputs: { OutputKey?: string; OutputValue?: string }[]) {
  const value = (key: string) => outputs.find((output) => output.OutputKey === key)?.OutputValue;
  const stateMachineArn = value(STACK_OUTPUTS.stateMachineArn);
  if (!stateMachineArn) throw new CommandFailure(`stack ${stackName(stage)} has no ${STACK_OUTPUTS.stateMachineArn} output: deploy this version first (npx sst deploy --stage ${stage})`);
  const region = /^arn:aws[a-z-]*:states:([a-z0-9-]+):/.exec(stateMachineArn)?.[1];
  return { stateMachineArn, region, queueUrl: value(STACK_OUTPUTS.queueUrl), deadLetterQueueUrl: value(STACK_OUTPUTS.deadLetterQueueUrl) };
}

/** Resolves `--stage` / `--sfn-port` (one or the other; neither means the local runtime on its default port). */
export async function resolveTarget(values: { stage?: string; "sfn-port"?: string }): Promise<SfnTarget> {
  if (values.stage !== undefined && values["sfn-port"] !== undefined) throw new UsageError("give --stage or --sfn-port, not both");
  if (values.stage === undefined) {
    const portText = flagOrEnv(values["sfn-port"], ENV.sfnPort);
    const port = portText === undefined ? CLI_DEFAULTS.sfnPort : parsePort(portText, values["sfn-port"] !== undefined ? "--sfn-port" : ENV.sfnPort);
    const endpoint = `http://${CLI_DEFAULTS.host}:${port}`;
    ensureAwsEnvironment(endpoint);
    return {
      stage: undefined,
      label: `the local runtime (${endpoint})`,
      sfn: new SFNClient({ endpoint, region: CLI_DEFAULTS.localRegion, credentials: CLI_DEFAULTS.localCredentials, maxAttempts: 1 }),
      endpoint,
      stateMachineArn: LOCAL_STATE_MACHINE_ARN,
      unreachableHint: `cannot reach the Step Functions API at ${endpoint}: is \`npm start\` running (with --sfn-port ${port})?`,
    };
  }
  const stage = parseStage(values.stage);
  const { stateMachineArn, region, queueUrl, deadLetterQueueUrl } = await readStage(stage);
  return {
    stage,
    label: `stage ${stage} (${stackName(stage)}${region ? `, ${region}` : ""})`,
    sfn: new SFNClient(region ? { region } : {}),
    endpoint: undefined,
    stateMachineArn,
    ...(queueUrl ? { queueUrl } : {}),
    ...(deadLetterQueueUrl ? { deadLetterQueueUrl } : {}),
    unreachableHint: `cannot reach Step Functions for stage ${stage}`,
  };
}

/** A deployed stage's outputs (CloudFormation DescribeStacks of its stack), or a one-line failure. */
export async function readStage(stage: string): Promise<ReturnType<typeof targetFromOutputs>> {
  const cloudFormation = new CloudFormationClient({});
  try {
    const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName(stage) }));
    return targetFromOutputs(stage, Stacks?.[0]?.Outputs ?? []);
  } catch (error) {
    if (error instanceof CommandFailure) throw error;
    throw new CommandFailure(`cannot read stack ${stackName(stage)}: ${awsErrorLine(error)}`);
  } finally {
    cloudFormation.destroy();
  }
}

/**
 * One line for an AWS failure, without anything a credential provider may have put in it beyond its name and
 * message (no request headers, no keys).
 */
export function awsErrorLine(error: unknown): string {
  const { name, message } = error as { name?: string; message?: string };
  if (name === "CredentialsProviderError" || /credential/i.test(name ?? "")) return "no AWS credentials (set AWS_PROFILE, run `aws sso login`, or set the AWS_* variables)";
  if (/Region is missing/i.test(message ?? "")) return "no AWS region (set AWS_REGION or a profile's region)";
  return `${name ?? "Error"}: ${(message ?? String(error)).split("\n")[0]}`;
}
