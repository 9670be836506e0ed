/**
 * The demo: `npx -y deno@2 task demo` (or `deno task demo`).
 *
 * Runs a queue on the embedded default, a SQLite file, with one Worker (50 in flight): adds
 * 10,000 jobs in one `addBulk`, 2% of them fail their first attempt and are retried with
 * exponential backoff, and prints a progress line and a summary (jobs, failures and retries,
 * throughput). Then it adds 500 jobs one at a time, at light load, and reports add→start
 * p50/p99.
 *
 *   deno task demo [--jobs=N] [--concurrency=N] [--file=path]
 *
 * @module
 */
import { Queue, Worker } from '@conveyor/core';
import { SqliteStore } from '@conveyor/store-sqlite-deno';

const arg = (name: string, fallback: string): string =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const total = Number(arg('jobs', '10000'));
const concurrency = Number(arg('concurrency', '50'));
const dir = Deno.makeTempDirSync({ prefix: 'conveyor-demo-' });
const filename = arg('file', `${dir}/demo.db`);

const now = (): number => performance.timeOrigin + performance.now();
const store = new SqliteStore({ filename });
await store.connect();
const queue = new Queue<{ n: number; addedAt: number }>('demo', { store });

const waits: number[] = [];
let measuring = false;
let completed = 0;
let failures = 0;
let retried = 0;
const worker = new Worker<{ n: number; addedAt: number }>('demo', (job) => {
  if (measuring) waits.push(now() - job.data.addedAt);
  // 2% of jobs fail their first attempt; the retry succeeds.
  if (!measuring && job.data.n % 50 === 7 && job.attemptsMade === 0) {
    throw new Error('transient failure');
  }
  return job.data.n * 2;
}, { store, concurrency });
worker.on('completed', () => void completed++);
worker.on('failed', (job) => {
  failures++;
  if (job.attemptsMade < (job.opts.attempts ?? 1)) retried++;
});
worker.on('error', (err) => console.error('worker error:', err.message));

console.log(`Conveyor demo: ${total} jobs, concurrency ${concurrency}, SQLite file ${filename}`);
const started = now();
const progress = () =>
  console.log(
    `  progress: ${completed}/${total} completed, ${failures} failed attempts, ${
      Math.round(completed / ((now() - started) / 1000))
    } jobs/s`,
  );
const timer = setInterval(progress, 250);
const finished = new Promise<void>((resolve) => {
  const check = () => {
    if (completed < total) return;
    worker.off('completed', check);
    resolve();
  };
  worker.on('completed', check);
});
const jobs = Array.from({ length: total }, (_, n) => ({
  name: 'double',
  data: { n, addedAt: now() },
  opts: { attempts: 3, backoff: { type: 'exponential' as const, delay: 10 } },
}));
await queue.addBulk(jobs);
const added = now();
await finished;
clearInterval(timer);
progress();
const elapsed = (now() - started) / 1000;

// Light load: one job at a time, each added when the previous one completed.
measuring = true;
const latencyJobs = 500;
for (let n = 0; n < latencyJobs; n++) {
  const done = new Promise<void>((resolve) => worker.once('completed', () => resolve()));
  await queue.add('double', { n: total + n, addedAt: now() });
  await done;
}
await worker.close();
await queue.close();
const counts = { completed: await store.countJobs('demo', 'completed') };
await store.disconnect();

waits.sort((a, b) => a - b);
const pct = (p: number) => waits[Math.min(waits.length - 1, Math.floor(p * waits.length))];
console.log('\nSummary');
console.log(
  `  jobs:        ${total} added in ${((added - started) / 1000).toFixed(3)} s (one addBulk)`,
);
console.log(
  `  completed:   ${completed} of ${
    total + latencyJobs
  } (${counts.completed} completed in the database)`,
);
console.log(`  failures:    ${failures} failed attempts, ${retried} retried, 0 lost`);
console.log(
  `  throughput:  ${Math.round(total / elapsed)} jobs/s (add + process, ${elapsed.toFixed(2)} s)`,
);
console.log(
  `  add→start:   p50 ${pct(0.5).toFixed(2)} ms, p99 ${pct(0.99).toFixed(2)} ms ` +
    `(${latencyJobs} jobs added one at a time)`,
);
Deno.removeSync(dir, { recursive: true });
