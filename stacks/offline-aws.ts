import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The AWS reads `sst deploy` makes before it synthesizes, answered offline: STS `GetCallerIdentity` (the account)
 * and CloudFormation `DescribeStacks` of the CDK and SST bootstrap stacks (where deploy puts assets and sourcemaps).
 * Any other call fails loudly, naming itself, so a new AWS call on SST's synthesis path cannot go unnoticed.
 */
export interface OfflineAws {
  account: string;
  region: string;
}

const xml = (action: string, result: string) =>
  `<${action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><${action}Result>${result}</${action}Result>` +
  `<ResponseMetadata><RequestId>offline</RequestId></ResponseMetadata></${action}Response>`;

const outputs = (values: Record<string, string>) =>
  Object.entries(values)
    .map(([key, value]) => `<member><OutputKey>${key}</OutputKey><OutputValue>${value}</OutputValue></member>`)
    .join("");

const stack = (name: string, values: Record<string, string>) =>
  `<Stacks><member><StackName>${name}</StackName><StackStatus>CREATE_COMPLETE</StackStatus>` +
  `<CreationTime>2025-01-01T00:00:00Z</CreationTime><Outputs>${outputs(values)}</Outputs></member></Stacks>`;

function answer({ account, region }: OfflineAws, form: URLSearchParams): string | undefined {
  const action = form.get("Action");
  if (action === "GetCallerIdentity") {
    return xml(action, `<Arn>arn:aws:iam::${account}:user/offline</Arn><UserId>OFFLINE</UserId><Account>${account}</Account>`);
  }
  if (action === "DescribeStacks" && form.get("StackName") === "CDKToolkit") {
    // Version 14 or later is what SST requires of the CDK bootstrap (sst/bootstrap.js).
    return xml(action, stack("CDKToolkit", { BootstrapVersion: "21", BucketName: `cdk-hnb659fds-assets-${account}-${region}` }));
  }
  if (action === "DescribeStacks" && form.get("StackName") === "SSTBootstrap") {
    // The version SST 2.49 deploys itself (LATEST_VERSION in sst/bootstrap.js): anything older makes it update.
    return xml(action, stack("SSTBootstrap", { Version: "7.4", BucketName: `sst-bootstrap-${account}-${region}` }));
  }
  return undefined;
}

/**
 * Runs `fn` with the AWS SDK pointed at a local stand-in (dummy credentials, `AWS_ENDPOINT_URL_STS` and
 * `AWS_ENDPOINT_URL_CLOUDFORMATION`), then puts the environment back as it was.
 */
export async function withOfflineAws<T>(aws: OfflineAws, fn: () => Promise<T>): Promise<T> {
  const unanswered: string[] = [];
  const server: Server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const form = new URLSearchParams(body);
      const reply = answer(aws, form);
      if (reply === undefined) {
        unanswered.push(`${form.get("Action") ?? request.url} ${form.get("StackName") ?? ""}`.trim());
        response.writeHead(400, { "content-type": "text/xml" });
        response.end(
          `<ErrorResponse><Error><Type>Sender</Type><Code>OfflineSynthesis</Code><Message>No AWS here: ${form.get("Action")}</Message></Error></ErrorResponse>`,
        );
        return;
      }
      response.writeHead(200, { "content-type": "text/xml" });
      response.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const variables: Record<string, string | undefined> = {
    // Placeholders, answered only by the stand-in above: the SDK needs some credentials to sign a request.
    AWS_ACCESS_KEY_ID: "offline-synthesis",
    AWS_SECRET_ACCESS_KEY: "offline",
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_ENDPOINT_URL_STS: endpoint,
    AWS_ENDPOINT_URL_CLOUDFORMATION: endpoint,
  };
  const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  const set = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  set(variables);
  try {
    return await fn();
  } catch (error) {
    if (unanswered.length > 0) {
      throw new Error(`Synthesis made AWS calls the offline stand-in does not answer (stacks/offline-aws.ts): ${unanswered.join(", ")}`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    set(saved);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
