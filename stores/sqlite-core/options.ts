/**
 * The options every `SqliteStore` adapter accepts, and their checks.
 *
 * @module
 */
import { checkInteger, InvalidArgumentError, type StoreOptions } from '@conveyor/shared';

/**
 * Options of a `SqliteStore` (the same in every adapter).
 *
 * @example
 * ```ts
 * import type { SqliteStoreOptions } from '@conveyor/store-sqlite-core';
 * const opts: SqliteStoreOptions = { filename: './jobs.db', synchronous: 'FULL' };
 * ```
 */
export interface SqliteStoreOptions extends StoreOptions {
  /**
   * A file path, or `:memory:` (the default). Every `:memory:` store is its own private
   * database: two stores opened on `:memory:` share nothing.
   */
  filename?: string;
  /** `NORMAL` (default, durable across process crashes in WAL mode) or `FULL` (also across power loss). */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a statement waits for another connection's write lock, in ms. Default 5000. */
  busyTimeout?: number;
  /**
   * How often, in ms, to look for events written by other processes (a cheap
   * `PRAGMA data_version` check while someone is subscribed). Default 50.
   */
  pollInterval?: number;
  /** How long cross-process events are kept in the events table, in ms. Default 60000. */
  eventRetention?: number;
}

/**
 * {@linkcode SqliteStoreOptions} with every default applied.
 *
 * @example
 * ```ts
 * import { resolveOptions } from '@conveyor/store-sqlite-core';
 * console.log(resolveOptions({}).pollInterval); // 50
 * ```
 */
export interface ResolvedSqliteOptions {
  /** See {@linkcode SqliteStoreOptions.filename}. */
  filename: string;
  /** See {@linkcode SqliteStoreOptions.synchronous}. */
  synchronous: 'NORMAL' | 'FULL';
  /** See {@linkcode SqliteStoreOptions.busyTimeout}. */
  busyTimeout: number;
  /** See {@linkcode SqliteStoreOptions.pollInterval}. */
  pollInterval: number;
  /** See {@linkcode SqliteStoreOptions.eventRetention}. */
  eventRetention: number;
  /** See `StoreOptions.autoMigrate`. */
  autoMigrate: boolean;
  /** See `StoreOptions.onError`. */
  onError: (error: Error) => void;
}

/**
 * Applies defaults and checks every option; throws {@linkcode InvalidArgumentError} naming the
 * option and value.
 *
 * @example
 * ```ts
 * import { resolveOptions } from '@conveyor/store-sqlite-core';
 * const o = resolveOptions({ filename: ':memory:' });
 * console.log(o.synchronous); // NORMAL
 * ```
 */
export function resolveOptions(opts: SqliteStoreOptions = {}): ResolvedSqliteOptions {
  const filename = opts.filename ?? ':memory:';
  if (typeof filename !== 'string' || filename === '') {
    throw new InvalidArgumentError('filename', filename, "a file path or ':memory:'");
  }
  const synchronous = opts.synchronous ?? 'NORMAL';
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
    throw new InvalidArgumentError('synchronous', synchronous, "'NORMAL' or 'FULL'");
  }
  const autoMigrate = opts.autoMigrate ?? true;
  if (typeof autoMigrate !== 'boolean') {
    throw new InvalidArgumentError('autoMigrate', autoMigrate, 'a boolean');
  }
  const onError = opts.onError ?? ((error: Error) => console.error('[conveyor sqlite]', error));
  if (typeof onError !== 'function') {
    throw new InvalidArgumentError('onError', onError, 'a function');
  }
  return {
    filename,
    synchronous,
    autoMigrate,
    onError,
    busyTimeout: whole('busyTimeout', opts.busyTimeout ?? 5000, 0),
    pollInterval: whole('pollInterval', opts.pollInterval ?? 50, 1),
    eventRetention: whole('eventRetention', opts.eventRetention ?? 60_000, 1),
  };
}

/**
 * Checks that `value` is a whole number `>= min` (a count or a duration in ms).
 *
 * @example
 * ```ts
 * import { whole } from '@conveyor/store-sqlite-core';
 * console.log(whole('count', 3, 1)); // 3
 * ```
 */
export function whole(option: string, value: unknown, min: number): number {
  checkInteger(option, value, min);
  return value;
}
