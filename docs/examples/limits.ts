/**
 * Rate limits, group fairness and batches.
 *
 *   npx -y deno@2 run -A docs/examples/limits.ts
 *
 * @module
 */
import { Queue, Worker } from '@conveyor/core';
import { MemoryStore } from '@conveyor/store-memory';

/** Runs the example, printing with `log`. */
export async function main(log: (line: string) => void = console.log): Promise<void> {
  const store = new MemoryStore();
  await store.connect();
  const queue = new Queue<{ tenant: string; n: number }>('api-calls', { store });

  // Two tenants: "big" queues 6 jobs before "small" queues 2. Groups are served round-robin,
  // at most 1 active job per tenant, so "small" is not stuck behind "big".
  for (let n = 0; n < 6; n++) {
    await queue.add('call', { tenant: 'big', n }, { group: { id: 'big' } });
  }
  for (let n = 0; n < 2; n++) {
    await queue.add('call', { tenant: 'small', n }, { group: { id: 'small' } });
  }

  const order: string[] = [];
  let allDone!: () => void;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  const worker = new Worker<{ tenant: string; n: number }>('api-calls', (job) => {
    order.push(job.data.tenant);
    if (order.length === 8) allDone();
  }, {
    store,
    concurrency: 1,
    group: { concurrency: 1 },
    limiter: { max: 100, duration: 1000 }, // at most 100 claims per second, across processes
  });
  await finished;
  await worker.close();
  log(`order: ${order.join(' ')}`);

  // Batches: one claim and one completion call for up to 5 jobs.
  await queue.addBulk(
    Array.from({ length: 7 }, (_, n) => ({ name: 'row', data: { tenant: 'x', n } })),
  );
  const sizes: number[] = [];
  let batchesDone!: () => void;
  const batched = new Promise<void>((resolve) => (batchesDone = resolve));
  const batcher = new Worker<{ tenant: string; n: number }, number>('api-calls', (jobs) => {
    sizes.push(jobs.length);
    if (sizes.reduce((a, b) => a + b, 0) === 7) batchesDone();
    return jobs.map((job) => job.data.n * 2);
  }, { store, batch: { size: 5 } });
  await batched;
  await batcher.close();
  log(`batch sizes: ${sizes.join(', ')}`);
  await store.disconnect();
}

if (import.meta.main) await main();
