/**
 * Conveyor from the workspace root: the engine of `@conveyor/core` ({@linkcode Queue},
 * {@linkcode Worker}, {@linkcode FlowProducer}, {@linkcode QueueEvents}, {@linkcode Job}), for
 * scripts and examples inside this repository. Applications install the published packages
 * instead (`deno add jsr:@conveyor/core jsr:@conveyor/store-sqlite-deno`, or
 * `npx jsr add @conveyor/core @conveyor/store-pg`), and pick a store: `@conveyor/store-memory`,
 * `@conveyor/store-pg`, or `@conveyor/store-sqlite-node` / `-bun` / `-deno`.
 *
 * @example
 * ```ts
 * import { Queue, Worker } from './mod.ts';
 * import { MemoryStore } from '@conveyor/store-memory';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * const queue = new Queue('emails', { store });
 * const worker = new Worker('emails', async (job) => `sent to ${job.data.to}`, { store });
 * await queue.add('welcome', { to: 'ada@example.com' });
 * await worker.close();
 * await store.disconnect();
 * ```
 *
 * @module
 */

export * from '@conveyor/core';
