/**
 * A minimal local declaration of the parts of `bun:sqlite` this adapter uses, so the package
 * type-checks and publishes without Bun's type package.
 *
 * @module
 */
import type { SqliteStatement } from '@conveyor/store-sqlite-core';

/**
 * The `bun:sqlite` module, as far as this adapter uses it.
 *
 * @example
 * ```ts
 * import type { BunSqliteModule } from '@conveyor/store-sqlite-bun';
 * function open(m: BunSqliteModule) {
 *   return new m.Database(':memory:', { create: true, readwrite: true });
 * }
 * ```
 */
export interface BunSqliteModule {
  /** `bun:sqlite`'s `Database` class. */
  Database: new (
    filename: string,
    options?: { create?: boolean; readwrite?: boolean },
  ) => BunDatabase;
}

/**
 * A `bun:sqlite` `Database`, as far as this adapter uses it.
 *
 * @example
 * ```ts
 * import type { BunDatabase } from '@conveyor/store-sqlite-bun';
 * function version(db: BunDatabase): unknown {
 *   return db.prepare('SELECT sqlite_version() AS v').get()?.v;
 * }
 * ```
 */
export interface BunDatabase {
  /** Compiles a statement (`get` returns null when there is no row). */
  prepare(sql: string): BunStatement;
  /** Runs SQL without parameters. */
  exec(sql: string): unknown;
  /** Closes the database. */
  close(): void;
}

/**
 * A `bun:sqlite` prepared statement, as far as this adapter uses it.
 *
 * @example
 * ```ts
 * import type { BunStatement } from '@conveyor/store-sqlite-bun';
 * function done(s: BunStatement): void {
 *   s.finalize();
 * }
 * ```
 */
export interface BunStatement extends SqliteStatement {
  /** Frees the statement. */
  finalize(): void;
}
