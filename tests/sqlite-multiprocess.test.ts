/**
 * Several processes on one SQLite file: 1 producer and 4 workers (child processes on the
 * runtime running this test, with its native adapter) share 5,000 jobs. Every job is processed and completed exactly
 * once, and the database counts 5,000 completed jobs.
 *
 * @module
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { newJob } from '@conveyor/shared';
import { requireTests, uniqueQueue } from './helpers.ts';
import { runtimeAdapter, tempDir } from './sqlite-harness.ts';

const TOTAL = 5000;
const WORKERS = 4;
const script = fileURLToPath(new URL('./sqlite-multiprocess-worker.ts', import.meta.url));
const adapter = await runtimeAdapter();
const dir = tempDir();
after(() => dir.remove());
const { ran } = requireTests(`sqlite multiprocess (${adapter.name})`);

/** Runs the worker script in a child process of this runtime; resolves with its output. */
function child(args: string[]): Promise<string> {
  const runtimeArgs = 'Deno' in globalThis ? ['run', '-A', script, ...args] : [script, ...args];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, runtimeArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d) => output += d);
    p.stderr.on('data', (d) => output += d);
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${args[0]} ${args[4] ?? ''} exited with ${code}:\n${output}`));
    });
  });
}

describe(`${adapter.name}: 4 worker processes and 1 producer on one file`, () => {
  it(`completes each of ${TOTAL} jobs exactly once`, { timeout: 120_000 }, async () => {
    const filename = join(dir.path, 'shared.db');
    const queue = uniqueQueue('mp');
    const store = adapter.create({ filename });
    await store.connect();
    // A job is there before the workers start, so they certainly share the file from the start.
    const first = await store.saveJob(queue, newJob(queue, 'job', { first: true }));
    const raw = adapter.openDriver(filename);
    raw.exec('CREATE TABLE mp_processed (job_id TEXT NOT NULL, worker TEXT NOT NULL)');
    try {
      const workers = Array.from(
        { length: WORKERS },
        (_, w) => child(['worker', filename, queue, String(TOTAL + 1), `w${w}`]),
      );
      await child(['producer', filename, queue, String(TOTAL)]);
      await Promise.all(workers);

      const processed = raw.prepare('SELECT job_id, worker FROM mp_processed').all();
      const ids = processed.map((r) => String(r.job_id));
      assert.equal(ids.length, TOTAL + 1, 'one processing per job');
      assert.equal(new Set(ids).size, TOTAL + 1, 'no job processed twice');
      assert.ok(ids.includes(first));
      assert.equal(await store.countJobs(queue, 'completed'), TOTAL + 1);
      assert.equal(await store.countJobs(queue, 'waiting'), 0);
      assert.equal(await store.countJobs(queue, 'active'), 0);
      const byWorker = raw.prepare(
        'SELECT worker, count(*) AS n FROM mp_processed GROUP BY worker ORDER BY worker',
      ).all();
      console.log('jobs per worker:', byWorker.map((r) => `${r.worker}=${r.n}`).join(' '));
      // Each completed job's return value names the worker that recorded it.
      const owner = new Map(processed.map((r) => [String(r.job_id), String(r.worker)]));
      for (const job of await store.listJobs(queue, 'completed', 0, 99)) {
        assert.equal(job.returnvalue, owner.get(job.id));
      }
      ran();
    } finally {
      raw.close();
      await store.disconnect();
    }
  });
});
