/**
 * Loads the pipeline with Node 22's one-time "SQLite is an experimental feature" warning dropped (fauxqs's
 * persistence imports `node:sqlite`), so that a command's stderr holds only what the command means to say.
 * The import is dynamic on purpose: a static one would load `node:sqlite` before any code here could run.
 * Every other warning still goes through.
 */
export async function loadPipeline() {
  const emitWarning = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === "string" ? warning : warning.message;
    const type = typeof rest[0] === "string" ? rest[0] : ((rest[0] as { type?: string } | undefined)?.type ?? (warning as Error).name);
    if (type === "ExperimentalWarning" && /SQLite/.test(text)) return;
    (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
  const [{ startLocalPipeline }, { synthesizeWorkflowCached }] = await Promise.all([
    import("@fundraise-sync/local/pipeline"),
    import("../../../stacks/synthesize"),
  ]);
  return { startLocalPipeline, synthesizeWorkflowCached };
}
