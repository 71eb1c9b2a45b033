import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { watchInterrupts } from "./interrupt";

/** A terminal stand-in: a stream that says it is a TTY and records its raw mode. */
function fakeTerminal() {
  const stream = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode: (raw: boolean) => void; rawModes: boolean[] };
  stream.isTTY = true;
  stream.rawModes = [];
  stream.setRawMode = (raw) => void stream.rawModes.push(raw);
  return stream;
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("watchInterrupts", () => {
  it("on a terminal, counts each Ctrl-C key once, even two in one read, and ignores other keys", async () => {
    // Arrange
    const terminal = fakeTerminal();
    const seen: [number, string][] = [];
    const stop = watchInterrupts((count, what) => seen.push([count, what]), { stdin: terminal, signals: new EventEmitter() });

    // Act: Ctrl-C, a letter, then a quick double Ctrl-C
    terminal.write("\x03");
    terminal.write("q");
    terminal.write("\x03\x03");
    await flush();
    stop();

    // Assess
    expect(seen).toEqual([[1, "Ctrl-C"], [2, "Ctrl-C"], [3, "Ctrl-C"]]);
    expect(terminal.rawModes).toEqual([true, false]);
  });

  it("counts every signal, with no time window that would swallow a quick second one", () => {
    // Arrange
    const signals = new EventEmitter();
    const seen: [number, string][] = [];
    const stop = watchInterrupts((count, what) => seen.push([count, what]), { stdin: new PassThrough(), signals });

    // Act
    signals.emit("SIGINT");
    signals.emit("SIGINT");
    signals.emit("SIGTERM");
    stop();
    signals.emit("SIGINT");

    // Assess
    expect(seen).toEqual([[1, "SIGINT"], [2, "SIGINT"], [3, "SIGTERM"]]);
    expect(signals.listenerCount("SIGINT")).toBe(0);
  });

  it("stops without a crash when the terminal went away (setRawMode and reads fail with EIO)", async () => {
    // Arrange: a terminal that refuses to leave raw mode, as one whose window is gone does
    const terminal = fakeTerminal();
    const stop = watchInterrupts(() => undefined, { stdin: terminal, signals: new EventEmitter() });
    terminal.setRawMode = () => {
      throw Object.assign(new Error("setRawMode EIO"), { code: "EIO" });
    };

    // Act
    terminal.emit("error", Object.assign(new Error("read EIO"), { code: "EIO" }));
    await flush();

    // Assert
    expect(() => stop()).not.toThrow();
  });

  it("leaves stdin alone when it is not a terminal", () => {
    // Arrange
    const notATerminal = fakeTerminal();
    notATerminal.isTTY = false;

    // Act
    const stop = watchInterrupts(() => undefined, { stdin: notATerminal, signals: new EventEmitter() });
    stop();

    // Assess
    expect(notATerminal.rawModes).toEqual([]);
  });
});
