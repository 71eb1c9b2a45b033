import { describe, expect, inject, it } from "vitest";
import { type AslDefinition, type AslStateLike, conditionText, definitionToGraph, END_NODE, START_NODE, stateNames } from "./graph";

/** Every state of a definition with the Map/Parallel it runs in, read from the definition itself. */
function statesWithParents(definition: AslDefinition, parent?: string): { name: string; state: AslStateLike; parent?: string }[] {
  return Object.entries(definition.States).flatMap(([name, state]) => [
    { name, state, parent },
    ...[state.ItemProcessor ?? state.Iterator, ...(state.Branches ?? [])]
      .filter((scope): scope is AslDefinition => !!scope)
      .flatMap((scope) => statesWithParents(scope, name)),
  ]);
}

/** The plain comparisons inside a Choice rule (through And, Or and Not). */
function comparisons(rule: Record<string, unknown>): Record<string, unknown>[] {
  const nested = [...((rule.And as Record<string, unknown>[]) ?? []), ...((rule.Or as Record<string, unknown>[]) ?? []), ...(rule.Not ? [rule.Not as Record<string, unknown>] : [])];
  return nested.length > 0 ? nested.flatMap(comparisons) : [rule];
}

describe("definitionToGraph on the real synthesized definition", () => {
  const definition = inject("workflow").definition as unknown as AslDefinition;
  const states = statesWithParents(definition);
  const graph = definitionToGraph(definition);
  const node = (id: string) => graph.nodes.find((candidate) => candidate.id === id);

  it("has one node per state, by its name, plus Start and End", () => {
    // Arrange
    const expected = states.map((entry) => entry.name);

    // Act
    const ids = graph.nodes.map((candidate) => candidate.id);

    // Assert
    expect(expected.length).toBeGreaterThan(5);
    expect(ids.sort()).toEqual([...expected, START_NODE, END_NODE].sort());
    expect(stateNames(definition).sort()).toEqual(expected.sort());
  });

  it("nests a Map's item processor inside the Map", () => {
    // Arrange
    const maps = states.filter((entry) => entry.state.Type === "Map");
    expect(maps.length).toBeGreaterThan(0);

    for (const map of maps) {
      const inner = Object.keys((map.state.ItemProcessor ?? map.state.Iterator)!.States);

      // Act
      const children = graph.nodes.filter((candidate) => candidate.parent === map.name).map((candidate) => candidate.id);

      // Assert
      expect(node(map.name)!.compound).toBe(true);
      expect(children.sort()).toEqual(inner.sort());
    }
  });

  it("labels every Choice rule's edge with its condition, and the default branch", () => {
    const choices = states.filter((entry) => entry.state.Type === "Choice");
    expect(choices.length).toBeGreaterThan(0);
    for (const { name, state } of choices) {
      for (const rule of state.Choices!) {
        // Act
        const edge = graph.edges.find((candidate) => candidate.source === name && candidate.target === rule.Next && candidate.kind === "choice");

        // Assert: the label names every variable the rule tests, with the value or test it applies
        expect(edge, `${name} → ${rule.Next}`).toBeDefined();
        for (const comparison of comparisons(rule)) {
          expect(edge!.label).toContain(String(comparison.Variable));
          const operator = Object.keys(comparison).find((key) => !["Variable", "Next", "Comment"].includes(key))!;
          if (/^Is/.test(operator)) expect(edge!.label).toMatch(/ is /);
          else expect(edge!.label).toContain(String(comparison[operator]));
        }
      }
      if (state.Default) {
        expect(graph.edges.some((edge) => edge.source === name && edge.target === state.Default && edge.label === "Default")).toBe(true);
      }
    }
  });

  it("labels every Catch edge with the errors it catches", () => {
    const catching = states.filter((entry) => (entry.state.Catch ?? []).length > 0);
    expect(catching.length).toBeGreaterThan(0);
    for (const { name, state } of catching) {
      for (const catcher of state.Catch!) {
        const edge = graph.edges.find((candidate) => candidate.source === name && candidate.target === catcher.Next && candidate.kind === "catch");
        expect(edge, `${name} catch → ${catcher.Next}`).toBeDefined();
        for (const error of catcher.ErrorEquals) expect(edge!.label).toContain(error);
      }
    }
  });

  it("shows each state's Retry rules on the state, with their errors and attempts", () => {
    const retrying = states.filter((entry) => (entry.state.Retry ?? []).length > 0);
    expect(retrying.length).toBeGreaterThan(0);
    for (const { name, state } of retrying) {
      const shown = node(name)!.retry;
      expect(shown.map((rule) => rule.errors)).toEqual(state.Retry!.map((retrier) => retrier.ErrorEquals));
      state.Retry!.forEach((retrier, index) => {
        expect(shown[index]!.text).toContain(`${retrier.MaxAttempts ?? 3} retr`);
        expect(shown[index]!.text).toContain(`${retrier.IntervalSeconds ?? 1} s`);
      });
    }
  });

  it("links every Next, ends terminal top-level states at End, and starts at StartAt", () => {
    for (const { name, state, parent } of states) {
      if (state.Next) expect(graph.edges.some((edge) => edge.source === name && edge.target === state.Next)).toBe(true);
      const terminal = state.End === true || state.Type === "Succeed" || state.Type === "Fail";
      expect(graph.edges.some((edge) => edge.source === name && edge.target === END_NODE)).toBe(terminal && parent === undefined);
    }
    expect(graph.edges.filter((edge) => edge.source === START_NODE).map((edge) => edge.target)).toEqual([definition.StartAt]);
    // no edge points at a node that does not exist
    const ids = new Set(graph.nodes.map((candidate) => candidate.id));
    expect(graph.edges.filter((edge) => !ids.has(edge.source) || !ids.has(edge.target))).toEqual([]);
  });

  it("says what each Task calls", () => {
    const tasks = states.filter((entry) => entry.state.Type === "Task");
    for (const { name, state } of tasks) {
      const functionName = (state.Parameters?.FunctionName as string | undefined)?.split(":").pop();
      expect(node(name)!.calls).toContain(functionName ?? state.Resource!.split(":").pop());
    }
  });
});

describe("conditionText", () => {
  it.each([
    [{ Variable: "$.n", NumericLessThan: 15 }, "$.n < 15"],
    [{ Variable: "$.s", StringEquals: "x" }, '$.s == "x"'],
    [{ Variable: "$.a", NumericGreaterThanEqualsPath: "$.b" }, "$.a >= $.b"],
    [{ Variable: "$.m[0]", IsPresent: true }, "$.m[0] is present"],
    [{ Variable: "$.m", IsNull: false }, "$.m is not null"],
    [{ Not: { Variable: "$.f", BooleanEquals: true } }, "not $.f == true"],
    [{ And: [{ Variable: "$.a", NumericEquals: 1 }, { Or: [{ Variable: "$.b", IsString: true }, { Variable: "$.c", StringMatches: "a*" }] }] }, '$.a == 1 and ($.b is string or $.c matches "a*")'],
    [{ Condition: "{% $states.input.n > 1 %}" }, "{% $states.input.n > 1 %}"],
  ])("%j reads %s", (rule, text) => {
    expect(conditionText(rule)).toBe(text);
  });
});
