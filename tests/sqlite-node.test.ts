/**
 * Entry point: the SQLite store on the `node` adapter (`@conveyor/store-sqlite-node`), on
 * `:memory:` and on a temp file: the conformance and behaviour suites, then the SQLite-specific
 * cases. Fails if no test ran.
 *
 * @module
 */
import { openNodeSqlite, SqliteStore } from '@conveyor/store-sqlite-node';
import { sqliteSuites } from './sqlite-suites.ts';

sqliteSuites({
  name: 'sqlite-node',
  create: (options) => new SqliteStore(options),
  openDriver: openNodeSqlite,
});
