/**
 * What the deployed stack asks of AWS, read from the synthesized template the way AWS would see it: every reference
 * resolved to the ARN or URL CloudFormation would give it, every policy attached to a role, every call a state of
 * the drain makes. `stacks/policies.test.ts` hands these to an IAM policy evaluator.
 */
import { SYNTH_ACCOUNT, SYNTH_REGION } from "./synthesize";
import type { AslGraph, AslState } from "./timing";

type Template = Record<string, any>;
type Resources = Record<string, { Type: string; Properties?: Record<string, any> }>;

/** An IAM policy document (identity or resource). */
export interface PolicyDocument {
  Version?: string;
  Statement: Record<string, unknown>[];
}

/** One request a principal makes: an IAM action on one resource ARN (`*` for actions that take none). */
export interface AwsRequest {
  action: string;
  resource: string;
  /** Where the request comes from, for a failure message: a state name, a function, the schedule. */
  from: string;
}

/**
 * The name property CloudFormation gives a fixed physical name by, e.g. `QueueName`, `TopicName`, `LogGroupName`,
 * `StateMachineName`, or `Name` (`AWS::SSM::Parameter`, `AWS::Events::Rule`). Without it CloudFormation makes a
 * unique name up.
 */
export function namePropertyOf(type: string): string[] {
  const kind = type.split("::")[2] ?? "";
  return [`${kind}Name`, "Name", ...(NAME_PROPERTY_EXCEPTIONS[type] ?? [])];
}

/** Types whose name property does not follow `<Kind>Name`. */
const NAME_PROPERTY_EXCEPTIONS: Record<string, string[]> = { "AWS::DynamoDB::GlobalTable": ["TableName"] };

/** The fixed physical name a resource was given in the template, if any (unresolved: may be a reference). */
export function explicitNameOf(resource: { Type: string; Properties?: Record<string, unknown> }): unknown {
  for (const property of namePropertyOf(resource.Type)) {
    if (resource.Properties?.[property] !== undefined) return resource.Properties[property];
  }
  return undefined;
}

const PSEUDO: Record<string, string> = {
  "AWS::Partition": "aws",
  "AWS::Region": SYNTH_REGION,
  "AWS::AccountId": SYNTH_ACCOUNT,
  "AWS::URLSuffix": "amazonaws.com",
};

const arnOf = (service: string, resource: string, region: string = SYNTH_REGION) =>
  `arn:aws:${service}:${region}:${SYNTH_ACCOUNT}:${resource}`;

/** The ARN of the queue at an SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`). */
export function queueArnOfUrl(url: string): string {
  const match = /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com\/(\d{12})\/([^/]+)$/.exec(url);
  if (!match) throw new Error(`Not an SQS queue URL: ${url}`);
  return `arn:aws:sqs:${match[1]}:${match[2]}:${match[3]}`;
}

/**
 * Resolves `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select` and `Fn::Split` as CloudFormation would, in the
 * placeholder account and region: a queue's `Ref` is its URL, a topic's its ARN, a role's `Arn` an IAM role ARN.
 * Physical names are the template's fixed names, or the logical id where CloudFormation would make one up. An
 * attribute it does not know fails loudly rather than resolving to something a policy could match by accident.
 */
