import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * The project's commands parse their flags with this: `node:util`'s `parseArgs`, strict, with two things made right
 * for people. A negative number after a flag (`--count -3`) is taken as that flag's value, so the flag's own check
 * can say what is allowed (parseArgs calls it "ambiguous"). And parseArgs's messages, written for programmers, become
 * one short line each. Errors are {@link CommandLineError}: the caller prints `error: <message>` and exits 2.
 */
export class CommandLineError extends Error {
  override readonly name = "CommandLineError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/** `--flag -3` → `--flag=-3` for flags that take a value. */
function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    const next = argv[i + 1];
    if (name !== undefined && options[name]?.type === "string" && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** parseArgs's message → one line a person can act on. */
function rewrite(error: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? "";
  const flag = quoted.split(" ")[0];
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${flag} (see --help)`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument "${quoted}" (see --help)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (/argument missing|ambiguous/.test(error.message)) return `${flag} needs a value`;
      if (/does not take an argument/.test(error.message)) return `${flag} takes no value`;
      return error.message.split("\n")[0]!;
    default:
      return error.message.split("\n")[0] ?? "bad arguments";
  }
}

/**
 * `parseArgs`, strict, with `--help`/`-h` added.
 *
 * @throws {CommandLineError} one line, e.g. `unknown option --bogus (see --help)`.
 * @example
 * const { values, positionals } = parseCommandLine(process.argv.slice(2), { count: { type: "string" } });
 */
export function parseCommandLine<T extends Options>(argv: readonly string[], options: T, allowPositionals = false) {
  const all = { ...options, help: { type: "boolean", short: "h" } } as T & { help: { type: "boolean"; short: "h" } };
  try {
    return parseArgs({ args: joinNegativeValues(argv, all), options: all, strict: true, allowPositionals });
  } catch (error) {
    throw new CommandLineError(rewrite(error as Error & { code?: string }));
  }
}
