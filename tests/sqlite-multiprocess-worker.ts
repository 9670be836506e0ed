/**
 * A child process of `sqlite-multiprocess.test.ts`, on the runtime that started it.
 *
 *   producer <file> <queue> <total>   adds `total` jobs in batches, through the store
 *   worker   <file> <queue> <total> <name>
 *            claims and completes jobs until the queue has `total` completed jobs; records each
 *            job it processes in `mp_processed` (a plain table, no unique index, so a job run
 *            twice shows up twice)
 *
 * @module
 */
import process from 'node:process';
import { newJob, type StoreEvent } from '@conveyor/shared';
import { runtimeAdapter } from './sqlite-harness.ts';

const [role, filename, queue, totalText, name = role] = process.argv.slice(2);
const total = Number(totalText);

const adapter = await runtimeAdapter();
const store = adapter.create({ filename, pollInterval: 10 });
await store.connect();

if (role === 'producer') {
  for (let i = 0; i < total;) {
    const n = Math.min(1 + (i % 97), total - i);
    if (n === 1) {
      await store.saveJob(queue, newJob(queue, 'job', { i }));
    } else {
      await store.saveBulk(
        queue,
        Array.from({ length: n }, (_, k) => newJob(queue, 'job', { i: i + k })),
      );
    }
    i += n;
  }
} else {
  const raw = adapter.openDriver(filename);
  raw.exec('PRAGMA busy_timeout = 10000');
  const record = raw.prepare('INSERT INTO mp_processed (job_id, worker) VALUES (?, ?)');
  // Wake on a `waiting` event from the producer's process (polled), or re-check after 200 ms.
  let wake: (() => void) | undefined;
  store.subscribe(queue, (e: StoreEvent) => {
    if (e.type === 'waiting') wake?.();
  });
  for (;;) {
    const jobs = await store.fetchNextJobs(queue, name, 60_000, 10);
    if (jobs.length === 0) {
      if ((await store.countJobs(queue, 'completed')) >= total) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      continue;
    }
    for (const job of jobs) record.run(job.id, name);
    const done = await store.completeJobs(
      queue,
      jobs.map((j) => ({ jobId: j.id, token: j.lockToken!, returnvalue: name })),
    );
    if (!done.every(Boolean)) throw new Error(`${name}: a completion was refused`);
  }
  raw.close();
}
await store.disconnect();
process.exit(0);
