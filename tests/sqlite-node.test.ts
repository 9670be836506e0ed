/**
 * Entry point: the SQLite store on the `node` adapter (`@conveyor/store-sqlite-node`), on
 * `:memory:` and on a temp file: the conformance and behaviour suites, then the SQLite-specific
 * cases. Fails if no test ran.
 *
 * @module
 */
import { after } from 'node:test';
import { openNodeSqlite, SqliteStore } from '@conveyor/store-sqlite-node';
import { behaviourSuite } from './behaviour/mod.ts';
import { conformanceSuite } from './conformance/mod.ts';
import { requireTests } from './helpers.ts';
import { type SqliteAdapter, sqliteHarnesses } from './sqlite-harness.ts';
import { sqliteSpecificSuite } from './sqlite-specific.ts';

const adapter: SqliteAdapter = {
  name: 'sqlite-node',
  create: (options) => new SqliteStore(options),
  openDriver: openNodeSqlite,
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
