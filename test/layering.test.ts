import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The layout is the architecture (docs/design.md, "Layout"): each package imports only the ones below it, and the
 * commands (`packages/cli`) are the one composition root on top. These tests read the import statements of every
 * source file, so a new import that breaks the layering fails here, not in a reviewer's head.
 */

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Bottom to top. A package may import (at run time) only packages listed before it. */
const LAYERS = ["core", "functions", "stacks", "airtable-emulator", "local", "console", "cli"] as const;
type Layer = (typeof LAYERS)[number];

/** Airtable's stand-in: any package's tests may talk to it over HTTP, as they would to Airtable. */
const STAND_IN: Layer = "airtable-emulator";

interface Import {
  from: Layer;
  file: string;
  to: Layer;
  typeOnly: boolean;
  test: boolean;
}

/** Which part of the tree a path (relative to the root) belongs to. */
function layerOf(relative: string): Layer | undefined {
  const [top, name] = relative.split("/");
  if (top === "stacks") return "stacks";
  if (top === "packages" && (LAYERS as readonly string[]).includes(name!)) return name as Layer;
  return undefined;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sourceFiles(full);
    return /\.tsx?$/.test(entry.name) ? [full] : [];
  });
}

/** Every import or re-export of another part of the tree, in `source` (the text of `file`). */
export function importsOf(file: string, source: string): Omit<Import, "from" | "file" | "test">[] {
  const found: Omit<Import, "from" | "file" | "test">[] = [];
  const statement = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
  for (const match of source.matchAll(statement)) {
    const specifier = match[3] ?? match[4]!;
    const typeOnly = match[2] !== undefined;
    let target: Layer | undefined;
    const named = /^@fundraise-sync\/([^/]+)/.exec(specifier);
    if (named) target = named[1] as Layer;
    else if (specifier.startsWith(".")) target = layerOf(path.relative(ROOT, path.resolve(path.dirname(file), specifier)));
    if (target) found.push({ to: target, typeOnly });
  }
  return found;
}

function allImports(): Import[] {
  const roots = [path.join(ROOT, "stacks"), ...LAYERS.filter((layer) => layer !== "stacks").map((layer) => path.join(ROOT, "packages", layer, "src"))];
  return roots.flatMap((dir) =>
    sourceFiles(dir).flatMap((file) => {
      const from = layerOf(path.relative(ROOT, file))!;
      const test = /\.test\.tsx?$/.test(file) || file.endsWith("test-support.ts");
      return importsOf(file, readFileSync(file, "utf8"))
        .filter(({ to }) => to !== from)
        .map((found) => ({ ...found, from, file: path.relative(ROOT, file), test }));
    }),
  );
}

/** A cycle in a directed graph, as the list of its nodes, or undefined. */
export function findCycle(edges: ReadonlyArray<readonly [string, string]>): string[] | undefined {
  const next = new Map<string, string[]>();
  for (const [from, to] of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === "done") return undefined;
    if (state.get(node) === "visiting") return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, "visiting");
    stack.push(node);
    for (const to of next.get(node) ?? []) {
      const cycle = visit(to);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of next.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

describe("the layering of the packages", () => {
  const imports = allImports();
  const rank = (layer: Layer) => LAYERS.indexOf(layer);

  it("reads the imports it checks (the checker sees the tree)", () => {
    // Assert: the composition root wires local and the console, so both edges must be seen
    expect(imports.some(({ from, to, typeOnly }) => from === "cli" && to === "local" && !typeOnly)).toBe(true);
    expect(imports.some(({ from, to, typeOnly }) => from === "cli" && to === "console" && !typeOnly)).toBe(true);
  });

  it("has every run-time import point down: no package imports one above it", () => {
    // Act
    const upward = imports.filter(({ from, to, typeOnly, test }) => !typeOnly && !test && rank(to) > rank(from));

    // Assert
    expect(upward.map(({ file, to }) => `${file} imports ${to}`)).toEqual([]);
  });

  it("lets no test reach up either, but for Airtable's stand-in (a test may start what is below its package)", () => {
    // Act: core's writer is tested over HTTP against the emulator (a stand-in for Airtable, not a layer of ours)
    const upward = imports.filter(({ from, to, test }) => test && rank(to) > rank(from) && to !== STAND_IN);

    // Assert
    expect(upward.map(({ file, to }) => `${file} imports ${to}`)).toEqual([]);
  });

  it("keeps the console's code to types only from local: the commands hand it the pipeline and the DLQ's actions", () => {
    // Act
    const runtime = imports.filter(({ from, to, typeOnly, test }) => from === "console" && to === "local" && !typeOnly && !test);

    // Assert
    expect(runtime.map(({ file }) => file)).toEqual([]);
  });

  it("has no cycle between packages, counting every import, types and tests included (but tests' use of the stand-in)", () => {
    // Act
    const cycle = findCycle(imports.filter(({ to, test }) => !(test && to === STAND_IN)).map(({ from, to }) => [from, to] as const));

    // Assert
    expect(cycle).toBeUndefined();
  });

  it("has the composition root on top: nothing imports the commands", () => {
    // Assert
    expect(imports.filter(({ to }) => to === "cli").map(({ file }) => file)).toEqual([]);
  });

  it("declares in package.json exactly the workspace packages each package imports", () => {
    // Arrange
    const declared = (layer: Layer) => {
      if (layer === "stacks") return [];
      const manifest = JSON.parse(readFileSync(path.join(ROOT, "packages", layer, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
      return Object.keys(manifest.dependencies ?? {})
        .filter((name) => name.startsWith("@fundraise-sync/"))
        .map((name) => name.slice("@fundraise-sync/".length));
    };

    // Act: the packages each one's own code imports by name (tests may use what the root installs)
    const used = (layer: Layer) => [...new Set(imports.filter(({ from, test, to }) => from === layer && !test && to !== "stacks").map(({ to }) => to))].sort();

    // Assert
    for (const layer of LAYERS.filter((layer) => layer !== "stacks")) expect([layer, declared(layer).sort()]).toEqual([layer, used(layer)]);
  });
});

describe("the layering checker itself", () => {
  it("finds a cycle of three and none in a chain", () => {
    // Act / Assert
    expect(findCycle([["a", "b"], ["b", "c"], ["c", "a"]])).toEqual(["a", "b", "c", "a"]);
    expect(findCycle([["a", "b"], ["b", "c"], ["a", "c"]])).toBeUndefined();
  });

  it("tells a type-only import from a run-time one, and resolves relative paths into other parts of the tree", () => {
    // Arrange
    const file = path.join(ROOT, "packages/console/src/x.ts");
    const source = [
      'import type { A } from "@fundraise-sync/local/pipeline";',
      'import { b } from "@fundraise-sync/core";',
      'import { c } from "../../../stacks/timing";',
      'const d = await import("@fundraise-sync/cli/start");',
      'export type { E } from "@fundraise-sync/local/dead-letter-actions";',
    ].join("\n");

    // Act
    const found = importsOf(file, source);

    // Assert
    expect(found).toEqual([
      { to: "local", typeOnly: true },
      { to: "core", typeOnly: false },
      { to: "stacks", typeOnly: false },
      { to: "cli", typeOnly: false },
      { to: "local", typeOnly: true },
    ]);
  });
});
