import { describe, expect, it } from "vitest";
import type { DonationCreatedEvent } from "./donation-event";
import { DONATION_TABLE_FIELDS, DonationField, MERGE_FIELD, toAirtableFields } from "./donation-fields";

const donation: DonationCreatedEvent = {
  Id: "0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17",
  CreationDate: "2018-06-10T14:03:27.123Z",
  UserId: "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
  FundraiserId: "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
  DonationAmount: 25.5,
  DonorDisplayName: "Søren K.",
};

describe("toAirtableFields", () => {
  it("maps a donation to the six fields of the original Donations table", () => {
    // Act
    const fields = toAirtableFields(donation);

    // Assert: the names the original integration created, with the event's values untouched
    expect(fields).toStrictEqual({
      Id: "0d6f5b8e-8a57-4c3e-b1c2-6a0f4e9d2b17",
      "Creation Date": "2018-06-10T14:03:27.123Z",
      "Donor Id": "a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607",
      "Fundraiser Id": "7b0c9e52-2f3b-4a7e-9d0a-3c8f0e6b1a21",
      "Donation Amount": 25.5,
      "Donor Display Name": "Søren K.",
    });
  });

  describe.each<{ case: string; nulls: Partial<DonationCreatedEvent>; absent: string[] }>([
    { case: "an anonymous donor (no user id)", nulls: { UserId: null }, absent: ["Donor Id"] },
    { case: "a donor without a display name", nulls: { DonorDisplayName: null }, absent: ["Donor Display Name"] },
    {
      case: "a donor with neither",
      nulls: { UserId: null, DonorDisplayName: null },
      absent: ["Donor Id", "Donor Display Name"],
    },
  ])("for $case", ({ nulls, absent }) => {
    it("leaves the null fields out, so an upsert never blanks a value staff filled in", () => {
      // Act
      const fields = toAirtableFields({ ...donation, ...nulls });

      // Assert
      for (const name of absent) expect(fields).not.toHaveProperty([name]);
      expect(Object.keys(fields)).toHaveLength(6 - absent.length);
      expect(Object.values(fields)).not.toContain(null);
      expect(Object.values(fields)).not.toContain("");
    });
  });

  it("sends the amount as a JSON number and the date as ISO 8601 (Airtable refuses strings without typecast)", () => {
    // Act
    const fields = toAirtableFields({ ...donation, DonationAmount: 0.1 });

    // Assert
    expect(fields[DonationField.DonationAmount]).toBe(0.1);
    expect(new Date(fields[DonationField.CreationDate] as string).toISOString()).toBe(donation.CreationDate);
  });

  it("upserts on the event Id, which the mapping always includes", () => {
    // Act
    const fields = toAirtableFields({ ...donation, UserId: null, DonorDisplayName: null });

    // Assert
    expect(MERGE_FIELD).toBe("Id");
    expect(fields[MERGE_FIELD]).toBe(donation.Id);
  });
});

describe("DONATION_TABLE_FIELDS", () => {
  it("describes every field the writer sends, once, with a type that takes the value sent", () => {
    // Arrange
    const sent = toAirtableFields(donation);

    // Act
    const byName = new Map(DONATION_TABLE_FIELDS.map((spec) => [spec.name, spec]));

    // Assert: one spec per field the writer can send, the created type among the accepted ones, and values
    // of the JavaScript type that Airtable's field type takes
    expect(byName.size).toBe(DONATION_TABLE_FIELDS.length);
    expect([...byName.keys()].sort()).toEqual(Object.values(DonationField).sort());
    expect(DONATION_TABLE_FIELDS[0]!.name).toBe(MERGE_FIELD);
    for (const [name, value] of Object.entries(sent)) {
      const spec = byName.get(name as (typeof DonationField)[keyof typeof DonationField])!;
      expect(spec.accepts).toContain(spec.type);
      expect(typeof value).toBe(spec.type === "currency" || spec.type === "number" ? "number" : "string");
    }
  });
});

describe("the table of fields in docs/contract.md", () => {
  it("lists every field with the type setup creates, the types that work and what it holds", async () => {
    // Arrange
    const { readFile } = await import("node:fs/promises");
    const readme = await readFile(new URL("../../../docs/contract.md", import.meta.url), "utf8");

    // Act / Assert: one row per field, exactly as the one source says
    for (const spec of DONATION_TABLE_FIELDS) {
      const row = readme.split("\n").find((line) => line.startsWith(`| \`${spec.name}\` | \`${spec.type}\``));
      expect(row, spec.name).toBeDefined();
      expect(row).toContain(`| ${spec.accepts.map((type) => `\`${type}\``).join(", ")} | ${spec.description} |`);
    }
  });
});
