import type { FunctionProps } from "sst/constructs";

/** How every function is bundled (the app's default function props, `sst.config.ts`). */
export const NODEJS_BUNDLING = {
  format: "esm",
  minify: true,
  // The runtime ships AWS SDK v3: leave it out of the bundles, and keep them small.
  esbuild: { external: ["@aws-sdk/*"] },
} satisfies FunctionProps["nodejs"];

/**
 * Where the shims are, relative to the project root. Not relative to this file: SST's CLI bundles `sst.config.ts` with
 * everything it imports from `stacks/` into one `.sst.config.<time>.mjs` in the project root and runs that, so
 * `import.meta.url` here would name the root. esbuild resolves an alias in its working directory, which is the project
 * root while SST builds functions (its synth moves there, as `stacks/synthesize.ts` does), like the handler paths.
 */
export const SHIMS_DIRECTORY = "stacks/shims";

const shim = (file: string) => `./${SHIMS_DIRECTORY}/${file}`;

/**
 * {@link NODEJS_BUNDLING} for a function that uses airtable.js: its `node-fetch` and AbortController polyfills are
 * replaced by Node 22's own fetch and AbortController (`stacks/shims/`), which takes the bundle from 374 KB to a fifth. The
 * client and its behaviour are unchanged; the local runtime, which does not bundle, runs the real packages.
 * (A function's `nodejs` props replace the app's default ones whole, hence the spread.)
 */
export const AIRTABLE_CLIENT_BUNDLING = {
  ...NODEJS_BUNDLING,
  esbuild: {
    ...NODEJS_BUNDLING.esbuild,
    alias: {
      "node-fetch": shim("node-fetch.cjs"),
      "abort-controller": shim("abort-controller.cjs"),
      "abortcontroller-polyfill/dist/cjs-ponyfill": shim("abortcontroller-ponyfill.cjs"),
    },
  },
} satisfies FunctionProps["nodejs"];
