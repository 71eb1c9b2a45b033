import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * Every relative link and anchor in the repository's Markdown files resolves: a path names a file or folder that
 * exists (relative to the Markdown file's folder, or to the repository root when it starts with `/`), and a `#anchor`
 * names a heading of the file it points into, by GitHub's rules. Web links (any `scheme:`) are not followed. Links in
 * fenced code blocks and inline code are not links.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** What the checker may ask about the repository. Paths are POSIX paths relative to the repository root. */
interface Files {
  exists(repoPath: string): boolean;
  read(repoPath: string): string;
}

interface BrokenLink {
  file: string;
  line: number;
  target: string;
  problem: string;
}

/** GitHub's anchor for a heading's text, before duplicates are numbered (github-slugger's rules). */
function slugOf(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // a link or image reads as its text
    .replace(/<[^>]+>/g, "") // inline HTML tags
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "") // keeps letters, digits, underscores, spaces and hyphens
    .replace(/ /g, "-");
}

/** A file's lines with fenced code blocks blanked out (line numbers stay), so nothing in them counts. */
function withoutFencedCode(text: string): string[] {
  const lines = text.split(/\r?\n/);
  let fence: { char: string; length: number } | undefined;
  return lines.map((line) => {
    const marker = /^\s*(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence) {
      const closes =
        marker?.[1] && marker[1][0] === fence.char && marker[1].length >= fence.length && marker[2]!.trim() === "";
      if (closes) fence = undefined;
      return "";
    }
    if (marker?.[1] && !(marker[1][0] === "`" && marker[2]!.includes("`"))) {
      fence = { char: marker[1][0]!, length: marker[1].length };
      return "";
    }
    return line;
  });
}

