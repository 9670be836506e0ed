/**
 * Entry point: the SQLite store on the `bun` adapter (`@conveyor/store-sqlite-bun`), on
 * `:memory:` and on a temp file: the conformance and behaviour suites, then the SQLite-specific
 * cases. Fails if no test ran.
 *
 * @module
 */
import { openBunSqlite, SqliteStore } from '@conveyor/store-sqlite-bun';
import { sqliteSuites } from './sqlite-suites.ts';

sqliteSuites({
  name: 'sqlite-bun',
  create: (options) => new SqliteStore(options),
  openDriver: openBunSqlite,
});
