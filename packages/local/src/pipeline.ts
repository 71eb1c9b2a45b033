import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, SetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  type AirtableEmulator,
  type AirtableEmulatorOptions,
  DEFAULT_BASE_ID,
  DEFAULT_TABLE_NAME,
  DEFAULT_TOKEN,
  startAirtableEmulator,
} from "@fundraise-sync/airtable-emulator";
import { ConfigName, DEAD_LETTER_QUEUE_NAME, EnvName, SOURCE_QUEUE_NAME } from "@fundraise-sync/core";
import type { SynthesizedWorkflow } from "../../../stacks/synthesize";
import { StateName } from "../../../stacks/drain-definition";
import { createStackTables, stackTables, startLocalDynamoDb } from "./dynamodb-server";
import { type LocalSqsServer, startLocalSqs } from "./sqs-server";
import { releaseHeldMessages } from "./release";
import { LocalWorkflow, type LocalWorkflowOptions } from "./workflow";

/** Everything `npm start` runs, with its defaults in one place. */
export interface LocalPipelineOptions {
  workflow: Pick<SynthesizedWorkflow, "definition" | "template" | "constructIds">;
  /** Local SQS server port; ignored when `sqsEndpoint` points elsewhere. 0 picks a free port. */
  sqsPort: number;
  /** An SQS server that is already running (`AWS_ENDPOINT_URL_SQS`): no local one is started. */
  sqsEndpoint?: string;
  /** Folder for the local SQS server's SQLite data; in memory when undefined. */
  sqsDataDir?: string;
  sourceQueueName: string;
  deadLetterQueueName: string;
  /** Airtable emulator options; ignored when `airtable` is given. */
  emulator: AirtableEmulatorOptions;
  /** Write to this Airtable (the real one, say) instead of starting the emulator. */
  airtable?: { endpointUrl?: string; token: string; baseId: string };
  tableName: string;
  /**
   * The pipeline's share of the base's requests per second. By default `AIRTABLE_REQUESTS_PER_SECOND` from the
   * environment, else the stack's (the stage setting `airtableRequestsPerSecond` of WriteToAirtable).
   */
  airtableRequestsPerSecond?: number;
  retryIntervalOverrides?: LocalWorkflowOptions["retryIntervalOverrides"];
  waitTimeOverrides?: LocalWorkflowOptions["waitTimeOverrides"];
  handlers?: LocalWorkflowOptions["handlers"];
  /** The AWS behaviours a test may tune (ListExecutions' lag, how a function timeout is named); AWS's by default. */
  semantics?: LocalWorkflowOptions["semantics"];
  /** Where the execution's held messages are kept for the next start after a crash (see `releaseHeldMessages`). */
  heldMessagesFile?: string;
}

export const LOCAL_PIPELINE_DEFAULTS = {
  sqsPort: 9324,
  sourceQueueName: SOURCE_QUEUE_NAME,
  deadLetterQueueName: DEAD_LETTER_QUEUE_NAME,
  emulator: { port: 9325 },
  tableName: DEFAULT_TABLE_NAME,
} satisfies Partial<LocalPipelineOptions>;

export interface LocalPipeline {
  sqs: SQSClient;
  sqsEndpoint: string;
  queueUrls: { source: string; deadLetter: string };
  /** The local DynamoDB server (in memory, loopback) with the stack's tables: the drain lease. */
  dynamodb: DynamoDBClient;
  dynamodbEndpoint: string;
  /** The stack's tables by construct id, e.g. `DrainLease`, as the definition names them. */
  tableNames: string[];
  /** Undefined when writing to a real Airtable. */
  emulator?: AirtableEmulator;
  airtable: { endpointUrl: string; token: string; baseId: string; tableName: string };
  workflow: LocalWorkflow;
  /** The share of the base's requests per second the writer runs with. */
  requestsPerSecond: number;
  /** What a previous process killed mid-drain had held and this start gave back (undefined: it had ended cleanly). */
  recovered?: { released: number; gone: number };
  close(): Promise<void>;
}

/**
 * Starts the local pipeline: an SQS server with the stack's two queues (same attributes), a DynamoDB server with the
 * stack's lease table, the Airtable emulator, and the synthesized state machine wired to the real handlers. Handlers
 * read their configuration from the same environment variables SST sets in Lambda, which this sets to point at the
 * local servers.
 */