/** Every anchor a Markdown file offers: its headings' slugs (a repeated one numbered -1, -2, … as on GitHub), HTML ids. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const occurrences = new Map<string, number>();
  for (const line of withoutFencedCode(text)) {
    const heading = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (heading) {
      const original = slugOf(heading[1] ?? "");
      let slug = original;
      while (occurrences.has(slug)) {
        const count = occurrences.get(original)! + 1;
        occurrences.set(original, count);
        slug = `${original}-${count}`;
      }
      occurrences.set(slug, 0);
      anchors.add(slug);
    }
    for (const html of line.matchAll(/<a\s[^>]*\b(?:name|id)=["']([^"']+)["']/g)) anchors.add(html[1]!);
  }
  return anchors;
}

/** Every link target in a Markdown file with its line: inline links and images, and reference definitions. */
function linksOf(text: string): { line: number; target: string }[] {
  // Inline code is blanked character for character (newlines kept), so positions still give line numbers.
  const prose = withoutFencedCode(text)
    .join("\n")
    .replace(/(`+)(?!`)((?:(?!\n[ \t]*\n)[\s\S])*?[^`])\1(?!`)/g, (code) => code.replace(/[^\n]/g, " "));
  const lineAt = (index: number) => prose.slice(0, index).split("\n").length;
  const links: { line: number; target: string }[] = [];
  for (const match of prose.matchAll(/!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
    links.push({ line: lineAt(match.index), target: match[1]!.replace(/^<|>$/g, "") });
  }
  for (const match of prose.matchAll(/^ {0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)/gm)) {
    links.push({ line: lineAt(match.index), target: match[1]!.replace(/^<|>$/g, "") });
  }
  return links;
}

/** The links in `markdownPaths` that do not resolve, each with what is wrong. */
function findBrokenLinks(markdownPaths: readonly string[], files: Files): BrokenLink[] {
  const anchorCache = new Map<string, Set<string>>();
  const anchorsIn = (repoPath: string) => {
    if (!anchorCache.has(repoPath)) anchorCache.set(repoPath, anchorsOf(files.read(repoPath)));
    return anchorCache.get(repoPath)!;
  };
  const broken: BrokenLink[] = [];
  for (const file of markdownPaths) {
    for (const { line, target } of linksOf(files.read(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) continue; // https:, mailto:, …
      const report = (problem: string) => broken.push({ file, line, target, problem });
      const hash = target.indexOf("#");
      const pathPart = decodeURIComponent((hash === -1 ? target : target.slice(0, hash)).replace(/\?.*$/, ""));
      const anchor = hash === -1 ? "" : decodeURIComponent(target.slice(hash + 1));
      const fromRoot = pathPart.startsWith("/") ? pathPart.slice(1) : path.posix.join(path.posix.dirname(file), pathPart);
      const resolved = pathPart === "" ? file : path.posix.normalize(fromRoot);
      if (resolved.startsWith("../") || resolved === "..") {
        report(`points outside the repository (${resolved})`);
        continue;
      }
      const repoPath = resolved.replace(/\/$/, "") || ".";
      if (!files.exists(repoPath)) {
        report(`no such file: ${repoPath}`);
        continue;
      }
      if (anchor !== "" && /\.md$/i.test(repoPath) && !anchorsIn(repoPath).has(anchor)) {
        report(`no heading in ${repoPath} has the anchor #${anchor}`);
      }
    }
  }
  return broken;
}

const describeBroken = ({ file, line, target, problem }: BrokenLink) => `${file}:${line}: (${target}) ${problem}`;

/** An in-memory repository: the files given, and the folders that hold them. */
function inMemory(contents: Record<string, string>): Files {
  return {
    exists: (repoPath) => repoPath in contents || Object.keys(contents).some((name) => name.startsWith(`${repoPath}/`)),
    read: (repoPath) => {
      const text = contents[repoPath];
      if (text === undefined) throw new Error(`no such file: ${repoPath}`);
      return text;
    },
  };
}

const repository: Files = {
  exists: (repoPath) => existsSync(path.join(ROOT, repoPath)),
  read: (repoPath) => readFileSync(path.join(ROOT, repoPath), "utf8"),
};

/** The repository's Markdown files: tracked by git, or new and not ignored (a new page is checked before it is added). */
function markdownFiles(): string[] {
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  const names = listed
    .split("\0")
    .filter((name) => name !== "" && !/(^|\/)(node_modules|\.sst)\//.test(name))
    .filter((name) => existsSync(path.join(ROOT, name))); // a tracked file deleted in the work tree has no links
  return [...new Set(names)].sort();
}

describe("the Markdown link checker", () => {
  it("reports a link to a missing file and an anchor that names no heading, and passes the good ones", () => {
    // Arrange
    const files = inMemory({
      "README.md": [
        "# Project",
        "",
        "See [operating](docs/operating.md), [the DLQ](docs/operating.md#the-dead-letter-queue),",
        "[deploying](docs/deploying.md) and [the DLQ again](docs/operating.md#dead-letters).",
        "Back to [the top](#project) or [nowhere](#no-such-heading); [the web](https://example.org/missing.md).",
      ].join("\n"),
      "docs/operating.md": "# Operating\n\n## The dead-letter queue\n\nSee [the front page](../README.md#project).\n",
    });

    // Act
    const broken = findBrokenLinks(["README.md", "docs/operating.md"], files);

    // Assert
    expect(broken).toEqual([
      { file: "README.md", line: 4, target: "docs/deploying.md", problem: "no such file: docs/deploying.md" },
      {
        file: "README.md",
        line: 4,
        target: "docs/operating.md#dead-letters",
        problem: "no heading in docs/operating.md has the anchor #dead-letters",
      },
      {
        file: "README.md",
        line: 5,
        target: "#no-such-heading",
        problem: "no heading in README.md has the anchor #no-such-heading",
      },
    ]);
  });

  it("makes anchors from headings as GitHub does", () => {
    // Arrange
    const text = [
      "# fundraise-sync",
      "## One drain at a time: a lease",
      "### What you are looking at (`npm start`)",
      "## `fauxqs+2.4.1.patch` (the local SQS server)",
      "## Message size: what fits where",
      "## Design notes",
      "## Design notes",
      "## Design notes",
      "## [Linked](elsewhere.md) heading, with *emphasis* ##",
      "## snake_case stays",
    ].join("\n");

    // Act
    const anchors = anchorsOf(text);

    // Assert
    expect([...anchors]).toEqual([
      "fundraise-sync",
      "one-drain-at-a-time-a-lease",
      "what-you-are-looking-at-npm-start",
      "fauxqs241patch-the-local-sqs-server",
      "message-size-what-fits-where",
      "design-notes",
      "design-notes-1",
      "design-notes-2",
      "linked-heading-with-emphasis",
      "snake_case-stays",
    ]);
  });

  it("ignores links in fenced code blocks and inline code, and headings in fenced code blocks", () => {
    // Arrange
    const files = inMemory({
      "README.md": [
        "# Top",
        "",
        "```md",
        "[in a fence](missing.md)",
        "# Not a heading",
        "```",
        "",
        "~~~",
        "[in a tilde fence](missing.md)",
        "~~~",
        "",
        "Inline: `[in code](missing.md)`, and ``[in double",
        "backticks](missing.md)``. A real one: [top](#top), [no heading](#not-a-heading).",
      ].join("\n"),
    });

    // Act
    const broken = findBrokenLinks(["README.md"], files);

    // Assert
    expect(broken.map(describeBroken)).toEqual([
      "README.md:13: (#not-a-heading) no heading in README.md has the anchor #not-a-heading",
    ]);
  });
});

describe("every Markdown file of the repository", () => {
  const markdown = markdownFiles();

  it("is found: the front page, the docs and the packages' READMEs", () => {
    // Assert
    expect(markdown).toEqual(
      expect.arrayContaining([
        "README.md",
        "docs/contract.md",
        "docs/deploying.md",
        "docs/design.md",
        "docs/operating.md",
        "packages/airtable-emulator/README.md",
        "patches/README.md",
      ]),
    );
  });

  it.each(markdown)("%s: every relative link and anchor resolves", (file) => {
    // Act
    const broken = findBrokenLinks([file], repository);

    // Assert
    expect(broken.map(describeBroken)).toEqual([]);
  });
});
