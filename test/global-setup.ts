import type { TestProject } from "vitest/node";
import { type SynthesizedWorkflow, synthesizeWorkflow } from "../stacks/synthesize";

declare module "vitest" {
  export interface ProvidedContext {
    /**
     * The real `sst.config.ts`, synthesized once per run the way `sst deploy` does (SST's own loader and synth,
     * `stacks/synthesize.ts`); test files that each synthesized would race on `.sst/`.
     */
    workflow: SynthesizedWorkflow;
  }
}

export default async function setup(project: TestProject) {
  project.provide("workflow", await synthesizeWorkflow("test"));
}
