/**
 * `@conveyor/core`: the Conveyor engine. {@linkcode Queue} adds jobs, {@linkcode Worker} runs
 * them, {@linkcode FlowProducer} adds trees of jobs, {@linkcode QueueEvents} listens across
 * processes. Storage is any `StoreInterface` (memory, SQLite, PostgreSQL).
 *
 * @example
 * ```ts
 * import { Queue, Worker } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * const queue = new Queue('emails', { store });
 * const worker = new Worker('emails', async (job) => `sent to ${job.data.to}`, { store });
 * await queue.add('welcome', { to: 'ada@example.com' }, { attempts: 3 });
 * ```
 *
 * @module
 */

export * from './backoff.ts';
export * from './batcher.ts';
export * from './build.ts';
export * from './clock.ts';
export * from './duration.ts';
export * from './emitter.ts';
export * from './flow-producer.ts';
export * from './hash.ts';
export * from './job.ts';
export * from './queue.ts';
export * from './queue-events.ts';
export * from './schedule.ts';
export * from './services/promote-delayed.ts';
export * from './services/prune-finished.ts';
export * from './services/rescue-stalled.ts';
export * from './services/run-schedulers.ts';
export * from './services/service.ts';
export * from './validate.ts';
export * from './worker.ts';
