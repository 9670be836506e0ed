/**
 * Conformance: job schedulers (upsert with first job, replace, list, remove, compare-and-set
 * advance).
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import type { NewJob, SchedulerData } from '@conveyor/shared';
import { claim, delayedJob, ids, job, type Suite, uniqueQueue } from './context.ts';

function scheduler(
  queue: string,
  id: string,
  nextRunAt: number | null,
  runCount = 0,
): SchedulerData {
  return {
    id,
    queueName: queue,
    name: 'tick',
    data: { from: id },
    opts: {},
    repeat: { every: 60_000 },
    nextRunAt,
    runCount,
    createdAt: Date.now(),
  };
}

/** A scheduler's run `n`: delayed until `at`, idempotent by its jobId. */
function run(queue: string, schedulerId: string, at: number): NewJob {
  return job(queue, 'tick', {}, {
    jobId: `repeat:${schedulerId}:${at}`,
    repeat: { every: 60_000, schedulerId },
  }, {
    state: 'delayed',
    delayUntil: at,
  });
}

/** Registers the scheduler cases. */
export function schedulerCases(s: Suite): void {
  describe('schedulers', () => {
    s.test('upsertScheduler creates the scheduler and its first job', async (store) => {
      const q = uniqueQueue();
      const at = Date.now() + 60_000;
      const id = await store.upsertScheduler(scheduler(q, 's', at), run(q, 's', at));
      assert.equal(id, `repeat:s:${at}`);
      const got = await store.getScheduler(q, 's');
      assert.equal(got?.id, 's');
      assert.equal(got?.nextRunAt, at);
      assert.equal(got?.runCount, 1);
      assert.deepEqual(got?.data, { from: 's' });
      assert.deepEqual(got?.repeat, { every: 60_000 });
      const first = await store.getJob(q, id!);
      assert.equal(first?.state, 'delayed');
      assert.equal(first?.opts.repeat?.schedulerId, 's');
    });

    s.test('upsertScheduler without a first job returns null', async (store) => {
      const q = uniqueQueue();
      assert.equal(await store.upsertScheduler(scheduler(q, 's', Date.now() + 1000), null), null);
      assert.equal((await store.getScheduler(q, 's'))?.runCount, 0);
      assert.equal(await store.countJobs(q, 'delayed'), 0);
      assert.equal(await store.getScheduler(q, 'missing'), null);
    });

    s.test('replacing a scheduler removes the old pending job and counts only runs made', async (store) => {
      const q = uniqueQueue();
      const at1 = Date.now() + 60_000;
      const old = await store.upsertScheduler(scheduler(q, 's', at1), run(q, 's', at1));
      const unrelated = await store.saveJob(q, delayedJob(q, 60_000));
      const at2 = Date.now() + 120_000;
      const replaced = { ...scheduler(q, 's', at2), data: { v: 2 }, repeat: { every: 120_000 } };
      const fresh = await store.upsertScheduler(replaced, run(q, 's', at2));
      assert.notEqual(fresh, old);
      assert.equal(await store.getJob(q, old!), null);
      assert.equal((await store.getJob(q, fresh!))?.state, 'delayed');
      assert.equal((await store.getJob(q, unrelated))?.state, 'delayed');
      const got = await store.getScheduler(q, 's');
      // The removed job never started: only the new first job counts.
      assert.equal(got?.runCount, 1);
      assert.deepEqual(got?.data, { v: 2 });
      assert.deepEqual(got?.repeat, { every: 120_000 });
      assert.equal(got?.nextRunAt, at2);
      assert.equal((await store.listSchedulers(q)).length, 1);
    });

    s.test('re-upserting a scheduler does not count its removed, never-started job as a run', async (store) => {
      const q = uniqueQueue();
      const at = Date.now() + 60_000;
      await store.upsertScheduler(scheduler(q, 's', at), run(q, 's', at));
      assert.equal((await store.getScheduler(q, 's'))?.runCount, 1);
      for (let i = 1; i <= 3; i++) {
        const next = at + i * 1000;
        const id = await store.upsertScheduler(scheduler(q, 's', next), run(q, 's', next));
        assert.equal(id, `repeat:s:${next}`);
        assert.equal((await store.getScheduler(q, 's'))?.runCount, 1, `after re-upsert ${i}`);
        assert.deepEqual(ids(await store.listJobs(q, 'delayed')), [id]);
        assert.equal(await store.countJobs(q, 'waiting'), 0);
      }
      // A run that started stays counted: claim the pending job, then re-upsert.
      const last = `repeat:s:${at + 3000}`;
      assert.equal(await store.promoteDelayedJobs(q, at + 3000), 1);
      assert.equal((await claim(store, q)).id, last);
      const later = at + 10_000;
      await store.upsertScheduler(scheduler(q, 's', later), run(q, 's', later));
      assert.equal((await store.getScheduler(q, 's'))?.runCount, 2);
      assert.equal((await store.getJob(q, last))?.state, 'active');
      assert.deepEqual(ids(await store.listJobs(q, 'delayed')), [`repeat:s:${later}`]);
      // So does a pending job that started before (retried): it is removed, and stays counted.
      assert.equal(await store.promoteDelayedJobs(q, later), 1);
      const started = await claim(store, q);
      const [retried] = await store.failJobs(q, [{
        jobId: started.id,
        token: started.lockToken,
        reason: 'again',
        retryAt: Date.now() + 60_000,
      }]);
      assert.equal(retried, true);
      const last2 = at + 20_000;
      await store.upsertScheduler(scheduler(q, 's', last2), run(q, 's', last2));
      assert.equal((await store.getScheduler(q, 's'))?.runCount, 3);
      assert.equal(await store.getJob(q, started.id), null);
      assert.deepEqual(ids(await store.listJobs(q, 'delayed')), [`repeat:s:${last2}`]);
    });

    s.test('listSchedulers orders by next run time', async (store) => {
      const q = uniqueQueue();
      const now = Date.now();
      await store.upsertScheduler(scheduler(q, 'late', now + 30_000), null);
      await store.upsertScheduler(scheduler(q, 'early', now + 10_000), null);
      await store.upsertScheduler(scheduler(q, 'mid', now + 20_000), null);
      assert.deepEqual((await store.listSchedulers(q)).map((x) => x.id), ['early', 'mid', 'late']);
      assert.deepEqual(await store.listSchedulers(uniqueQueue()), []);
    });

    s.test('removeScheduler removes it and its pending job', async (store) => {
      const q = uniqueQueue();
      const at = Date.now() + 60_000;
      const first = await store.upsertScheduler(scheduler(q, 's', at), run(q, 's', at));
      assert.equal(await store.removeScheduler(q, 's'), true);
      assert.equal(await store.getScheduler(q, 's'), null);
      assert.equal(await store.getJob(q, first!), null);
      assert.equal(await store.removeScheduler(q, 's'), false);
    });

    s.test('advanceScheduler compare-and-set: saves the next job only on a match', async (store) => {
      const q = uniqueQueue();
      const t1 = Date.now() + 60_000;
      const t2 = t1 + 60_000;
      await store.upsertScheduler(scheduler(q, 's', t1), run(q, 's', t1));
      assert.equal(await store.advanceScheduler(q, 's', t1 - 1, t2, run(q, 's', t2)), false);
      assert.equal(await store.getJob(q, `repeat:s:${t2}`), null);
      const id = await store.advanceScheduler(q, 's', t1, t2, run(q, 's', t2));
      assert.equal(id, `repeat:s:${t2}`);
      const got = await store.getScheduler(q, 's');
      assert.equal(got?.nextRunAt, t2);
      assert.equal(got?.runCount, 2);
      assert.equal(await store.advanceScheduler(q, 's', t1, t2, run(q, 's', t2)), false);
      assert.equal(await store.advanceScheduler(q, 'missing', t1, t2, null), false);
    });

    s.test('advanceScheduler without a job returns null and keeps runCount; null ends it', async (store) => {
      const q = uniqueQueue();
      const t1 = Date.now() + 60_000;
      await store.upsertScheduler(scheduler(q, 's', t1, 3), null);
      assert.equal(await store.advanceScheduler(q, 's', t1, null, null), null);
      const got = await store.getScheduler(q, 's');
      assert.equal(got?.nextRunAt, null);
      assert.equal(got?.runCount, 3);
    });

    s.test('two racing advancers: exactly one wins', async (store) => {
      const q = uniqueQueue();
      const t1 = Date.now() + 60_000;
      const t2 = t1 + 60_000;
      await store.upsertScheduler(scheduler(q, 's', t1), null);
      const results = await Promise.all([
        store.advanceScheduler(q, 's', t1, t2, run(q, 's', t2)),
        store.advanceScheduler(q, 's', t1, t2, run(q, 's', t2)),
      ]);
      assert.equal(results.filter((r) => r === false).length, 1);
      assert.equal(results.filter((r) => r === `repeat:s:${t2}`).length, 1);
      assert.equal((await store.getScheduler(q, 's'))?.runCount, 1);
      assert.equal(await store.countJobs(q, 'delayed'), 1);
    });

    s.test('returned schedulers are copies', async (store) => {
      const q = uniqueQueue();
      await store.upsertScheduler(scheduler(q, 's', Date.now() + 1000), null);
      const got = await store.getScheduler(q, 's');
      got!.runCount = 99;
      (got!.data as { from: string }).from = 'changed';
      const listed = await store.listSchedulers(q);
      listed[0].nextRunAt = 0;
      const again = await store.getScheduler(q, 's');
      assert.equal(again?.runCount, 0);
      assert.deepEqual(again?.data, { from: 's' });
      assert.notEqual(again?.nextRunAt, 0);
    });

    s.test('upsertScheduler first job is idempotent by its jobId', async (store) => {
      const q = uniqueQueue();
      const at = Date.now() + 60_000;
      const existing = await store.saveJob(q, run(q, 'other', at));
      const firstJob = { ...run(q, 's', at), opts: { ...run(q, 's', at).opts, jobId: existing } };
      assert.equal(await store.upsertScheduler(scheduler(q, 's', at), firstJob), existing);
      assert.equal(await store.countJobs(q, 'delayed'), 1);
      assert.ok(await store.getScheduler(q, 's'));
    });
  });
}
