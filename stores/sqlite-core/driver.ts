/**
 * The small driver interface the SQLite core runs on. An adapter wraps one runtime's SQLite
 * binding (`node:sqlite`, `bun:sqlite`, ...) in these few methods; all SQL lives in the core.
 *
 * @module
 */

/**
 * A value SQLite stores or returns.
 *
 * @example
 * ```ts
 * import type { SqlValue } from '@conveyor/store-sqlite-core';
 * const params: SqlValue[] = ['q', 1, null];
 * ```
 */
export type SqlValue = string | number | bigint | null | Uint8Array;

/**
 * A result row: column name to value.
 *
 * @example
 * ```ts
 * import type { SqlRow } from '@conveyor/store-sqlite-core';
 * const row: SqlRow = { id: '1', n: 2 };
 * ```
 */
export type SqlRow = Record<string, SqlValue>;

/**
 * A prepared statement with positional (`?`) parameters. The core prepares each statement
 * once and caches it.
 *
 * @example
 * ```ts
 * import type { SqliteStatement } from '@conveyor/store-sqlite-core';
 * function count(stmt: SqliteStatement): number {
 *   return Number(stmt.get()?.n ?? 0);
 * }
 * ```
 */
export interface SqliteStatement {
  /** Runs the statement and returns how many rows it changed. */
  run(...params: SqlValue[]): { changes: number | bigint };
  /** Runs the statement and returns the first row, or undefined. */
  get(...params: SqlValue[]): SqlRow | undefined;
  /** Runs the statement and returns every row. */
  all(...params: SqlValue[]): SqlRow[];
}

/**
 * One open SQLite connection, as an adapter provides it. Calls are synchronous.
 *
 * @example
 * ```ts
 * import type { SqliteDriver } from '@conveyor/store-sqlite-core';
 * function version(db: SqliteDriver): string {
 *   return String(db.prepare('SELECT sqlite_version() AS v').get()?.v);
 * }
 * ```
 */
export interface SqliteDriver {
  /** Compiles a statement. */
  prepare(sql: string): SqliteStatement;
  /** Runs one or more statements without parameters. */
  exec(sql: string): void;
  /** Closes the connection. */
  close(): void;
}

/**
 * Opens a connection on a file path or `:memory:`. Throws when the file cannot be opened.
 *
 * @example
 * ```ts
 * import type { OpenDriver } from '@conveyor/store-sqlite-core';
 * const open: OpenDriver = (_filename) => {
 *   throw new Error('not implemented');
 * };
 * ```
 */
export type OpenDriver = (filename: string) => SqliteDriver;

/**
 * Whether an error thrown by a driver is SQLite's "database is locked" (`SQLITE_BUSY`, any
 * extended code), which the core retries.
 *
 * @example
 * ```ts
 * import { isBusyError } from '@conveyor/store-sqlite-core';
 * console.log(isBusyError(new Error('database is locked'))); // true
 * ```
 */
export function isBusyError(error: unknown): boolean {
  return sqliteCode(error) === 5 || /database is (locked|busy)|SQLITE_BUSY/i.test(messageOf(error));
}

/**
 * Whether an error says the file is not an SQLite database (`SQLITE_NOTADB`).
 *
 * @example
 * ```ts
 * import { isNotADatabaseError } from '@conveyor/store-sqlite-core';
 * console.log(isNotADatabaseError(new Error('file is not a database'))); // true
 * ```
 */
export function isNotADatabaseError(error: unknown): boolean {
  return sqliteCode(error) === 26 || /not a database|SQLITE_NOTADB/i.test(messageOf(error));
}

/** The primary SQLite result code of a driver error, when the driver exposes one. */
function sqliteCode(error: unknown): number | null {
  if (typeof error !== 'object' || error === null) return null;
  const e = error as { errcode?: unknown; errno?: unknown };
  const code = typeof e.errcode === 'number'
    ? e.errcode
    : typeof e.errno === 'number'
    ? e.errno
    : null;
  return code === null ? null : code & 0xff;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return `${error.message} ${(error as { code?: unknown }).code ?? ''}`;
  return String(error);
}
