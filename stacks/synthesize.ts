import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CfnElement, Stack } from "aws-cdk-lib";
import type { SSTConfig } from "sst";
import type { App } from "sst/constructs";
import type { NagFinding } from "./nag";
import type { AslGraph } from "./timing";

/** Placeholder account and region of an offline synthesis: no AWS account is needed (or reachable). */
export const SYNTH_ACCOUNT = "123456789012";
export const SYNTH_REGION = "us-east-1";

/** The URL a queue's references resolve to in a synthesized definition (the local runtime replaces it). */
export const placeholderQueueUrl = (construct: string) => `https://sqs.${SYNTH_REGION}.amazonaws.com/${SYNTH_ACCOUNT}/${construct}`;

/**
 * The state machine exactly as `sst deploy` would create it, with every CloudFormation reference resolved to a
 * placeholder that names the construct behind it, e.g. `arn:aws:lambda:us-east-1:123456789012:function:Validate`
 * or the queue URL {@link placeholderQueueUrl} gives for `DonationsQueue`.
 */
export interface SynthesizedWorkflow {
  /** The CloudFormation template of the Workflow stack. */
  template: Record<string, any>;
  /** The state machine's ASL, parsed from its resolved `DefinitionString`. */
  definition: AslGraph & { Comment?: string; TimeoutSeconds?: number };
  /** CloudFormation logical id → the construct id it was resolved to (`Validate`, `DonationsQueue`, …). */
  constructIds: Record<string, string>;
  /** What cdk-nag's AwsSolutions and Serverless packs found and nobody suppressed with a reason (`stacks/nag.ts`). */
  nagFindings: NagFinding[];
  /** Each function's construct id → the absolute path of the bundle this synthesis built for it (esbuild's `.mjs`). */
  bundles: Record<string, string>;
  /** The files SST's config loader bundled into the config it ran (esbuild's metafile, relative to the root). */
  configBundleInputs: string[];
}

/** The id of the app's one stack (`app.stack(Workflow)` names it after the function). */
export const WORKFLOW_STACK_ID = "Workflow";

/**
 * Synthesizes the real `sst.config.ts` offline the way `sst deploy` does (SST v2 + CDK, every function bundled by
 * esbuild) and resolves the state machine's definition. Takes a few seconds; see {@link synthesizeWorkflowCached}.
 *
 * It runs the CLI's own code (`sst/cli/commands/deploy.js`): `initProject`, then `Stacks.load`, which esbuild-bundles
 * the config and everything it imports from `stacks/` into `<cwd>/.sst.config.<time>.mjs`, imports that file and
 * removes it (so whatever works only when `stacks/` runs from its own files, under tsx or vitest, fails here as it
 * would fail `sst deploy`), then `Stacks.synth` with `mode: "deploy"` and every stack active, so every function is
 * built. The AWS reads synth makes first (the account, the bootstrap stacks) are answered offline
 * (`stacks/offline-aws.ts`) with the placeholder account.
 */
export async function synthesizeWorkflow(stage = "test"): Promise<SynthesizedWorkflow> {
  process.env.SST_TELEMETRY_DISABLED = "1";
  // `sst deploy --stage <stage> --region <region>`. Without an explicit stage SST prompts for a personal one, and hangs in CI.
  const { initProject, useProject } = await import("sst/project.js");
  await initProject({ stage, region: SYNTH_REGION });
  const project = useProject();
  const { Stacks } = await import("sst/stacks/index.js");
  const { Function: SstFunction } = await import("sst/constructs");
  const { Stack: CdkStack } = await import("aws-cdk-lib");
  const { checkRulePacks } = await import("./nag");
  const { withOfflineAws } = await import("./offline-aws");

  const [metafile, config] = (await Stacks.load(project.paths.config)) as readonly [{ inputs: Record<string, unknown> }, SSTConfig];
  let app: App | undefined;
  let nagFindings: NagFinding[] = [];
  // vitest sets NODE_ENV=test, which SST takes for its own unit tests: it would skip the bootstrap look-up and the
  // sourcemap upload that deploy adds. The CLI runs with whatever the user has, normally nothing.
  const nodeEnv = process.env.NODE_ENV;
  delete process.env.NODE_ENV;
  // The cloud assembly in a directory of its own (the CLI's is `.sst/dist`): a test run may synthesize in several
  // processes at once, and each reads its template back from there.
  const buildDir = await mkdtemp(path.join(tmpdir(), "fundraise-sync-synth-"));
  const assembly = await withOfflineAws({ account: SYNTH_ACCOUNT, region: SYNTH_REGION }, () =>
    Stacks.synth({
      buildDir,
      fn: async (built: App) => {
        app = built;
        await config.stacks(built as never);
        // The rule packs are aspects: added after the stacks are built, they run when the app synthesizes.
        nagFindings = checkRulePacks(built);
      },
      mode: "deploy",
      isActiveStack: () => true, // `sst deploy` without a filter
    }),
  ).finally(() => {
    if (nodeEnv !== undefined) process.env.NODE_ENV = nodeEnv;
  });
  const stackId = app!.logicalPrefixedName(WORKFLOW_STACK_ID); // SST's `<stage>-<app>-Workflow`
  const stacks = app!.node.children.filter((child): child is Stack => CdkStack.isStack(child));
  const stack = stacks.find((child) => child.node.id === stackId);
  if (!stack) throw new Error(`No stack ${stackId} in the app, only: ${stacks.map((s) => s.node.id).join(", ")}`);
  // The template exactly as deploy hands it to CloudFormation: the cloud assembly's.
  const template = assembly.getStackByName(stack.stackName).template as Record<string, any>;
  await rm(buildDir, { recursive: true, force: true });

  const constructIds: Record<string, string> = {};
  for (const child of stack.node.findAll()) {
    const element = child as Partial<CfnElement>;
    if (element.logicalId === undefined || !("cfnResourceType" in child)) continue;
    const logicalId = stack.resolve(element.logicalId) as string;
    // Name a resource after its construct (`Validate`), not its CloudFormation child (`Resource`).
    const owner = child.node.id === "Resource" ? child.node.scope!.node.id : child.node.id;
    constructIds[logicalId] = owner;
  }

  const bundles: Record<string, string> = {};
  for (const child of stack.node.findAll()) {
    if (!(child instanceof SstFunction)) continue;
    // SST builds each function into `.sst/artifacts/<construct address>/`, the handler's path kept inside.
    const out = path.join(project.paths.artifacts, child.node.addr);
    const files = await readdir(out, { recursive: true });
    const bundle = files.find((file) => file.endsWith(".mjs"));
    if (bundle) bundles[child.node.id] = path.join(out, bundle);
  }

  const [stateMachine] = Object.values(template.Resources as Record<string, any>).filter(
    (resource) => resource.Type === "AWS::StepFunctions::StateMachine",
  );
  if (!stateMachine) throw new Error("The Workflow stack has no state machine");
  const definitionString = resolveReferences(stateMachine.Properties.DefinitionString, template, constructIds);
  const configBundleInputs = Object.keys(metafile.inputs);
  return { template, definition: JSON.parse(definitionString as string), constructIds, nagFindings, bundles, configBundleInputs };
}

