/**
 * Fault injection: rules that make chosen requests fail, slow down or hang, so callers' retry and error paths can
 * be tested against a real HTTP server. Rules are evaluated in the order they were added; every matching rule's
 * latency is added, and the first matching rule with a `status` or `hang` decides the outcome.
 */

/** Which requests a rule applies to: reads are list/get, writes are create/update/upsert/delete. */
export type FaultOperation = "read" | "write" | "any";

export interface FaultRuleInput {
  /** Answer with this status and an Airtable-shaped body (429, 500, 502, 503, 422, ...). */
  status?: number;
  /** Overrides the body's `error.type` / `error.message` (defaults follow the status). */
  type?: string;
  message?: string;
  /** Sends a `Retry-After` header with this many seconds (typically with 503 or 429). */
  retryAfterSeconds?: number;
  /** Delay before answering (or before failing, with `status`). */
  latencyMs?: number;
  /** Never answer: the request stays open until the client gives up or the emulator closes. */
  hang?: boolean;
  /** Fire on the next N matching requests only, then the rule removes itself. */
  times?: number;
  /** Fire on this fraction (0..1) of matching requests. */
  probability?: number;
  /** Seed for `probability`, so a run is reproducible. */
  seed?: number;
  /** Only writes with a record whose field equals this value (compared on the value sent). */
  match?: { field: string; equals: unknown };
  /** Only requests to this base. */
  baseId?: string;
  /** Only reads or only writes (default: any). */
  operation?: FaultOperation;
}

export interface FaultRule extends FaultRuleInput {
  id: string;
  /** How many times the rule has fired. */
  fired: number;
}

export interface FaultRequest {
  baseId: string;
  operation: "read" | "write";
  /** Records of a write body (their `fields`), for `match` rules; absent before the body is read. */
  records?: ReadonlyArray<Readonly<Record<string, unknown>>>;
}

export class FaultRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FaultRuleError";
  }
}

/** mulberry32: a tiny seeded PRNG. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KNOWN_KEYS = new Set([
  "status", "type", "message", "retryAfterSeconds", "latencyMs", "hang", "times", "probability", "seed", "match",
  "baseId", "operation",
]);

/** Checks a rule (from code or from the admin HTTP API) and throws a FaultRuleError naming what is wrong. */
export function validateFaultRule(input: unknown): FaultRuleInput {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new FaultRuleError("a fault rule must be an object");
  const rule = input as Record<string, unknown>;
  for (const key of Object.keys(rule)) if (!KNOWN_KEYS.has(key)) throw new FaultRuleError(`unknown fault rule property "${key}"`);
  const int = (key: string, min: number, max: number) => {
    const v = rule[key];
    if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)) {
      throw new FaultRuleError(`"${key}" must be an integer from ${min} to ${max}`);
    }
  };
  int("status", 400, 599);
  int("retryAfterSeconds", 0, 86_400);
  int("latencyMs", 0, 600_000);
  int("times", 1, 1_000_000_000);
  int("seed", -(2 ** 31), 2 ** 32);
  const p = rule.probability;
  if (p !== undefined && (typeof p !== "number" || !(p >= 0 && p <= 1))) throw new FaultRuleError('"probability" must be a number from 0 to 1');
  for (const key of ["type", "message", "baseId"]) {
    if (rule[key] !== undefined && typeof rule[key] !== "string") throw new FaultRuleError(`"${key}" must be a string`);
  }
  if (rule.hang !== undefined && typeof rule.hang !== "boolean") throw new FaultRuleError('"hang" must be a boolean');
  if (rule.operation !== undefined && !["read", "write", "any"].includes(rule.operation as string)) {
    throw new FaultRuleError('"operation" must be "read", "write" or "any"');
  }
  const match = rule.match;
  if (match !== undefined) {
    if (typeof match !== "object" || match === null || typeof (match as { field?: unknown }).field !== "string" || !("equals" in match)) {
      throw new FaultRuleError('"match" must be { "field": string, "equals": value }');
    }
    if (rule.operation === "read") throw new FaultRuleError('"match" rules apply to writes only');
  }
  if (rule.status === undefined && rule.hang !== true && rule.latencyMs === undefined) {
    throw new FaultRuleError('a fault rule needs "status", "hang": true or "latencyMs"');
  }
  if (rule.status !== undefined && rule.hang === true) throw new FaultRuleError('"status" and "hang" exclude each other');
  return rule as FaultRuleInput;
}

