/**
 * Entry point: the SQLite store on the `deno` adapter (`@conveyor/store-sqlite-deno`), on
 * `:memory:` and on a temp file: the conformance and behaviour suites, then the SQLite-specific
 * cases. Fails if no test ran.
 *
 * @module
 */
import { openDenoSqlite, SqliteStore } from '@conveyor/store-sqlite-deno';
import { sqliteSuites } from './sqlite-suites.ts';

sqliteSuites({
  name: 'sqlite-deno',
  create: (options) => new SqliteStore(options),
  openDriver: openDenoSqlite,
});