export function resolverFor(template: Template): (value: unknown) => any {
  const resources = template.Resources as Resources;
  const typeOf = (id: string) => {
    const type = resources[id]?.Type;
    if (!type) throw new Error(`No resource ${id} in the template`);
    return type;
  };
  const nameOf = (id: string): string => {
    const name = explicitNameOf(resources[id]!);
    return name === undefined ? id : String(resolve(name));
  };
  const ref = (id: string): string => {
    if (PSEUDO[id] !== undefined) return PSEUDO[id]!;
    const name = nameOf(id);
    switch (typeOf(id)) {
      case "AWS::SQS::Queue":
        return `https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/${name}`;
      case "AWS::SNS::Topic":
        return arnOf("sns", name);
      case "AWS::StepFunctions::StateMachine":
        return arnOf("states", `stateMachine:${name}`);
      default: // functions, roles, tables, log groups, parameters, rules, alarms: their name
        return name;
    }
  };
  const getAtt = (id: string, attribute: string): string => {
    const type = typeOf(id);
    const name = nameOf(id);
    const arns: Record<string, () => string> = {
      "AWS::SQS::Queue": () => arnOf("sqs", name),
      "AWS::Lambda::Function": () => arnOf("lambda", `function:${name}`),
      "AWS::IAM::Role": () => `arn:aws:iam::${SYNTH_ACCOUNT}:role/${name}`,
      "AWS::DynamoDB::Table": () => arnOf("dynamodb", `table/${name}`),
      "AWS::DynamoDB::GlobalTable": () => arnOf("dynamodb", `table/${name}`), // CDK's TableV2
      "AWS::Logs::LogGroup": () => arnOf("logs", `log-group:${name}:*`),
      "AWS::CloudWatch::Alarm": () => arnOf("cloudwatch", `alarm:${name}`),
      "AWS::StepFunctions::StateMachine": () => arnOf("states", `stateMachine:${name}`),
      "AWS::Events::Rule": () => arnOf("events", `rule/${name}`),
      "AWS::KMS::Key": () => arnOf("kms", `key/${id}`),
      "AWS::SNS::Topic": () => arnOf("sns", name),
    };
    if (attribute === "Arn" && arns[type]) return arns[type]!();
    if (type === "AWS::SQS::Queue" && attribute === "QueueUrl") return ref(id);
    if (type === "AWS::SQS::Queue" && attribute === "QueueName") return name;
    if (type === "AWS::SNS::Topic" && attribute === "TopicArn") return ref(id);
    if (type === "AWS::SNS::Topic" && attribute === "TopicName") return name;
    if (type === "AWS::StepFunctions::StateMachine" && attribute === "Name") return name;
    if (type === "AWS::KMS::Key" && attribute === "KeyId") return id;
    throw new Error(`resolverFor does not know ${type}.${attribute} (${id}): add it`);
  };
  const sub = (text: string, variables: Record<string, unknown> = {}): string =>
    text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      if (name in variables) return String(resolve(variables[name]));
      const [id, attribute] = name.split(".");
      return attribute ? getAtt(id!, attribute) : ref(id!);
    });
  const resolve = (node: unknown): any => {
    if (Array.isArray(node)) return node.map(resolve);
    if (node === null || typeof node !== "object") return node;
    const entries = Object.entries(node);
    if (entries.length === 1) {
      const [[key, arg]] = entries as [[string, any]];
      switch (key) {
        case "Ref":
          return ref(arg);
        case "Fn::GetAtt":
          return typeof arg === "string" ? getAtt(arg.split(".")[0]!, arg.split(".").slice(1).join(".")) : getAtt(arg[0], arg[1]);
        case "Fn::Join":
          return (resolve(arg[1]) as unknown[]).join(arg[0]);
        case "Fn::Sub":
          return typeof arg === "string" ? sub(arg) : sub(arg[0], arg[1]);
        case "Fn::Select":
          return (resolve(arg[1]) as unknown[])[Number(resolve(arg[0]))];
        case "Fn::Split":
          return String(resolve(arg[1])).split(arg[0]);
      }
      if (key.startsWith("Fn::")) throw new Error(`resolverFor does not know ${key}: add it`);
    }
    return Object.fromEntries(entries.map(([key, child]) => [key, resolve(child)]));
  };
  return resolve;
}

/**
 * AWS managed policies a role of this stack may carry, as AWS publishes them (IAM console, "AWS managed policies").
 * A managed policy not listed here fails the evaluation: add its document.
 */
export const AWS_MANAGED_POLICIES: Record<string, PolicyDocument> = {
  "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], Resource: "*" }],
  },
};

