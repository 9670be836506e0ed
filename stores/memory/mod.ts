/**
 * `@conveyor/store-memory`: Conveyor's in-memory store. Nothing to install or run, ideal for
 * tests, demos and single-process apps. State lives in the {@linkcode MemoryStore} instance and
 * is lost when the process exits.
 *
 * @example
 * ```ts
 * import { MemoryStore } from '@conveyor/store-memory';
 * import { newJob } from '@conveyor/shared';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * await store.saveJob('emails', newJob('emails', 'welcome', { to: 'a@b.c' }));
 * const job = await store.fetchNextJob('emails', 'worker-1', 30_000);
 * console.log(job?.name); // "welcome"
 * await store.disconnect();
 * ```
 *
 * @module
 */
export { MemoryStore } from './memory_store.ts';
