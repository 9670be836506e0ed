/**
 * SQLite benchmark, all figures from one run on one WAL/NORMAL temp file:
 *
 * 1. raw SQL: bulk insert in one transaction; claim + complete one job per transaction (the
 *    "raw per-job loop", the baseline);
 * 2. the store: `saveBulk` (and the engine's `Queue.addBulk` when `@conveyor/core` is there);
 * 3. draining 20,000 no-op jobs with 50 in flight: a store-level loop (`fetchNextJobs` +
 *    `completeJobs`), and the engine's `Worker` with `concurrency: 50` when it is there;
 * 4. on Bun, the peer bunqueue (embedded SQLite, npm devDependency) with the same workload.
 *
 *   npx -y deno@2 run -A bench/sqlite.ts
 *   npx -y node@24 bench/sqlite.ts
 *   npx -y bun@1 bench/sqlite.ts
 *
 * Uses the runtime's native adapter (`bun:sqlite` on Bun, `node:sqlite` elsewhere).
 *
 * @module
 */
import { join } from 'node:path';
import process from 'node:process';
import { newJob, type StoreInterface } from '@conveyor/shared';
import { runtimeAdapter, tempDir } from '../tests/sqlite-harness.ts';
import { runBunqueue } from './sqlite/bunqueue.ts';

const DRAIN = 20_000;
const IN_FLIGHT = 50;
const BULK = 100_000;
const CHUNK = 1_000;
/** Rounds (fresh files each); the figures are medians. `--rounds=N` changes it. */
const ROUNDS = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);

const adapter = await runtimeAdapter();
const runtime = 'Deno' in globalThis
  ? 'deno'
  : 'Bun' in globalThis
  ? 'bun'
  : `node ${process.version}`;
const dir = tempDir('conveyor-bench-');
const rate = (n: number, ms: number): number => Math.round(n / (ms / 1000));
const fmt = (n: number): string => n.toLocaleString('en-US');
/** Every round's figure, by label. */
const results: Record<string, number[]> = {};
let round = 0;

function report(label: string, n: number, ms: number): number {
  const r = rate(n, ms);
  (results[label] ??= []).push(r);
  console.log(
    `${label.padEnd(58)} ${fmt(r).padStart(10)} jobs/s  (${fmt(n)} in ${ms.toFixed(0)} ms)`,
  );
  return r;
}

function median(label: string): number {
  const values = [...(results[label] ?? [])].sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] ?? NaN;
}

const RAW_BULK = 'raw SQL: bulk insert, one transaction';
const RAW_LOOP = 'raw SQL: claim + complete, one job per transaction';

/** Raw SQL on its own file: the baseline an SQLite queue cannot beat. */
function rawSql(): void {
  const db = adapter.openDriver(join(dir.path, `raw-${round}.db`));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000');
  db.exec(`CREATE TABLE jobs (seq INTEGER PRIMARY KEY, queue TEXT NOT NULL, id TEXT NOT NULL,
    name TEXT NOT NULL, state TEXT NOT NULL, priority INTEGER NOT NULL, data TEXT, returnvalue TEXT,
    lock_token TEXT, lock_until INTEGER, finished_at INTEGER);
    CREATE INDEX jobs_claim ON jobs (queue, state, priority, seq)`);
  const insert = db.prepare(
    "INSERT INTO jobs (queue, id, name, state, priority, data) VALUES ('raw', ?, 'noop', 'waiting', 0, ?)",
  );
  let t = performance.now();
  db.exec('BEGIN IMMEDIATE');
  for (let i = 0; i < BULK; i++) insert.run(crypto.randomUUID(), JSON.stringify({ i }));
  db.exec('COMMIT');
  report(RAW_BULK, BULK, performance.now() - t);

  const claim = db.prepare(`UPDATE jobs SET state = 'active', lock_token = ?, lock_until = ?
    WHERE seq = (SELECT seq FROM jobs WHERE queue = 'raw' AND state = 'waiting'
    ORDER BY priority, seq LIMIT 1) RETURNING seq`);
  const complete = db.prepare(`UPDATE jobs SET state = 'completed', returnvalue = 'null',
    finished_at = ?, lock_token = NULL WHERE seq = ? AND lock_token = ?`);
  t = performance.now();
  for (let i = 0; i < DRAIN; i++) {
    db.exec('BEGIN IMMEDIATE');
    const token = crypto.randomUUID();
    const row = claim.get(token, Date.now() + 30_000);
    complete.run(Date.now(), row!.seq, token);
    db.exec('COMMIT');
  }
  report(RAW_LOOP, DRAIN, performance.now() - t);
  db.close();
}

