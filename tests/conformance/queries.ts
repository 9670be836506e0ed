/**
 * Conformance: listing and counting, clean, pruneFinished, drain, obliterate, listQueues.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConveyorError,
  InvalidArgumentError,
  type RemoveOnFinish,
  type StoreInterface,
} from '@conveyor/shared';
import { eventually } from '../helpers.ts';
import {
  claim,
  delayedJob,
  ids,
  job,
  record,
  saveFamily,
  saveN,
  type Suite,
  uniqueQueue,
} from './context.ts';

/**
 * The children 'running' (active, with `token`) and 'queued' (waiting) of a pruned parent: the
 * running one completes with its token, and the queued one is claimed and completes.
 */
async function finishChildren(store: StoreInterface, q: string, token: string): Promise<void> {
  assert.deepEqual(
    await store.completeJobs(q, [{ jobId: 'running', token, returnvalue: 1 }]),
    [true],
  );
  const queued = await claim(store, q);
  assert.equal(queued.id, 'queued');
  assert.deepEqual(
    await store.completeJobs(q, [{ jobId: 'queued', token: queued.lockToken, returnvalue: 2 }]),
    [true],
  );
}

/** Claims and completes the next job of `q`, returning its id. */
async function completeNext(
  store: StoreInterface,
  q: string,
  value: unknown = null,
): Promise<string> {
  const c = await claim(store, q);
  const [ok] = await store.completeJobs(q, [{
    jobId: c.id,
    token: c.lockToken,
    returnvalue: value,
  }]);
  assert.equal(ok, true);
  return c.id;
}

/** Claims and fails (for good) the next job of `q`, returning its id. */
async function failNext(store: StoreInterface, q: string): Promise<string> {
  const c = await claim(store, q);
  const [ok] = await store.failJobs(q, [{ jobId: c.id, token: c.lockToken, reason: 'no' }]);
  assert.equal(ok, true);
  return c.id;
}

/** Claims and completes the next job of `q` with the worker's default `removeOnComplete`. */
async function completeNextWith(
  store: StoreInterface,
  q: string,
  removeOnComplete: RemoveOnFinish,
): Promise<string> {
  const c = await claim(store, q);
  const done = [{ jobId: c.id, token: c.lockToken, returnvalue: null }];
  assert.deepEqual(await store.completeJobs(q, done, { removeOnComplete }), [true]);
  return c.id;
}

/** Claims and fails (for good) the next job of `q` with the worker's default `removeOnFail`. */
async function failNextWith(
  store: StoreInterface,
  q: string,
  removeOnFail: RemoveOnFinish,
): Promise<string> {
  const c = await claim(store, q);
  const failure = [{ jobId: c.id, token: c.lockToken, reason: 'no' }];
  assert.deepEqual(await store.failJobs(q, failure, { removeOnFail }), [true]);
  return c.id;
}

/** Waits until the store's clock has moved past the last finish (finishedAt values differ). */
async function tick(): Promise<void> {
  const start = Date.now();
  await eventually(() => Date.now() > start + 1, { interval: 1 });
}

