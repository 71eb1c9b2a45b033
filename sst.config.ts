import type { SSTConfig } from "sst";
import { NODEJS_BUNDLING } from "./stacks/bundling";
import { Workflow } from "./stacks/Workflow";

export default {
  config() {
    return { name: "fundraise-sync", region: process.env.AWS_REGION ?? "us-east-1" };
  },
  stacks(app) {
    app.setDefaultFunctionProps({
      runtime: "nodejs22.x",
      architecture: "arm_64",
      memorySize: 256,
      nodejs: NODEJS_BUNDLING,
    });
    app.stack(Workflow);
  },
} satisfies SSTConfig;
