/**
 * @fundraise-sync/airtable-emulator: a local HTTP server that speaks Airtable's REST API (records endpoints),
 * schema-aware, rate-limited like Airtable, with fault injection, counters and optional file persistence.
 */
export {
  DEFAULT_BASE_ID,
  DEFAULT_EMULATOR_CONFIG,
  DEFAULT_PORT,
  DEFAULT_TABLE_NAME,
  DEFAULT_TOKEN,
  DEFAULT_VIEW_NAME,
  EmulatorConfigError,
  FIELD_TYPES,
  MERGEABLE_FIELD_TYPES,
  compileConfig,
} from "./config";
export type { BaseConfig, EmulatorConfig, FieldConfig, FieldType, TableConfig } from "./config";
export { AirtableApiError, ApiErrors, MODEL_NOT_FOUND_MESSAGE, RATE_LIMIT_MESSAGE } from "./errors";
export type { AirtableErrorBody } from "./errors";
export { FaultController, FaultRuleError, validateFaultRule } from "./faults";
export type { FaultOperation, FaultRule, FaultRuleInput } from "./faults";
export type { Clock, RateLimitOptions } from "./rate-limit";
export { MAX_PAGE_SIZE, MAX_RECORDS_PER_WRITE } from "./records-api";
export { defaults, startAirtableEmulator } from "./server";
export { localGuard } from "./local-guard";
export type { LocalGuard } from "./local-guard";
export type { AirtableEmulator, AirtableEmulatorOptions, Logger } from "./server";
export type { BaseStats, Stats } from "./stats";
export { EmulatorDataFileError } from "./store";
export type { EmulatorRecord } from "./store";
export type { CellValue } from "./fields";
