// Stands in for the `abort-controller` polyfill airtable.js requires (an esbuild alias, stacks/bundling.ts): Node 22's
// fetch accepts only its own AbortSignal, and Node 22 has AbortController built in.
module.exports = globalThis.AbortController;
