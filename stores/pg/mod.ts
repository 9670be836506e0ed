/**
 * `@conveyor/store-pg`: Conveyor's PostgreSQL store, on postgres.js, for Deno, Node and Bun.
 *
 * - Claims with `FOR UPDATE SKIP LOCKED` on the jobs table, N jobs per statement.
 * - Events over LISTEN/NOTIFY (ids only, coalesced per statement), with reconnect; or a
 *   poll-only mode for PgBouncer in transaction pooling (`listen: false`).
 * - Transactional enqueue: `store.withTransaction(tx)` or `saveJob(queue, job, { tx })`.
 * - Versioned migrations under an advisory lock, in a schema of your choice.
 *
 * @example
 * ```ts
 * import { PgStore } from '@conveyor/store-pg';
 * import { newJob } from '@conveyor/shared';
 *
 * const store = new PgStore({ connection: 'postgres://postgres@127.0.0.1:5432/test' });
 * await store.connect();
 * const id = await store.saveJob('emails', newJob('emails', 'welcome', { to: 'a@b.c' }));
 * const [job] = await store.fetchNextJobs('emails', 'worker-1', 30_000, 1);
 * if (job) await store.completeJobs('emails', [{ jobId: id, token: job.lockToken!, returnvalue: 'sent' }]);
 * await store.disconnect();
 * ```
 *
 * @module
 */

export { PgStore } from './store.ts';
export type { PgStoreOptions } from './options.ts';
