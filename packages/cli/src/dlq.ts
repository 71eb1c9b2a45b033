/**
 * `npm run dlq -- list|redrive|delete`: reads the dead-letter queue without consuming it, moves its messages back to
 * the donations queue, or deletes the ones a person decides to drop. The operations themselves live in
 * `../dead-letters.ts` (the web console calls the same ones); this file parses flags, asks, and prints.
 */
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import { GetQueueAttributesCommand, type SQSClient, StartMessageMoveTaskCommand } from "@aws-sdk/client-sqs";
import {
  type DeadLetter,
  type DeadLetterSelection,
  DeadLetterNotFoundError,
  DeadLetterQueueError,
  deleteDeadLetters,
  isSelected,
  listDeadLetters,
  redriveDeadLetters,
  resolveDeadLetterQueues,
  sendEditedBody,
  DEAD_LETTER_TIMINGS,
} from "@fundraise-sync/local/dead-letters";
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
import { parseStage, readStage, stackName } from "./sfn-target";

const USAGE = `Usage: npm run dlq -- <command> [options]

Commands:
  list                 every message in the dead-letter queue: why it is there, how often it was redriven, and
                       whether its body can pass Validate now; reads without consuming (each message is hidden
                       while listing, then made visible again at once)
    --json             as a JSON array (bodies in full)
  redrive              moves the DLQ's messages back to the donations queue: the original body byte for byte,
                       without the reason attributes, with RedriveCount one higher; each is deleted from the DLQ
                       only after its copy was sent (a crash in between can only duplicate it, which the
                       pipeline's upsert absorbs). Bodies that can never pass Validate stay in the DLQ.
    --id ID            only this message (repeat for several)
    --max N            move at most N messages
    --force            move bodies that can never pass Validate too (they will be dead-lettered again)
    --aws              on AWS: start SQS's own message-move task (StartMessageMoveTask) instead of moving
                       messages one by one; refused while the DLQ holds bodies that can never pass, unless --force
    --dlq-arn ARN      with --aws: the DLQ's ARN (default: read from the queue)
    --source-arn ARN   with --aws: where to move to (default: the donations queue's ARN)
  delete               removes messages for good, after printing them and asking
    --id ID            this message (repeat for several)
    --error NAME       every message whose ErrorName is NAME (e.g. InvalidDonationEventError)
    --all              every message
    --yes              do not ask (needed when stdin is not a terminal)
  resend               sends an edited body to the donations queue in place of one dead letter, only if it
                       passes Validate (else nothing is sent, exit 2); the dead letter is deleted after the send.
                       What the web console's "Edit and resend" does
    --id ID            the dead letter to replace
    --file F           the edited body (the file's text, sent as is)

Options:
  --stage NAME         a deployed stage: its stack's outputs give both queues (AWS credentials from the usual
                       chain, never printed). On a stage, redrive, resend and delete name the stage and ask first
                       (--yes: do not ask; needed when stdin is not a terminal)
  --queue-url URL      the donations queue (env ${ENV.queueUrl}; default the local one on --sqs-port)
  --dlq-url URL        the dead-letter queue (env ${ENV.dlqUrl}; default: the donations queue's RedrivePolicy target)
  --sqs-port N         port of the local SQS server (env ${ENV.sqsPort}; default ${CLI_DEFAULTS.sqsPort})
  -h, --help           show this help

Environment: ${ENV.sqsEndpoint} (SQS endpoint; default the queue URL's server, or AWS for an AWS queue URL).
Exit codes: 0 done; 1 a queue unreachable or a message not moved; 2 bad input (an id not in the DLQ included).
`;

const BODY_PREVIEW_CHARS = 200;

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;

function verdictLine(letter: DeadLetter): string {
  return letter.verdict.valid ? "passes" : `can never pass: ${letter.verdict.problems.join("; ")}`;
}

