import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { ErrorName, MAX_EVENT_BYTES, SqsEventBus, sampleDonation, sampleDonations, serializeDonationEvent } from "@fundraise-sync/core";
import { listDeadLetters } from "@fundraise-sync/local/dead-letters";
import { localDeadLetterActions } from "@fundraise-sync/local/dead-letter-actions";
import { localWhereabouts } from "@fundraise-sync/local/whereabouts";
import { watchLocalAlarms } from "@fundraise-sync/local/alarms";
import { type LocalPipeline, startLocalPipeline } from "@fundraise-sync/local/pipeline";
import { donationRecords } from "@fundraise-sync/local/testing";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stateActivity } from "./events";
import { type AslDefinition, definitionToGraph } from "./graph";
import { startPipelineConsole } from "./index";
import { retryingStates, waitingStates } from "./test-support";

/**
 * End to end, as a person uses it: the real pipeline (SQS server, emulator, the synthesized drain) with the console,
 * driven in headless Chromium. Executions are started by the test (not on a timer) so each step is deterministic;
 * the test waits on what the page exposes (`data-status`, `data-connection`, …), never on time.
 * State names are read from the definition and from the DLQ's reasons: nothing here names today's states.
 */
const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`console browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`);

/** Screenshots land here (git-ignored): look at them. */
const SHOTS = path.resolve(".tmp/console-screenshots");