/** What the server must do for one request, once the rules are consulted. */
export interface FaultDecision {
  latencyMs: number;
  /** The rule that fails or hangs the request, if any. */
  rule?: FaultRule;
}

/**
 * The rules, programmable from code (`emulator.faults`) and from `/__emulator/faults`.
 *
 * @example
 * emulator.faults.failNext(2, { status: 503, retryAfterSeconds: 1 });
 * emulator.faults.add({ match: { field: "Donor Display Name", equals: "FAIL" }, status: 422 });
 */
export class FaultController {
  private rules: { rule: FaultRule; random?: () => number }[] = [];
  private nextId = 1;

  /** Adds a rule; returns it with its id (for `remove`). */
  add(input: FaultRuleInput): FaultRule {
    const valid = validateFaultRule(input);
    const rule: FaultRule = { ...valid, id: `fault${this.nextId++}`, fired: 0 };
    const random = valid.probability === undefined ? undefined : valid.seed === undefined ? Math.random : seededRandom(valid.seed);
    this.rules.push({ rule, random });
    return { ...rule };
  }

  /** Fails the next `count` requests with `status` (default 500). */
  failNext(count: number, options: Omit<FaultRuleInput, "times"> = {}): FaultRule {
    return this.add({ status: 500, ...options, times: count });
  }

  /** Fails a fraction of requests with `status` (default 500); pass `seed` for a reproducible sequence. */
  failFraction(probability: number, options: Omit<FaultRuleInput, "probability"> = {}): FaultRule {
    return this.add({ status: 500, ...options, probability });
  }

  /** Delays matching requests by `ms`. */
  addLatency(ms: number, options: Omit<FaultRuleInput, "latencyMs"> = {}): FaultRule {
    return this.add({ ...options, latencyMs: ms });
  }

  /** Leaves matching requests unanswered (default: the next one only). */
  hang(options: Omit<FaultRuleInput, "hang"> = {}): FaultRule {
    return this.add({ times: 1, ...options, hang: true });
  }

  /** Fails writes holding a record whose `field` equals `equals` (default status 422). */
  failWhen(match: { field: string; equals: unknown }, options: Omit<FaultRuleInput, "match"> = {}): FaultRule {
    return this.add({ status: 422, ...options, match });
  }

  remove(id: string): boolean {
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => r.rule.id !== id);
    return this.rules.length !== before;
  }

  clear(): void {
    this.rules = [];
  }

  list(): FaultRule[] {
    return this.rules.map((r) => ({ ...r.rule }));
  }

  /**
   * Consults the rules for a request. Called twice per write: without `records` (rules with no `match`) and, once
   * the body is parsed, with `records` (only `match` rules).
   */
  decide(request: FaultRequest): FaultDecision {
    const decision: FaultDecision = { latencyMs: 0 };
    const withBody = request.records !== undefined;
    for (const entry of [...this.rules]) {
      const { rule } = entry;
      if ((rule.match !== undefined) !== withBody) continue;
      if (rule.baseId !== undefined && rule.baseId !== request.baseId) continue;
      const operation = rule.match !== undefined ? "write" : (rule.operation ?? "any");
      if (operation !== "any" && operation !== request.operation) continue;
      if (rule.match !== undefined) {
        const { field, equals } = rule.match;
        if (!request.records?.some((fields) => Object.is(fields[field], equals) || fields[field] === equals)) continue;
      }
      if (entry.random && entry.random() >= (rule.probability ?? 1)) continue;
      const decisive = rule.status !== undefined || rule.hang === true;
      if (decisive && decision.rule) continue;
      rule.fired++;
      if (rule.times !== undefined && rule.fired >= rule.times) this.remove(rule.id);
      decision.latencyMs += rule.latencyMs ?? 0;
      if (decisive) decision.rule = { ...rule };
    }
    return decision;
  }
}
