import { describe, expect, it } from "vitest";
import { withOfflineAws } from "./offline-aws";

const aws = { account: "123456789012", region: "us-east-1" };
const post = (endpoint: string, form: Record<string, string>) =>
  fetch(endpoint, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form) });

describe("the AWS reads of SST's synthesis, answered offline", () => {
  it("answers the account and the bootstrap stacks, and refuses every other call", async () => {
    await withOfflineAws(aws, async () => {
      const endpoint = process.env.AWS_ENDPOINT_URL_STS!;
      expect(process.env.AWS_ENDPOINT_URL_CLOUDFORMATION).toBe(endpoint);
      expect(await (await post(endpoint, { Action: "GetCallerIdentity" })).text()).toContain("<Account>123456789012</Account>");
      expect(await (await post(endpoint, { Action: "DescribeStacks", StackName: "SSTBootstrap" })).text()).toContain("<OutputValue>7.4</OutputValue>");
      expect((await post(endpoint, { Action: "CreateStack", StackName: "Anything" })).status).toBe(400);
    });
  });

  it("names the unanswered call when the synthesis fails, and puts the environment back", async () => {
    // Arrange
    const before = process.env.AWS_ENDPOINT_URL_STS;

    // Act
    const run = withOfflineAws(aws, async () => {
      await post(process.env.AWS_ENDPOINT_URL_STS!, { Action: "AssumeRole" });
      throw new Error("synthesis failed");
    });

    // Assert
    await expect(run).rejects.toThrow(/does not answer.*AssumeRole/);
    expect(process.env.AWS_ENDPOINT_URL_STS).toBe(before);
  });
});
