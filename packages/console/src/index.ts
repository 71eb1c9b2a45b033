/**
 * @fundraise-sync/console: the local web console. {@link startPipelineConsole} attaches it to a running local
 * pipeline; its parts (graph conversion, history, server, page) are usable and tested on their own. It imports only
 * types from `@fundraise-sync/local`: whoever starts it (the commands, a test) hands it the pipeline and the DLQ's
 * actions.
 */
import path from "node:path";
import type { LocalPipeline } from "@fundraise-sync/local/pipeline";
import type { CommandContext } from "./commands";
import type { DeadLetterActions } from "./dlq-actions";
import type { AslDefinition } from "./graph";
import type { Whereabouts } from "./whereabouts";
import { History } from "./history";
import { readQueueDepths } from "./queues";
import { CONSOLE_DEFAULTS, type ConsoleAlarm, type ConsoleServer, startConsole } from "./server";

export { CONSOLE_DEFAULTS, startConsole } from "./server";
export type { ConsoleAlarm, ConsoleOptions, ConsoleServer } from "./server";
export type { DeadLetterActions } from "./dlq-actions";
export { definitionToGraph } from "./graph";
export { History } from "./history";

export interface PipelineConsoleOptions {
  pipeline: Pick<LocalPipeline, "workflow" | "sqs" | "queueUrls">;
  /** The DLQ's actions on the pipeline's queues (`localDeadLetterActions` from `@fundraise-sync/local`). */
  deadLetters: DeadLetterActions;
  /** Where a donation is now, for Message story (`localWhereabouts` from `@fundraise-sync/local`). */
  whereabouts?: Whereabouts;
  /** The synthesized definition the pipeline executes. */
  definition: unknown;
  /** Default {@link CONSOLE_DEFAULTS.port}; 0 picks a free one. */
  port?: number;
  /** Where the history is kept (default `.local/console` under the working directory). */
  dir?: string;
  commands?: CommandContext;
  pollMs?: number;
  /** The stack's alarms as the local runtime computes them (`watchLocalAlarms` from `@fundraise-sync/local`). */
  alarms?: () => Promise<ConsoleAlarm[]>;
}

/** The console's history folder, relative to the repository root. */
export const CONSOLE_HISTORY_DIR = ".local/console";

/**
 * Starts the console beside a local pipeline: it watches every execution (kept in `dir`, so the history survives a
 * restart), reads the queues' depths, and acts on the DLQ with the same functions as `npm run dlq`.
 */
export async function startPipelineConsole(options: PipelineConsoleOptions): Promise<ConsoleServer & { history: History }> {
  const { pipeline } = options;
  const history = await History.open({ dir: options.dir ?? path.resolve(CONSOLE_HISTORY_DIR) });
  const stopObserving = pipeline.workflow.observe(history.observer());
  try {
    const server = await startConsole({
      port: options.port ?? CONSOLE_DEFAULTS.port,
      history,
      definition: options.definition as AslDefinition,
      queueDepths: () => readQueueDepths(pipeline.sqs, pipeline.queueUrls),
      deadLetters: options.deadLetters,
      ...(options.whereabouts ? { whereabouts: options.whereabouts } : {}),
      ...(options.commands ? { commands: options.commands } : {}),
      ...(options.pollMs ? { pollMs: options.pollMs } : {}),
      ...(options.alarms ? { alarms: options.alarms } : {}),
    });
    return {
      ...server,
      history,
      close: async () => {
        stopObserving();
        await server.close();
        await history.close();
      },
    };
  } catch (error) {
    stopObserving();
    await history.close();
    throw error;
  }
}
