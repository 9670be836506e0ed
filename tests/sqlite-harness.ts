/**
 * Harnesses for the SQLite adapters: one on `:memory:` (a private database per store) and one on
 * a temp file (every store of the harness shares the file; `openPeer` opens a second connection,
 * as another process would). Used by the per-adapter entry points.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoreInterface } from '@conveyor/shared';
import type {
  SqliteDriver,
  SqliteStoreBase,
  SqliteStoreOptions,
} from '@conveyor/store-sqlite-core';
import type { StoreHarness } from './harness.ts';

/** How to build one adapter's store and raw connection. */
export interface SqliteAdapter {
  /** e.g. `sqlite-node`. */
  name: string;
  /** Builds the adapter's `SqliteStore`. */
  create(options: SqliteStoreOptions): SqliteStoreBase;
  /** Opens a raw driver connection (for tests that hold locks or inspect the file). */
  openDriver(filename: string): SqliteDriver;
}

/** A fresh temp directory, removed by the returned `remove`. */
export function tempDir(prefix = 'conveyor-sqlite-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** The `:memory:` and temp-file harnesses of an adapter. */
export function sqliteHarnesses(adapter: SqliteAdapter): StoreHarness[] {
  const memory: StoreHarness = {
    label: `${adapter.name} (:memory:)`,
    async open(): Promise<StoreInterface> {
      const store = adapter.create({ filename: ':memory:' });
      await store.connect();
      return store;
    },
  };
  let dir: { path: string; remove: () => void } | undefined;
  const file = (): string => join((dir ??= tempDir()).path, 'conveyor.db');
  const onFile = async (): Promise<StoreInterface> => {
    const store = adapter.create({ filename: file(), pollInterval: 10 });
    await store.connect();
    return store;
  };
  const fileHarness: StoreHarness = {
    label: `${adapter.name} (file)`,
    open: onFile,
    openPeer: () => onFile(),
    teardown(): Promise<void> {
      dir?.remove();
      dir = undefined;
      return Promise.resolve();
    },
  };
  return [memory, fileHarness];
}

/** The adapter native to the running runtime: `bun:sqlite` on Bun, `node:sqlite` elsewhere. */
export async function runtimeAdapter(): Promise<SqliteAdapter> {
  if ('Bun' in globalThis) {
    const m = await import('@conveyor/store-sqlite-bun');
    return { name: 'sqlite-bun', create: (o) => new m.SqliteStore(o), openDriver: m.openBunSqlite };
  }
  const m = await import('@conveyor/store-sqlite-node');
  return { name: 'sqlite-node', create: (o) => new m.SqliteStore(o), openDriver: m.openNodeSqlite };
}
