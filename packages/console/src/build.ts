import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** The page's files, bundled: everything it loads is served by the console itself (no CDN, no font from elsewhere). */
export interface PageBundle {
  "app.js": string;
  "app.css": string;
}

const PAGE_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), "page", "main.tsx");

/**
 * Bundles the page (React, elkjs, our code and CSS) with esbuild, in memory: about a second, done when the console
 * starts, so what is served always matches the source.
 */
export async function buildPage(): Promise<PageBundle> {
  const result = await build({
    entryPoints: [PAGE_ENTRY],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: ["chrome120", "firefox120"],
    minify: true,
    jsx: "automatic",
    outdir: "/page",
    entryNames: "app",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  const bundle: Partial<PageBundle> = {};
  for (const file of result.outputFiles) bundle[path.basename(file.path) as keyof PageBundle] = file.text;
  if (bundle["app.js"] === undefined) throw new Error("the console page did not bundle");
  return { "app.js": bundle["app.js"], "app.css": bundle["app.css"] ?? "" };
}
