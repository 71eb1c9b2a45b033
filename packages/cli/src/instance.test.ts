import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimDataDir, instanceDataDir } from "./instance";

describe("each npm start has its own state", () => {
  it("keeps the default ports in .local and other ports in a folder of their own", () => {
    // Act / Assert
    expect(instanceDataDir({ sqsPort: 9324, airtablePort: 9325 })).toBe(".local");
    expect(instanceDataDir({ sqsPort: 9424, airtablePort: 9425 })).toBe(path.join(".local", "ports-9424-9425"));
    expect(instanceDataDir({ sqsPort: 9324, airtablePort: 9425 })).toBe(path.join(".local", "ports-9324-9425"));
    expect(instanceDataDir({ sqsPort: undefined, airtablePort: 9325 })).toBe(".local");
    expect(instanceDataDir({ sqsPort: 0, airtablePort: undefined })).toBe(path.join(".local", "ports-0-airtable"));
    expect(instanceDataDir({ sqsPort: undefined, airtablePort: undefined })).toBe(path.join(".local", "ports-external-airtable"));
  });

  describe("claiming a folder", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "fundraise-instance-"));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it("refuses a folder that another live npm start uses, in one line naming it and what to do", async () => {
      // Arrange: a process whose command line is one of the commands' (what the check reads in /proc)
      const other = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "packages/cli/src/start.ts"], { stdio: "ignore" });
      try {
        const folder = path.join(dir, "held");
        await mkdir(folder, { recursive: true });
        await writeFile(path.join(folder, "instance.json"), JSON.stringify({ pid: other.pid }));

        // Act / Assert
        expect(() => claimDataDir(folder, ".local/ports-9424-9425")).toThrow(
          `.local/ports-9424-9425 is in use by another npm start (pid ${other.pid}): stop it, or start this one on other ports (--sqs-port, --airtable-port)`,
        );
      } finally {
        other.kill("SIGKILL");
      }
    });

    it("takes over a claim whose process is gone (a kill -9), and gives it back when released", async () => {
      // Arrange: a pid that no longer runs
      const gone = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
      await new Promise((resolve) => gone.on("exit", resolve));
      const folder = path.join(dir, "stale");
      await mkdir(folder, { recursive: true });
      await writeFile(path.join(folder, "instance.json"), JSON.stringify({ pid: gone.pid }));

      // Act
      const release = claimDataDir(folder, "stale");

      // Assert
      expect(JSON.parse(await readFile(path.join(folder, "instance.json"), "utf8"))).toMatchObject({ pid: process.pid });
      release();
      await expect(readFile(path.join(folder, "instance.json"), "utf8")).rejects.toThrow(/ENOENT/);
    });
  });
});
