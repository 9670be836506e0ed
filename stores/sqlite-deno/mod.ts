/**
 * `@conveyor/store-sqlite-deno`: Conveyor's SQLite store for Deno, on Deno's built-in
 * `node:sqlite` (no FFI, no native download, no extra permission beyond file access). Several
 * processes can share one database file.
 *
 * @example
 * ```ts
 * import { SqliteStore } from '@conveyor/store-sqlite-deno';
 *
 * const store = new SqliteStore({ filename: './jobs.db' });
 * await store.connect();
 * await store.disconnect();
 * ```
 *
 * @module
 */
import { DatabaseSync } from 'node:sqlite';
import {
  type SqliteDriver,
  SqliteStoreBase,
  type SqliteStoreOptions,
} from '@conveyor/store-sqlite-core';

export type { SqliteStoreOptions } from '@conveyor/store-sqlite-core';

/**
 * Opens a connection with Deno's built-in `node:sqlite` as a {@linkcode SqliteDriver}.
 *
 * @example
 * ```ts
 * import { openDenoSqlite } from '@conveyor/store-sqlite-deno';
 * const db = openDenoSqlite(':memory:');
 * db.close();
 * ```
 */
export function openDenoSqlite(filename: string): SqliteDriver {
  return new DatabaseSync(filename) as unknown as SqliteDriver;
}

/**
 * The SQLite store for Deno (built-in `node:sqlite`). See the package README for options and behaviour.
 *
 * @example
 * ```ts
 * import { SqliteStore } from '@conveyor/store-sqlite-deno';
 * import { newJob } from '@conveyor/shared';
 *
 * const store = new SqliteStore({ filename: ':memory:' });
 * await store.connect();
 * await store.saveJob('emails', newJob('emails', 'welcome', { to: 'a@b.c' }));
 * await store.disconnect();
 * ```
 */
export class SqliteStore extends SqliteStoreBase {
  /** @param options Where the database is and how it is opened. */
  constructor(options: SqliteStoreOptions = {}) {
    super(options, openDenoSqlite);
  }
}
