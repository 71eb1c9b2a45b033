/**
 * fauxqs persists queues with `node:sqlite`, and Node 22 prints "ExperimentalWarning: SQLite is an experimental
 * feature" on stderr when that module loads: in `npm start`, the tests and the benchmark, where it tells people
 * nothing they can act on. This drops that one warning (every other warning still prints). Import it before fauxqs.
 */
const emitWarning = process.emitWarning.bind(process);

process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === "string" ? warning : warning.message;
  if (text.startsWith("SQLite is an experimental feature")) return;
  return (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;