function block(letter: DeadLetter): string {
  const body = letter.body.length > BODY_PREVIEW_CHARS ? `${letter.body.slice(0, BODY_PREVIEW_CHARS)}… (${letter.body.length} chars)` : letter.body;
  const rows: [string, string | undefined][] = [
    ["MessageId", letter.messageId],
    // One donation, one identity: the id it had in the source queue, which executions and Message story show.
    ["SourceMessageId", letter.sourceMessageId],
    // SQS's own redrive policy (after maxReceiveCount deliveries) moves a message without any reason attributes.
    ["ErrorName", letter.errorName ?? "(none: moved by the queue's redrive policy, not by the state machine)"],
    ["Cause", letter.cause],
    ["FailedState", letter.failedState],
    ["ReceiveCount", letter.receiveCount],
    ["RedriveCount", String(letter.redriveCount)],
    ["Validate", verdictLine(letter)],
    ["ExecutionArn", letter.executionArn],
    ["SentAt", letter.sentAt],
    ["Body", body],
  ];
  return rows
    .filter((row): row is [string, string] => row[1] !== undefined)
    .map(([name, value]) => `${name.padEnd(17)}${value}`)
    .join("\n");
}

function warnSlow(slowToReappear: number): void {
  if (slowToReappear > 0) {
    console.error(`warning: ${plural(slowToReappear, "message")} could not be made visible at once; they reappear within ${DEAD_LETTER_TIMINGS.holdSeconds} s`);
  }
}

/** Exit code of a command a person stopped with Ctrl-C (128 + SIGINT), as the shell reports it. */
const INTERRUPTED = 130;

/**
 * Asks on the terminal: "yes", "no", or "interrupted" for Ctrl-C at the prompt (readline's SIGINT) or Ctrl-D (the
 * question then rejects); that is the person's answer, not a lost connection. Without a terminal, only `--yes` may
 * delete.
 */
async function confirm(question: string): Promise<"yes" | "no" | "interrupted"> {
  if (!process.stdin.isTTY) throw new UsageError("stdin is not a terminal, so I cannot ask: add --yes to delete without asking");
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  const interrupted = new Promise<"interrupted">((resolve) => prompt.once("SIGINT", () => resolve("interrupted")));
  try {
    const answer = prompt.question(`${question} [y/N] `).then(
      (text): "yes" | "no" => (/^y(es)?$/i.test(text.trim()) ? "yes" : "no"),
      () => "interrupted" as const,
    );
    return await Promise.race([answer, interrupted]);
  } finally {
    prompt.close();
  }
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }));
  if (!Attributes?.QueueArn) throw new CommandFailure(`${queueUrl} reported no QueueArn`);
  return Attributes.QueueArn;
}

const COMMANDS = ["list", "redrive", "delete", "resend"] as const;
type Command = (typeof COMMANDS)[number];

/** Which flags each command takes (help and the common options go with all). */
const FLAGS_OF: Record<Command, readonly string[]> = {
  list: ["json"],
  redrive: ["id", "max", "force", "aws", "dlq-arn", "source-arn"],
  delete: ["id", "error", "all", "yes"],
  resend: ["id", "file"],
};
const COMMON_FLAGS = ["queue-url", "dlq-url", "sqs-port", "stage", "help"];
/** On a stage, these change what is there: each asks first, naming the stage, unless --yes. */
const CHANGES: readonly Command[] = ["redrive", "delete", "resend"];

