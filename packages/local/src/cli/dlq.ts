/**
 * `npm run dlq -- list [--json]` and `npm run dlq -- redrive [--max N] [--aws]`: reads the dead-letter queue without
 * consuming it, and moves its messages back to the donations queue.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from "@aws-sdk/client-sqs";
import { DeadLetterAttribute, SQS_MAX_MESSAGES_PER_RECEIVE } from "@fundraise-sync/core";
import { readableCause } from "./format";
import {
  CLI_DEFAULTS,
  CommandFailure,
  ENV,
  UsageError,
  ensureAwsEnvironment,
  flagOrEnv,
  isConnectionRefused,
  localQueueUrl,
  localSqsEndpoint,
  parseCommandLine,
  parsePositiveInteger,
  parseUrl,
  runCommand,
  sqsClient,
  sqsEndpointFor,
  sqsPortFrom,
} from "./options";

const USAGE = `Usage: npm run dlq -- <command> [options]

Commands:
  list                 every message in the dead-letter queue with why it is there; reads without consuming
                       (each message is hidden while listing, then made visible again at once)
    --json             as a JSON array (bodies in full)
  redrive              moves the DLQ's messages back to the donations queue: the original body byte for byte,
                       without the reason attributes; each is deleted from the DLQ only after its copy was sent
                       (a crash in between can only duplicate it, which the pipeline's upsert absorbs)
    --max N            move at most N messages
    --aws              on AWS: start SQS's own message-move task (StartMessageMoveTask) instead of moving
                       messages one by one; it runs in the background, see the SQS console's DLQ redrive page
    --dlq-arn ARN      with --aws: the DLQ's ARN (default: read from the queue)
    --source-arn ARN   with --aws: where to move to (default: the donations queue's ARN)

Options:
  --queue-url URL      the donations queue (env ${ENV.queueUrl}; default the local one on --sqs-port)
  --dlq-url URL        the dead-letter queue (env ${ENV.dlqUrl}; default: the donations queue's RedrivePolicy target)
  --sqs-port N         port of the local SQS server (env ${ENV.sqsPort}; default ${CLI_DEFAULTS.sqsPort})
  -h, --help           show this help

Environment: ${ENV.sqsEndpoint} (SQS endpoint; default the queue URL's server, or AWS for an AWS queue URL).
Exit codes: 0 done; 1 a queue unreachable or a message not moved; 2 bad input.
`;

/** One dead-lettered message, as `list` shows it. */
export interface DeadLetter {
  messageId: string;
  errorName?: string;
  /** `ErrorCause` made readable: Lambda's `errorMessage`, else the raw cause. */
  cause?: string;
  rawCause?: string;
  failedState?: string;
  receiveCount?: string;
  executionArn?: string;
  sourceMessageId?: string;
  sentAt?: string;
  body: string;
}

const BODY_PREVIEW_CHARS = 200;

function toDeadLetter(message: Message): DeadLetter {
  const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue;
  const rawCause = attribute(DeadLetterAttribute.ErrorCause);
  const sent = message.Attributes?.SentTimestamp;
  return {
    messageId: message.MessageId ?? "",
    errorName: attribute(DeadLetterAttribute.ErrorName),
    cause: rawCause === undefined ? undefined : readableCause(rawCause),
    rawCause,
    failedState: attribute(DeadLetterAttribute.FailedState),
    receiveCount: attribute(DeadLetterAttribute.ReceiveCount),
    executionArn: attribute(DeadLetterAttribute.ExecutionArn),
    sourceMessageId: attribute(DeadLetterAttribute.SourceMessageId),
    sentAt: sent === undefined ? undefined : new Date(Number(sent)).toISOString(),
    body: message.Body ?? "",
  };
}

function block(letter: DeadLetter): string {
  const body = letter.body.length > BODY_PREVIEW_CHARS ? `${letter.body.slice(0, BODY_PREVIEW_CHARS)}… (${letter.body.length} chars)` : letter.body;
  const rows: [string, string | undefined][] = [
    ["MessageId", letter.messageId],
    // SQS's own redrive policy (after maxReceiveCount deliveries) moves a message without any reason attributes.
    ["ErrorName", letter.errorName ?? "(none: moved by the queue's redrive policy, not by the state machine)"],
    ["Cause", letter.cause],
    ["FailedState", letter.failedState],
    ["ReceiveCount", letter.receiveCount],
    ["ExecutionArn", letter.executionArn],
    ["SentAt", letter.sentAt],
    ["Body", body],
  ];
  return rows
    .filter((row): row is [string, string] => row[1] !== undefined)
    .map(([name, value]) => `${name.padEnd(13)}${value}`)
    .join("\n");
}

