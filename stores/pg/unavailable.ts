/**
 * Connection-level failures: which errors of postgres.js, the socket and the server say that
 * PostgreSQL could not be reached (or the connection went away), and the one typed error the
 * store turns them into (`StoreError` with code `UNAVAILABLE`).
 *
 * @module
 */

import { ConveyorError, StoreError } from '@conveyor/shared';

/** postgres.js's own codes for a connection that could not be made or was lost. */
const DRIVER_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
]);

/**
 * Socket and name-resolution codes (node:net and node:dns, which Deno and Bun mirror). Seen on
 * the three runtimes: ECONNREFUSED (server down), ECONNRESET and EPIPE (backend terminated or
 * server crashed with a query in flight).
 */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/**
 * Server SQLSTATEs that end the connection: admin_shutdown (a terminated backend, a fast
 * shutdown), crash_shutdown, cannot_connect_now (starting up, recovering, shutting down). Class
 * 08 (connection exception) is matched as a whole.
 */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03']);

/**
 * Whether `error` says that PostgreSQL could not be reached or the connection was lost (see the
 * code sets above), not that a statement was refused. Conveyor's own errors never are.
 *
 * @example
 * ```ts
 * import { isConnectionError } from './unavailable.ts';
 * isConnectionError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })); // true
 * isConnectionError(Object.assign(new Error('duplicate key'), { code: '23505' })); // false
 * ```
 */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || error instanceof ConveyorError) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  return DRIVER_CODES.has(code) || SOCKET_CODES.has(code) || SERVER_CODES.has(code) ||
    /^08[0-9A-Z]{3}$/.test(code);
}

/**
 * `error` as the store's callers get it: a connection-level failure (see
 * {@linkcode isConnectionError}) becomes a `StoreError` with code `UNAVAILABLE` that names what
 * was being done (`operation`, and the queue when known) and keeps `error` as its `cause`; any
 * other error is returned as it is.
 *
 * @example
 * ```ts
 * import { StoreError } from '@conveyor/shared';
 * import { unavailable } from './unavailable.ts';
 * const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
 *   code: 'ECONNREFUSED',
 * });
 * const e = unavailable(refused, 'saveJob', 'emails');
 * if (e instanceof StoreError) console.log(e.code, e.message);
 * // UNAVAILABLE PostgreSQL could not be reached during saveJob (queue "emails"): connect ECONNREFUSED 127.0.0.1:5432
 * ```
 */
export function unavailable(error: unknown, operation: string, queueName?: string): unknown {
  if (!isConnectionError(error)) return error;
  const where = queueName === undefined ? '' : ` (queue ${JSON.stringify(queueName)})`;
  return new StoreError(
    'UNAVAILABLE',
    `PostgreSQL could not be reached during ${operation}${where}: ${
      String((error as { message?: unknown }).message ?? error)
    }`,
    { cause: error },
  );
}
