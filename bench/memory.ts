/**
 * Memory-store benchmark: one process, no-op jobs.
 *
 * - drain of 20,000 jobs with concurrency 1 and with 50 in flight (jobs/s, median of 3);
 * - add→start latency (p50, p99) with an idle worker;
 * - lateness of delayed jobs (p50, p99): start time minus due time.
 *
 *   deno run -A bench/memory.ts      (or through `deno task bench`)
 *   npx -y node@24 bench/memory.ts
 *
 * @module
 */
import { Queue, Worker } from '@conveyor/core';
import { MemoryStore } from '@conveyor/store-memory';
import { newJob } from '@conveyor/shared';

const JOBS = 20_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function drain(concurrency: number): Promise<number> {
  const store = new MemoryStore();
  await store.connect();
  const queue = new Queue('bench', { store });
  const jobs = Array.from({ length: JOBS }, (_, i) => ({ name: 'noop', data: i }));
  await queue.addBulk(jobs);
  let done = 0;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => (resolve = r));
  const t0 = performance.now();
  const worker = new Worker('bench', () => null, { store, concurrency, autorun: false });
  worker.on('completed', () => {
    if (++done === JOBS) resolve();
  });
  worker.run();
  await finished;
  const ms = performance.now() - t0;
  await worker.close();
  await store.disconnect();
  return (JOBS / ms) * 1000;
}

/** The store alone, no engine: claim 50, complete 50, repeat (the ceiling for the engine). */
async function rawStore(): Promise<number> {
  const store = new MemoryStore();
  await store.connect();
  await store.saveBulk('raw', Array.from({ length: JOBS }, (_, i) => newJob('raw', 'noop', i)));
  const t0 = performance.now();
  for (let n = 0; n < JOBS;) {
    const jobs = await store.fetchNextJobs('raw', 'w', 30_000, 50);
    await store.completeJobs(
      'raw',
      jobs.map((j) => ({ jobId: j.id, token: j.lockToken!, returnvalue: null })),
    );
    n += jobs.length;
  }
  const ms = performance.now() - t0;
  await store.disconnect();
  return (JOBS / ms) * 1000;
}

async function addToStart(samples: number): Promise<number[]> {
  const store = new MemoryStore();
  await store.connect();
  const queue = new Queue<number>('latency', { store });
  const latencies: number[] = [];
  let next!: () => void;
  const worker = new Worker<number>('latency', (job) => {
    latencies.push(performance.now() - job.data);
    next();
  }, { store });
  for (let i = 0; i < samples + 100; i++) {
    const started = new Promise<void>((r) => (next = r));
    await queue.add('ping', performance.now());
    await started;
    // Let the completion flush so the worker is idle (waiting on events) before the next add.
    await new Promise((r) => setTimeout(r, 0));
  }
  await worker.close();
  await store.disconnect();
  return latencies.slice(100).sort((a, b) => a - b);
}

async function lateness(samples: number): Promise<number[]> {
  const store = new MemoryStore();
  await store.connect();
  const queue = new Queue<{ due: number }>('delayed', { store });
  const late: number[] = [];
  let resolve!: () => void;
  const all = new Promise<void>((r) => (resolve = r));
  const worker = new Worker<{ due: number }>('delayed', (job) => {
    late.push(performance.timeOrigin + performance.now() - job.data.due);
    if (late.length === samples) resolve();
  }, { store, concurrency: 10 });
  const now = Date.now();
  for (let i = 0; i < samples; i++) {
    const delay = 20 + ((i * 7) % 200);
    await queue.add('later', { due: now + delay }, {
      delay: Math.max(0, now + delay - Date.now()),
    });
  }
  await all;
  await worker.close();
  await store.disconnect();
  return late.sort((a, b) => a - b);
}

/** The median of `n` runs (the machine is shared and noisy; rounds interleave). */
async function median(n: number, run: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await run());
  return xs.sort((a, b) => a - b)[Math.floor(n / 2)];
}

await drain(50); // warm-up (JIT)
const raw = await median(3, rawStore);
const c1 = await median(3, () => drain(1));
const c50 = await median(3, () => drain(50));
const lat = await addToStart(2000);
const late = await lateness(500);
const f = (n: number): string => n.toFixed(3);
console.log(
  `drain ${JOBS} no-op jobs, concurrency 1:  ${Math.round(c1).toLocaleString('en-US')} jobs/s`,
);
console.log(
  `drain ${JOBS} no-op jobs, concurrency 50: ${Math.round(c50).toLocaleString('en-US')} jobs/s`,
);
console.log(
  `store alone (fetchNextJobs 50 + completeJobs 50, no engine): ${
    Math.round(raw).toLocaleString('en-US')
  } jobs/s; the engine at 50 in flight reaches ${Math.round((c50 / raw) * 100)}% of it`,
);
console.log(
  `add→start latency (idle worker, 2000 samples): p50 ${f(percentile(lat, 50))} ms, p99 ${
    f(percentile(lat, 99))
  } ms`,
);
console.log(
  `delayed-job lateness (500 jobs, 20-220 ms delays): p50 ${f(percentile(late, 50))} ms, p99 ${
    f(percentile(late, 99))
  } ms`,
);
