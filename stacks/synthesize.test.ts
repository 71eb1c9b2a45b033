import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";

const workflow = inject("workflow");

describe("synthesis through SST's own config loader (what sst deploy runs)", () => {
  it("ran the config as the loader bundled it, stacks/ inside, not as tsx or vitest import it", () => {
    // Assert: esbuild's metafile of the loaded config names the files it bundled
    expect(workflow.configBundleInputs).toEqual(expect.arrayContaining(["sst.config.ts", "stacks/Workflow.ts", "stacks/bundling.ts"]));
  });

  it("built WriteToAirtable with the shims of stacks/shims, not node-fetch", async () => {
    // Arrange
    const bundle = await readFile(workflow.bundles.WriteToAirtable!, "utf8");

    // Assert: the node-fetch shim's one line is there; node-fetch's own source (which names its repository) is not
    expect(bundle).toContain("globalThis.fetch(");
    expect(bundle).not.toContain("bitinn/node-fetch");
  });

  it("resolves a path in stacks/ inside the loader's bundle, where import.meta.url names the project root", async () => {
    // Arrange: a module of stacks/ loaded the way sst deploy loads sst.config.ts
    const { load } = await import("sst/stacks/build.js");
    const [, probe] = (await load(path.resolve("stacks/loader-probe.ts"))) as readonly [unknown, { moduleUrl: string; aliases: Record<string, string> }];
    const root = process.cwd();

    // Assert: inside the bundle, "this file" is `.loader-probe.<time>.mjs` in the root, so a path built from it (the
    // old `path.join(dirname(import.meta.url), "shims", …)`) names nothing...
    const bundledDir = path.dirname(fileURLToPath(probe.moduleUrl));
    expect(bundledDir).toBe(root);
    expect(existsSync(path.join(bundledDir, "shims", "node-fetch.cjs"))).toBe(false);
    // ...while each alias, resolved as esbuild resolves one (in its working directory, the root), is the shim
    expect(Object.keys(probe.aliases)).toHaveLength(3);
    for (const [pkg, alias] of Object.entries(probe.aliases)) {
      expect(existsSync(path.resolve(root, alias)), `${pkg} → ${alias}`).toBe(true);
      expect(path.dirname(path.resolve(root, alias))).toBe(path.join(root, "stacks", "shims"));
    }
  });
});
