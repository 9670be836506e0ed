/**
 * `@conveyor/store-sqlite-bun`: Conveyor's SQLite store on Bun's built-in `bun:sqlite`.
 * Several processes can share one database file.
 *
 * @example
 * ```ts
 * import { SqliteStore } from '@conveyor/store-sqlite-bun';
 *
 * const store = new SqliteStore({ filename: './jobs.db' });
 * await store.connect();
 * await store.disconnect();
 * ```
 *
 * @module
 */
import {
  type SqliteDriver,
  SqliteStoreBase,
  type SqliteStoreOptions,
} from '@conveyor/store-sqlite-core';
import type { BunSqliteModule, BunStatement } from './bun_sqlite.ts';

export type { SqliteStoreOptions } from '@conveyor/store-sqlite-core';

/**
 * Opens a `bun:sqlite` connection as a {@linkcode SqliteDriver}. Only works under Bun.
 *
 * `bun:sqlite` is loaded with Bun's synchronous `import.meta.require`, so Deno's type check and
 * `deno publish` never try to resolve the `bun:` scheme; {@linkcode BunSqliteModule} declares
 * the few parts used.
 *
 * @example
 * ```ts
 * import { openBunSqlite } from '@conveyor/store-sqlite-bun';
 * const db = openBunSqlite(':memory:');
 * db.close();
 * ```
 */
export function openBunSqlite(filename: string): SqliteDriver {
  const meta = import.meta as ImportMeta & { require?: (id: string) => unknown };
  if (typeof meta.require !== 'function') {
    throw new Error('@conveyor/store-sqlite-bun runs only on Bun (bun:sqlite)');
  }
  const { Database } = meta.require('bun:sqlite') as BunSqliteModule;
  const db = new Database(filename, { create: true, readwrite: true });
  // bun:sqlite closes lazily while statements are alive: finalize them so close() really closes.
  const statements: BunStatement[] = [];
  return {
    prepare: (sql) => {
      const statement = db.prepare(sql);
      statements.push(statement);
      return statement;
    },
    exec: (sql) => void db.exec(sql),
    close: () => {
      for (const statement of statements.splice(0)) statement.finalize();
      db.close();
    },
  };
}

/**
 * The SQLite store on `bun:sqlite`. See the package README for options and behaviour.
 *
 * @example
 * ```ts
 * import { SqliteStore } from '@conveyor/store-sqlite-bun';
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
    super(options, openBunSqlite);
  }
}

export type { BunDatabase, BunSqliteModule, BunStatement } from './bun_sqlite.ts';
