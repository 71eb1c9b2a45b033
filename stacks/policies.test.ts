/**
 * Every permission the deployed stack needs, evaluated by an IAM policy evaluator over the synthesized template
 * (not string-matched): identity policies, resource policies (queue and topic policies, their Denies included),
 * conditions and service principals, as AWS evaluates them.
 *
 * The evaluator, @cloud-copilot/iam-simulate, is AGPL-3.0-or-later: it is a dev dependency only, run by these tests,
 * never bundled into a function nor deployed.
 */
import { type EvaluationResult, runSimulation } from "@cloud-copilot/iam-simulate";
import { describe, expect, inject, it } from "vitest";
import {
  type AwsRequest,
  type PolicyDocument,
  policiesOfRole,
  queueArnOfUrl,
  requestsOfStateMachine,
  resolverFor,
  resourcePolicyFor,
  roleOf,
} from "./aws-requests";
import { SYNTH_ACCOUNT, SYNTH_REGION } from "./synthesize";

type Template = Record<string, any>;
type Resource = { Type: string; Properties: Record<string, any> };

const workflow = inject("workflow");
const template = workflow.template as Template;
const resources = template.Resources as Record<string, Resource>;
const resolve = resolverFor(template);

/** The logical id of the one resource of `type` whose construct is `constructId`. */
function logicalId(constructId: string, type: string): string {
  const ids = Object.keys(resources).filter((id) => resources[id]!.Type === type && workflow.constructIds[id] === constructId);
  if (ids.length !== 1) throw new Error(`${ids.length} resources ${type} ${constructId}`);
  return ids[0]!;
}
const ofType = (t: Template, type: string) => Object.entries(t.Resources as Record<string, Resource>).filter(([, r]) => r.Type === type);
const queueArn = (constructId: string) => queueArnOfUrl(resolve({ Ref: logicalId(constructId, "AWS::SQS::Queue") }));

/** A copy of the template to break. */
const copyOf = (t: Template): Template => structuredClone(t);

interface Evaluation {
  principal: string;
  action: string;
  resource: string;
  identityPolicies?: { name: string; policy: PolicyDocument }[];
  resourcePolicy?: PolicyDocument;
  context?: Record<string, string>;
}

