/**
 * Retries with exponential backoff, a timeout that aborts the job's signal, and a custom
 * backoff strategy.
 *
 *   npx -y deno@2 run -A docs/examples/retries.ts
 *
 * @module
 */
import { Queue, QueueEvents, Worker } from '@conveyor/core';
import { MemoryStore } from '@conveyor/store-memory';

/** Runs the example, printing with `log`. */
export async function main(log: (line: string) => void = console.log): Promise<void> {
  const store = new MemoryStore();
  await store.connect();
  const queue = new Queue('payments', { store });
  const events = new QueueEvents('payments', { store });

  const worker = new Worker('payments', async (job, signal) => {
    if (job.name === 'flaky' && job.attemptsMade < 2) {
      throw new Error(`gateway busy (attempt ${job.attemptsMade + 1})`);
    }
    if (job.name === 'slow') {
      // Cooperative: stop when the signal aborts (on timeout, lost lock or forced close).
      await new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason))
      );
    }
    if (job.name === 'custom') throw new Error('declined');
    return 'charged';
  }, {
    store,
    concurrency: 3,
    // Used by jobs with backoff { type: 'custom' }: 10 ms, then 20 ms; -1 stops retrying.
    backoffStrategy: (attemptsMade) => (attemptsMade < 3 ? attemptsMade * 10 : -1),
  });
  worker.on(
    'failed',
    (job, err) => log(`${job.name} attempt ${job.attemptsMade} failed: ${err.message}`),
  );

  const flaky = await queue.add('flaky', {}, {
    attempts: 5,
    backoff: { type: 'exponential', delay: 20, jitter: 0.5 },
  });
  log(`flaky: ${await flaky.waitUntilFinished(events, 5000)}`);

  const slow = await queue.add('slow', {}, { timeout: 50 });
  await slow.waitUntilFinished(events, 5000).catch((e: Error) => log(`slow: ${e.message}`));

  const custom = await queue.add('custom', {}, { attempts: 10, backoff: { type: 'custom' } });
  await custom.waitUntilFinished(events, 5000).catch((e: Error) => log(`custom: ${e.message}`));

  await worker.close();
  await events.close();
  await store.disconnect();
}

if (import.meta.main) await main();
