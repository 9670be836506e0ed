/**
 * A worker process of the PostgreSQL benchmark's multi-process scenario: drains
 * `BENCH_QUEUE` with the engine's `Worker` (concurrency 50) when `@conveyor/core` is there, else
 * with a store-level loop, prints `ready` once warmed up and listening for the queue's wake-ups, then `c <n>` after each
 * batch of `n` completions (the parent adds them up, so no query or notification counts them),
 * and exits on SIGTERM, which the parent sends once every job is done. Before `ready` it drains a
 * warm-up queue of its own (`BENCH_WARMUP` jobs, default 2,000), so that the timed drain runs
 * on warm code, as the in-process scenarios do.
 *
 * @module
 */
import process from 'node:process';
import { newJob } from '@conveyor/shared';
import { PgStore } from '@conveyor/store-pg';
import { drainLoop, loadEngine } from './engine.ts';

const env = process.env;
const queue = env.BENCH_QUEUE!;
const store = new PgStore({ connection: env.BENCH_PG_URL!, schema: env.BENCH_SCHEMA! });
await store.connect();
const engine = env.BENCH_MODE === 'engine' ? await loadEngine() : null;

/**
 * Drains `q` until `stop` resolves, with the engine's Worker or the store loop; `onReady` runs
 * once the worker listens for the queue's wake-ups.
 */
async function drain(
  q: string,
  stop: Promise<void>,
  onCompleted: (n: number) => void,
  onReady: () => void = () => {},
) {
  if (!engine) {
    let stopped = false;
    stop.then(() => (stopped = true));
    onReady();
    return await drainLoop(store, q, 50, () => Promise.resolve(stopped), onCompleted);
  }
  const worker = new engine.Worker(q, () => Promise.resolve(null), { store, concurrency: 50 });
  worker.on('completed', () => onCompleted(1));
  await store.subscriptionsReady();
  onReady();
  await stop;
  await worker.close();
}

const warmup = Number(env.BENCH_WARMUP ?? 2_000);
if (warmup > 0) {
  const warm = `${queue}-warm-${process.pid}`;
  for (let i = 0; i < warmup; i += 1_000) {
    const n = Math.min(1_000, warmup - i);
    await store.saveBulk(warm, Array.from({ length: n }, (_, k) => newJob(warm, 'noop', { k })));
  }
  let warmed = 0;
  let allWarm: () => void = () => {};
  const warmDone = new Promise<void>((r) => (allWarm = r));
  await drain(warm, warmDone, (n) => (warmed += n) >= warmup && allWarm());
  await store.obliterate(warm, { force: true });
}

let unreported = 0;
const completed = (n: number) => {
  if (unreported === 0) setTimeout(() => (console.log(`c ${unreported}`), unreported = 0), 0);
  unreported += n;
};
const parentDone = new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
await drain(queue, parentDone, completed, () => console.log('ready'));
await store.disconnect();
process.exit(0);
