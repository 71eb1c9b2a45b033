import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));

function run(args: string[], untilOutput?: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Node itself with tsx's loader, not the tsx binary: its parent process re-sends a signal that the child has not
    // acknowledged within 30 ms, which on a busy machine turns one Ctrl-C into two.
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (untilOutput?.test(stdout)) child.kill("SIGINT");
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("cli", () => {
  it.each([[["--port", "abc"]], [["--bogus"]], [["--config", "/nonexistent/config.json"]]])(
    "refuses %j with one line on stderr and exit code 2",
    async (args) => {
      // Act
      const result = await run(args);

      // Assess
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(/^error: /);
    },
  );

  it("prints the URL, table and token, and closes cleanly on Ctrl-C", async () => {
    // Act
    const result = await run(["--port", "0", "--no-rate-limit"], /admin:/);

    // Assess
    expect(result.stdout).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(result.stdout).toContain("appFundraiseSync1/Donations");
    expect(result.stdout).toContain("patLocalDevToken.fundraise-sync");
    expect(result.code).toBe(0);
  });
});
