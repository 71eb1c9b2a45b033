import type { TableSchema } from "./config";
import { ApiErrors } from "./errors";
import type { CellValue } from "./fields";

/**
 * A small subset of Airtable's formula language for `filterByFormula`: field references (`{Name}`), string and
 * number literals, comparisons (= != < > <= >=), AND(), OR(), NOT(), RECORD_ID(), BLANK(), TRUE(), FALSE().
 * Anything else is refused with a 422 that says the emulator does not support it, so a test never passes on a
 * filter the emulator silently misread.
 */

type Token =
  | { kind: "field"; name: string }
  | { kind: "string"; value: string }
  | { kind: "number"; value: number }
  | { kind: "ident"; name: string }
  | { kind: "op"; op: string }
  | { kind: "punct"; char: "(" | ")" | "," };

type Node =
  | { kind: "field"; name: string }
  | { kind: "literal"; value: string | number | boolean | null }
  | { kind: "compare"; op: string; left: Node; right: Node }
  | { kind: "call"; name: string; args: Node[] };

export interface FormulaRecord {
  id: string;
  fields: Readonly<Record<string, CellValue>>;
}

export type CompiledFormula = (record: FormulaRecord) => boolean;

class UnsupportedFormula extends Error {}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "{") {
      const end = text.indexOf("}", i + 1);
      if (end < 0) throw ApiErrors.invalidFormula("unterminated field reference");
      tokens.push({ kind: "field", name: text.slice(i + 1, end) });
      i = end + 1;
    } else if (c === "'" || c === '"') {
      let value = "";
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw ApiErrors.invalidFormula("unterminated string");
        const d = text[j] as string;
        if (d === "\\" && j + 1 < text.length) {
          value += text[j + 1];
          j += 2;
        } else if (d === c) {
          break;
        } else {
          value += d;
          j++;
        }
      }
      tokens.push({ kind: "string", value });
      i = j + 1;
    } else if (/[0-9.]/.test(c)) {
      const m = /^\d*\.?\d+(?:[eE][+-]?\d+)?|^\d+\.?/.exec(text.slice(i));
      if (!m) throw ApiErrors.invalidFormula(`unexpected "${c}"`);
      tokens.push({ kind: "number", value: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i)) as RegExpExecArray;
      tokens.push({ kind: "ident", name: m[0] });
      i += m[0].length;
    } else if (c === "(" || c === ")" || c === ",") {
      tokens.push({ kind: "punct", char: c });
      i++;
    } else {
      const two = text.slice(i, i + 2);
      if (two === "!=" || two === "<=" || two === ">=") {
        tokens.push({ kind: "op", op: two });
        i += 2;
      } else if (c === "=" || c === "<" || c === ">") {
        tokens.push({ kind: "op", op: c });
        i++;
      } else {
        throw new UnsupportedFormula(`the operator "${c}"`);
      }
    }
  }
  return tokens;
}

const FUNCTIONS: Readonly<Record<string, { min: number; max: number }>> = {
  AND: { min: 1, max: Infinity },
  OR: { min: 1, max: Infinity },
  NOT: { min: 1, max: 1 },
  RECORD_ID: { min: 0, max: 0 },
  BLANK: { min: 0, max: 0 },
  TRUE: { min: 0, max: 0 },
  FALSE: { min: 0, max: 0 },
};

