/**
 * Multi-process test of the PostgreSQL store: 1 producer and 4 worker processes share a queue
 * of 20,000 jobs; one worker is killed with SIGKILL while it holds jobs. Its jobs come back
 * after lock expiry, and every job is completed exactly once (completions are recorded in a
 * table in the same transaction as `completeJobs`). Children run on this test's runtime.
 *
 * ```sh
 * npx -y deno@2 test -A tests/pg-multiprocess.test.ts
 * npx -y node@24 --test tests/pg-multiprocess.test.ts
 * npx -y bun@1 test ./tests/pg-multiprocess.test.ts
 * ```
 *
 * @module
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import process from 'node:process';
import postgres from 'postgres';
import { PgStore } from '@conveyor/store-pg';
import { eventually, requireTests, uniqueQueue } from './helpers.ts';
import { testServer } from './pg-server.ts';

const TOTAL = 20_000;
const server = await testServer();
const admin = postgres(server.url, { max: 2, onnotice: () => {} });
const schema = `cv_mp_${crypto.randomUUID().slice(0, 8)}`;
const children: ChildProcess[] = [];

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
  await server.stop();
});
const { ran } = requireTests('pg-multiprocess');

/** Starts the worker script on the runtime running this test. */
function child(env: Record<string, string>): ChildProcess {
  const script = new URL('./pg-multiprocess-worker.ts', import.meta.url).pathname;
  const args = process.versions.deno ? ['run', '-A', script] : [script];
  const c = spawn(process.execPath, args, {
    env: { ...process.env, CONVEYOR_PG_URL: server.url, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(c);
  return c;
}

function exited(c: ChildProcess): Promise<number | null> {
  return c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve(c.exitCode)
    : new Promise((resolve) => c.on('exit', (code) => resolve(code)));
}

describe('pg-multiprocess', () => {
  it('4 workers and 1 producer, 20,000 jobs, one worker SIGKILLed: each job completed once', {
    timeout: 180_000,
  }, async () => {
    const setup = new PgStore({ connection: server.url, schema });
    await setup.connect();
    await setup.disconnect();
    await admin.unsafe(
      `CREATE TABLE "${schema}".mp_done (job_id text NOT NULL, worker text NOT NULL)`,
    );
    const queue = uniqueQueue('mp');
    const common = { MP_SCHEMA: schema, MP_QUEUE: queue, MP_TOTAL: String(TOTAL), MP_LOCK: '1500' };
    const producer = child({ ...common, MP_ROLE: 'producer' });
    // w0 is slow, so that it holds claimed jobs most of the time when it is killed.
    const workers = [0, 1, 2, 3].map((i) =>
      child({ ...common, MP_ROLE: 'worker', MP_WORKER_ID: `w${i}`, MP_DELAY: i === 0 ? '40' : '2' })
    );
    await eventually(async () => {
      const [r] = await admin.unsafe(
        `SELECT (SELECT count(*) FROM "${schema}".mp_done WHERE worker = 'w0')::int AS done,
           (SELECT count(*) FROM "${schema}".jobs WHERE queue = $1 AND state = 'active'
             AND locked_by = 'w0')::int AS held`,
        [queue],
      );
      return r.done >= 200 && r.held > 0;
    }, { timeout: 60_000, interval: 2, message: 'w0 to have completed jobs and hold some' });
    workers[0].kill('SIGKILL');
    assert.equal(await exited(producer), 0);
    for (const w of workers.slice(1)) assert.equal(await exited(w), 0);
    const [r] = await admin.unsafe(
      `SELECT count(*)::int AS n, count(DISTINCT job_id)::int AS distinct_n FROM "${schema}".mp_done`,
    );
    assert.equal(r.distinct_n, TOTAL, 'every job completed');
    assert.equal(r.n, TOTAL, 'no job completed twice');
    const [j] = await admin.unsafe(
      `SELECT count(*) FILTER (WHERE state = 'completed')::int AS completed,
         count(*) FILTER (WHERE stalled_count > 0)::int AS rescued,
         count(*)::int AS total
       FROM "${schema}".jobs WHERE queue = $1`,
      [queue],
    );
    assert.equal(j.total, TOTAL);
    assert.equal(j.completed, TOTAL);
    assert.ok(j.rescued > 0, 'the killed worker held jobs that came back after lock expiry');
    ran();
  });
});
