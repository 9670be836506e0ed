/**
 * `@conveyor/store-sqlite-node`: Conveyor's SQLite store on `node:sqlite` (Node 22.13 or
 * later, and Deno 2). Several processes can share one database file.
 *
 * @example
 * ```ts
 * import { SqliteStore } from '@conveyor/store-sqlite-node';
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
 * Opens a `node:sqlite` connection as a {@linkcode SqliteDriver}.
 *
 * @example
 * ```ts
 * import { openNodeSqlite } from '@conveyor/store-sqlite-node';
 * const db = openNodeSqlite(':memory:');
 * db.close();
 * ```
 */
export function openNodeSqlite(filename: string): SqliteDriver {
  return new DatabaseSync(filename) as unknown as SqliteDriver;
}

/**
 * The SQLite store on `node:sqlite`. See the package README for options and behaviour.
 *
 * @example
 * ```ts
 * import { SqliteStore } from '@conveyor/store-sqlite-node';
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
    super(options, openNodeSqlite);
  }
}
