import { describe, expect, it } from "vitest";
import { boundedErrorText, jsonStringBytes, lambdaErrorCause, sqsMessageBytes } from "./message-size";

describe("sqsMessageBytes", () => {
  it("counts the body and each attribute's name, type and value, in UTF-8 bytes", () => {
    // "Zoë" is 4 bytes; "Note" 4 + "String" 6 + "é" 2; "N" 1 + "Number" 6 + "12" 2
    expect(sqsMessageBytes("Zoë", { Note: { DataType: "String", StringValue: "é" }, N: { DataType: "Number", StringValue: "12" } })).toBe(
      4 + 12 + 9,
    );
  });
});

describe("boundedErrorText", () => {
  it("leaves a short one-line text as it is", () => {
    expect(boundedErrorText("Id: is missing", 64)).toBe("Id: is missing");
  });

  it("cuts on a character boundary and marks the cut, counting JSON escapes", () => {
    // Arrange: quotes and backslashes take 2 bytes escaped, control characters 6, an emoji 4 (a surrogate pair)
    const text = `"\\\u0001🎉`.repeat(200);

    // Act
    const bounded = boundedErrorText(text, 100);

    // Assert
    expect(jsonStringBytes(bounded)).toBeLessThanOrEqual(100);
    expect(jsonStringBytes(bounded)).toBeGreaterThan(100 - 12); // nothing cut that would have fitted
    expect(bounded.endsWith("…")).toBe(true);
    expect(bounded).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no half of an emoji
  });

  it("puts the text on one line (Lambda splits the stack at line breaks) and writes DEL as Lambda does", () => {
    expect(boundedErrorText("a\nb\r\nc\rd\x7F", 64)).toBe("a b c d%7F");
  });

  it("is never empty: SQS refuses an empty attribute value", () => {
    expect(boundedErrorText("", 64)).not.toBe("");
  });
});

describe("lambdaErrorCause", () => {
  it("is the Node runtime's error response: errorType, errorMessage and the stack split into trace lines", () => {
    const error = Object.assign(new Error("it broke"), { name: "BrokenError", stack: "BrokenError: it broke\n    at x (file.js:1:1)" });
    expect(JSON.parse(lambdaErrorCause(error))).toEqual({
      errorType: "BrokenError",
      errorMessage: "it broke",
      trace: ["BrokenError: it broke", "    at x (file.js:1:1)"],
    });
  });
});
