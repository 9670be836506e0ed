/**
 * A worker process of the PostgreSQL benchmark's multi-process scenario: drains
 * `BENCH_QUEUE` with the engine's `Worker` (concurrency 50) when `@conveyor/core` is there, else
 * with a store-level loop, prints `ready` once connected, then `c <n>` after each batch of `n`
 * completions (the parent adds them up, so no query or notification counts them), and exits
 * when `BENCH_TOTAL` jobs of the queue are completed.
 *
 * @module
 */
import process from 'node:process';
import { PgStore } from '@conveyor/store-pg';
import { drainLoop, loadEngine } from './engine.ts';

const env = process.env;
const queue = env.BENCH_QUEUE!;
const total = Number(env.BENCH_TOTAL);
const store = new PgStore({ connection: env.BENCH_PG_URL!, schema: env.BENCH_SCHEMA! });
await store.connect();
const engine = env.BENCH_MODE === 'engine' ? await loadEngine() : null;
const done = async () => (await store.countJobs(queue, 'completed')) >= total;
let unreported = 0;
const completed = (n: number) => {
  if (unreported === 0) setTimeout(() => (console.log(`c ${unreported}`), unreported = 0), 0);
  unreported += n;
};
console.log('ready');
if (engine) {
  const worker = new engine.Worker(queue, () => Promise.resolve(null), {
    store,
    concurrency: 50,
  });
  worker.on('completed', () => completed(1));
  while (!(await done())) await new Promise((r) => setTimeout(r, 250));
  await worker.close();
} else {
  await drainLoop(store, queue, 50, done, completed);
}
await store.disconnect();
process.exit(0);
