/**
 * How SQS and Lambda measure what the pipeline sends: the size rule of a queue's `MaximumMessageSize`, and the shape
 * of a Lambda error's Cause. The size budget in `limits.ts` is built from these.
 */

const encoder = new TextEncoder();

/**
 * UTF-8 bytes of `text`, as SQS counts them. TextEncoder, not Node's Buffer: core also runs in the console's page
 * (Validate's verdict on an edited body), where there is no Buffer.
 */
export function utf8Bytes(text: string): number {
  return encoder.encode(text).length;
}

/** A message attribute as SendMessage takes it (only the String and Number types are used here). */
export interface MessageAttributeInput {
  DataType: string;
  StringValue?: string;
}

/**
 * What SQS counts toward a queue's `MaximumMessageSize`: the body, and every attribute's name, type and value, in
 * UTF-8 bytes ("All parts of the message attribute, including name, type, and value, are part of the message size
 * restriction": SQS API reference, MessageAttributeValue).
 */
export function sqsMessageBytes(body: string, attributes: Readonly<Record<string, MessageAttributeInput>> = {}): number {
  let bytes = utf8Bytes(body);
  for (const [name, { DataType, StringValue = "" }] of Object.entries(attributes)) {
    bytes += utf8Bytes(name) + utf8Bytes(DataType) + utf8Bytes(StringValue);
  }
  return bytes;
}

/** UTF-8 bytes of `text` once written inside a JSON string (escapes counted, the quotes not). */
export function jsonStringBytes(text: string): number {
  return utf8Bytes(JSON.stringify(text)) - 2;
}

const ELLIPSIS = "…";

/**
 * `text` made fit for an error's name or message that ends up in a DLQ attribute: on one line (Lambda splits the
 * stack into trace lines at `\n`), U+007F written as `%7F` (as Lambda's Node runtime does), and cut, on a character
 * boundary and marked with `…`, so that its JSON-escaped UTF-8 is at most `maxJsonBytes`. Never empty: SQS refuses an
 * empty attribute value.
 */
export function boundedErrorText(text: string, maxJsonBytes: number): string {
  const line = text.replace(/\r\n|[\r\n]/g, " ").replaceAll("\x7F", "%7F");
  const whole = line === "" ? "(no message)" : line;
  if (jsonStringBytes(whole) <= maxJsonBytes) return whole;
  const room = maxJsonBytes - jsonStringBytes(ELLIPSIS);
  let kept = "";
  let bytes = 0;
  for (const char of whole) {
    const size = jsonStringBytes(char);
    if (bytes + size > room) break;
    kept += char;
    bytes += size;
  }
  return kept + ELLIPSIS;
}

/**
 * The Cause Step Functions reports for an error a Node.js Lambda function threw: the runtime's error response
 * (`errorType`, `errorMessage`, and `trace`, the stack split at line breaks, U+007F written as `%7F`) as JSON.
 */
export function lambdaErrorCause(error: Pick<Error, "name" | "message" | "stack">): string {
  const clean = (text: string) => text.replaceAll("\x7F", "%7F");
  return JSON.stringify({
    errorType: clean(error.name) || "Error",
    errorMessage: clean(error.message),
    trace: clean(error.stack ?? "").split("\n"),
  });
}
