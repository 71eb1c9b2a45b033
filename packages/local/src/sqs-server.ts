import "./quiet-sqlite-warning"; // before fauxqs loads node:sqlite (see startLocalSqs)
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Options of the local SQS server; `defaults` shows them in one place. */
export interface LocalSqsOptions {
  port: number;
  host: string;
  /** Folder for SQLite persistence: queued messages survive a restart. In memory when undefined. */
  dataDir?: string;
}

export const LOCAL_SQS_DEFAULTS: LocalSqsOptions = { port: 9324, host: "127.0.0.1" };

export interface LocalSqsServer {
  /** e.g. http://127.0.0.1:9324 — what `AWS_ENDPOINT_URL_SQS` should be. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts fauxqs, an SQS emulator speaking the AWS JSON protocol of `@aws-sdk/client-sqs`, bound to loopback.
 *
 * fauxqs's own `startFauxqs` listens on 0.0.0.0 whatever `host` says, which would open an unauthenticated queue to
 * the network. So this builds fauxqs's app (its public `buildApp`) and listens on `host` itself; for persistence it
 * wires fauxqs's own stores and SQLite persistence, reached by file path because the package exports only its root (the version is
 * pinned exactly in package.json, so these paths are stable).
 */
export async function startLocalSqs(options: Partial<LocalSqsOptions> = {}): Promise<LocalSqsServer> {
  const { port, host, dataDir } = { ...LOCAL_SQS_DEFAULTS, ...options };
  // Loaded here, not imported at the top: fauxqs loads node:sqlite, and a static import would load it (printing
  // its ExperimentalWarning) before ./quiet-sqlite-warning could filter it.
  const { buildApp } = await import("fauxqs");
  const stores = await fauxqsStores(dataDir);
  const app = buildApp({ logger: false, stores: stores.stores });
  app.addHook("preClose", () => stores.close());
  await app.listen({ port, host });
  const address = app.server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  return {
    endpoint: `http://${host}:${actualPort}`,
    port: actualPort,
    close: async () => {
      await app.close();
    },
  };
}

async function fauxqsStores(dataDir: string | undefined) {
  const dist = path.dirname(fileURLToPath(import.meta.resolve("fauxqs")));
  const load = (file: string) => import(pathToFileURL(path.join(dist, file)).href);
  const [{ SqsStore }, { SnsStore }, { S3Store }] = await Promise.all([
    load("sqs/sqsStore.js"),
    load("sns/snsStore.js"),
    load("s3/s3Store.js"),
  ]);
  const stores = { sqsStore: new SqsStore(), snsStore: new SnsStore(), s3Store: new S3Store() };
  // Queue URLs then name the address the client used (http://127.0.0.1:9324/…), not sqs.<region>.localhost, a name
  // that not every resolver maps to loopback.
  stores.sqsStore.host = "";
  if (!dataDir) return { stores, close: () => undefined };
  await mkdir(dataDir, { recursive: true });
  const { PersistenceManager } = await load("persistence.js"); // node:sqlite: loaded only when persisting
  const persistence = new PersistenceManager(path.join(dataDir));
  // As fauxqs's startFauxqs does: load first, then attach, so loading does not write back.
  persistence.load(stores.sqsStore, stores.snsStore, stores.s3Store);
  stores.sqsStore.persistence = persistence;
  stores.snsStore.persistence = persistence;
  stores.s3Store.persistence = persistence;
  for (const queue of stores.sqsStore.allQueues()) queue.persistence = persistence;
  return { stores, close: () => persistence.close() };
}
