import { Aspects, type Stack } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import {
  AwsSolutionsChecks,
  type INagLogger,
  type NagLoggerErrorData,
  type NagLoggerNonComplianceData,
  NagSuppressions,
  ServerlessChecks,
} from "cdk-nag";
import type { IConstruct } from "constructs";

/** One unsuppressed finding of a cdk-nag rule pack: what the tests refuse. */
export interface NagFinding {
  /** e.g. `AwsSolutions-IAM5`, `Serverless-LambdaTracing`. */
  ruleId: string;
  /** What exactly was found, e.g. `Resource::*` for a wildcard. */
  findingId: string;
  /** The construct path of the offending resource, e.g. `test-fundraise-sync-Workflow/DrainDonations/Role/Resource`. */
  path: string;
  /** Why the rule exists, in the pack's words. */
  info: string;
}

/** Collects what the packs report, instead of reading it back from annotations. */
class FindingCollector implements INagLogger {
  constructor(private readonly findings: NagFinding[]) {}
  onNonCompliance(data: NagLoggerNonComplianceData): void {
    this.findings.push({ ruleId: data.ruleId, findingId: data.findingId, path: data.resource.node.path, info: data.ruleInfo });
  }
  /** A rule that could not evaluate a resource (e.g. an unresolvable value) is a finding too: nobody checked it. */
  onError(data: NagLoggerErrorData): void {
    this.findings.push({ ruleId: data.ruleId, findingId: "CdkNagValidationFailure", path: data.resource.node.path, info: data.errorMessage });
  }
  onCompliance(): void {}
  onSuppressed(): void {}
  onSuppressedError(): void {}
  onNotApplicable(): void {}
}

/**
 * Applies cdk-nag's AwsSolutions and Serverless packs to every stack of `scope` (call it after the stacks are built,
 * before synthesis). The returned array fills in while the app synthesizes: every finding not suppressed in
 * {@link suppressReviewedFindings}.
 */
export function checkRulePacks(scope: IConstruct): NagFinding[] {
  const findings: NagFinding[] = [];
  const props = { reports: false, additionalLoggers: [new FindingCollector(findings)] };
  Aspects.of(scope).add(new AwsSolutionsChecks(props));
  Aspects.of(scope).add(new ServerlessChecks(props));
  return findings;
}

/** What {@link suppressReviewedFindings} needs to name the reviewed resources. */
export interface ReviewedResources {
  stateMachine: IConstruct;
  deadLetterQueue: IConstruct;
  schedule: IConstruct;
  leaseTable: IConstruct;
}

/** The managed policy SST gives every function's role: CloudWatch Logs writes only. */
const BASIC_EXECUTION_ROLE = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/**
 * The findings reviewed and accepted, each with its reason. Anything else the packs report fails `npm test`
 * (`stacks/nag.test.ts`): fix it, or add it here with a reason a reviewer can check. Wildcards are suppressed by
 * their exact finding (`appliesTo`), and `stacks/Workflow.test.ts` asserts which actions they carry.
 */