export async function startLocalPipeline(options: Partial<LocalPipelineOptions> & Pick<LocalPipelineOptions, "workflow">): Promise<LocalPipeline> {
  const settings = { ...LOCAL_PIPELINE_DEFAULTS, ...options };
  const closers: (() => Promise<void>)[] = [];
  try {
    let sqsServer: LocalSqsServer | undefined;
    const sqsEndpoint =
      settings.sqsEndpoint ??
      (sqsServer = await startLocalSqs({ port: settings.sqsPort, dataDir: settings.sqsDataDir })).endpoint;
    if (sqsServer) closers.push(() => sqsServer.close());

    // The SDK needs a region and credentials even for a local server; real ones are never used here.
    process.env.AWS_REGION ??= "us-east-1";
    process.env.AWS_ACCESS_KEY_ID ??= "local";
    process.env.AWS_SECRET_ACCESS_KEY ??= "local";
    process.env.AWS_ENDPOINT_URL_SQS = sqsEndpoint;
    const sqs = new SQSClient({ endpoint: sqsEndpoint });
    closers.push(async () => sqs.destroy());
    const queueUrls = await createQueues(sqs, settings, sqsEndpoint);

    // The drain lease's table, in a DynamoDB server of this process (see startLocalDynamoDb for why in memory).
    const dynamodbServer = await startLocalDynamoDb();
    closers.push(() => dynamodbServer.close());
    const dynamodb = new DynamoDBClient({ endpoint: dynamodbServer.endpoint });
    closers.push(async () => dynamodb.destroy());
    const tables = stackTables(settings.workflow);
    await createStackTables(dynamodb, tables);

    let emulator: AirtableEmulator | undefined;
    let airtable: LocalPipeline["airtable"];
    if (settings.airtable) {
      airtable = { endpointUrl: "https://api.airtable.com", ...settings.airtable, tableName: settings.tableName };
    } else {
      emulator = await startAirtableEmulator(settings.emulator);
      closers.push(() => emulator!.close());
      airtable = {
        endpointUrl: emulator.url,
        token: (settings.emulator as AirtableEmulatorOptions).token ?? DEFAULT_TOKEN,
        baseId: DEFAULT_BASE_ID,
        tableName: settings.tableName,
      };
    }
    configureHandlers(settings.workflow, airtable, settings.airtableRequestsPerSecond);
    // A test that shortens the wait for Airtable's lock shortens the writer's view of the lock with it (else the
    // writer, which never sends into a lock, would wait the real 30 s).
    const shortenedLockMs = settings.waitTimeOverrides?.[StateName.WaitForAirtable];
    if (shortenedLockMs !== undefined) process.env[EnvName.AirtableRateLimitPenaltyMs] = String(shortenedLockMs);
    else delete process.env[EnvName.AirtableRateLimitPenaltyMs];

    const workflow = new LocalWorkflow({
      workflow: settings.workflow,
      sqs,
      queueUrls: { DonationsQueue: queueUrls.source, DeadLetterQueue: queueUrls.deadLetter },
      dynamodb,
      retryIntervalOverrides: settings.retryIntervalOverrides,
      waitTimeOverrides: settings.waitTimeOverrides,
      handlers: settings.handlers,
      semantics: settings.semantics,
      heldMessagesFile: settings.heldMessagesFile,
    });
    // A process killed mid-drain left its held messages listed: give them back now, not after the visibility timeout.
    const recovered = settings.heldMessagesFile ? await releaseHeldMessages(sqs, sqsEndpoint, settings.heldMessagesFile) : undefined;
    return {
      recovered,
      sqs,
      sqsEndpoint,
      queueUrls,
      dynamodb,
      dynamodbEndpoint: dynamodbServer.endpoint,
      tableNames: tables.map((table) => table.tableName),
      emulator,
      airtable,
      workflow,
      requestsPerSecond: Number(process.env[EnvName.AirtableRequestsPerSecond]),
      close: async () => {
        for (const close of closers.reverse()) await close();
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw error;
  }
}

/**
 * Sets what SST sets in Lambda (`SST_Secret_value_…`, `SST_Parameter_value_…`) and the stack's plain environment
 * (request timeout, the base's share, read from the template), so the handlers read their configuration as deployed.
 * A variable already set in this process wins, so a test or a user can override one.
 */
function configureHandlers(
  workflow: LocalPipelineOptions["workflow"],
  airtable: LocalPipeline["airtable"],
  requestsPerSecond: number | undefined,
) {
  for (const [name, value] of Object.entries(stackEnvironment(workflow))) process.env[name] ??= value;
  process.env.SST_APP ??= "fundraise-sync";
  process.env.SST_STAGE ??= "local";
  process.env[`SST_Secret_value_${ConfigName.AirtableToken}`] = airtable.token;
  process.env[`SST_Parameter_value_${ConfigName.AirtableBaseId}`] = airtable.baseId;
  process.env[`SST_Parameter_value_${ConfigName.AirtableTableName}`] = airtable.tableName;
  process.env[EnvName.AirtableEndpointUrl] = airtable.endpointUrl;
  if (requestsPerSecond !== undefined) process.env[EnvName.AirtableRequestsPerSecond] = String(requestsPerSecond);
}

/** The plain (non-SST) environment variables the stack gives its functions, from the synthesized template. */
export function stackEnvironment(workflow: LocalPipelineOptions["workflow"]): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const resource of Object.values(workflow.template.Resources as Record<string, any>)) {
    if (resource.Type !== "AWS::Lambda::Function") continue;
    for (const [name, value] of Object.entries(resource.Properties?.Environment?.Variables ?? {})) {
      if (!name.startsWith("SST_") && typeof value === "string") environment[name] = value;
    }
  }
  return environment;
}