/**
 * Reads every message without consuming it: receives with a short visibility timeout until no new message comes,
 * then makes all of them visible again at once. Messages are collected by MessageId, so one received twice is
 * listed once.
 */
async function listAll(sqs: SQSClient, dlqUrl: string): Promise<DeadLetter[]> {
  const seen = new Map<string, Message>();
  try {
    // Long polling (unlike short polling, which samples a subset of SQS's servers) makes one answer without a new
    // message mean: nothing left to list.
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: SQS_MAX_MESSAGES_PER_RECEIVE,
          VisibilityTimeout: CLI_DEFAULTS.listVisibilityTimeoutSeconds,
          WaitTimeSeconds: CLI_DEFAULTS.receiveWaitSeconds,
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["All"],
        }),
      );
      const fresh = Messages.filter((message) => message.MessageId !== undefined && !seen.has(message.MessageId));
      for (const message of fresh) seen.set(message.MessageId!, message);
      if (fresh.length === 0) break;
    }
  } finally {
    await makeVisible(sqs, dlqUrl, [...seen.values()]);
  }
  return [...seen.values()].map(toDeadLetter);
}

/** Makes listed messages visible again at once; says so if some could not be. */
async function makeVisible(sqs: SQSClient, queueUrl: string, messages: Message[]): Promise<void> {
  let failed = 0;
  for (let start = 0; start < messages.length; start += SQS_MAX_MESSAGES_PER_RECEIVE) {
    const chunk = messages.slice(start, start + SQS_MAX_MESSAGES_PER_RECEIVE);
    const reply = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((message, index) => ({
          Id: String(index),
          ReceiptHandle: message.ReceiptHandle!,
          VisibilityTimeout: 0,
        })),
      }),
    );
    failed += reply.Failed?.length ?? 0;
  }
  if (failed > 0) {
    console.error(
      `warning: ${failed} listed message(s) could not be made visible at once; they reappear after ${CLI_DEFAULTS.listVisibilityTimeoutSeconds} s`,
    );
  }
}

/**
 * Moves messages back one at a time: send the body as is (no attributes), check SQS stored the same bytes (MD5), and
 * only then delete the DLQ's copy. A message whose send fails stays in the DLQ and reappears after the short
 * visibility timeout.
 */
async function redrive(sqs: SQSClient, dlqUrl: string, sourceUrl: string, max: number): Promise<{ moved: number; failed: string[] }> {
  let moved = 0;
  const failed: string[] = [];
  const attempted = new Set<string>();
  while (moved + failed.length < max) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: Math.min(SQS_MAX_MESSAGES_PER_RECEIVE, max - moved - failed.length),
        VisibilityTimeout: CLI_DEFAULTS.redriveVisibilityTimeoutSeconds,
        WaitTimeSeconds: CLI_DEFAULTS.receiveWaitSeconds,
      }),
    );
    const fresh = Messages.filter((message) => !attempted.has(message.MessageId ?? ""));
    if (fresh.length === 0) break;
    for (const message of fresh) {
      attempted.add(message.MessageId ?? "");
      try {
        const sent = await sqs.send(new SendMessageCommand({ QueueUrl: sourceUrl, MessageBody: message.Body ?? "" }));
        if (message.MD5OfBody !== undefined && sent.MD5OfMessageBody !== undefined && sent.MD5OfMessageBody !== message.MD5OfBody) {
          throw new Error(`the copy's MD5 ${sent.MD5OfMessageBody} differs from the original's ${message.MD5OfBody}; left in the DLQ`);
        }
      } catch (error) {
        failed.push(`${message.MessageId}: ${(error as Error).message}`);
        continue;
      }
      await sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: message.ReceiptHandle! }));
      moved++;
    }
  }
  return { moved, failed };
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }));
  if (!Attributes?.QueueArn) throw new CommandFailure(`${queueUrl} reported no QueueArn`);
  return Attributes.QueueArn;
}

