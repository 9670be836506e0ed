/**
 * `@conveyor/store-sqlite-core`: all of Conveyor's SQLite SQL, migrations and logic, over a
 * small synchronous driver interface ({@linkcode SqliteDriver}). The runtime adapters
 * (`@conveyor/store-sqlite-node`, `-bun`, `-deno`) subclass {@linkcode SqliteStoreBase} with
 * their driver; applications use an adapter's `SqliteStore`.
 *
 * @example
 * ```ts
 * import { SqliteStoreBase, type SqliteStoreOptions } from '@conveyor/store-sqlite-core';
 * import { DatabaseSync } from 'node:sqlite';
 *
 * export class SqliteStore extends SqliteStoreBase {
 *   constructor(options: SqliteStoreOptions = {}) {
 *     super(options, (filename) => new DatabaseSync(filename));
 *   }
 * }
 * ```
 *
 * @module
 */
export * from './driver.ts';
export * from './options.ts';
export * from './schema.ts';
export * from './codec.ts';
export * from './connection.ts';
export * from './events.ts';
export * from './store.ts';
