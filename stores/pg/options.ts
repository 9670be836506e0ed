/**
 * Options of {@linkcode PgStore}.
 *
 * @module
 */

import type postgres from 'postgres';
import type { StoreOptions } from '@conveyor/shared';
import { InvalidArgumentError } from '@conveyor/shared';

/**
 * How a {@linkcode PgStore} connects and behaves.
 *
 * @example
 * ```ts
 * import type { PgStoreOptions } from '@conveyor/store-pg';
 * const opts: PgStoreOptions = {
 *   connection: 'postgres://postgres@127.0.0.1:5432/app',
 *   schema: 'jobs',
 * };
 * ```
 */
export interface PgStoreOptions extends StoreOptions {
  /**
   * A connection string or postgres.js options. The store creates its own pool from it and
   * ends it on `disconnect()`.
   */
  connection?: string | postgres.Options<Record<string, postgres.PostgresType>>;
  /**
   * An existing postgres.js `sql` instance to share the application's pool. The store never
   * ends it; `disconnect()` only stops the store's own listener.
   */
  sql?: postgres.Sql;
  /** The schema holding every table and function of the store. Default `conveyor`. */
  schema?: string;
  /**
   * `false` for poll-only mode (no LISTEN, e.g. behind PgBouncer in transaction pooling):
   * subscribers read an events table every `pollInterval` ms. Default true.
   */
  listen?: boolean;
  /** Poll interval of poll-only mode, in ms. Default 250. */
  pollInterval?: number;
  /**
   * Use server-side prepared statements. Default: what `connection.prepare` or a shared `sql`
   * says, else false in poll-only mode (`listen: false`, meant for PgBouncer), else true.
   * `false` for PgBouncer in transaction pooling before 1.21, which passes a statement prepared
   * on one server connection to another: it applies to the whole pool the store makes, the
   * COMMIT of its transactions included. A shared `sql` must then be created with `prepare:
   * false` too: a COMMIT prepared anyway failed on such a pooler, postgres.js sent it again, and
   * the server, its transaction aborted by that failure, rolled back what the store had reported
   * saved.
   */
  prepare?: boolean;
}

/** The options after defaults and validation. */
export interface ResolvedOptions {
  /** See {@linkcode PgStoreOptions.connection}. */
  connection: PgStoreOptions['connection'];
  /** See {@linkcode PgStoreOptions.sql}. */
  sql: postgres.Sql | undefined;
  /** See {@linkcode PgStoreOptions.schema}. */
  schema: string;
  /** See {@linkcode PgStoreOptions.listen}. */
  listen: boolean;
  /** See {@linkcode PgStoreOptions.pollInterval}. */
  pollInterval: number;
  /** See {@linkcode PgStoreOptions.prepare}. */
  prepare: boolean;
  /** See {@linkcode StoreOptions.autoMigrate}. */
  autoMigrate: boolean;
  /** See {@linkcode StoreOptions.onError}. */
  onError: (error: Error) => void;
}

/**
 * Applies defaults and checks every option; throws `InvalidArgumentError` naming the option.
 *
 * @example
 * ```ts
 * import { resolveOptions } from './options.ts';
 * console.log(resolveOptions('postgres://localhost/db').schema); // conveyor
 * ```
 */
export function resolveOptions(options: PgStoreOptions | string | undefined): ResolvedOptions {
  const o: PgStoreOptions = typeof options === 'string' ? { connection: options } : options ?? {};
  if (typeof o !== 'object' || o === null) {
    throw new InvalidArgumentError('options', options, 'a connection string or an options object');
  }
  if (o.sql !== undefined && (typeof o.sql !== 'function' || typeof o.sql.unsafe !== 'function')) {
    throw new InvalidArgumentError('sql', o.sql, 'a postgres.js sql instance');
  }
  if (o.sql === undefined && o.connection === undefined) {
    throw new InvalidArgumentError(
      'connection',
      undefined,
      'a connection string or options (or pass sql)',
    );
  }
  if (o.pollInterval !== undefined && !(Number.isFinite(o.pollInterval) && o.pollInterval > 0)) {
    throw new InvalidArgumentError('pollInterval', o.pollInterval, 'a number of ms > 0');
  }
  for (const key of ['listen', 'prepare', 'autoMigrate'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') {
      throw new InvalidArgumentError(key, o[key], 'a boolean');
    }
  }
  const prepare = poolPrepare(o) ?? o.listen !== false;
  if (o.onError !== undefined && typeof o.onError !== 'function') {
    throw new InvalidArgumentError('onError', o.onError, 'a function');
  }
  return {
    connection: o.connection,
    sql: o.sql,
    schema: o.schema ?? 'conveyor',
    listen: o.listen ?? true,
    pollInterval: o.pollInterval ?? 250,
    prepare,
    autoMigrate: o.autoMigrate ?? true,
    onError: o.onError ?? ((e) => console.error('[conveyor/pg]', e)),
  };
}

/**
 * Whether the store's statements are prepared: `prepare`, else what the pool's options say
 * (`connection.prepare`, or the shared `sql`'s), else undefined. Refuses a `prepare` that the
 * pool's own setting contradicts: a shared pool that prepares its COMMITs while the store is
 * told not to prepare (see {@linkcode PgStoreOptions.prepare}), or two different values.
 */
function poolPrepare(o: PgStoreOptions): boolean | undefined {
  const own = o.sql
    ? (o.sql.options as { prepare?: unknown } | undefined)?.prepare
    : typeof o.connection === 'object' && o.connection !== null
    ? o.connection.prepare
    : undefined;
  const pool = own === undefined ? undefined : own !== false && own !== 'false';
  if (o.prepare === false && o.sql && pool !== false) {
    throw new InvalidArgumentError(
      'prepare',
      o.prepare,
      'true, or a shared sql created with prepare: false (it prepares its COMMITs otherwise)',
    );
  }
  if (o.prepare !== undefined && pool !== undefined && o.prepare !== pool) {
    throw new InvalidArgumentError(
      'prepare',
      o.prepare,
      `the same as connection.prepare (${pool})`,
    );
  }
  return o.prepare ?? pool;
}

/**
 * How long (seconds) postgres.js waits before it reconnects a connection after `retries` failed
 * connection attempts of its pool (postgres.js's option `backoff`): 20–40 ms after the first,
 * doubling, at most 0.25–0.5 s. The pools the store creates and its LISTEN connection use it.
 * postgres.js's default grows to 10–20 s after seven failures, counted over the whole pool (a
 * second of outage under load gets there), and a query handed to a connection that waits does
 * not run before it: after the server came back, workers stopped claiming and renewing locks,
 * and adds waited, for up to 20 s. An attempt against a server that is down fails at once (its
 * query rejects), so the delay only bounds how long a query waits for the next attempt.
 *
 * @example
 * ```ts
 * import { reconnectDelay } from './options.ts';
 * console.log(reconnectDelay(20) <= 0.5); // true
 * ```
 */
export function reconnectDelay(retries: number): number {
  return Math.min(0.02 * 2 ** retries, 0.5) * (0.5 + Math.random() / 2);
}
