import type { DonationCreatedEvent } from "./donation-event";

/** The Airtable table's field names, as the original integration created them. */
export const DonationField = {
  Id: "Id",
  CreationDate: "Creation Date",
  DonorId: "Donor Id",
  FundraiserId: "Fundraiser Id",
  DonationAmount: "Donation Amount",
  DonorDisplayName: "Donor Display Name",
} as const;

/** The field every write upserts on: the event's Id, unique per event. */
export const MERGE_FIELD = DonationField.Id;

/** Airtable cell values for one donation. */
export type DonationFields = Record<string, string | number>;

/**
 * Maps an event to the Donations table's fields. Null values are left out rather than sent as empty: a redelivered
 * event then never blanks a value that staff filled in by hand.
 */
export function toAirtableFields(event: DonationCreatedEvent): DonationFields {
  const fields: DonationFields = {
    [DonationField.Id]: event.Id,
    [DonationField.CreationDate]: event.CreationDate,
    [DonationField.FundraiserId]: event.FundraiserId,
    [DonationField.DonationAmount]: event.DonationAmount,
  };
  if (event.UserId !== null) fields[DonationField.DonorId] = event.UserId;
  if (event.DonorDisplayName !== null) fields[DonationField.DonorDisplayName] = event.DonorDisplayName;
  return fields;
}
