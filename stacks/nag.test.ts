import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { App, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { describe, expect, inject, it } from "vitest";
import { checkRulePacks } from "./nag";

describe("cdk-nag (AwsSolutions and Serverless packs)", () => {
  it("finds nothing unsuppressed in the synthesized app", () => {
    // Arrange
    const { nagFindings } = inject("workflow");

    // Assert: on failure this lists each finding's rule, what it found and where
    expect(nagFindings.map((f) => `${f.ruleId} ${f.findingId} at ${f.path}: ${f.info}`)).toEqual([]);
  });

  it("reports a new finding: a bare queue and a */* policy in a throwaway app", () => {
    // Arrange
    const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), "nag-")) });
    const stack = new Stack(app, "Throwaway");
    const queue = new sqs.Queue(stack, "BareQueue");
    const role = new iam.Role(stack, "TooBroad", { assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com") });
    role.addToPolicy(new iam.PolicyStatement({ actions: ["*"], resources: ["*"] }));
    const findings = checkRulePacks(app);

    // Act
    app.synth();

    // Assert
    const found = findings.map((f) => `${f.ruleId} ${f.path}`);
    expect(found).toContain(`AwsSolutions-SQS3 ${queue.node.path}/Resource`); // no dead-letter queue
    expect(found).toContain(`AwsSolutions-SQS4 ${queue.node.path}/Resource`); // plain HTTP allowed
    expect(found).toContain(`Serverless-SQSRedrivePolicy ${queue.node.path}/Resource`);
    expect(findings).toContainEqual(expect.objectContaining({ ruleId: "AwsSolutions-IAM5", findingId: "Action::*" }));
  });
});
