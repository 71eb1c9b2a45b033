import type { SSTConfig } from "sst";
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
      // The runtime ships AWS SDK v3: leave it out of the bundles, and keep them small.
      nodejs: { format: "esm", minify: true, esbuild: { external: ["@aws-sdk/*"] } },
    });
    app.stack(Workflow);
  },
} satisfies SSTConfig;
