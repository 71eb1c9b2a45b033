import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { CreateTableCommand, type DynamoDBClient, type KeySchemaElement, type AttributeDefinition } from "@aws-sdk/client-dynamodb";

/** Options of the local DynamoDB server; `LOCAL_DYNAMODB_DEFAULTS` shows them in one place. */
export interface LocalDynamoDbOptions {
  /** 0 picks a free port: nothing outside this process needs to find it. */
  port: number;
  host: string;
}

export const LOCAL_DYNAMODB_DEFAULTS: LocalDynamoDbOptions = { port: 0, host: "127.0.0.1" };

export interface LocalDynamoDbServer {
  /** e.g. http://127.0.0.1:41234 — what a `DynamoDBClient`'s `endpoint` should be. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/** The part of dynalite's factory used here (it ships no type declarations). */
type Dynalite = (options: { createTableMs: number; deleteTableMs: number; updateTableMs: number }) => import("node:http").Server;

/**
 * Starts dynalite, a DynamoDB-protocol server (the JSON 1.0 API that `@aws-sdk/client-dynamodb` speaks, condition
 * expressions and their `ConditionalCheckFailedException` included), in this process and in memory, bound to
 * `host` (loopback by default).
 *
 * In memory on purpose: it holds only the drain lease, whose holder is an execution of this process's runtime. A
 * lease kept across a restart would name an execution the new process has never heard of (DescribeExecution:
 * does not exist), which the lease rightly treats as running: every drain would skip.
 */
export async function startLocalDynamoDb(options: Partial<LocalDynamoDbOptions> = {}): Promise<LocalDynamoDbServer> {
  const { port, host } = { ...LOCAL_DYNAMODB_DEFAULTS, ...options };
  const dynalite = createRequire(import.meta.url)("dynalite") as Dynalite;
  // Tables are ACTIVE at once (dynalite's default mimics AWS's half-second CREATING).
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
  const actualPort = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://${host}:${actualPort}`,
    port: actualPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A table of the synthesized stack: its name as the state machine's definition names it, and its keys. */
export interface StackTable {
  /** The construct id (`DrainLease`): what the table's references resolve to in the synthesized definition. */
  tableName: string;
  keySchema: KeySchemaElement[];
  attributeDefinitions: AttributeDefinition[];
}

/** Every `AWS::DynamoDB::Table` of the synthesized template, named as the definition names it. */
export function stackTables(workflow: { template: Record<string, any>; constructIds: Record<string, string> }): StackTable[] {
  return Object.entries(workflow.template.Resources as Record<string, any>)
    .filter(([, resource]) => resource.Type === "AWS::DynamoDB::Table")
    .map(([logicalId, resource]) => ({
      tableName: workflow.constructIds[logicalId] ?? logicalId,
      keySchema: resource.Properties.KeySchema,
      attributeDefinitions: resource.Properties.AttributeDefinitions,
    }));
}

/** Creates the stack's tables on a local server, with the template's keys and on-demand billing. */
export async function createStackTables(dynamodb: DynamoDBClient, tables: StackTable[]): Promise<void> {
  for (const table of tables) {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: table.tableName,
        KeySchema: table.keySchema,
        AttributeDefinitions: table.attributeDefinitions,
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
  }
}
