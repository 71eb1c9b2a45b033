/**
 * Counts Ctrl-C presses, each once. Pressed in a terminal, Ctrl-C makes the terminal signal every process of the
 * foreground group, and then npm and tsx relay the signal to this process again: one press arrives as two or three
 * SIGINTs, close enough together to look like a double press. So on a terminal this reads Ctrl-C as a key (raw
 * mode: the terminal sends no signal to anyone) and counts bytes, not signals. Signals sent by other means (`kill`,
 * a service manager's SIGTERM) are counted one each.
 */
import type { EventEmitter } from "node:events";

const CTRL_C = 0x03;

/** What {@link watchInterrupts} reads: the terminal (when stdin is one) and the process's signals. */
export interface InterruptSources {
  stdin: {
    on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
    on(event: "error", listener: (error: Error) => void): unknown;
    off(event: "data", listener: (chunk: Buffer | string) => void): unknown;
    off(event: "error", listener: (error: Error) => void): unknown;
    resume(): unknown;
    pause(): unknown;
    isTTY?: boolean;
    setRawMode?: (raw: boolean) => unknown;
  };
  signals: Pick<EventEmitter, "on" | "off">;
}

/**
 * Calls `onInterrupt(n, what)` for the n-th interrupt (1 = the first). Returns a function that stops watching and
 * gives the terminal back its normal mode (Node restores it at exit too).
 */
export function watchInterrupts(
  onInterrupt: (count: number, what: string) => void,
  sources: InterruptSources = { stdin: process.stdin, signals: process },
): () => void {
  let count = 0;
  const { stdin, signals } = sources;
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === "function";
  const onData = (chunk: Buffer | string) => {
    for (const byte of Buffer.from(chunk)) if (byte === CTRL_C) onInterrupt(++count, "Ctrl-C");
  };
  const onSigint = () => onInterrupt(++count, "SIGINT");
  const onSigterm = () => onInterrupt(++count, "SIGTERM");
  // The terminal can go away under a running process (`kill -TERM` of its process group gives the shell its prompt
  // back at once, a closed window): reading or resetting it then fails with EIO, which is no reason to crash.
  const onError = () => undefined;
  if (raw) {
    stdin.setRawMode!(true);
    stdin.on("data", onData);
    stdin.on("error", onError);
    stdin.resume();
  }
  signals.on("SIGINT", onSigint);
  signals.on("SIGTERM", onSigterm);
  return () => {
    if (raw) {
      stdin.off("data", onData);
      try {
        stdin.setRawMode!(false);
      } catch {
        // the terminal is gone: there is no mode to give back
      }
      stdin.pause();
      stdin.off("error", onError);
    }
    signals.off("SIGINT", onSigint);
    signals.off("SIGTERM", onSigterm);
  };
}
