/**
 * Entry point: the SQLite store on the `deno` adapter (`@conveyor/store-sqlite-deno`), on
 * `:memory:` and on a temp file: the conformance and behaviour suites, then the SQLite-specific
 * cases. Fails if no test ran.
 *
 * @module
 */
import { after } from 'node:test';
import { openDenoSqlite, SqliteStore } from '@conveyor/store-sqlite-deno';
import { behaviourSuite } from './behaviour/mod.ts';
import { conformanceSuite } from './conformance/mod.ts';
import { requireTests } from './helpers.ts';
import { type SqliteAdapter, sqliteHarnesses } from './sqlite-harness.ts';
import { sqliteSpecificSuite } from './sqlite-specific.ts';

const adapter: SqliteAdapter = {
  name: 'sqlite-deno',
  create: (options) => new SqliteStore(options),
  openDriver: openDenoSqlite,
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
