/**
 * Delayed jobs with human durations, and repeating jobs (`every`, `cron`).
 *
 *   npx -y deno@2 run -A docs/examples/scheduling.ts
 *
 * @module
 */
import { Queue, QueueEvents, Worker } from '@conveyor/core';
import { MemoryStore } from '@conveyor/store-memory';

/** Runs the example, printing with `log`. */
export async function main(log: (line: string) => void = console.log): Promise<void> {
  const store = new MemoryStore();
  await store.connect();
  const queue = new Queue('reports', { store });
  const events = new QueueEvents('reports', { store });

  // Delayed: ms, a Date, or "in 10 minutes" / "2h" / "1h30m".
  const later = await queue.schedule('in 10 minutes', 'reminder', { user: 7 });
  log(
    `reminder is ${later.state}, due in ${
      Math.round((later.delayUntil - Date.now()) / 60_000)
    } min`,
  );
  await queue.add('digest', {}, { delay: '1h30m' });

  // Cron: the first run is the first match of the pattern (here: 03:00 in Paris), not now.
  await queue.cron('0 3 * * *', 'nightly', {}, { key: 'nightly', tz: 'Europe/Paris' });

  // Every: runs now, then every 20 ms, 3 runs in total. Calling it again with the same key
  // replaces the scheduler instead of adding a second one.
  let runs = 0;
  const done = new Promise<void>((resolve) => {
    events.on('completed', () => ++runs === 3 && resolve());
  });
  const worker = new Worker('reports', () => 'ok', { store, jobName: 'tick' });
  await queue.every(20, 'tick', {}, { key: 'tick', limit: 3 });
  await done;
  const schedulers = await queue.getJobSchedulers();
  log(`schedulers: ${schedulers.map((s) => `${s.id} (${s.runCount} runs)`).join(', ')}`);

  await worker.close();
  await events.close();
  await store.disconnect();
}

if (import.meta.main) await main();
