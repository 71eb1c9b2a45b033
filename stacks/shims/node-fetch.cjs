// Stands in for `node-fetch` in the WriteToAirtable bundle (an esbuild alias, stacks/bundling.ts): airtable.js
// requires node-fetch, which drags in a large Unicode table, while the Lambda runtime (Node 22) has fetch built in.
module.exports = (...args) => globalThis.fetch(...args);
