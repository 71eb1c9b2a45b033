/**
 * A config-shaped module for `stacks/synthesize.test.ts`: loaded with SST's own `load()`, it reports what a module in
 * `stacks/` sees of its location once the loader has bundled it, and the shim aliases as the bundle computed them.
 */
import { AIRTABLE_CLIENT_BUNDLING } from "./bundling";

export default {
  config: () => ({ name: "loader-probe", region: "us-east-1" }),
  stacks: () => {},
  moduleUrl: import.meta.url,
  aliases: AIRTABLE_CLIENT_BUNDLING.esbuild.alias,
};
