/**
 * Test entry point for the PostgreSQL store: the conformance and behaviour suites on `PgStore`, with a second
 * `PgStore` on the same schema as the "other process" peer. Uses `CONVEYOR_PG_URL` when set,
 * otherwise starts a throwaway embedded PostgreSQL (tests/pg-server.ts).
 *
 * ```sh
 * npx -y deno@2 test -A tests/pg.test.ts
 * npx -y node@24 --test tests/pg.test.ts
 * npx -y bun@1 test ./tests/pg.test.ts
 * ```
 *
 * @module
 */
import { after } from 'node:test';
import { PgStore } from '@conveyor/store-pg';
import type { StoreInterface } from '@conveyor/shared';
import type { StoreHarness } from './harness.ts';
import { conformanceSuite } from './conformance/mod.ts';
import { behaviourSuite } from './behaviour/mod.ts';
import { testServer } from './pg-server.ts';

const server = await testServer();
const schema = `conveyor_conf_${crypto.randomUUID().slice(0, 8)}`;

async function open(): Promise<PgStore> {
  const store = new PgStore({ connection: { ...parse(server.url), max: 4 }, schema });
  await store.connect();
  return store;
}

function parse(url: string): { host: string; port: number; user: string; database: string } {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    database: u.pathname.slice(1),
  };
}

const harness: StoreHarness = {
  label: 'pg',
  open,
  openPeer: async (_store: StoreInterface) => await open(),
  teardown: async () => {
    const { default: postgres } = await import('postgres');
    const sql = postgres(server.url, { max: 1, onnotice: () => {} });
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.end();
    await server.stop();
  },
};

// Before the suites' checks that some case ran: node:test stops at the first failing `after`.
after(async () => await harness.teardown?.());
conformanceSuite(harness);
behaviourSuite(harness);
