/**
 * Everything a SQLite adapter's entry point runs: the conformance and behaviour suites on
 * `:memory:` and on a temp file, then the SQLite-specific cases. Fails if no test ran.
 *
 * @module
 */
import { after } from 'node:test';
import { behaviourSuite } from './behaviour/mod.ts';
import { conformanceSuite } from './conformance/mod.ts';
import { requireTests } from './helpers.ts';
import { type SqliteAdapter, sqliteHarnesses } from './sqlite-harness.ts';
import { sqliteSpecificSuite } from './sqlite-specific.ts';

/** Registers every SQLite suite for one adapter. */
export function sqliteSuites(adapter: SqliteAdapter): void {
  const harnesses = sqliteHarnesses(adapter);
  after(async () => {
    for (const h of harnesses) await h.teardown?.();
  });
  const { ran } = requireTests(adapter.name);
  for (const harness of harnesses) {
    conformanceSuite(harness);
    behaviourSuite(harness);
  }
  sqliteSpecificSuite(adapter, ran);
}
