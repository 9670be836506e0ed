/**
 * The raw-SQL baseline of the PostgreSQL benchmark: a minimal jobs table driven through the
 * same driver (postgres.js), with the best plain SQL for each scenario.
 *
 * @module
 */
import type postgres from 'postgres';

const S = 'conveyor_bench_raw';
/**
 * The raw jobs' queue: a name as long as the store's benchmark queues (`bench-engine-xxxxxx`), so
 * both write the same bytes per row and per index entry.
 */
const Q = `'bench-rawsql-${crypto.randomUUID().slice(0, 6)}'`;

/** Creates (or recreates) the raw jobs table. */
export async function setupRaw(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${S} CASCADE; CREATE SCHEMA ${S};
    CREATE TABLE ${S}.jobs (
      id bigserial PRIMARY KEY, queue text NOT NULL, name text NOT NULL, data text NOT NULL,
      state text NOT NULL, priority integer NOT NULL DEFAULT 0, lock_token text,
      lock_until timestamptz, returnvalue text, finished_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX jobs_waiting ON ${S}.jobs (queue, priority, id) WHERE state = 'waiting';`);
}

/** Drops the raw schema. */
export async function dropRaw(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${S} CASCADE`);
}

/** Inserts `n` jobs in chunks of `chunk` rows, one INSERT per chunk. Returns ms. */
export async function rawBulkInsert(sql: postgres.Sql, n: number, chunk: number): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < n; i += chunk) {
    const rows = Array.from(
      { length: Math.min(chunk, n - i) },
      (_, k) => ({ name: 'noop', data: JSON.stringify({ i: i + k }) }),
    );
    await sql.unsafe(
      `INSERT INTO ${S}.jobs (queue, name, data, state)
       SELECT ${Q}, x.name, x.data, 'waiting'
       FROM json_to_recordset($1::text::json) AS x(name text, data text)`,
      [JSON.stringify(rows)],
      { prepare: true },
    );
  }
  return performance.now() - t;
}

/**
 * Claims $1 jobs. Each token is the claim's random prefix ($2, from `tokenPrefix`) and the job's
 * id in hex, as the store makes them: no random value is drawn per row on the server.
 */
const CLAIM = `WITH c AS (
    SELECT id FROM ${S}.jobs WHERE queue = ${Q} AND state = 'waiting'
    ORDER BY priority, id LIMIT $1::integer FOR UPDATE SKIP LOCKED)
  UPDATE ${S}.jobs j SET state = 'active', lock_token = $2::text || to_hex(j.id),
    lock_until = now() + interval '30 seconds'
  FROM c WHERE j.id = c.id RETURNING j.id::text AS id, j.lock_token, j.data`;

// By primary key (an index scan whatever the table's size), fenced by each job's token.
const COMPLETE = `UPDATE ${S}.jobs j SET state = 'completed', returnvalue = 'null',
    finished_at = now(), lock_token = NULL
  WHERE j.id = ANY($1::bigint[]) AND j.state = 'active'
    AND j.lock_token = ($2::text[])[array_position($1::bigint[], j.id)]`;

/** A claim's token prefix: 96 random bits as 24 hex digits. */
const tokenPrefix = (): string => crypto.randomUUID().replaceAll('-', '').slice(0, 24);

/** The parameters of COMPLETE for claimed rows. */
const completeParams = (rows: postgres.RowList<postgres.Row[]>): never[] =>
  [rows.map((r) => r.id), rows.map((r) => r.lock_token)] as never[];

/** Claims `batch` jobs with SKIP LOCKED, completes them, until none is left. Returns ms. */
export async function rawDrain(sql: postgres.Sql, batch: number): Promise<number> {
  const t = performance.now();
  for (;;) {
    const rows = await sql.unsafe(CLAIM, [batch, tokenPrefix()], { prepare: true });
    if (rows.length === 0) break;
    await sql.unsafe(COMPLETE, completeParams(rows), { prepare: true });
  }
  return performance.now() - t;
}

/** Takes one add→start sample (ms) per call; `close` stops listening. */
export interface LatencySampler {
  /** Adds one job and resolves with the time until it was claimed (ms). */
  sample(i: number): Promise<number>;
  /** Stops listening. */
  close(): Promise<void>;
}

/**
 * add→start at light load: insert one job with a NOTIFY, a listener claims it on the
 * notification (then completes it).
 */
export async function rawLatency(
  sql: postgres.Sql,
  listener: postgres.Sql,
): Promise<LatencySampler> {
  let wake: (() => void) | null = null;
  const sub = await listener.listen('conveyor_bench_raw', () => wake?.());
  return {
    async sample(i) {
      let t0 = 0;
      let latency = 0;
      const claimed = new Promise<void>((resolve) => {
        wake = async () => {
          const rows = await sql.unsafe(CLAIM, [50, tokenPrefix()], { prepare: true });
          if (rows.length === 0) return;
          latency = performance.now() - t0;
          await sql.unsafe(COMPLETE, completeParams(rows), { prepare: true });
          resolve();
        };
      });
      t0 = performance.now();
      await sql.unsafe(
        `WITH i AS (INSERT INTO ${S}.jobs (queue, name, data, state)
           VALUES (${Q}, 'noop', $1::text, 'waiting') RETURNING id)
         SELECT pg_notify('conveyor_bench_raw', id::text) FROM i`,
        [JSON.stringify({ i })],
        { prepare: true },
      );
      await claimed;
      return latency;
    },
    close: () => sub.unlisten(),
  };
}
