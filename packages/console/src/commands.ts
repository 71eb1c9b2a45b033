/**
 * The CLI command behind each console action, so a person can script what they clicked. Pure: the page shows these
 * before a button is pressed, the server reports them after.
 */

export interface CommandContext {
  /** Extra flags every `npm run dlq` needs to reach this pipeline (e.g. a non-default `--sqs-port`). */
  connection: string;
  /**
   * A deployed stage's name: the page asks before every change, naming the stage, and the server refuses a change
   * whose request does not name it (`stage` in the body).
   */
  stage?: string;
}

/** Quotes a value for a POSIX shell when it needs it. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

import type { DeadLetterSelection } from "@fundraise-sync/local/dead-letters";

const dlq = (context: CommandContext, rest: string) => `npm run dlq -- ${rest}${context.connection ? ` ${context.connection}` : ""}`;

/** Which DLQ entries an action applies to: chosen ids, every entry with one ErrorName, or all. */
export type Selection = DeadLetterSelection;

function selectionFlags(selection: Selection): string {
  if ("all" in selection) return "--all";
  if ("errorName" in selection) return `--error ${shellQuote(selection.errorName)}`;
  return selection.ids.map((id) => `--id ${shellQuote(id)}`).join(" ");
}

export const Commands = {
  list: (context: CommandContext) => dlq(context, "list"),
  /** `dlq redrive` takes ids, or moves everything without one. */
  redrive: (context: CommandContext, selection: { ids: readonly string[] } | { all: true }, force = false) =>
    dlq(context, ["redrive", "ids" in selection ? selectionFlags(selection) : "", force ? "--force" : ""].filter(Boolean).join(" ")),
  delete: (context: CommandContext, selection: Selection) => dlq(context, `delete ${selectionFlags(selection)} --yes`),
  /** The edited body goes in a file: a shell argument would mangle quotes and newlines. */
  resend: (context: CommandContext, id: string, file = "edited.json") => dlq(context, `resend --id ${shellQuote(id)} --file ${shellQuote(file)}`),
};
