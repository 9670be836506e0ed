/**
 * The harness of the PostgreSQL suites: stores on one fresh schema of a server, a second store
 * on the same schema as the "other process" peer, and a teardown that drops the schema.
 *
 * @module
 */
import { PgStore, type PgStoreOptions } from '@conveyor/store-pg';
import type { StoreHarness } from './harness.ts';

/**
 * A harness of `PgStore`s with `options` (4 connections each) on a fresh schema of the server at
 * `url`; `adminUrl` (default `url`) drops the schema at teardown, then `stop` runs.
 *
 * @example
 * ```ts
 * import { pgHarness } from './pg-harness.ts';
 * const harness = pgHarness('pg', 'postgres://postgres@127.0.0.1:5432/test', {}, async () => {});
 * const store = await harness.open();
 * ```
 */
export function pgHarness(
  label: string,
  url: string,
  options: Pick<PgStoreOptions, 'listen' | 'pollInterval' | 'prepare'>,
  stop: () => Promise<void>,
  adminUrl: string = url,
): StoreHarness {
  const schema = `conveyor_conf_${crypto.randomUUID().slice(0, 8)}`;
  const u = new URL(url);
  const connection = {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    database: u.pathname.slice(1),
    max: 4,
  };
  const open = async (): Promise<PgStore> => {
    const store = new PgStore({ connection, schema, ...options });
    await store.connect();
    return store;
  };
  return {
    label,
    open,
    openPeer: async () => await open(),
    teardown: async () => {
      const { default: postgres } = await import('postgres');
      const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end();
      await stop();
    },
  };
}