/** Registers the query and cleanup cases. */
export function queryCases(s: Suite): void {
  describe('queries', () => {
    s.test('countJobs counts every state', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 5);
      await store.saveJob(q, delayedJob(q, 60_000));
      await store.saveJob(
        q,
        job(q, 'p', {}, {}, { state: 'waiting-children', pendingChildrenCount: 1 }),
      );
      await completeNext(store, q);
      await failNext(store, q);
      await claim(store, q);
      assert.equal(await store.countJobs(q, 'waiting'), 2);
      assert.equal(await store.countJobs(q, 'delayed'), 1);
      assert.equal(await store.countJobs(q, 'waiting-children'), 1);
      assert.equal(await store.countJobs(q, 'active'), 1);
      assert.equal(await store.getActiveCount(q), 1);
      assert.equal(await store.countJobs(q, 'completed'), 1);
      assert.equal(await store.countJobs(q, 'failed'), 1);
      assert.equal(await store.countJobs(uniqueQueue(), 'waiting'), 0);
    });

    s.test('listJobs waiting: claim order, inclusive pagination, -1 means the last', async (store) => {
      const q = uniqueQueue();
      const a = await store.saveJob(q, job(q));
      const b = await store.saveJob(q, job(q, 't', {}, { priority: -1 }));
      const c = await store.saveJob(q, job(q));
      const d = await store.saveJob(q, job(q, 't', {}, { lifo: true }));
      const order = [b, d, a, c];
      assert.deepEqual(ids(await store.listJobs(q, 'waiting')), order);
      assert.deepEqual(ids(await store.listJobs(q, 'waiting', 0, -1)), order);
      assert.deepEqual(ids(await store.listJobs(q, 'waiting', 1, 2)), [d, a]);
      assert.deepEqual(ids(await store.listJobs(q, 'waiting', 0, 0)), [b]);
      assert.deepEqual(ids(await store.listJobs(q, 'waiting', 2)), [a, c]);
      assert.deepEqual(ids(await store.listJobs(q, 'waiting', 3, 100)), [c]);
      assert.deepEqual(await store.listJobs(q, 'waiting', 4, 10), []);
      assert.deepEqual(await store.listJobs(q, 'waiting', 2, 1), []);
      assert.deepEqual(await store.listJobs(uniqueQueue(), 'waiting'), []);
    });

    s.test('listJobs pages cover the list exactly once', async (store) => {
      const q = uniqueQueue();
      const saved = await saveN(store, q, 23);
      const seen: string[] = [];
      for (let start = 0; start < 30; start += 5) {
        seen.push(...ids(await store.listJobs(q, 'waiting', start, start + 4)));
      }
      assert.deepEqual(seen, saved);
    });

    s.test('listJobs delayed: by delayUntil', async (store) => {
      const q = uniqueQueue();
      const late = await store.saveJob(q, delayedJob(q, 90_000));
      const early = await store.saveJob(q, delayedJob(q, 30_000));
      const mid = await store.saveJob(q, delayedJob(q, 60_000));
      assert.deepEqual(ids(await store.listJobs(q, 'delayed')), [early, mid, late]);
      assert.deepEqual(ids(await store.listJobs(q, 'delayed', 1, 1)), [mid]);
    });

    s.test('listJobs completed and failed: newest finishedAt first', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 5);
      const c1 = await completeNext(store, q);
      await tick();
      const f1 = await failNext(store, q);
      await tick();
      const c2 = await completeNext(store, q);
      await tick();
      const c3 = await completeNext(store, q);
      await tick();
      const f2 = await failNext(store, q);
      assert.deepEqual(ids(await store.listJobs(q, 'completed')), [c3, c2, c1]);
      assert.deepEqual(ids(await store.listJobs(q, 'completed', 0, 1)), [c3, c2]);
      assert.deepEqual(ids(await store.listJobs(q, 'failed')), [f2, f1]);
    });

    s.test('listJobs active and waiting-children: oldest first', async (store) => {
      const q = uniqueQueue();
      const saved = await saveN(store, q, 3);
      await store.fetchNextJobs(q, 'w', 30_000, 3);
      assert.deepEqual(ids(await store.listJobs(q, 'active')), saved);
      const p1 = await store.saveJob(
        q,
        job(q, 'p', {}, {}, { state: 'waiting-children', pendingChildrenCount: 1 }),
      );
      const p2 = await store.saveJob(
        q,
        job(q, 'p', {}, {}, { state: 'waiting-children', pendingChildrenCount: 1 }),
      );
      assert.deepEqual(ids(await store.listJobs(q, 'waiting-children')), [p1, p2]);
    });

    s.test('clean removes finished jobs older than grace and returns the count', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3);
      const a = await completeNext(store, q);
      const b = await completeNext(store, q);
      await failNext(store, q);
      assert.equal(await store.clean(q, 'completed', 3_600_000), 0);
      // A job finished in this very millisecond is not older than a grace of 0 yet: count what
      // all the cleans removed.
      let removed = 0;
      await eventually(async () => (removed += await store.clean(q, 'completed', 0)) === 2, {
        message: 'clean',
      });
      assert.equal(await store.getJob(q, a), null);
      assert.equal(await store.getJob(q, b), null);
      assert.equal(await store.countJobs(q, 'failed'), 1);
      await eventually(async () => (await store.clean(q, 'failed', 0)) === 1);
      assert.equal(await store.countJobs(q, 'failed'), 0);
    });

    s.test('clean respects grace against finishedAt', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 2);
      const old = await completeNext(store, q);
      const since = Date.now();
      // A wide margin: a slow store may take a few hundred ms between finishing and cleaning.
      await eventually(() => Date.now() >= since + 1000, { interval: 20 });
      const recent = await completeNext(store, q);
      assert.equal(await store.clean(q, 'completed', 500), 1);
      assert.equal(await store.getJob(q, old), null);
      assert.equal((await store.getJob(q, recent))?.state, 'completed');
    });

    s.test('clean with a limit removes the oldest first', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 4);
      const done: string[] = [];
      for (let i = 0; i < 4; i++) {
        done.push(await completeNext(store, q));
        await tick();
      }
      assert.equal(await store.clean(q, 'completed', 0, 3), 3);
      assert.deepEqual(ids(await store.listJobs(q, 'completed')), [done[3]]);
    });

    s.test('clean of waiting and delayed uses createdAt; active is never cleaned', async (store) => {
      const q = uniqueQueue();
      const past = Date.now() - 10_000;
      await store.saveJob(q, job(q, 'old', {}, {}, { createdAt: past }));
      const fresh = await store.saveJob(q, job(q, 'new'));
      await store.saveJob(
        q,
        job(q, 'oldDelayed', {}, {}, {
          createdAt: past,
          state: 'delayed',
          delayUntil: Date.now() + 60_000,
        }),
      );
      assert.equal(await store.clean(q, 'waiting', 5_000), 1);
      assert.deepEqual(ids(await store.listJobs(q, 'waiting')), [fresh]);
      assert.equal(await store.clean(q, 'delayed', 5_000), 1);
      await claim(store, q);
      assert.equal(await store.clean(q, 'active', 0), 0);
      assert.equal(await store.getActiveCount(q), 1);
    });

    s.test('pruneFinished keeps the newest k of each state (removeOnComplete count)', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 5, { removeOnComplete: 2 });
      const done: string[] = [];
      for (let i = 0; i < 5; i++) {
        done.push(await completeNext(store, q));
        await tick();
      }
      assert.equal(await store.pruneFinished(q), 3);
      assert.deepEqual(ids(await store.listJobs(q, 'completed')), [done[4], done[3]]);
      assert.equal(await store.pruneFinished(q), 0);
    });

    s.test('pruneFinished applies removeOnFail { count } and leaves other jobs alone', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3, { removeOnFail: { count: 1 } });
      await saveN(store, q, 1);
      const failed: string[] = [];
      for (let i = 0; i < 3; i++) {
        failed.push(await failNext(store, q));
        await tick();
      }
      const kept = await completeNext(store, q);
      assert.equal(await store.pruneFinished(q), 2);
      assert.deepEqual(ids(await store.listJobs(q, 'failed')), [failed[2]]);
      assert.equal((await store.getJob(q, kept))?.state, 'completed');
    });

    s.test('pruneFinished applies keep-age in seconds', async (store) => {
      const q = uniqueQueue();
      await store.saveJob(q, job(q, 'short', {}, { removeOnComplete: { age: 0.05 } }));
      await store.saveJob(q, job(q, 'long', {}, { removeOnComplete: { age: 3600 } }));
      const short = await completeNext(store, q);
      const long = await completeNext(store, q);
      await eventually(async () => (await store.pruneFinished(q)) === 1, {
        message: 'age to pass',
      });
      assert.equal(await store.getJob(q, short), null);
      assert.equal((await store.getJob(q, long))?.state, 'completed');
    });

    s.test('pruneFinished removes a failed parent alone: its active child completes, its waiting child runs', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      // A parent failed by one child while the others are still running or waiting.
      await saveFamily(store, q, 'p', ['bad', 'running', 'queued'], { removeOnFail: { count: 0 } });
      const c = Object.fromEntries(
        (await store.fetchNextJobs(q, 'w', 30_000, 2, { jobName: 'c' })).map((j) => [
          j.id,
          j.lockToken!,
        ]),
      );
      assert.deepEqual(Object.keys(c).sort(), ['bad', 'running']);
      await store.failJobs(q, [{ jobId: 'bad', token: c.bad, reason: 'broke' }]);
      assert.equal((await store.getJob(q, 'p'))?.state, 'failed');
      assert.equal(await store.pruneFinished(q), 1);
      assert.equal(await store.getJob(q, 'p'), null, 'the failed parent is pruned');
      assert.equal((await store.getJob(q, 'bad'))?.state, 'failed', 'a finished child stays');
      assert.equal((await store.getJob(q, 'running'))?.state, 'active', 'a running child stays');
      assert.equal((await store.getJob(q, 'queued'))?.state, 'waiting', 'a waiting child stays');
      // The running child finishes with its token, and the waiting one is claimed and runs,
      // each without a parent step.
      await finishChildren(store, q, c.running);
      assert.equal((await store.getJob(q, 'running'))?.state, 'completed');
      assert.equal((await store.getJob(q, 'queued'))?.state, 'completed');
      assert.equal(await store.getJob(q, 'p'), null);
      assert.deepEqual(await store.getChildrenValues(q, 'p'), {});
      // Events of a queue arrive in order: past this one, a removal of a child would be here.
      await rec.until((e) => e.jobId === 'queued' && e.type === 'completed', 'the last completion');
      assert.deepEqual(
        rec.events.filter((e) => e.type === 'removed').map((e) => e.jobId),
        ['p'],
        'pruning publishes removed for the pruned job only',
      );
      rec.stop();
    });

    s.test('pruneFinished removes a completed parent alone, with its children values and its key', async (store) => {
      const q = uniqueQueue();
      const keep = { removeOnComplete: { count: 1 } };
      const dedup = { key: 'k', ttl: 3_600_000 };
      await store.saveJob(q, job(q, 'p', {}, { ...keep, jobId: 'p', deduplication: dedup }));
      const p = await claim(store, q);
      // Children added to the running parent (opts.parent): it completes without them.
      const parent = { parentId: 'p', parentQueueName: q };
      for (const id of ['done', 'running', 'queued']) {
        await store.saveJob(q, job(q, 'c', {}, { jobId: id }, parent));
      }
      const done = await claim(store, q);
      assert.equal(done.id, 'done');
      await store.completeJobs(q, [{ jobId: 'done', token: done.lockToken, returnvalue: 'v' }]);
      const running = await claim(store, q);
      assert.equal(running.id, 'running');
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: 'p', token: p.lockToken, returnvalue: 0 }]),
        [true],
      );
      await tick();
      // One newer completed job: the parent is past its keep-count of 1.
      await store.saveJob(q, job(q, 'later', {}, { jobId: 'later' }));
      const later = await store.fetchNextJob(q, 'w', 30_000, { jobName: 'later' });
      await store.completeJobs(q, [{ jobId: 'later', token: later!.lockToken!, returnvalue: 0 }]);
      assert.deepEqual(await store.getChildrenValues(q, 'p'), { [`${q}:done`]: 'v' });
      // The key's TTL keeps it held by the finished parent, until the parent goes.
      assert.equal(await store.saveJob(q, job(q, 'x', {}, { deduplication: dedup })), 'p');
      assert.equal(await store.pruneFinished(q), 1);
      assert.equal(await store.getJob(q, 'p'), null, 'the completed parent is pruned');
      assert.deepEqual(await store.getChildrenValues(q, 'p'), {}, 'its children values go');
      assert.equal(await store.findByDeduplicationKey(q, 'k'), null, 'its key is released');
      assert.equal((await store.getJob(q, 'done'))?.state, 'completed', 'a finished child stays');
      assert.equal((await store.getJob(q, 'running'))?.state, 'active', 'a running child stays');
      assert.equal((await store.getJob(q, 'queued'))?.state, 'waiting', 'a waiting child stays');
      await finishChildren(store, q, running.lockToken);
      // No value is kept for the parent that is gone.
      assert.deepEqual(await store.getChildrenValues(q, 'p'), {});
      assert.notEqual(await store.saveJob(q, job(q, 'x', {}, { deduplication: dedup })), 'p');
    });

    s.test('drain removes waiting and delayed jobs only', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3);
      await store.saveJob(q, delayedJob(q, 60_000));
      const parent = await store.saveJob(
        q,
        job(q, 'p', {}, {}, { state: 'waiting-children', pendingChildrenCount: 1 }),
      );
      const done = await completeNext(store, q);
      const active = await claim(store, q);
      await store.drain(q);
      assert.equal(await store.countJobs(q, 'waiting'), 0);
      assert.equal(await store.countJobs(q, 'delayed'), 0);
      assert.equal((await store.getJob(q, parent))?.state, 'waiting-children');
      assert.equal((await store.getJob(q, done))?.state, 'completed');
      assert.equal((await store.getJob(q, active.id))?.state, 'active');
    });

    s.test('obliterate refuses while jobs are active, and removes nothing', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 2);
      await claim(store, q);
      await assert.rejects(store.obliterate(q), (e: unknown) => {
        assert.ok(e instanceof ConveyorError);
        assert.equal(e.code, 'QUEUE_ACTIVE');
        return true;
      });
      assert.equal(await store.countJobs(q, 'waiting'), 1);
      assert.equal(await store.getActiveCount(q), 1);
    });

    s.test('obliterate removes jobs in every state, pauses and schedulers', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3);
      await store.saveJob(q, delayedJob(q, 60_000));
      await completeNext(store, q);
      await claim(store, q);
      await store.pauseJobName(q, 'x');
      await store.upsertScheduler(
        {
          id: 's',
          queueName: q,
          name: 't',
          data: {},
          opts: {},
          repeat: { every: 1000 },
          nextRunAt: Date.now() + 1000,
          runCount: 0,
          createdAt: Date.now(),
        },
        null,
      );
      await store.obliterate(q, { force: true });
      for (const state of ['waiting', 'delayed', 'active', 'completed'] as const) {
        assert.equal(await store.countJobs(q, state), 0, state);
      }
      assert.deepEqual(await store.getPausedJobNames(q), []);
      assert.equal(await store.getScheduler(q, 's'), null);
      assert.ok(!(await store.listQueues()).includes(q));
      await store.saveJob(q, job(q));
      assert.equal(await store.countJobs(q, 'waiting'), 1);
    });

    s.test('obliterate of one queue leaves other queues alone', async (store) => {
      const q = uniqueQueue();
      const other = uniqueQueue();
      await saveN(store, q, 2);
      const keep = await store.saveJob(other, job(other));
      await store.obliterate(q);
      assert.equal(await store.countJobs(q, 'waiting'), 0);
      assert.equal((await store.getJob(other, keep))?.state, 'waiting');
    });

    s.test('listQueues names queues that have jobs or schedulers', async (store) => {
      const withJobs = uniqueQueue();
      const withScheduler = uniqueQueue();
      const unused = uniqueQueue();
      await store.saveJob(withJobs, job(withJobs));
      await store.upsertScheduler(
        {
          id: 's',
          queueName: withScheduler,
          name: 't',
          data: {},
          opts: {},
          repeat: { every: 1000 },
          nextRunAt: Date.now() + 1000,
          runCount: 0,
          createdAt: Date.now(),
        },
        null,
      );
      await store.getJob(unused, 'x');
      const queues = await store.listQueues();
      assert.ok(queues.includes(withJobs));
      assert.ok(queues.includes(withScheduler));
      assert.ok(!queues.includes(unused));
      assert.equal(new Set(queues).size, queues.length);
    });

    s.test('clean with limit 0 removes without limit', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3);
      for (let i = 0; i < 3; i++) await completeNext(store, q);
      let removed = 0;
      await eventually(async () => (removed += await store.clean(q, 'completed', 0, 0)) === 3);
      assert.equal(await store.countJobs(q, 'completed'), 0);
    });

    s.test('pruneFinished with { age, count } removes by either limit', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3, { removeOnComplete: { count: 2, age: 3600 } });
      const done: string[] = [];
      for (let i = 0; i < 3; i++) {
        done.push(await completeNext(store, q));
        await tick();
      }
      assert.equal(await store.pruneFinished(q), 1);
      assert.equal(await store.getJob(q, done[0]), null);
      const q2 = uniqueQueue();
      await saveN(store, q2, 2, { removeOnComplete: { count: 10, age: 0.05 } });
      await completeNext(store, q2);
      await completeNext(store, q2);
      await eventually(async () => {
        await store.pruneFinished(q2);
        return (await store.countJobs(q2, 'completed')) === 0;
      }, { message: 'keep-age to remove both' });
    });

    s.test('drain keeps pauses; obliterate resets rate-limit windows', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 2);
      await store.pauseJobName(q, 'other');
      await store.drain(q);
      assert.deepEqual(await store.getPausedJobNames(q), ['other']);
      const limiter = { max: 1, duration: 1_000_000_000 };
      await saveN(store, q, 2);
      assert.ok(await store.fetchNextJob(q, 'w', 30_000, { limiter }));
      assert.equal(await store.fetchNextJob(q, 'w', 30_000, { limiter }), null);
      await store.obliterate(q, { force: true });
      await saveN(store, q, 1);
      assert.ok(
        await store.fetchNextJob(q, 'w', 30_000, { limiter }),
        'a fresh window after obliterate',
      );
    });

    s.test('completeJobs default removeOnComplete true: removes jobs without their own, in the same step; own false or count wins', async (store) => {
      const q = uniqueQueue();
      const plain = await store.saveJob(q, job(q, 'plain'));
      const keep = await store.saveJob(q, job(q, 'keep', {}, { removeOnComplete: false }));
      const counted = await store.saveJob(q, job(q, 'counted', {}, { removeOnComplete: 5 }));
      const claimed = [await claim(store, q), await claim(store, q), await claim(store, q)];
      const done = claimed.map((c) => ({ jobId: c.id, token: c.lockToken, returnvalue: 1 }));
      assert.deepEqual(await store.completeJobs(q, done, { removeOnComplete: true }), [
        true,
        true,
        true,
      ]);
      assert.equal(await store.getJob(q, plain), null, 'no option of its own: the default');
      assert.equal((await store.getJob(q, keep))?.state, 'completed', 'its own false wins');
      assert.equal((await store.getJob(q, counted))?.state, 'completed', 'its own count wins');
      assert.equal(await store.pruneFinished(q), 0);
      assert.equal(await store.countJobs(q, 'completed'), 2);
    });

    s.test('completeJobs default removeOnComplete count: recorded at finish, applied by pruneFinished; own false wins', async (store) => {
      const q = uniqueQueue();
      const [a, b] = await saveN(store, q, 2);
      const own = await store.saveJob(q, job(q, 'own', {}, { removeOnComplete: false }));
      const [c] = await saveN(store, q, 1);
      const order: string[] = [];
      for (let i = 0; i < 4; i++) {
        order.push(await completeNextWith(store, q, { count: 1 }));
        await tick();
      }
      assert.deepEqual(order, [a, b, own, c]);
      assert.equal(await store.countJobs(q, 'completed'), 4, 'a count removes nothing at once');
      assert.equal(await store.pruneFinished(q), 2);
      assert.deepEqual(ids(await store.listJobs(q, 'completed')), [c, own]);
      assert.equal(await store.pruneFinished(q), 0);
    });

    s.test('completeJobs default removeOnComplete age: applied by pruneFinished; own age wins', async (store) => {
      const q = uniqueQueue();
      const [plain] = await saveN(store, q, 1);
      const own = await store.saveJob(q, job(q, 'own', {}, { removeOnComplete: { age: 3600 } }));
      await completeNextWith(store, q, { age: 0 });
      await completeNextWith(store, q, { age: 0 });
      await eventually(async () => (await store.pruneFinished(q)) === 1, {
        message: 'the default age to remove the plain job',
      });
      assert.equal(await store.getJob(q, plain), null);
      assert.equal((await store.getJob(q, own))?.state, 'completed');
    });

    s.test('failJobs default removeOnFail true: removes a job failing for good without its own, not a retried one; own false wins', async (store) => {
      const q = uniqueQueue();
      const [plain] = await saveN(store, q, 1);
      const keep = await store.saveJob(q, job(q, 'keep', {}, { removeOnFail: false }));
      let c = await claim(store, q);
      assert.equal(c.id, plain);
      const retry = { jobId: plain, token: c.lockToken, reason: 'r', retryAt: Date.now() - 1 };
      assert.deepEqual(await store.failJobs(q, [retry], { removeOnFail: true }), [true]);
      assert.equal((await store.getJob(q, plain))?.state, 'waiting', 'a retry is not the end');
      c = await claim(store, q);
      const k = await claim(store, q);
      const failures = [
        { jobId: plain, token: c.lockToken, reason: 'r' },
        { jobId: keep, token: k.lockToken, reason: 'r' },
      ];
      assert.deepEqual(await store.failJobs(q, failures, { removeOnFail: true }), [true, true]);
      assert.equal(await store.getJob(q, plain), null, 'no option of its own: the default');
      assert.equal((await store.getJob(q, keep))?.state, 'failed', 'its own false wins');
    });

    s.test('failJobs default removeOnFail { count }: applied by pruneFinished; own count wins', async (store) => {
      const q = uniqueQueue();
      const [a, b] = await saveN(store, q, 2);
      const own = await store.saveJob(q, job(q, 'own', {}, { removeOnFail: 5 }));
      const failed: string[] = [];
      for (let i = 0; i < 3; i++) {
        failed.push(await failNextWith(store, q, { count: 0 }));
        await tick();
      }
      assert.deepEqual(failed, [a, b, own]);
      assert.equal(await store.countJobs(q, 'failed'), 3, 'a count removes nothing at once');
      assert.equal(await store.pruneFinished(q), 2);
      assert.deepEqual(ids(await store.listJobs(q, 'failed')), [own]);
    });

    s.test('a default recorded at one finish does not outlive it: retried and completed without one, the job stays', async (store) => {
      const q = uniqueQueue();
      const [id] = await saveN(store, q, 1);
      await failNextWith(store, q, { count: 0 });
      assert.equal(await store.updateJob(q, id, { state: 'waiting' }), true);
      await completeNext(store, q);
      assert.equal(await store.pruneFinished(q), 0);
      assert.equal((await store.getJob(q, id))?.state, 'completed');
    });

    s.test('completeJobs / failJobs refuse a bad default with InvalidArgumentError naming it; nothing changes', async (store) => {
      const q = uniqueQueue();
      const [id] = await saveN(store, q, 1);
      const c = await claim(store, q);
      const done = [{ jobId: id, token: c.lockToken, returnvalue: 1 }];
      await assert.rejects(
        () => store.completeJobs(q, done, { removeOnComplete: -1 }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'options.removeOnComplete',
      );
      await assert.rejects(
        () => store.completeJobs(q, done, { removeOnComplete: { count: 1.5 } }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'options.removeOnComplete.count',
      );
      const failure = [{ jobId: id, token: c.lockToken, reason: 'r' }];
      await assert.rejects(
        () => store.failJobs(q, failure, { removeOnFail: { age: -1 } }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'options.removeOnFail.age',
      );
      await assert.rejects(
        () => store.failJobs(q, failure, { removeOnFail: 'yes' as never }),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'options.removeOnFail',
      );
      assert.equal((await store.getJob(q, id))?.state, 'active');
      assert.deepEqual(await store.completeJobs(q, done), [true]);
    });
  });
}
