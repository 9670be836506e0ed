/**
 * Quick start: a queue, a worker, a job, its result.
 *
 *   npx -y deno@2 run -A docs/examples/quickstart.ts
 *   npx -y node@24 docs/examples/quickstart.ts
 *
 * @module
 */
import { Queue, QueueEvents, Worker } from '@conveyor/core';
import { MemoryStore } from '@conveyor/store-memory';

/** Runs the example, printing with `log`. */
export async function main(log: (line: string) => void = console.log): Promise<void> {
  const store = new MemoryStore();
  await store.connect();

  const queue = new Queue<{ to: string }>('emails', { store });
  const events = new QueueEvents('emails', { store });
  const worker = new Worker<{ to: string }, string>('emails', async (job) => {
    await job.updateProgress(100);
    return `sent to ${job.data.to}`;
  }, { store, concurrency: 5 });
  worker.on('completed', (job, result) => log(`completed ${job.name}: ${result}`));

  const job = await queue.add('welcome', { to: 'ada@example.com' }, { attempts: 3 });
  log(`result: ${await job.waitUntilFinished(events, 5000)}`);

  await worker.close();
  await events.close();
  await store.disconnect();
}

if (import.meta.main) await main();