async function storeBench(): Promise<void> {
  const store = adapter.create({ filename: join(dir.path, `store-${round}.db`) });
  await store.connect();
  const jobs = (queue: string, n: number) =>
    Array.from({ length: n }, (_, i) => newJob(queue, 'noop', { i }));

  let t = performance.now();
  for (let i = 0; i < BULK; i += CHUNK) await store.saveBulk('bulk', jobs('bulk', CHUNK));
  report(`store: saveBulk (chunks of ${fmt(CHUNK)})`, BULK, performance.now() - t);

  const core = await loadCore();
  if (core) {
    const queue = new core.Queue('bulk-q', { store });
    const chunk = Array.from({ length: CHUNK }, (_, i) => ({ name: 'noop', data: { i } }));
    t = performance.now();
    for (let i = 0; i < BULK; i += CHUNK) await queue.addBulk(chunk);
    report(`engine: Queue.addBulk (chunks of ${fmt(CHUNK)})`, BULK, performance.now() - t);
    await queue.close?.();
  }

  await store.saveBulk('loop', jobs('loop', DRAIN));
  t = performance.now();
  const done = await storeLoop(store, 'loop');
  report(
    `store loop: fetchNextJobs + completeJobs, ${IN_FLIGHT} in flight`,
    done,
    performance.now() - t,
  );

  if (core) {
    await store.saveBulk('engine', jobs('engine', DRAIN));
    t = performance.now();
    let completed = 0;
    let resolve = () => {};
    const finished = new Promise<void>((r) => resolve = r);
    const worker = new core.Worker('engine', () => Promise.resolve(null), {
      store,
      concurrency: IN_FLIGHT,
    });
    worker.on('completed', () => {
      if (++completed === DRAIN) resolve();
    });
    await finished;
    report(`engine: Worker drain, concurrency ${IN_FLIGHT}`, DRAIN, performance.now() - t);
    await worker.close();
  } else {
    if (round === 1) {
      console.log(
        'engine: @conveyor/core has no Worker yet: drain measured with the store loop only',
      );
    }
  }
  await store.disconnect();
}

/** Keeps up to IN_FLIGHT no-op jobs running: claims what is missing, completes what finished. */
async function storeLoop(store: StoreInterface, queue: string): Promise<number> {
  let done = 0;
  for (;;) {
    const jobs = await store.fetchNextJobs(queue, 'bench', 30_000, IN_FLIGHT);
    if (jobs.length === 0) return done;
    const results = await Promise.all(jobs.map(() => Promise.resolve(null)));
    await store.completeJobs(
      queue,
      jobs.map((j, i) => ({ jobId: j.id, token: j.lockToken!, returnvalue: results[i] })),
    );
    done += jobs.length;
  }
}

interface Core {
  Queue: new (name: string, opts: { store: StoreInterface }) => {
    addBulk(jobs: Array<{ name: string; data: unknown }>): Promise<unknown>;
    close?(): Promise<void>;
  };
  Worker: new (
    name: string,
    processor: () => Promise<unknown>,
    opts: { store: StoreInterface; concurrency: number },
  ) => { on(event: 'completed', f: () => void): void; close(): Promise<void> };
}

async function loadCore(): Promise<Core | null> {
  try {
    const m = await import('@conveyor/core') as Partial<Core>;
    return typeof m.Worker === 'function' && typeof m.Queue === 'function' ? m as Core : null;
  } catch (error) {
    console.log(`engine: @conveyor/core not usable (${(error as Error).message})`);
    return null;
  }
}

console.log(
  `SQLite benchmark on ${runtime}, adapter ${adapter.name}, WAL + synchronous=NORMAL temp files`,
);
try {
  for (round = 1; round <= ROUNDS; round++) {
    console.log(`\nround ${round} of ${ROUNDS}`);
    rawSql();
    await storeBench();
  }
  const peer = await runBunqueue(join(dir.path, 'bunqueue.db'), DRAIN, IN_FLIGHT, CHUNK);
  console.log(`\nmedians of ${ROUNDS} rounds; ratios against the raw figures of the same rounds`);
  console.log('(targets: drain >= 0.7x the raw per-job loop; addBulk >= 100,000 jobs/s):');
  for (const label of Object.keys(results)) {
    const value = median(label);
    const vs = label.startsWith('raw')
      ? ''
      : label.includes('Bulk')
      ? `${(value / median(RAW_BULK)).toFixed(2)}x raw bulk insert`
      : `${(value / median(RAW_LOOP)).toFixed(2)}x raw per-job loop`;
    console.log(`  ${label.padEnd(58)} ${fmt(value).padStart(10)} jobs/s  ${vs}`.trimEnd());
  }
  if (peer) {
    const drain = `engine: Worker drain, concurrency ${IN_FLIGHT}`;
    const ours = results[drain]
      ? median(drain)
      : median(`store loop: fetchNextJobs + completeJobs, ${IN_FLIGHT} in flight`);
    console.log(
      `  ${'peer bunqueue: Queue.addBulk (chunks of 1,000)'.padEnd(58)} ${
        fmt(peer.addBulk).padStart(10)
      } jobs/s  (one round)`,
    );
    console.log(
      `  ${`peer bunqueue: Worker drain, concurrency ${IN_FLIGHT}`.padEnd(58)} ${
        fmt(peer.drain).padStart(10)
      } jobs/s  (one round)`,
    );
    console.log(`  our drain vs bunqueue: ${(ours / peer.drain).toFixed(1)}x`);
  }
} finally {
  dir.remove();
}
