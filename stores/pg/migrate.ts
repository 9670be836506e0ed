/**
 * Brings a schema up to date, exactly once even when many processes connect at the same time:
 * one transaction holds an advisory lock for the schema while it reads the version table and
 * applies the missing migrations.
 *
 * @module
 */

import type postgres from 'postgres';
import { StoreError } from '@conveyor/shared';
import { functionsSql } from './functions.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.ts';
import type { SchemaNames } from './names.ts';

/**
 * Migrates (`apply: true`) or only checks (`apply: false`) the schema. Throws `StoreError`
 * `SCHEMA_TOO_NEW` when the database is ahead of this code, and with `apply: false`
 * `SCHEMA_MISSING` or `SCHEMA_OUTDATED`.
 *
 * @example
 * ```ts
 * import postgres from 'postgres';
 * import { migrate } from './migrate.ts';
 * import { schemaNames } from './names.ts';
 * const sql = postgres('postgres://postgres@127.0.0.1:5432/test');
 * await migrate(sql, schemaNames('conveyor'), true);
 * ```
 */
export async function migrate(
  sql: postgres.Sql,
  names: SchemaNames,
  apply: boolean,
): Promise<void> {
  const { s } = names;
  if (!apply) {
    const [row] = await sql.unsafe(`SELECT to_regclass($1::text) AS t`, [`${s}.migrations`]);
    if (!row.t) {
      throw new StoreError(
        'SCHEMA_MISSING',
        `schema ${names.name} has no Conveyor tables (autoMigrate is false): connect once with autoMigrate: true`,
      );
    }
    check(names, await version(sql, s), false);
    return;
  }
  await sql.begin(async (tx) => {
    await tx.unsafe(`SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, [
      `conveyor/migrate/${names.name}`,
    ]);
    await tx.unsafe(
      `CREATE SCHEMA IF NOT EXISTS ${s};
       CREATE TABLE IF NOT EXISTS ${s}.migrations (
         version integer PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now(),
         applied_by integer NOT NULL DEFAULT pg_backend_pid()
       )`,
    );
    const current = await version(tx, s);
    check(names, current, true);
    let applied = false;
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await tx.unsafe(m.sql(names));
      await tx.unsafe(`INSERT INTO ${s}.migrations (version) VALUES ($1::integer)`, [m.version]);
      applied = true;
    }
    if (applied) await tx.unsafe(functionsSql(names));
  });
}

async function version(sql: postgres.Sql | postgres.TransactionSql, s: string): Promise<number> {
  const [row] = await sql.unsafe(
    `SELECT coalesce(max(version), 0)::integer AS v FROM ${s}.migrations`,
  );
  return Number(row.v);
}

function check(names: SchemaNames, current: number, apply: boolean): void {
  if (current > SCHEMA_VERSION) {
    throw new StoreError(
      'SCHEMA_TOO_NEW',
      `schema ${names.name} is at version ${current}, newer than this code (${SCHEMA_VERSION})`,
    );
  }
  if (!apply && current < SCHEMA_VERSION) {
    throw new StoreError(
      'SCHEMA_OUTDATED',
      `schema ${names.name} is at version ${current}, this code needs ${SCHEMA_VERSION} (autoMigrate is false)`,
    );
  }
}