/** Resolves `Fn::Join`, `Ref`, `Fn::GetAtt` and pseudo parameters to readable placeholders. */
export function resolveReferences(value: unknown, template: Record<string, any>, constructIds: Record<string, string>): unknown {
  const resolve = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(resolve);
    if (node === null || typeof node !== "object") return node;
    const entries = Object.entries(node);
    if (entries.length === 1) {
      const [[key, arg]] = entries as [[string, any]];
      if (key === "Fn::Join") return (resolve(arg[1]) as unknown[]).join(arg[0]);
      if (key === "Ref") return ref(arg);
      if (key === "Fn::GetAtt") return getAtt(arg[0], arg[1]);
    }
    return Object.fromEntries(entries.map(([key, child]) => [key, resolve(child)]));
  };
  const pseudo: Record<string, string> = {
    "AWS::Partition": "aws",
    "AWS::Region": SYNTH_REGION,
    "AWS::AccountId": SYNTH_ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
  };
  const typeOf = (logicalId: string): string => template.Resources?.[logicalId]?.Type ?? "";
  const nameOf = (logicalId: string) => constructIds[logicalId] ?? logicalId;
  const ref = (logicalId: string): string => {
    if (pseudo[logicalId]) return pseudo[logicalId];
    const name = nameOf(logicalId);
    if (typeOf(logicalId) === "AWS::SQS::Queue") return placeholderQueueUrl(name);
    return name;
  };
  const getAtt = (logicalId: string, attribute: string): string => {
    const name = nameOf(logicalId);
    switch (typeOf(logicalId)) {
      case "AWS::Lambda::Function":
        return `arn:aws:lambda:${SYNTH_REGION}:${SYNTH_ACCOUNT}:function:${name}`;
      case "AWS::SQS::Queue":
        return attribute === "QueueUrl" ? placeholderQueueUrl(name) : `arn:aws:sqs:${SYNTH_REGION}:${SYNTH_ACCOUNT}:${name}`;
      default:
        return `${name}.${attribute}`;
    }
  };
  return resolve(value);
}

/** The inputs whose change can change the synthesized workflow. */
const SOURCES = ["sst.config.ts", "stacks", "packages/core/src", "packages/functions/src", "package-lock.json"];

async function sourceHash(root: string): Promise<string> {
  const hash = createHash("sha256");
  const walk = async (relative: string): Promise<void> => {
    const full = path.join(root, relative);
    const entries = await readdir(full, { withFileTypes: true }).catch(() => undefined);
    if (!entries) {
      hash.update(relative).update(await readFile(full).catch(() => Buffer.alloc(0)));
      return;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.endsWith(".test.ts")) continue;
      await walk(path.join(relative, entry.name));
    }
  };
  for (const source of SOURCES) await walk(source);
  return hash.digest("hex").slice(0, 16);
}

/**
 * {@link synthesizeWorkflow}, cached in `.sst/local/` under a hash of the sources, so that a second `npm start`
 * does not bundle and synthesize again.
 */
export async function synthesizeWorkflowCached(root = process.cwd()): Promise<SynthesizedWorkflow & { cached: boolean }> {
  const file = path.join(root, ".sst", "local", `workflow-${await sourceHash(root)}.json`);
  try {
    return { ...(JSON.parse(await readFile(file, "utf8")) as SynthesizedWorkflow), cached: true };
  } catch {
    const synthesized = await synthesizeWorkflow("local");
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(synthesized));
    return { ...synthesized, cached: false };
  }
}