describe.skipIf(!haveChromium)("the console in Chromium", () => {
  const workflow = inject("workflow");
  const definition = workflow.definition as unknown as AslDefinition;
  let pipeline: LocalPipeline;
  let server: Awaited<ReturnType<typeof startPipelineConsole>>;
  let dir: string;
  let browser: Browser;
  let page: Page;
  const invalidBody = JSON.stringify({ Id: "not-a-guid", DonationAmount: -5 });
  const queues = () => ({ sqs: pipeline.sqs, sourceUrl: pipeline.queueUrls.source, deadLetterUrl: pipeline.queueUrls.deadLetter });

  const startConsole = () =>
    startPipelineConsole({
      pipeline,
      deadLetters: localDeadLetterActions(queues()),
      whereabouts: localWhereabouts(pipeline),
      alarms: watchLocalAlarms(pipeline).read,
      definition,
      port: 0,
      dir,
      pollMs: 200,
    });

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    dir = await mkdtemp(path.join(tmpdir(), "console-e2e-"));
    pipeline = await startLocalPipeline({
      workflow,
      sqsPort: 0,
      emulator: { port: 0, rateLimit: false },
      airtableRequestsPerSecond: 5,
      retryIntervalOverrides: retryingStates(definition, 50),
      waitTimeOverrides: waitingStates(definition, 20),
    });
    server = await startConsole();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
    });
    console.log(`console browser tests: Chromium ${browser.version()}`);
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.setDefaultTimeout(30_000);
    page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await pipeline?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const live = () => page.locator('[data-connection="live"]').waitFor();
  const tab = (name: RegExp) => page.getByRole("tab", { name }).click();

  it("shows valid, invalid and 429-retried donations live: the path lit, the failed state, every retry's error", async () => {
    // Arrange
    await page.goto(server.url);
    await live();
    pipeline.emulator!.faults.failNext(1, { status: 429 });
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(3));
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: invalidBody }));

    // Act
    const summary = await pipeline.workflow.execute();
    const name = summary.executionArn.split(":").pop()!;

    // Assert: the page was told, without a reload
    await page.locator(`tr[data-execution="${name}"][data-status="SUCCEEDED"]`).waitFor();
    expect(summary).toMatchObject({ received: 4, written: 3, deadLettered: 1, retried: 1 });
    await page.locator(`[data-shown-execution="${name}"]`).waitFor();
    await page.locator(`[data-state="${definition.StartAt}"][data-status="succeeded"]`).waitFor();
    // The state that refused the invalid message (as its DLQ entry says) is marked failed.
    const { letters } = await listDeadLetters(queues());
    const letter = letters.find((candidate) => candidate.body === invalidBody)!;
    expect(letter.failedState).toBeDefined();
    await page.locator(`[data-state="${letter.failedState}"][data-status="failed"]`).waitFor();
    // The state that met the 429 (retried by a Retry rule, or reported in its output and waited out) says so on its
    // node, and the timeline shows that retry's error.
    const events = (await server.history.events(name))!;
    const met = events.find((event) => event.error === ErrorName.AirtableRateLimited || event.reported?.some((error) => error.error === ErrorName.AirtableRateLimited))!;
    await expect(page.locator(`[data-state="${met.state}"]`).textContent()).resolves.toMatch(/1 (retried|error) here/);
    await page.locator(`.tl-fail[data-error^="${ErrorName.AirtableRateLimited}"]`).first().waitFor();
    // A state nothing went through stays unlit.
    expect(await page.locator('[data-state][data-status="not-run"]').count()).toBeGreaterThan(0);
    // The queue chips are live too: both queues drained of this batch, one dead letter.
    await page.locator('[data-queue="source"][data-visible="0"][data-in-flight="0"]').waitFor();
    await page.screenshot({ path: path.join(SHOTS, "1-graph-and-executions.png") });
    // The README's picture (docs/console.png): the failed state in view.
    await page.locator(`[data-state="${letter.failedState}"]`).scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, "readme.png") });
  });

  it("finds the invalid donation in the DLQ with its reason, redrives it (forced), and shows the CLI command", async () => {
    // Arrange
    await tab(/Dead letters/);
    const card = page.locator(`li.letter[data-error-name="${ErrorName.InvalidDonationEvent}"]`);
    await card.waitFor();
    await expect(card.locator(".cause").textContent()).resolves.toContain("DonationAmount");
    const id = (await card.getAttribute("data-message-id"))!;

    // Act
    await card.getByRole("checkbox", { name: `Select ${id}` }).check();
    await page.getByLabel("also those that cannot pass Validate").check();
    await page.getByRole("button", { name: "Redrive", exact: true }).click();

    // Assert
    const result = page.locator('[role="status"][data-action="redrive"]');
    await result.waitFor();
    expect(await result.getAttribute("data-ok")).toBe("true");
    await expect(result.textContent()).resolves.toContain(`npm run dlq -- redrive --id ${id} --force`);
    await page.locator('[data-queue="source"][data-visible="1"]').waitFor();
    // Redriven unchanged, it fails again: back in the DLQ as a new message.
    await page.locator(`li.letter[data-message-id="${id}"]`).waitFor({ state: "detached" });
    await pipeline.workflow.execute();
    await page.locator(`li.letter[data-error-name="${ErrorName.InvalidDonationEvent}"]:not([data-message-id="${id}"])`).waitFor();
    await page.screenshot({ path: path.join(SHOTS, "2-dead-letters.png") });
  });

  it("edits and resends it: Validate's verdict first, nothing sent while invalid, then written to Airtable", async () => {
    // Arrange
    const card = page.locator(`li.letter[data-error-name="${ErrorName.InvalidDonationEvent}"]`);
    await card.getByRole("button", { name: "Edit and resend" }).click();
    const editor = card.getByLabel("Edited body");
    const send = card.getByRole("button", { name: "Send edited body" });

    // Act 1: still invalid
    await editor.fill(JSON.stringify({ Id: "still-not-a-guid" }));
    await card.getByRole("button", { name: "Check with Validate" }).click();

    // Assert 1
    await card.locator('[data-verdict="invalid"]').waitFor();
    expect(await send.isDisabled()).toBe(true);

    // Act 1b: every field right, but over the producer's limit (it used to pass here, then fail with HTTP 500)
    await editor.fill(serializeDonationEvent(sampleDonation({ DonorDisplayName: "x".repeat(4 * 1024) })));
    await card.getByRole("button", { name: "Check with Validate" }).click();

    // Assert 1b: refused up front, the limit named, nothing can be sent
    await card.getByText(`a DonationCreated event may be at most ${MAX_EVENT_BYTES} bytes`, { exact: false }).waitFor();
    expect(await send.isDisabled()).toBe(true);

    // Act 2: corrected
    const fixed = sampleDonation();
    await editor.fill(serializeDonationEvent(fixed));
    await card.getByRole("button", { name: "Check with Validate" }).click();
    await card.locator('[data-verdict="valid"]').waitFor();
    await page.screenshot({ path: path.join(SHOTS, "3-edit-and-resend.png") });
    await send.click();

    // Assert 2
    const result = page.locator('[role="status"][data-action="resend"][data-ok="true"]');
    await result.waitFor();
    await expect(result.textContent()).resolves.toContain("npm run dlq -- resend --id");
    await page.getByText("The dead-letter queue is empty.").waitFor();
    await pipeline.workflow.execute();
    expect(donationRecords(pipeline).some((record) => record.fields.Id === fixed.Id)).toBe(true);

    // The message's story: where it ended, and its redrive and resend
    await tab(/Message story/);
    await page.getByLabel("Event Id or SQS MessageId").fill(fixed.Id);
    await page.getByRole("button", { name: "Find" }).click();
    await page.locator('[data-ended="written"]').waitFor();
    const story = page.locator(`[data-story="${fixed.Id}"]`);
    await expect(story.textContent()).resolves.toMatch(/resend/);
    await expect(story.textContent()).resolves.toMatch(/redrive/);
    await page.screenshot({ path: path.join(SHOTS, "4-message-story.png"), fullPage: true });
  });

  it("catches up after a reload in the middle of an execution", async () => {
    // Arrange: slow Airtable writes keep the execution running for a while
    await tab(/Executions/);
    pipeline.emulator!.faults.add({ latencyMs: 1500, operation: "write", times: 2 });
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(2));
    const running = pipeline.workflow.execute();
    const row = page.locator('tr[data-status="RUNNING"]');
    await row.waitFor();
    const name = (await row.getAttribute("data-execution"))!;
    await page.locator(`[data-shown-execution="${name}"]`).waitFor();
    await page.locator('.node[data-status="running"]').first().waitFor();

    // Act
    await page.reload();
    await live();

    // Assert: the same execution, still followed, and at its end every state's status as the history has it
    await page.locator(`[data-shown-execution="${name}"]`).waitFor();
    await running;
    await page.locator(`tr[data-execution="${name}"][data-status="SUCCEEDED"]`).waitFor();
    const activity = stateActivity((await server.history.events(name))!);
    for (const [state, { status }] of Object.entries(activity)) {
      await page.locator(`[data-state="${state}"][data-status="${status}"]`).waitFor();
    }
  });

  it("keeps the history across a restart of the console", async () => {
    // Arrange
    const names = server.history.list().filter((entry) => !entry.idle).map((entry) => entry.name);
    await server.close();

    // Act
    server = await startConsole();
    await page.goto(server.url);
    await live();

    // Assert
    for (const name of names) await page.locator(`tr[data-execution="${name}"]`).waitFor();
    await tab(/Records/);
    await page.locator("tr[data-record]").first().waitFor();
    expect(await page.locator("tr[data-record]").count()).toBe(donationRecords(pipeline).length);
    await page.screenshot({ path: path.join(SHOTS, "5-records.png") });
  });

  it("marks a caught error on the state that raised it and the Catch edge it took, not the Maps around it", async () => {
    // Arrange: one invalid message alone, so its receive returns exactly one message
    await tab(/Executions/);
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrls.source, MessageBody: invalidBody }));

    // Act
    const summary = await pipeline.workflow.execute();
    const name = summary.executionArn.split(":").pop()!;

    // Assert
    await page.locator(`tr[data-execution="${name}"][data-status="SUCCEEDED"]`).waitFor();
    await page.locator(`[data-shown-execution="${name}"]`).waitFor();
    const caught = (await server.history.events(name))!.find((event) => event.type === "StateCaught")!;
    const graph = definitionToGraph(definition);
    const maps: string[] = [];
    for (let parent = graph.nodes.find((node) => node.id === caught.state)!.parent; parent; parent = graph.nodes.find((node) => node.id === parent)!.parent) maps.push(parent);
    expect(maps.length).toBeGreaterThanOrEqual(2);
    await page.locator(`[data-state="${caught.state}"][data-status="failed"]`).waitFor();
    for (const map of maps) expect(await page.locator(`[data-state="${map}"]`).getAttribute("data-status")).toBe("succeeded");
    expect(await page.locator('[data-state][data-status="failed"]').evaluateAll((nodes) => nodes.map((node) => node.getAttribute("data-state")))).toEqual([caught.state]);
    // Of the state's Catch edges, only the one taken is lit
    const catches = graph.edges.filter((edge) => edge.kind === "catch" && edge.source === caught.state);
    expect(catches.length).toBeGreaterThan(1);
    for (const edge of catches) {
      const lit = edge.target === caught.caught!.next;
      expect(await page.locator(`path[data-edge="${edge.source}→${edge.target}"]`).getAttribute("data-lit"), edge.target).toBe(String(lit));
    }
  });

  it("tells one donation's story by its DLQ copy's id or its source id, finds one waiting in the queue, and says when none", async () => {
    // Arrange: the invalid message of the previous test is in the DLQ; its execution knew it by its source MessageId
    const story = async (query: string) => {
      await tab(/Message story/);
      await page.getByLabel("Event Id or SQS MessageId").fill(query);
      await page.getByRole("button", { name: "Find" }).click();
      await page.locator(`[data-story="${query}"]`).waitFor();
      return page.locator(`[data-story="${query}"]`);
    };
    await tab(/Dead letters/);
    const card = page.locator(`li.letter[data-error-name="${ErrorName.InvalidDonationEvent}"]`).last();
    const dlqId = (await card.getAttribute("data-message-id"))!;
    const sourceId = (await card.locator("[data-source-message-id]").getAttribute("data-source-message-id"))!;
    expect(sourceId).not.toBe("");
    expect(sourceId).not.toBe(dlqId);
    const executions = server.history.list().filter((entry) => entry.messageIds.includes(sourceId)).map((entry) => entry.name);
    expect(executions.length).toBeGreaterThan(0);

    // Act + Assert: by either id, the same execution and the same end
    for (const query of [dlqId, sourceId]) {
      const shown = await story(query);
      await shown.locator('[data-ended="dead-lettered"]').waitFor();
      for (const name of executions) await shown.getByRole("button", { name: name.slice(0, 8) }).waitFor();
    }

    // A donation published and not drained yet: waiting in the queue
    const waiting = sampleDonation();
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish([waiting]);
    await (await story(waiting.Id)).locator('[data-in-queue="waiting"]').waitFor();

    // An id nothing knows
    await (await story("00000000-0000-4000-8000-000000000000")).locator('[data-ended="none"]').waitFor();
    await page.screenshot({ path: path.join(SHOTS, "6-story-none.png") });
  });

  it("reads at a glance at 1,280 x 800: follows the running state, names whole, edges in from above, labels on them, tables scroll inside", async () => {
    // Arrange
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(server.url);
    await live();
    await tab(/Executions/);
    pipeline.emulator!.faults.add({ latencyMs: 2500, operation: "write", times: 1 });
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish(sampleDonations(2));

    // Act
    const running = pipeline.workflow.execute();

    // Assert: the live view follows the state running now, and it is inside the graph's panel
    const following = page.locator('.graph-box[data-mode="follow"]:not([data-following=""])');
    await following.waitFor();
    await page.waitForFunction(() => {
      const box = document.querySelector(".graph-box")!;
      const state = box.getAttribute("data-following");
      const node = state ? document.querySelector(`.node[data-state="${state}"][data-status="running"]`) : null;
      if (!node) return false;
      const outer = box.getBoundingClientRect();
      const inner = node.getBoundingClientRect();
      return inner.top >= outer.top && inner.bottom <= outer.bottom && inner.left >= outer.left && inner.right <= outer.right;
    });
    await page.screenshot({ path: path.join(SHOTS, "7-following-1280.png") });
    await running;

    // No state's name is cut
    const cut = await page.locator(".node-name").evaluateAll((names) => names.filter((name) => name.scrollWidth > name.clientWidth + 1).map((name) => name.textContent));
    expect(cut).toEqual([]);
    // Every edge ends on the top side of its target (the End node included), and every label sits on its edge
    const geometry = await page.evaluate(() => {
      const box = (element: Element) => {
        const style = (element as HTMLElement).style;
        return { x: parseFloat(style.left), y: parseFloat(style.top), width: parseFloat(style.width), height: parseFloat(style.height) };
      };
      const targets = new Map<string, ReturnType<typeof box>>();
      for (const node of Array.from(document.querySelectorAll(".graph [data-state]"))) targets.set(node.getAttribute("data-state")!, box(node));
      const points = (path: Element) => (path.getAttribute("d") ?? "").split(/[ML]/).filter((part) => part.trim()).map((part) => part.trim().split(/\s+/).map(Number) as [number, number]);
      const notFromAbove: string[] = [];
      const offEdge: string[] = [];
      for (const path of Array.from(document.querySelectorAll("path[data-edge]"))) {
        const edge = path.getAttribute("data-edge")!;
        const target = targets.get(edge.split("→")[1]!);
        const line = points(path);
        const [x, y] = line.at(-1)!;
        if (target && (Math.abs(y - target.y) > 2 || x < target.x - 1 || x > target.x + target.width + 1)) notFromAbove.push(edge);
        const label = document.querySelector(`[data-label-of="${CSS.escape(path.getAttribute("data-edge-id")!)}"]`);
        if (!label) continue;
        const at = box(label);
        const touches = line.slice(1).some(([x2, y2], index) => {
          const [x1, y1] = line[index]!;
          const [left, right, top, bottom] = [Math.min(x1, x2), Math.max(x1, x2), Math.min(y1, y2), Math.max(y1, y2)];
          return right >= at.x - 4 && left <= at.x + at.width + 4 && bottom >= at.y - 4 && top <= at.y + at.height + 4;
        });
        if (!touches) offEdge.push(edge);
      }
      return { notFromAbove, offEdge };
    });
    expect(geometry).toEqual({ notFromAbove: [], offEdge: [] });

    // A click on a state shows it whole in the side panel
    const longest = definitionToGraph(definition).nodes.filter((node) => !node.compound && node.type !== "Start" && node.type !== "End").sort((a, b) => b.label.length - a.label.length)[0]!;
    await page.getByRole("button", { name: "whole graph" }).click();
    const frame = await page.locator(".graph-box").boundingBox();
    const drawn = await page.locator(".graph-scale").boundingBox();
    expect(drawn!.width).toBeLessThanOrEqual(frame!.width);
    expect(drawn!.height).toBeLessThanOrEqual(frame!.height);
    await page.locator(`[data-state="${longest.id}"]`).click();
    await page.locator(`[data-selected-state="${longest.id}"] h3`).getByText(longest.label, { exact: true }).waitFor();
    await page.locator(`[data-state="${longest.id}"]`).evaluate((node) => node.scrollIntoView({ block: "nearest", inline: "nearest" }));
    expect(await page.locator(`[data-state="${longest.id}"]`).isVisible()).toBe(true);

    // Records: the table scrolls inside itself, never the page, and the searched column is in view
    for (const width of [1280, 1600]) {
      await page.setViewportSize({ width, height: 800 });
      await tab(/Records/);
      // What the table's last column holds in its first row: the column furthest to the right
      await page.getByLabel("Search records").fill("");
      await page.locator("tr[data-record]").first().waitFor();
      const column = (await page.locator("table.records th").last().textContent())!;
      const searched = (await page.locator(`tr[data-record] td[data-column="${column}"]`).first().textContent())!;
      expect(searched).not.toBe("");
      await page.getByLabel("Search records").fill(searched);
      const cell = page.locator("td.match").first();
      await cell.waitFor();
      await cell.evaluate((element) => element.closest("[data-records-wrap]")!.scrollIntoView({ block: "nearest" }));
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      const wrap = (await page.locator("[data-records-wrap]").boundingBox())!;
      const found = (await cell.boundingBox())!;
      expect(found.x).toBeGreaterThanOrEqual(wrap.x);
      expect(found.x + found.width).toBeLessThanOrEqual(wrap.x + wrap.width + 1);
      await page.screenshot({ path: path.join(SHOTS, `8-records-${width}.png`) });
    }
  });

  it("says in its header that Airtable is failing (before the alarm fires), and stops saying it once Airtable answers", async () => {
    // Arrange: every write fails; one donation, held by the execution after its attempts
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(server.url);
    await live();
    const outage = pipeline.emulator!.faults.add({ status: 503, operation: "write" });
    await new SqsEventBus(pipeline.sqs, pipeline.queueUrls.source).publish([sampleDonation()]);
    const held = await pipeline.workflow.execute();
    expect(held.held).toBe(1);

    // Act / Assert: the warning, named for the alarm it leads to
    const failing = page.locator('[data-alarm="AirtableFailingAlarm"]');
    await failing.waitFor();
    expect(await failing.getAttribute("data-state")).toBe("OK");
    expect(await failing.textContent()).toMatch(/^Airtable failing for 0 min \(since \d\d:\d\d:\d\d UTC, \d+ attempts? in a row\): retrying; alarm at 15 min$/);
    await page.screenshot({ path: path.join(SHOTS, "9-airtable-failing-1280.png") });

    // Act: Airtable answers again; the continuation writes the held donation
    pipeline.emulator!.faults.remove(outage.id);
    const healed = await pipeline.workflow.execute();

    // Assert
    expect(healed.written).toBe(1);
    await failing.waitFor({ state: "detached" });
  });
});
