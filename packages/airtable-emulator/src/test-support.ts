import { DEFAULT_BASE_ID, DEFAULT_TABLE_NAME, DEFAULT_TOKEN } from "./config";
import type { AirtableEmulator } from "./server";

/** Helpers for this package's tests: plain-fetch calls against an emulator, and donation field factories. */

export interface ApiReply {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- replies are asserted field by field
}

export const TABLE_PATH = `/v0/${DEFAULT_BASE_ID}/${encodeURIComponent(DEFAULT_TABLE_NAME)}`;

/** Sends one request with the default token (pass `token: null` for none) and parses the JSON reply. */
export async function call(
  emulator: Pick<AirtableEmulator, "url">,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; token?: string | null; signal?: AbortSignal } = {},
): Promise<ApiReply> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const token = options.token === undefined ? DEFAULT_TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${emulator.url}${path}`, {
    method,
    headers,
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    signal: options.signal,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
}

let counter = 0;

/** One donation's fields, as the project writes them; override any. */
export function donationFields(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter++;
  return {
    Id: `0d6f5b8e-8a57-4c3e-b1c2-${String(counter).padStart(12, "0")}`,
    "Creation Date": "2018-06-10T14:03:27.1234567Z",
    "Donor Id": "a3f1c2d4-0000-4000-8000-000000000001",
    "Fundraiser Id": "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
    "Donation Amount": 25.5,
    "Donor Display Name": "Ada L.",
    ...overrides,
  };
}