/** Every policy document attached to a role: its inline policies, `AWS::IAM::Policy` resources and managed policies. */
export function policiesOfRole(template: Template, roleLogicalId: string): { name: string; policy: PolicyDocument }[] {
  const resources = template.Resources as Resources;
  const resolve = resolverFor(template);
  const role = resources[roleLogicalId];
  if (role?.Type !== "AWS::IAM::Role") throw new Error(`${roleLogicalId} is not a role`);
  const inline = ((role.Properties?.Policies ?? []) as { PolicyName: string; PolicyDocument: unknown }[]).map((p) => ({
    name: `${roleLogicalId}/${p.PolicyName}`,
    policy: resolve(p.PolicyDocument) as PolicyDocument,
  }));
  const attached = Object.entries(resources)
    .filter(([, r]) => r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy")
    .filter(([, r]) => ((r.Properties?.Roles ?? []) as unknown[]).some((role) => (role as { Ref?: string }).Ref === roleLogicalId))
    .map(([id, r]) => ({ name: id, policy: resolve(r.Properties!.PolicyDocument) as PolicyDocument }));
  const managed = ((role.Properties?.ManagedPolicyArns ?? []) as unknown[]).map((arn) => {
    const resolved = String(resolve(arn));
    const policy = AWS_MANAGED_POLICIES[resolved];
    if (!policy) throw new Error(`${roleLogicalId} has the managed policy ${resolved}, whose document AWS_MANAGED_POLICIES lacks`);
    return { name: resolved, policy };
  });
  return [...inline, ...attached, ...managed];
}

/** The logical id of the role a `Fn::GetAtt: [role, "Arn"]` names. */
export function roleOf(roleArn: unknown): string {
  const getAtt = (roleArn as { "Fn::GetAtt"?: [string, string] })["Fn::GetAtt"];
  if (!getAtt || getAtt[1] !== "Arn") throw new Error(`Not a reference to a role of this stack: ${JSON.stringify(roleArn)}`);
  return getAtt[0];
}

/**
 * The resource policy AWS evaluates with a request on `resourceArn`, if the stack gives that resource one: an
 * `AWS::SQS::QueuePolicy` of the queue, an `AWS::SNS::TopicPolicy` of the topic.
 */
export function resourcePolicyFor(template: Template, resourceArn: string): PolicyDocument | undefined {
  const resolve = resolverFor(template);
  const resources = template.Resources as Resources;
  const documents: PolicyDocument[] = [];
  for (const [, r] of Object.entries(resources)) {
    let targets: string[] = [];
    if (r.Type === "AWS::SQS::QueuePolicy") targets = (resolve(r.Properties!.Queues) as string[]).map(queueArnOfUrl);
    else if (r.Type === "AWS::SNS::TopicPolicy") targets = resolve(r.Properties!.Topics) as string[];
    else continue;
    if (targets.includes(resourceArn)) documents.push(resolve(r.Properties!.PolicyDocument) as PolicyDocument);
  }
  if (documents.length > 1) throw new Error(`${resourceArn} has ${documents.length} resource policies: AWS keeps only one`);
  return documents[0];
}

// --- The calls a state machine makes ------------------------------------------------------------------------------

/** SDK integration service names whose IAM prefix differs (`arn:aws:states:::aws-sdk:<service>:<action>`). */
const IAM_PREFIX_OF_SDK_SERVICE: Record<string, string> = {
  sfn: "states",
  cloudwatchlogs: "logs",
  eventbridge: "events",
  elasticloadbalancingv2: "elasticloadbalancing",
};

/** SQS batch APIs are authorized as their single-message actions (SQS API reference, "Actions"). */
const BATCH_ACTION_OF: Record<string, string> = {
  "sqs:SendMessageBatch": "sqs:SendMessage",
  "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
  "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
};

/** The optimized DynamoDB integrations (`arn:aws:states:::dynamodb:<api>`), each authorized as its own action. */
const DYNAMODB_APIS = ["putItem", "getItem", "updateItem", "deleteItem"];

const pascal = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

/**
 * A parameter's value as the deployed state would send it: a literal, or a context-object path whose value is known
 * before the run (`$$.StateMachine.Id`, `$$.Execution.Id`). `undefined` when it comes from the state's input.
 */
function parameterValue(parameters: Record<string, unknown>, key: string, machineArn: string): string | undefined {
  if (typeof parameters[key] === "string") return parameters[key] as string;
  const path = parameters[`${key}.$`];
  if (path === undefined) return undefined;
  if (path === "$$.StateMachine.Id") return machineArn;
  if (path === "$$.Execution.Id") return executionArnOf(machineArn, "this-execution");
  return undefined;
}

const executionArnOf = (machineArn: string, execution: string) => `${machineArn.replace(":stateMachine:", ":execution:")}:${execution}`;

/**
 * The resource of an API call, from the parameters that name it. An execution ARN taken from the state's input is
 * taken to be one of this machine's own: the drain only ever looks at its own executions.
 */
function resourceOfParameters(parameters: Record<string, unknown>, machineArn: string, state: string): string {
  const value = (key: string) => parameterValue(parameters, key, machineArn);
  const named = (key: string) => key in parameters || `${key}.$` in parameters;
  const known = (key: string): string => {
    const found = value(key);
    if (found === undefined) throw new Error(`${state}: ${key} comes from the state's input; its resource cannot be derived`);
    return found;
  };
  if (named("QueueUrl")) return queueArnOfUrl(known("QueueUrl"));
  if (named("TableName")) {
    const table = known("TableName");
    return table.startsWith("arn:") ? table : arnOf("dynamodb", `table/${table}`);
  }
  if (named("ExecutionArn")) return value("ExecutionArn") ?? executionArnOf(machineArn, "an-execution");
  if (named("StateMachineArn")) return known("StateMachineArn");
  if (named("TopicArn")) return known("TopicArn");
  if (named("FunctionName")) {
    const fn = known("FunctionName");
    return fn.startsWith("arn:") ? fn : arnOf("lambda", `function:${fn}`);
  }
  return "*";
}

/** The requests one Task state makes, derived from its `Resource` and `Parameters`. */
export function requestsOfTask(name: string, state: AslState, machineArn: string): AwsRequest[] {
  const resource = state.Resource as string;
  const parameters = (state.Parameters ?? {}) as Record<string, unknown>;
  const request = (action: string, on: string): AwsRequest => ({ action, resource: on, from: name });
  // `.sync`, `.sync:2` and `.waitForTaskToken` are patterns of the same call.
  const [base, pattern] = resource.split(/\.(?=sync|waitForTaskToken)/) as [string, string | undefined];

  if (/^arn:aws:lambda:/.test(base)) return [request("lambda:InvokeFunction", base)];
  const sdk = /^arn:aws:states:::aws-sdk:([a-z0-9]+):([A-Za-z0-9]+)$/.exec(base);
  if (sdk) {
    const action = `${IAM_PREFIX_OF_SDK_SERVICE[sdk[1]!] ?? sdk[1]}:${pascal(sdk[2]!)}`;
    return [request(BATCH_ACTION_OF[action] ?? action, resourceOfParameters(parameters, machineArn, name))];
  }
  const optimized = /^arn:aws:states:::([a-z]+):([A-Za-z]+)$/.exec(base);
  if (!optimized) throw new Error(`${name}: no IAM mapping for Resource ${resource} (stacks/aws-requests.ts)`);
  const [, service, api] = optimized as unknown as [string, string, string];
  const target = resourceOfParameters(parameters, machineArn, name);
  switch (`${service}:${api}`) {
    case "lambda:invoke":
      return [request("lambda:InvokeFunction", target)];
    case "sqs:sendMessage":
      return [request("sqs:SendMessage", target)];
    case "sns:publish":
      return [request("sns:Publish", target)];
    case "states:startExecution": {
      const start = [request("states:StartExecution", target)];
      if (!pattern?.startsWith("sync")) return start;
      // Waiting for the child: Step Functions polls it and manages its own EventBridge rule
      // ("IAM policies for starting a new AWS Step Functions state machine execution").
      const child = executionArnOf(target, "a-child-execution");
      const rule = arnOf("events", "rule/StepFunctionsGetEventsForStepFunctionsExecutionRule");
      return [
        ...start,
        request("states:DescribeExecution", child),
        request("states:StopExecution", child),
        ...["events:PutTargets", "events:PutRule", "events:DescribeRule"].map((action) => request(action, rule)),
      ];
    }
  }
  if (service === "dynamodb" && DYNAMODB_APIS.includes(api)) return [request(`dynamodb:${pascal(api)}`, target)];
  throw new Error(`${name}: no IAM mapping for Resource ${resource} (stacks/aws-requests.ts)`);
}

/** Every Task state of a graph and of the graphs nested in it (Map item processors, Parallel branches). */
export function taskStatesOf(graph: AslGraph): [string, AslState][] {
  return Object.entries(graph.States).flatMap(([name, state]) => [
    ...(state.Type === "Task" ? [[name, state] as [string, AslState]] : []),
    ...(state.ItemProcessor ? taskStatesOf(state.ItemProcessor) : []),
    ...(state.Iterator ? taskStatesOf(state.Iterator) : []),
    ...(((state as { Branches?: AslGraph[] }).Branches ?? []).flatMap(taskStatesOf)),
  ]);
}

/**
 * Every request a state machine resource makes with its role: each Task state's call, and what its own settings
 * make Step Functions do: deliver logs ("Logging using CloudWatch Logs": the log delivery actions take `*`) and send
 * X-Ray traces.
 */
export function requestsOfStateMachine(template: Template, stateMachineLogicalId: string): AwsRequest[] {
  const resolve = resolverFor(template);
  const machine = (template.Resources as Resources)[stateMachineLogicalId]!;
  const machineArn = resolve({ Ref: stateMachineLogicalId }) as string;
  const definition = JSON.parse(resolve(machine.Properties!.DefinitionString) as string) as AslGraph;
  const requests = taskStatesOf(definition).flatMap(([name, state]) => requestsOfTask(name, state, machineArn));
  if (machine.Properties!.LoggingConfiguration) {
    const logDelivery = ["CreateLogDelivery", "GetLogDelivery", "UpdateLogDelivery", "DeleteLogDelivery", "ListLogDeliveries"];
    const logPolicy = ["PutResourcePolicy", "DescribeResourcePolicies", "DescribeLogGroups"];
    for (const action of [...logDelivery, ...logPolicy]) requests.push({ action: `logs:${action}`, resource: "*", from: "LoggingConfiguration" });
  }
  if (machine.Properties!.TracingConfiguration?.Enabled) {
    for (const action of ["PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets"]) {
      requests.push({ action: `xray:${action}`, resource: "*", from: "TracingConfiguration" });
    }
  }
  return requests;
}