/** The command, for `runCommand` (and for tests that drive it in-process). */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      json: { type: "boolean" },
      id: { type: "string", multiple: true },
      max: { type: "string" },
      force: { type: "boolean" },
      error: { type: "string" },
      all: { type: "boolean" },
      yes: { type: "boolean" },
      aws: { type: "boolean" },
      "dlq-arn": { type: "string" },
      "source-arn": { type: "string" },
      "queue-url": { type: "string" },
      "dlq-url": { type: "string" },
      "sqs-port": { type: "string" },
      file: { type: "string" },
      stage: { type: "string" },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (!COMMANDS.includes(command as Command)) {
    throw new UsageError(
      command === undefined
        ? "give a command: list, redrive, delete or resend (see --help)"
        : `unknown command "${command}": use list, redrive, delete or resend`,
    );
  }
  const cmd = command as Command;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const onStage = values.stage !== undefined;
  // --yes also answers a stage's question before redrive and resend.
  const misplaced = Object.keys(values).find(
    (flag) => !COMMON_FLAGS.includes(flag) && !FLAGS_OF[cmd].includes(flag) && !(flag === "yes" && onStage && CHANGES.includes(cmd)),
  );
  if (misplaced !== undefined) {
    const owners = COMMANDS.filter((other) => FLAGS_OF[other].includes(misplaced));
    throw new UsageError(`--${misplaced} goes with ${owners.join(" or ")}, not ${cmd}`);
  }
  const ids = values.id ?? [];
  if (ids.some((id) => id.trim() === "")) throw new UsageError("--id must not be empty");
  if (values.error !== undefined && values.error.trim() === "") throw new UsageError("--error must name an ErrorName, e.g. InvalidDonationEventError");
  if (!values.aws && (values["dlq-arn"] || values["source-arn"])) throw new UsageError("--dlq-arn and --source-arn go with --aws");
  if (values.aws && (values.max !== undefined || ids.length > 0)) {
    throw new UsageError("--max and --id do not apply to --aws (the move task moves every message)");
  }
  const max = values.max === undefined ? Number.POSITIVE_INFINITY : parsePositiveInteger(values.max, "--max");
  let selection: DeadLetterSelection | undefined;
  if (cmd === "delete") {
    const chosen = [ids.length > 0, values.error !== undefined, values.all === true].filter(Boolean).length;
    if (chosen !== 1) throw new UsageError("delete needs exactly one of --id ID, --error NAME or --all");
    // Checked before anything is read, so a script learns at once that it must say --yes.
    if (!values.yes && !process.stdin.isTTY) {
      throw new UsageError(`stdin is not a terminal, so I cannot ask: add --yes to delete without asking${onStage ? ` on stage ${values.stage}` : ""}`);
    }
    selection = ids.length > 0 ? { ids } : values.error !== undefined ? { errorName: values.error } : { all: true };
  } else if (cmd === "redrive" && ids.length > 0) {
    selection = { ids };
  }
  let edited: string | undefined;
  if (cmd === "resend") {
    if (ids.length !== 1 || values.file === undefined) throw new UsageError("resend needs --id ID (one dead letter) and --file F (the edited body)");
    edited = await readEditedBody(values.file);
  }

  let stage: string | undefined;
  if (onStage) {
    stage = parseStage(values.stage!);
    const local = ["queue-url", "dlq-url", "sqs-port"].find((flag) => (values as Record<string, unknown>)[flag] !== undefined);
    if (local) throw new UsageError(`--${local} and --stage name the queues twice: give one`);
    if (CHANGES.includes(cmd) && !values.yes && !process.stdin.isTTY) {
      throw new UsageError(`stdin is not a terminal, so I cannot ask before ${cmd} on stage ${stage}: add --yes`);
    }
  }
  const staged = stage === undefined ? undefined : await readStage(stage);
  if (staged && (!staged.queueUrl || !staged.deadLetterQueueUrl)) throw new CommandFailure(`stack ${stackName(stage!)} has no QueueUrl or DeadLetterQueueUrl output`);
  const queueFlag = staged ? staged.queueUrl : flagOrEnv(values["queue-url"], ENV.queueUrl);
  const sourceUrl =
    queueFlag === undefined
      ? localQueueUrl(localSqsEndpoint(sqsPortFrom(values["sqs-port"])), CLI_DEFAULTS.sourceQueueName)
      : staged
        ? queueFlag
        : parseUrl(queueFlag, values["queue-url"] !== undefined ? "--queue-url" : ENV.queueUrl);
  const dlqFlag = staged ? staged.deadLetterQueueUrl : flagOrEnv(values["dlq-url"], ENV.dlqUrl);
  const dlqGiven = dlqFlag === undefined ? undefined : staged ? dlqFlag : parseUrl(dlqFlag, values["dlq-url"] !== undefined ? "--dlq-url" : ENV.dlqUrl);
  if (staged) console.log(`stage ${stage} (${stackName(stage!)}${staged.region ? `, ${staged.region}` : ""})`);
  const endpoint = sqsEndpointFor(sourceUrl);
  ensureAwsEnvironment(endpoint, sourceUrl);
  const sqs = sqsClient(endpoint);
  try {
    const queues = await resolveDeadLetterQueues(sqs, sourceUrl, dlqGiven);
    // On a deployed stage, a change is asked for first, naming the stage (delete asks its own question below).
    if (stage !== undefined && (cmd === "redrive" || cmd === "resend") && !values.yes) {
      const what =
        cmd === "redrive"
          ? `Move ${selection ? `${ids.length} dead letter(s)` : values.max !== undefined ? `up to ${max} dead letters` : "the dead letters"} back to ${queues.sourceUrl}${values.aws ? " (SQS message-move task)" : ""}`
          : `Send the edited body to ${queues.sourceUrl} and delete dead letter ${ids[0]}`;
      const answer = await confirm(`On stage ${stage}: ${what}?`);
      if (answer !== "yes") {
        console.log(answer === "interrupted" ? "\nnothing changed (interrupted)" : "nothing changed");
        return answer === "interrupted" ? INTERRUPTED : 0;
      }
    }
    switch (cmd) {
      case "list":
        return await list(queues, values.json === true);
      case "delete":
        return await remove(queues, selection!, values.yes === true, stage);
      case "redrive":
        if (values.aws) return await moveTask(queues, values["dlq-arn"], values["source-arn"], values.force === true);
        return await redrive(queues, selection, values.force === true, max);
      case "resend":
        return await resend(queues, ids[0]!, edited!);
    }
  } catch (error) {
    if (isConnectionRefused(error)) {
      throw new CommandFailure(`cannot reach the SQS server at ${endpoint ?? "AWS"}: is \`npm start\` running?`);
    }
    // A wrong id is bad input (exit 2), as for redrive and delete; a DLQ that cannot be worked on is not.
    if (error instanceof DeadLetterNotFoundError) throw new UsageError(error.message);
    if (error instanceof DeadLetterQueueError) throw new CommandFailure(error.message);
    throw error;
  } finally {
    sqs.destroy();
  }
}

