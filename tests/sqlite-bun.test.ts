/**
 * Entry point: the SQLite store on the `bun` adapter (`@conveyor/store-sqlite-bun`), on
 * `:memory:` and on a temp file: the conformance and behaviour suites, then the SQLite-specific
 * cases. Fails if no test ran.
 *
 * @module
 */
import { after } from 'node:test';
import { openBunSqlite, SqliteStore } from '@conveyor/store-sqlite-bun';
import { behaviourSuite } from './behaviour/mod.ts';
import { conformanceSuite } from './conformance/mod.ts';
import { requireTests } from './helpers.ts';
import { type SqliteAdapter, sqliteHarnesses } from './sqlite-harness.ts';
import { sqliteSpecificSuite } from './sqlite-specific.ts';

const adapter: SqliteAdapter = {
  name: 'sqlite-bun',
  create: (options) => new SqliteStore(options),
  openDriver: openBunSqlite,
};
const { ran } = requireTests(adapter.name);
const harnesses = sqliteHarnesses(adapter);
after(async () => {
  for (const h of harnesses) await h.teardown?.();
});

for (const harness of harnesses) {
  conformanceSuite(harness);
  behaviourSuite(harness);
}
sqliteSpecificSuite(adapter, ran);
