/**
 * Child process of `pg-multiprocess.test.ts`: a producer (`MP_ROLE=producer`) that adds
 * `MP_TOTAL` jobs in bulk, or a worker that claims 50 at a time through the store API, records
 * each completion in `mp_done` in the same transaction as `completeJobs` (so a completion is
 * recorded if and only if it took effect), and rescues stalled jobs. Exits when every job of
 * the queue is completed.
 *
 * @module
 */
import process from 'node:process';
import postgres from 'postgres';
import { PgStore } from '@conveyor/store-pg';
import { newJob } from '@conveyor/shared';

const env = process.env;
const url = env.CONVEYOR_PG_URL!;
const schema = env.MP_SCHEMA!;
const queue = env.MP_QUEUE!;
const total = Number(env.MP_TOTAL);
const role = env.MP_ROLE!;
const workerId = env.MP_WORKER_ID ?? role;
const delay = Number(env.MP_DELAY ?? '0');
const lockDuration = Number(env.MP_LOCK ?? '1500');

const sql = postgres(url, { max: 3, onnotice: () => {} });
const store = new PgStore({ sql, schema, onError: () => {} });
await store.connect();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (role === 'producer') {
  for (let i = 0; i < total; i += 500) {
    const n = Math.min(500, total - i);
    await store.saveBulk(
      queue,
      Array.from({ length: n }, (_, k) => newJob(queue, 'mp', { n: i + k })),
    );
  }
} else {
  let lastRescue = 0;
  for (;;) {
    if (Date.now() - lastRescue > 300) {
      lastRescue = Date.now();
      await store.requeueStalledJobs(queue, 1000);
    }
    const jobs = await store.fetchNextJobs(queue, workerId, lockDuration, 50);
    if (jobs.length === 0) {
      if ((await store.countJobs(queue, 'completed')) >= total) break;
      await sleep(20);
      continue;
    }
    if (delay > 0) await sleep(delay);
    await sql.begin(async (tx) => {
      const done = await store.withTransaction(tx).completeJobs(
        queue,
        jobs.map((j) => ({ jobId: j.id, token: j.lockToken!, returnvalue: null })),
      );
      const ids = jobs.filter((_, i) => done[i]).map((j) => j.id);
      if (ids.length > 0) {
        await tx.unsafe(
          `INSERT INTO "${schema}".mp_done (job_id, worker)
           SELECT x, $2::text FROM json_array_elements_text($1::text::json) AS x`,
          [JSON.stringify(ids), workerId],
        );
      }
    });
  }
}
await store.disconnect();
await sql.end();
process.exit(0);
