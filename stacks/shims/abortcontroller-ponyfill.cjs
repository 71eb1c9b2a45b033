// Stands in for the browser-only AbortController ponyfill airtable.js also requires (an esbuild alias,
// stacks/bundling.ts): never used on Node, but bundled all the same.
module.exports = { AbortController: globalThis.AbortController, AbortSignal: globalThis.AbortSignal };