/** The stack's queue attributes, read from the synthesized template, so local queues behave like deployed ones. */
export function queueAttributes(workflow: LocalPipelineOptions["workflow"], construct: string): Record<string, string> {
  const entry = Object.entries(workflow.template.Resources as Record<string, any>).find(
    ([logicalId, resource]) => resource.Type === "AWS::SQS::Queue" && workflow.constructIds[logicalId] === construct,
  );
  if (!entry) throw new Error(`The stack has no queue ${construct}`);
  const properties = entry[1].Properties as Record<string, unknown>;
  const attributes: Record<string, string> = {};
  for (const name of ["VisibilityTimeout", "MessageRetentionPeriod", "MaximumMessageSize", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"]) {
    if (properties[name] !== undefined) attributes[name] = String(properties[name]);
  }
  return attributes;
}

/**
 * A queue URL at the server this pipeline talks to. fauxqs keeps each queue's URL as it was first created: a queue
 * kept in a data folder by a start on another port would otherwise be printed, and handed to the console and the
 * commands, with that old port.
 */
export function servedQueueUrl(queueUrl: string, sqsEndpoint: string): string {
  const { pathname } = new URL(queueUrl);
  return new URL(pathname, sqsEndpoint).href;
}

async function createQueues(sqs: SQSClient, settings: LocalPipelineOptions, sqsEndpoint: string) {
  const dlqAttributes = queueAttributes(settings.workflow, "DeadLetterQueue");
  const deadLetter = await createOrUpdateQueue(sqs, settings.deadLetterQueueName, dlqAttributes);
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetter!, AttributeNames: ["QueueArn"] }));
  const redrive = Object.values(settings.workflow.template.Resources as Record<string, any>).find(
    (resource) => resource.Type === "AWS::SQS::Queue" && resource.Properties.RedrivePolicy,
  )?.Properties.RedrivePolicy;
  const source = await createOrUpdateQueue(sqs, settings.sourceQueueName, {
    ...queueAttributes(settings.workflow, "DonationsQueue"),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: redrive.maxReceiveCount }),
  });
  return { source: servedQueueUrl(source, sqsEndpoint), deadLetter: servedQueueUrl(deadLetter, sqsEndpoint) };
}

/**
 * Creates a queue with the stack's attributes, or, when a queue kept in `.local/sqs` by an earlier start has other
 * ones (the stack changed: a new visibility timeout, say), sets them on it in place, messages kept, as a deploy
 * updates the real queue.
 */
async function createOrUpdateQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<string> {
  try {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    return QueueUrl!;
  } catch (error) {
    if (!/(QueueAlreadyExists|QueueNameExists)$/.test((error as Error).name ?? "")) throw error;
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: attributes }));
    return QueueUrl!;
  }
}