/** The DLQ's URL from the source queue's RedrivePolicy (`deadLetterTargetArn` is `arn:aws:sqs:region:account:name`). */
async function deadLetterQueueUrl(sqs: SQSClient, sourceUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: sourceUrl, AttributeNames: ["RedrivePolicy"] }));
  const policy = Attributes?.RedrivePolicy;
  if (!policy) throw new CommandFailure(`${sourceUrl} has no RedrivePolicy: give the dead-letter queue with --dlq-url`);
  const arn = (JSON.parse(policy) as { deadLetterTargetArn?: string }).deadLetterTargetArn ?? "";
  const [, , , , account, name] = arn.split(":");
  if (!name) throw new CommandFailure(`cannot read the dead-letter queue from ${sourceUrl}'s RedrivePolicy ${policy}`);
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
  return QueueUrl!;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      json: { type: "boolean" },
      max: { type: "string" },
      aws: { type: "boolean" },
      "dlq-arn": { type: "string" },
      "source-arn": { type: "string" },
      "queue-url": { type: "string" },
      "dlq-url": { type: "string" },
      "sqs-port": { type: "string" },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (command !== "list" && command !== "redrive") {
    throw new UsageError(command === undefined ? "give a command: list or redrive (see --help)" : `unknown command "${command}": use list or redrive`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (command === "list" && (values.max !== undefined || values.aws || values["dlq-arn"] || values["source-arn"])) {
    throw new UsageError("--max, --aws, --dlq-arn and --source-arn go with redrive, not list");
  }
  if (command === "redrive" && values.json) throw new UsageError("--json goes with list, not redrive");
  if (!values.aws && (values["dlq-arn"] || values["source-arn"])) throw new UsageError("--dlq-arn and --source-arn go with --aws");
  if (values.aws && values.max !== undefined) throw new UsageError("--max does not apply to --aws (the move task moves every message)");
  const max = values.max === undefined ? Number.POSITIVE_INFINITY : parsePositiveInteger(values.max, "--max");

  const queueFlag = flagOrEnv(values["queue-url"], ENV.queueUrl);
  const sourceUrl =
    queueFlag === undefined
      ? localQueueUrl(localSqsEndpoint(sqsPortFrom(values["sqs-port"])), CLI_DEFAULTS.sourceQueueName)
      : parseUrl(queueFlag, values["queue-url"] !== undefined ? "--queue-url" : ENV.queueUrl);
  const dlqFlag = flagOrEnv(values["dlq-url"], ENV.dlqUrl);
  const dlqGiven = dlqFlag === undefined ? undefined : parseUrl(dlqFlag, values["dlq-url"] !== undefined ? "--dlq-url" : ENV.dlqUrl);
  const endpoint = sqsEndpointFor(sourceUrl);
  ensureAwsEnvironment(endpoint, sourceUrl);
  const sqs = sqsClient(endpoint);
  try {
    const dlqUrl = dlqGiven ?? (await deadLetterQueueUrl(sqs, sourceUrl));
    if (command === "list") {
      const letters = await listAll(sqs, dlqUrl);
      if (values.json) {
        console.log(JSON.stringify(letters, null, 2));
      } else {
        console.log(`${letters.length} message${letters.length === 1 ? "" : "s"} in ${dlqUrl}`);
        for (const letter of letters) console.log(`\n${block(letter)}`);
      }
      return 0;
    }
    if (values.aws) {
      const sourceArn = values["dlq-arn"] ?? (await queueArn(sqs, dlqUrl));
      const destinationArn = values["source-arn"] ?? (await queueArn(sqs, sourceUrl));
      const { TaskHandle } = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }));
      console.log(`started a message-move task from ${sourceArn} to ${destinationArn}`);
      console.log(`  task handle: ${TaskHandle}`);
      console.log("  it runs in the background: see ListMessageMoveTasks or the SQS console (DLQ redrive) for its counts");
      return 0;
    }
    const { moved, failed } = await redrive(sqs, dlqUrl, sourceUrl, max);
    console.log(`moved ${moved}, failed ${failed.length} (from ${dlqUrl} to ${sourceUrl})`);
    for (const failure of failed) console.log(`  failed ${failure}`);
    return failed.length > 0 ? 1 : 0;
  } catch (error) {
    if (isConnectionRefused(error)) {
      throw new CommandFailure(`cannot reach the SQS server at ${endpoint ?? "AWS"}: is \`npm start\` running?`);
    }
    throw error;
  } finally {
    sqs.destroy();
  }
}

runCommand(main);