type Queues = Awaited<ReturnType<typeof resolveDeadLetterQueues>>;

/** The edited body: the file's whole text, sent as is (what the console's editor holds). */
async function readEditedBody(file: string): Promise<string> {
  try {
    const body = await readFile(file, "utf8");
    if (body.trim() === "") throw new UsageError(`${file} is empty: it should hold the edited message body`);
    return body;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`cannot read --file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** `resend`: the edited body in place of a dead letter, only if Validate passes it (what the console's Edit and resend does). */
async function resend(queues: Queues, id: string, body: string): Promise<number> {
  const result = await sendEditedBody(queues, id, body);
  if (!result.sent) throw new UsageError(`not sent: Validate refuses the edited body: ${result.verdict.problems.join("; ")}`);
  console.log(`sent as message ${result.newMessageId} to ${queues.sourceUrl} (redrive ${result.redriveCount}); ${id} removed from the dead-letter queue`);
  return 0;
}

async function list(queues: Queues, json: boolean): Promise<number> {
  const { letters, slowToReappear } = await listDeadLetters(queues);
  if (json) {
    console.log(JSON.stringify(letters, null, 2));
  } else {
    const invalid = letters.filter((letter) => !letter.verdict.valid).length;
    console.log(`${plural(letters.length, "message")} in ${queues.deadLetterUrl}${invalid > 0 ? ` (${invalid} can never pass Validate)` : ""}`);
    for (const letter of letters) console.log(`\n${block(letter)}`);
  }
  warnSlow(slowToReappear);
  return 0;
}

async function redrive(queues: Queues, selection: DeadLetterSelection | undefined, force: boolean, max: number): Promise<number> {
  const result = await redriveDeadLetters(queues, { selection, force, max });
  console.log(
    `redriven ${result.redriven.length}, kept ${result.leftInvalid.length} that can never pass Validate, ` +
      `failed ${result.failed.length} (from ${queues.deadLetterUrl} to ${queues.sourceUrl})`,
  );
  if (result.leftInvalid.length > 0) {
    console.log(
      `  ${plural(result.leftInvalid.length, "message")} stayed in the DLQ: Validate would dead-letter ${result.leftInvalid.length === 1 ? "it" : "them"} again ` +
        "(fix the producer, `dlq delete` to drop, or --force to send anyway)",
    );
    for (const { messageId, problems } of result.leftInvalid) console.log(`  kept ${messageId}: ${problems.join("; ")}`);
  }
  for (const { messageId, reason } of result.failed) console.log(`  failed ${messageId}: ${reason}`);
  warnSlow(result.slowToReappear);
  if (result.notFound.length > 0) throw new UsageError(`not in the dead-letter queue: ${result.notFound.join(", ")}`);
  return result.failed.length > 0 ? 1 : 0;
}

async function remove(queues: Queues, selection: DeadLetterSelection, yes: boolean, stage?: string): Promise<number> {
  // What the person approves is what gets deleted: the listed ids, not whatever matches by the time they answer.
  const { letters, slowToReappear } = await listDeadLetters(queues);
  warnSlow(slowToReappear);
  const chosen = letters.filter((letter) => isSelected(letter, selection));
  if ("ids" in selection) {
    const missing = selection.ids.filter((id) => !letters.some((letter) => letter.messageId === id));
    if (missing.length > 0) throw new UsageError(`not in the dead-letter queue: ${missing.join(", ")} (nothing deleted)`);
  }
  if (chosen.length === 0) {
    console.log(`nothing to delete: no message in ${queues.deadLetterUrl} has ErrorName ${"errorName" in selection ? selection.errorName : "?"}`);
    return 0;
  }
  console.log(`${plural(chosen.length, "message")} to delete from ${queues.deadLetterUrl}:`);
  for (const letter of chosen) {
    const body = letter.body.length > 80 ? `${letter.body.slice(0, 80)}…` : letter.body;
    console.log(`  ${letter.messageId}  ${letter.errorName ?? "(no ErrorName)"}  ${body}`);
  }
  const question = `Delete ${chosen.length === 1 ? "it" : `these ${chosen.length}`} for good?`;
  const answer = yes ? "yes" : await confirm(stage === undefined ? question : `On stage ${stage}: ${question}`);
  if (answer !== "yes") {
    console.log(answer === "interrupted" ? "\nnothing deleted (interrupted)" : "nothing deleted");
    return answer === "interrupted" ? INTERRUPTED : 0;
  }
  const { deleted, notFound } = await deleteDeadLetters(queues, { ids: chosen.map((letter) => letter.messageId) });
  console.log(`deleted ${deleted.length}`);
  if (notFound.length > 0) console.log(`  ${plural(notFound.length, "message")} had already left the DLQ: ${notFound.join(", ")}`);
  return 0;
}

async function moveTask(queues: Queues, dlqArn: string | undefined, sourceArnFlag: string | undefined, force: boolean): Promise<number> {
  const { sqs } = queues;
  if (!force) {
    const { letters } = await listDeadLetters(queues);
    const invalid = letters.filter((letter) => !letter.verdict.valid).length;
    if (invalid > 0) {
      throw new CommandFailure(
        `${plural(invalid, "message")} in the DLQ can never pass Validate: \`dlq delete\` them, redrive without --aws, or add --force`,
      );
    }
  }
  const sourceArn = dlqArn ?? (await queueArn(sqs, queues.deadLetterUrl));
  const destinationArn = sourceArnFlag ?? (await queueArn(sqs, queues.sourceUrl));
  const { TaskHandle } = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }));
  console.log(`started a message-move task from ${sourceArn} to ${destinationArn}`);
  console.log(`  task handle: ${TaskHandle}`);
  console.log("  it runs in the background: see ListMessageMoveTasks or the SQS console (DLQ redrive) for its counts");
  return 0;
}

runCommand(main, import.meta.url);
