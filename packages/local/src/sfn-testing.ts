import type { LocalPipeline } from "./pipeline";
import { type SfnApi, startSfnApi } from "./sfn-api";
import { ExecutionStore } from "./sfn-store";

/**
 * Test support: a local pipeline's Step Functions API on a free port, with the smallest scheduler that runs what
 * StartExecution asks for, one execution at a time (as `npm start` does, without its timer and lock).
 */
export async function serveSfnApi(pipeline: LocalPipeline, dir?: string): Promise<SfnApi & { store: ExecutionStore; idle(): Promise<void> }> {
  const store = await ExecutionStore.open({ definition: pipeline.workflow.definition, ...(dir ? { dir } : {}) });
  const stopObserving = pipeline.workflow.observe(store.observer());
  let running: Promise<unknown> = Promise.resolve();
  const api = await startSfnApi({
    workflow: pipeline.workflow,
    store,
    port: 0,
    onStartRequested: () => {
      running = running.then(async () => {
        while (pipeline.workflow.pendingExecutions > 0) await pipeline.workflow.execute();
      });
    },
  });
  return {
    ...api,
    store,
    /** Resolves once every execution asked for has run. */
    idle: async () => {
      for (let previous: Promise<unknown> | undefined; previous !== running; ) {
        previous = running;
        await running;
      }
    },
    close: async () => {
      await api.close();
      stopObserving();
      await store.close();
    },
  };
}