function parse(tokens: Token[]): Node {
  let pos = 0;
  const peek = () => tokens[pos];
  const expectPunct = (char: string) => {
    const t = tokens[pos];
    if (!t || t.kind !== "punct" || t.char !== char) throw ApiErrors.invalidFormula(`expected "${char}"`);
    pos++;
  };

  function comparison(): Node {
    const left = operand();
    const t = peek();
    if (t && t.kind === "op") {
      pos++;
      return { kind: "compare", op: t.op, left, right: operand() };
    }
    return left;
  }

  function operand(): Node {
    const t = tokens[pos++];
    if (!t) throw ApiErrors.invalidFormula("unexpected end of formula");
    switch (t.kind) {
      case "field":
        return { kind: "field", name: t.name };
      case "string":
      case "number":
        return { kind: "literal", value: t.value };
      case "ident": {
        const name = t.name.toUpperCase();
        const next = peek();
        if (!next || next.kind !== "punct" || next.char !== "(") {
          throw new UnsupportedFormula(`bare names ("${t.name}"); write field references as {${t.name}}`);
        }
        const spec = FUNCTIONS[name];
        if (!spec) throw new UnsupportedFormula(`the function ${t.name}()`);
        pos++;
        const args: Node[] = [];
        const close = peek();
        if (close && close.kind === "punct" && close.char === ")") {
          pos++;
        } else {
          for (;;) {
            args.push(comparison());
            const sep = tokens[pos++];
            if (sep && sep.kind === "punct" && sep.char === ",") continue;
            if (sep && sep.kind === "punct" && sep.char === ")") break;
            throw ApiErrors.invalidFormula(`expected "," or ")" in ${name}()`);
          }
        }
        if (args.length < spec.min || args.length > spec.max) {
          throw ApiErrors.invalidFormula(`wrong number of arguments to ${name}()`);
        }
        return { kind: "call", name, args };
      }
      case "op":
        throw new UnsupportedFormula(`an expression starting with "${t.op}"`);
      case "punct":
        if (t.char === "(") {
          const inner = comparison();
          expectPunct(")");
          return inner;
        }
        throw ApiErrors.invalidFormula(`unexpected "${t.char}"`);
    }
  }

  const node = comparison();
  const rest = tokens[pos];
  if (rest) {
    const what = rest.kind === "op" ? `chained operators ("${rest.op}")` : "more than one expression";
    throw new UnsupportedFormula(what);
  }
  return node;
}

type Value = string | number | boolean | null;

function truthy(v: Value): boolean {
  return v !== null && v !== "" && v !== 0 && v !== false;
}

function compare(op: string, a: Value, b: Value): boolean {
  // Airtable compares an empty cell as "" with text and as 0 with numbers; booleans are 1/0.
  const toNum = (v: Value) => (typeof v === "boolean" ? (v ? 1 : 0) : v === null || v === "" ? 0 : Number(v));
  const numeric =
    (typeof a === "number" || typeof a === "boolean" || typeof b === "number" || typeof b === "boolean") &&
    !Number.isNaN(toNum(a)) &&
    !Number.isNaN(toNum(b));
  let x: number | string;
  let y: number | string;
  if (numeric) {
    x = toNum(a);
    y = toNum(b);
  } else {
    x = a === null ? "" : String(a);
    y = b === null ? "" : String(b);
  }
  switch (op) {
    case "=":
      return x === y;
    case "!=":
      return x !== y;
    case "<":
      return x < y;
    case ">":
      return x > y;
    case "<=":
      return x <= y;
    case ">=":
      return x >= y;
    default:
      return false;
  }
}

/**
 * Compiles a formula for one table; throws a 422 for an unknown field, a syntax error or what is not supported.
 *
 * @example
 * const keep = compileFormula("AND({Id} = 'a', {Donation Amount} > 10)", table);
 */
export function compileFormula(text: string, table: TableSchema): CompiledFormula {
  let ast: Node;
  try {
    ast = parse(tokenize(text));
  } catch (error) {
    if (error instanceof UnsupportedFormula) {
      throw ApiErrors.invalidFormula(`the Airtable emulator does not support ${error.message} in filterByFormula`);
    }
    throw error;
  }
  const unknown: string[] = [];
  const resolveFields = (node: Node): void => {
    if (node.kind === "field") {
      const field = table.fieldsByName.get(node.name) ?? table.fieldsById.get(node.name);
      if (!field) unknown.push(node.name);
      else node.name = field.name;
    } else if (node.kind === "compare") {
      resolveFields(node.left);
      resolveFields(node.right);
    } else if (node.kind === "call") {
      node.args.forEach(resolveFields);
    }
  };
  resolveFields(ast);
  if (unknown.length > 0) throw ApiErrors.invalidFormula(`Unknown field names: ${unknown.join(", ")}`);

  const evaluate = (node: Node, record: FormulaRecord): Value => {
    switch (node.kind) {
      case "field":
        return record.fields[node.name] ?? null;
      case "literal":
        return node.value;
      case "compare":
        return compare(node.op, evaluate(node.left, record), evaluate(node.right, record));
      case "call":
        switch (node.name) {
          case "AND":
            return node.args.every((a) => truthy(evaluate(a, record)));
          case "OR":
            return node.args.some((a) => truthy(evaluate(a, record)));
          case "NOT":
            return !truthy(evaluate(node.args[0] as Node, record));
          case "RECORD_ID":
            return record.id;
          case "TRUE":
            return true;
          case "FALSE":
            return false;
          default:
            return null; // BLANK()
        }
    }
  };
  return (record) => truthy(evaluate(ast, record));
}