export function suppressReviewedFindings(stack: Stack, reviewed: ReviewedResources): void {
  const functions = stack.node.findAll().filter((child): child is lambda.Function => child instanceof lambda.Function);
  NagSuppressions.addResourceSuppressions(
    functions,
    [
      {
        id: "AwsSolutions-IAM4",
        appliesTo: [BASIC_EXECUTION_ROLE],
        reason: "AWSLambdaBasicExecutionRole grants only logs:CreateLogGroup, CreateLogStream and PutLogEvents.",
      },
      {
        id: "AwsSolutions-IAM5",
        appliesTo: ["Resource::*"],
        reason: "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource but *; nothing else is granted on * (asserted in Workflow.test.ts).",
      },
      {
        id: "AwsSolutions-L1",
        reason: "nodejs22.x on purpose: the local runtime and the tests run the same handlers on Node 22; a runtime move is its own change.",
      },
      {
        id: "Serverless-LambdaLatestVersion",
        reason: "nodejs22.x on purpose: the local runtime and the tests run the same handlers on Node 22; a runtime move is its own change.",
      },
      {
        id: "Serverless-LambdaDLQ",
        reason: "Invoked synchronously only (Step Functions, CloudFormation): a Lambda DLQ catches asynchronous events; the drain dead-letters failures itself.",
      },
    ],
    true,
  );
  // `sst deploy` adds this policy itself while it finishes the app (after the stacks are built, so it cannot be named
  // here): SST's handler copies each function's sourcemap from CDK's asset bucket into SST's bootstrap bucket.
  NagSuppressions.addStackSuppressions(stack, [
    {
      id: "AwsSolutions-IAM5",
      appliesTo: [{ regex: "/^Resource::arn:<AWS::Partition>:s3:::(cdk-[a-z0-9]+-assets|sst-bootstrap)-\\d{12}-[a-z0-9-]+\\/\\*$/g" }],
      reason:
        "SST's SourcemapUploaderPolicy: objects of the CDK asset bucket and SST's bootstrap bucket only, whose keys are content hashes (stacks/policies.test.ts evaluates the copies).",
    },
  ]);
  const sstHandler = stack.node.tryFindChild("CustomResourceHandler");
  if (sstHandler) {
    NagSuppressions.addResourceSuppressions(sstHandler, [
      {
        id: "Serverless-LambdaTracing",
        reason: "SST's own custom-resource handler runs at deploy time only, never in a drain: there is no drain trace for it to join.",
      },
    ]);
  }
  NagSuppressions.addResourceSuppressions(
    reviewed.stateMachine,
    [
      {
        id: "AwsSolutions-IAM5",
        appliesTo: ["Resource::*"],
        reason: "CloudWatch Logs delivery and X-Ray actions take no narrower resource; nothing else is granted on * (asserted in Workflow.test.ts).",
      },
      {
        id: "AwsSolutions-IAM5",
        appliesTo: [{ regex: "/^Resource::<[A-Za-z0-9]+\\.Arn>:\\*$/g" }],
        reason: "LambdaInvoke's grant: the versions and aliases of the drain's own functions, which the role may invoke anyway.",
      },
      {
        id: "AwsSolutions-IAM5",
        appliesTo: [{ regex: "/^Resource::arn:<AWS::Partition>:states:[^:]+:[^:]+:execution:[^:*]+-DrainDonations:\\*$/g" }],
        reason: "DescribeExecution of the lease's holder: any execution of this state machine (their names are not known in advance), and no other machine's.",
      },
    ],
    true,
  );
  NagSuppressions.addResourceSuppressions(reviewed.leaseTable, [
    {
      id: "AwsSolutions-DDB3",
      reason: "It holds only the drain lease, which the next drain takes again if it is lost: there is nothing to recover to a point in time.",
    },
  ]);
  const emailSubscriptions = stack.node
    .findAll()
    .filter((child): child is sns.CfnSubscription => child instanceof sns.CfnSubscription && child.protocol === "email");
  if (emailSubscriptions.length > 0) {
    NagSuppressions.addResourceSuppressions(emailSubscriptions, [
      {
        id: "Serverless-SNSRedrivePolicy",
        reason: "An alarm e-mail SNS could not deliver is nothing to replay: the alarm stays in ALARM in the CloudWatch console.",
      },
    ]);
  }
  NagSuppressions.addResourceSuppressions(reviewed.deadLetterQueue, [
    { id: "Serverless-SQSRedrivePolicy", reason: "It is the dead-letter queue: there is nowhere further to redrive to; an alarm watches it." },
  ]);
  NagSuppressions.addResourceSuppressions(reviewed.schedule, [
    {
      id: "Serverless-EventBusDLQ",
      reason: "The scheduled event is an empty {}: nothing to keep. The next tick starts a drain again, and DrainNotStartedAlarm reports the failure.",
    },
  ]);
}
