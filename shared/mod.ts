/**
 * `@conveyor/shared`: the types, errors and store contract shared by Conveyor's engine and
 * stores. Implement {@linkcode StoreInterface} to add a storage backend.
 *
 * @example
 * ```ts
 * import { newJob, type StoreInterface } from '@conveyor/shared';
 *
 * async function addHello(store: StoreInterface): Promise<string> {
 *   return await store.saveJob('greetings', newJob('greetings', 'hello', { who: 'world' }));
 * }
 * ```
 *
 * @module
 */

export * from './types.ts';
export * from './errors.ts';
export * from './store.ts';
export * from './row.ts';
export * from './updates.ts';