/** What AWS would answer: Allowed, ExplicitlyDenied or ImplicitlyDenied. Requests are over HTTPS unless `context` says not. */
async function evaluate(evaluation: Evaluation): Promise<EvaluationResult> {
  const result = await runSimulation(
    {
      request: {
        principal: evaluation.principal,
        action: evaluation.action,
        resource: { resource: evaluation.resource, accountId: SYNTH_ACCOUNT },
        contextVariables: { "aws:SecureTransport": "true", ...evaluation.context },
      },
      identityPolicies: evaluation.identityPolicies ?? [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: evaluation.resourcePolicy,
    },
    { simulationMode: "Strict" },
  );
  if (result.resultType === "error") throw new Error(`${evaluation.action} on ${evaluation.resource}: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}

/** A request a role of the stack makes, with the role's policies and the target's resource policy. */
function asRole(t: Template, roleLogicalId: string, request: Pick<AwsRequest, "action" | "resource">, context?: Record<string, string>) {
  return evaluate({
    principal: resolverFor(t)({ "Fn::GetAtt": [roleLogicalId, "Arn"] }),
    action: request.action,
    resource: request.resource,
    identityPolicies: policiesOfRole(t, roleLogicalId),
    resourcePolicy: resourcePolicyFor(t, request.resource),
    context,
  });
}

/** Drops, from a copy of the template, every statement of a role's policies that grants `action`. */
function withoutGrant(t: Template, roleLogicalId: string, action: string): Template {
  const broken = copyOf(t);
  for (const [, policy] of ofType(broken, "AWS::IAM::Policy")) {
    if (!(policy.Properties.Roles as { Ref?: string }[]).some((r) => r.Ref === roleLogicalId)) continue;
    const document = policy.Properties.PolicyDocument as PolicyDocument;
    document.Statement = document.Statement.filter((s) => ![s.Action].flat().includes(action));
  }
  return broken;
}

// --- (a) The state machine: every call each of its Task states makes ------------------------------------------------

const [[machineId, machine]] = ofType(template, "AWS::StepFunctions::StateMachine") as [[string, Resource]];
const machineRole = roleOf(machine.Properties.RoleArn);
const machineRequests = requestsOfStateMachine(template, machineId);

describe("the state machine's role (every call derived from the definition)", () => {
  it.each(machineRequests.map((r) => [`${r.from}: ${r.action} on ${r.resource}`, r] as const))("allows %s", async (_, request) => {
    expect(await asRole(template, machineRole, request)).toBe("Allowed");
  });

  it("derives the calls from the definition: the receive, the DLQ send and every Lambda invoke are among them", () => {
    // Assert: a derivation that found nothing would make the test above pass vacuously
    const calls = machineRequests.map(({ action, resource }) => `${action} ${resource}`);
    expect(calls).toContain(`sqs:ReceiveMessage ${queueArn("DonationsQueue")}`);
    expect(calls).toContain(`sqs:SendMessage ${queueArn("DeadLetterQueue")}`);
    for (const fn of ["Validate", "WriteToAirtable", "DeleteMessages"]) {
      expect(calls).toContain(`lambda:InvokeFunction ${resolve({ "Fn::GetAtt": [logicalId(fn, "AWS::Lambda::Function"), "Arn"] })}`);
    }
    expect(calls).toContain(`states:StartExecution ${resolve({ Ref: machineId })}`);
  });

  it("is denied a call once the statement that grants it is removed (sqs:ReceiveMessage)", async () => {
    // Arrange
    const receive = machineRequests.find((r) => r.action === "sqs:ReceiveMessage")!;
    const broken = withoutGrant(template, machineRole, "sqs:ReceiveMessage");

    // Act and assert
    expect(await asRole(template, machineRole, receive)).toBe("Allowed");
    expect(await asRole(broken, machineRole, receive)).toBe("ImplicitlyDenied");
  });

  it("is denied what it does not need: deleting the queue, purging it, reading the DLQ, invoking another function", async () => {
    // Assert: the evaluator does not allow everything
    const denied = [
      { action: "sqs:DeleteQueue", resource: queueArn("DonationsQueue") },
      { action: "sqs:PurgeQueue", resource: queueArn("DonationsQueue") },
      { action: "sqs:ReceiveMessage", resource: queueArn("DeadLetterQueue") },
      { action: "lambda:InvokeFunction", resource: `arn:aws:lambda:${SYNTH_REGION}:${SYNTH_ACCOUNT}:function:someone-elses` },
      { action: "s3:GetObject", resource: "arn:aws:s3:::some-bucket/donors.csv" },
    ];
    for (const request of denied) expect(await asRole(template, machineRole, request), request.action).toBe("ImplicitlyDenied");
  });

  it("is refused by the queue's own policy over plain HTTP, though its role allows the receive", async () => {
    // Assert: resource policies are evaluated too (the queue's enforceSSL Deny)
    const receive = machineRequests.find((r) => r.action === "sqs:ReceiveMessage")!;
    expect(await asRole(template, machineRole, receive, { "aws:SecureTransport": "false" })).toBe("ExplicitlyDenied");
  });
});

// --- (b) The functions: every AWS call each one makes -------------------------------------------------------------

/** A function's role, and the environment SST gave it (where sst/node/config reads its SSM prefix from). */
const functionOf = (name: string) => {
  const fn = resources[logicalId(name, "AWS::Lambda::Function")]!;
  return { role: roleOf(fn.Properties.Role), environment: fn.Properties.Environment.Variables as Record<string, string>, fn };
};
const ssmParameterArn = (name: string) => `arn:aws:ssm:${SYNTH_REGION}:${SYNTH_ACCOUNT}:parameter${name}`;
const env = (name: string, variable: string) => {
  const value = functionOf(name).environment[variable];
  if (typeof value !== "string") throw new Error(`${name} has no ${variable}`);
  return value;
};

/**
 * Every AWS call each function makes at run time, with where it comes from. Logs and traces, which every function
 * sends, are checked below for all of them.
 */
const FUNCTION_REQUESTS: Record<string, { action: string; resource: string }[]> = {
  // Parses and checks a body: no AWS call.
  Validate: [],
  WriteToAirtable: [
    // packages/functions/src/config.ts imports sst/node/config for a binding that holds SST's fetch marker; it reads
    // the stage's secret with one GetParameters (WithDecryption; the aws/ssm key's own policy lets the account's
    // principals decrypt through SSM) at `${SST_SSM_PREFIX}Secret/<name>/value`...
    { action: "ssm:GetParameters", resource: ssmParameterArn(`${env("WriteToAirtable", "SST_SSM_PREFIX")}Secret/AIRTABLE_TOKEN/value`) },
    // ...and, when the stage has none, the app's fallback (`sst secrets set --fallback`), `/sst/<SST_APP>/.fallback/…`.
    { action: "ssm:GetParameters", resource: ssmParameterArn(`/sst/${env("WriteToAirtable", "SST_APP")}/.fallback/Secret/AIRTABLE_TOKEN/value`) },
    // AIRTABLE_BASE_ID and AIRTABLE_TABLE_NAME are Config.Parameters: SST binds their values as plain environment
    // variables (SST_Parameter_value_*), read with no call.
  ],
  DeleteMessages: [
    // packages/core/src/queue.ts: DeleteMessageBatch and ChangeMessageVisibilityBatch on the donations queue, which
    // SQS authorizes as DeleteMessage and ChangeMessageVisibility.
    { action: "sqs:DeleteMessage", resource: queueArn("DonationsQueue") },
    { action: "sqs:ChangeMessageVisibility", resource: queueArn("DonationsQueue") },
  ],
};

/** What Lambda does with every function's role: its logs into the function's log group, and (tracing on) X-Ray. */
function runtimeRequestsOf(name: string): { action: string; resource: string }[] {
  const { fn } = functionOf(name);
  const logGroup = resolve(fn.Properties.LoggingConfig.LogGroup) as string;
  // Lambda names each instance's stream `<date>/[<version>]<id>`; both actions are authorized on the stream.
  const stream = `arn:aws:logs:${SYNTH_REGION}:${SYNTH_ACCOUNT}:log-group:${logGroup}:log-stream:2025/01/01/[$LATEST]0123456789abcdef`;
  return [
    { action: "logs:CreateLogStream", resource: stream },
    { action: "logs:PutLogEvents", resource: stream },
    ...(fn.Properties.TracingConfig?.Mode === "Active"
      ? [
          { action: "xray:PutTraceSegments", resource: "*" },
          { action: "xray:PutTelemetryRecords", resource: "*" },
        ]
      : []),
  ];
}

describe("each function's role (every AWS call it makes)", () => {
  const rows = Object.entries(FUNCTION_REQUESTS).flatMap(([name, requests]) =>
    [...requests, ...runtimeRequestsOf(name)].map((request) => [`${name}: ${request.action} on ${request.resource}`, name, request] as const),
  );
  it.each(rows)("allows %s", async (_, name, request) => {
    expect(await asRole(template, functionOf(name).role, request)).toBe("Allowed");
  });

  it("lists every function of the stack but SST's own custom-resource handler", () => {
    const functions = ofType(template, "AWS::Lambda::Function").map(([id]) => workflow.constructIds[id]);
    expect([...Object.keys(FUNCTION_REQUESTS), "CustomResourceHandler"].sort()).toEqual(functions.sort());
  });

  it("is denied a call once the statement that grants it is removed (DeleteMessages' sqs:DeleteMessage)", async () => {
    // Arrange
    const { role } = functionOf("DeleteMessages");
    const broken = withoutGrant(template, role, "sqs:DeleteMessage");

    // Act and assert
    expect(await asRole(broken, role, FUNCTION_REQUESTS.DeleteMessages![0]!)).toBe("ImplicitlyDenied");
  });

  it("is denied what it does not need: Validate reads no secret, WriteToAirtable touches no queue, no one reads another stage's token", async () => {
    // Assert
    const token = FUNCTION_REQUESTS.WriteToAirtable![0]!;
    expect(await asRole(template, functionOf("Validate").role, token)).toBe("ImplicitlyDenied");
    expect(await asRole(template, functionOf("WriteToAirtable").role, { action: "sqs:DeleteMessage", resource: queueArn("DonationsQueue") })).toBe(
      "ImplicitlyDenied",
    );
    const otherStage = { action: "ssm:GetParameters", resource: ssmParameterArn("/sst/fundraise-sync/prod/Secret/AIRTABLE_TOKEN/value") };
    expect(await asRole(template, functionOf("WriteToAirtable").role, otherStage)).toBe("ImplicitlyDenied");
    expect(await asRole(template, functionOf("DeleteMessages").role, { action: "sqs:DeleteMessage", resource: queueArn("DeadLetterQueue") })).toBe(
      "ImplicitlyDenied",
    );
  });
});

// --- (c) The schedule ---------------------------------------------------------------------------------------------

describe("the schedule's role", () => {
  const targets = ofType(template, "AWS::Events::Rule").flatMap(([rule, r]) =>
    (r.Properties.Targets as { Arn: unknown; RoleArn: unknown }[]).map((target) => ({ rule, arn: resolve(target.Arn) as string, role: roleOf(target.RoleArn) })),
  );

  it("may start the state machine: EventBridge calls states:StartExecution with the target's role", async () => {
    // Assert
    expect(targets.map((t) => t.arn)).toEqual([resolve({ Ref: machineId })]);
    for (const { arn, role } of targets) expect(await asRole(template, role, { action: "states:StartExecution", resource: arn })).toBe("Allowed");
  });

  it("may start nothing else, and nothing once its statement is removed", async () => {
    // Arrange
    const [{ arn, role }] = targets as [(typeof targets)[number]];
    const other = `arn:aws:states:${SYNTH_REGION}:${SYNTH_ACCOUNT}:stateMachine:another-machine`;

    // Assert
    expect(await asRole(template, role, { action: "states:StartExecution", resource: other })).toBe("ImplicitlyDenied");
    expect(await asRole(withoutGrant(template, role, "states:StartExecution"), role, { action: "states:StartExecution", resource: arn })).toBe(
      "ImplicitlyDenied",
    );
  });
});

// --- (d) The alarms' topic ----------------------------------------------------------------------------------------

/** Each alarm's ARN and the topics its actions notify. */
const alarmsOf = (t: Template) =>
  ofType(t, "AWS::CloudWatch::Alarm").map(([id, alarm]) => ({
    id,
    arn: resolverFor(t)({ "Fn::GetAtt": [id, "Arn"] }) as string,
    topics: (resolverFor(t)([...(alarm.Properties.AlarmActions ?? []), ...(alarm.Properties.OKActions ?? [])]) as string[]).filter((a) =>
      a.startsWith("arn:aws:sns:"),
    ),
  }));

/** CloudWatch publishing an alarm's notification: the service principal, for that alarm of this account. */
function cloudWatchPublishes(t: Template, topic: string, alarmArn: string, context: Record<string, string> = {}) {
  return evaluate({
    principal: "cloudwatch.amazonaws.com",
    action: "sns:Publish",
    resource: topic,
    resourcePolicy: resourcePolicyFor(t, topic),
    context: { "aws:SourceAccount": SYNTH_ACCOUNT, "aws:SourceArn": alarmArn, ...context },
  });
}

describe("the alarm topic's policy", () => {
  const alarms = alarmsOf(template);

  it("lets CloudWatch publish every alarm's notification to the topic it names", async () => {
    // Assert
    expect(alarms).toHaveLength(5);
    for (const alarm of alarms) {
      expect(alarm.topics, alarm.id).toHaveLength(1);
      for (const topic of alarm.topics) expect(await cloudWatchPublishes(template, topic, alarm.arn), alarm.id).toBe("Allowed");
    }
  });

  it("still refuses to publish over plain HTTP", async () => {
    // Assert
    for (const alarm of alarms) {
      for (const topic of alarm.topics) {
        expect(await cloudWatchPublishes(template, topic, alarm.arn, { "aws:SecureTransport": "false" }), alarm.id).toBe("ExplicitlyDenied");
      }
    }
  });

  it("lets no one else publish: another account's alarm, another service, another account's principal", async () => {
    // Arrange
    const topic = alarms[0]!.topics[0]!;
    const foreignAlarm = `arn:aws:cloudwatch:${SYNTH_REGION}:999999999999:alarm:theirs`;

    // Assert
    expect(await cloudWatchPublishes(template, topic, foreignAlarm, { "aws:SourceAccount": "999999999999" })).toBe("ImplicitlyDenied");
    expect(await cloudWatchPublishes(template, topic, `arn:aws:cloudwatch:${SYNTH_REGION}:${SYNTH_ACCOUNT}:alarm:not-this-stacks`)).toBe(
      "ImplicitlyDenied",
    );
    const policy = resourcePolicyFor(template, topic);
    expect(await evaluate({ principal: "events.amazonaws.com", action: "sns:Publish", resource: topic, resourcePolicy: policy })).toBe("ImplicitlyDenied");
    expect(await evaluate({ principal: "arn:aws:iam::999999999999:root", action: "sns:Publish", resource: topic, resourcePolicy: policy })).toBe(
      "ImplicitlyDenied",
    );
  });

  it("is what was broken: with only the HTTPS Deny (CDK's enforceSSL alone), no alarm could publish", async () => {
    // Arrange: the topic policy as it was, its Allow removed
    const broken = copyOf(template);
    for (const [, policy] of ofType(broken, "AWS::SNS::TopicPolicy")) {
      const document = policy.Properties.PolicyDocument as PolicyDocument;
      document.Statement = document.Statement.filter((s) => s.Effect !== "Allow");
    }

    // Assert
    for (const alarm of alarmsOf(broken)) {
      for (const topic of alarm.topics) expect(await cloudWatchPublishes(broken, topic, alarm.arn), alarm.id).toBe("ImplicitlyDenied");
    }
  });

  it("needs no key policy: the topic is not KMS-encrypted (an encrypted one would need CloudWatch in its key's policy)", () => {
    // Assert: if this fails, evaluate kms:GenerateDataKey* and kms:Decrypt for cloudwatch.amazonaws.com under the key policy here
    for (const [id, topic] of ofType(template, "AWS::SNS::Topic")) expect(topic.Properties.KmsMasterKeyId, id).toBeUndefined();
  });
});

// --- (e) What sst deploy adds itself ------------------------------------------------------------------------------

describe("SST's own custom-resource handler, at deploy time", () => {
  // Present only because the synthesis ran SST's deploy path (with its bootstrap look-up) and deploy builds sourcemaps.
  const uploaders = ofType(template, "Custom::SourcemapUploader");

  it("may copy every function's sourcemap from CDK's asset bucket into SST's bootstrap bucket (a failed copy fails the deploy)", async () => {
    // Arrange: what its SourcemapUploader does on Create (sst/support/custom-resources): one CopyObject per function
    expect(uploaders).toHaveLength(1);
    const [[, uploader]] = uploaders as [[string, Resource]];
    const props = resolve(uploader.Properties) as { app: string; stage: string; tarBucket: string; srcBucket: string; sourcemaps: [string, string][] };
    const handler = resources[(uploader.Properties.ServiceToken as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"][0]]!;
    const role = roleOf(handler.Properties.Role);

    // Assert: CopyObject reads the source object and writes the target one
    expect(props.sourcemaps).toHaveLength(Object.keys(workflow.bundles).length);
    for (const [tarKey, srcKey] of props.sourcemaps) {
      const copy = `${tarKey} ← ${srcKey}`;
      expect(await asRole(template, role, { action: "s3:GetObject", resource: `arn:aws:s3:::${props.srcBucket}/${srcKey}` }), copy).toBe("Allowed");
      const target = `arn:aws:s3:::${props.tarBucket}/sourcemap/${props.app}/${props.stage}/${tarKey}/${srcKey}`;
      expect(await asRole(template, role, { action: "s3:PutObject", resource: target }), copy).toBe("Allowed");
    }
    // ...and nothing of any other bucket
    expect(await asRole(template, role, { action: "s3:GetObject", resource: "arn:aws:s3:::some-bucket/donors.csv" })).toBe("ImplicitlyDenied");
  });
});
