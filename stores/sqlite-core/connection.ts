/**
 * Opening a database: checks that the file is SQLite, that the schema is not newer than this
 * code, then WAL, `busy_timeout`, `synchronous`, and the versioned migrations.
 *
 * @module
 */
import { StoreError } from '@conveyor/shared';
import { isNotADatabaseError, type OpenDriver, type SqliteDriver } from './driver.ts';
import type { ResolvedSqliteOptions } from './options.ts';
import { MIGRATIONS } from './schema.ts';

/**
 * Opens and prepares a connection. Throws a {@linkcode StoreError} with code `CANNOT_OPEN` (a
 * missing or unwritable directory), `NOT_A_DATABASE` (the file is left byte-identical),
 * `SCHEMA_TOO_NEW` (the file is left untouched) or `SCHEMA_OUTDATED` (with
 * `autoMigrate: false`).
 *
 * @example
 * ```ts
 * import { openDatabase, resolveOptions, type OpenDriver } from '@conveyor/store-sqlite-core';
 * function open(driver: OpenDriver) {
 *   return openDatabase(driver, resolveOptions({ filename: ':memory:' }));
 * }
 * ```
 */
export function openDatabase(open: OpenDriver, o: ResolvedSqliteOptions): SqliteDriver {
  let db: SqliteDriver;
  try {
    db = open(o.filename);
  } catch (error) {
    throw cannotOpen(o.filename, error);
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${o.busyTimeout}`);
    const current = schemaVersion(db, o.filename);
    if (current > MIGRATIONS.length) {
      throw new StoreError(
        'SCHEMA_TOO_NEW',
        `the Conveyor schema in ${o.filename} is version ${current}, newer than this code ` +
          `(${MIGRATIONS.length}); upgrade Conveyor. The file was not changed.`,
      );
    }
    if (current < MIGRATIONS.length && !o.autoMigrate) {
      throw new StoreError(
        'SCHEMA_OUTDATED',
        `the Conveyor schema in ${o.filename} is version ${current}, this code needs ` +
          `${MIGRATIONS.length}; connect once with autoMigrate: true`,
      );
    }
    if (o.filename !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
    db.exec(`PRAGMA synchronous = ${o.synchronous}`);
    if (current < MIGRATIONS.length) migrate(db, o.filename);
    return db;
  } catch (error) {
    db.close();
    if (error instanceof StoreError) throw error;
    throw cannotOpen(o.filename, error);
  }
}

/** The schema version recorded in the file (0 for a new file). Reads only. */
function schemaVersion(db: SqliteDriver, filename: string): number {
  try {
    const table = db.prepare(
      "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'conveyor_migrations'",
    ).get();
    if (!table) return 0;
    return Number(db.prepare('SELECT max(version) AS v FROM conveyor_migrations').get()?.v ?? 0);
  } catch (error) {
    if (isNotADatabaseError(error)) {
      throw new StoreError(
        'NOT_A_DATABASE',
        `${filename} is not an SQLite database; the file was not changed`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** Applies the missing migrations in one `BEGIN IMMEDIATE` transaction. */
function migrate(db: SqliteDriver, filename: string): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(
      'CREATE TABLE IF NOT EXISTS conveyor_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
    );
    // Another process may have migrated while we waited for the lock: read again.
    const current = schemaVersion(db, filename);
    const record = db.prepare(
      'INSERT INTO conveyor_migrations (version, applied_at) VALUES (?, ?)',
    );
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]);
      record.run(v + 1, Date.now());
    }
    db.exec('COMMIT');
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}

function cannotOpen(filename: string, error: unknown): StoreError {
  const reason = error instanceof Error ? error.message : String(error);
  return new StoreError(
    'CANNOT_OPEN',
    `cannot open SQLite database ${filename} (${reason}); check that its directory exists and is writable`,
    { cause: error },
  );
}
