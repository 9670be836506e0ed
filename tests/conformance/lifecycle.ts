/**
 * Conformance: finishing jobs (complete, fail, retry), fencing, lock extension and release,
 * delayed promotion and stalled detection.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, type StoreEvent } from '@conveyor/shared';
import { eventually } from '../helpers.ts';
import { claim, delayedJob, job, record, saveN, type Suite, uniqueQueue } from './context.ts';

/** Registers the job lifecycle cases. */
export function lifecycleCases(s: Suite): void {
  describe('lifecycle', () => {
    s.test('completeJobs completes with the current token', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: id, token: c.lockToken, returnvalue: { ok: 1 } }]),
        [true],
      );
      const done = await store.getJob(q, id);
      assert.equal(done?.state, 'completed');
      assert.deepEqual(done?.returnvalue, { ok: 1 });
      assert.ok(done?.finishedAt);
      assert.equal(done?.lockToken, null);
      assert.equal(done?.lockedBy, null);
      assert.equal(await store.getActiveCount(q), 0);
      assert.equal(await store.countJobs(q, 'completed'), 1);
    });

    s.test('completeJobs refuses a wrong token, a non-active job and a missing job', async (store) => {
      const q = uniqueQueue();
      const [a, b] = await saveN(store, q, 2);
      const c = await claim(store, q);
      assert.deepEqual(
        await store.completeJobs(q, [
          { jobId: a, token: 'not-the-token', returnvalue: 1 },
          { jobId: b, token: c.lockToken, returnvalue: 1 },
          { jobId: 'missing', token: c.lockToken, returnvalue: 1 },
        ]),
        [false, false, false],
      );
      assert.equal((await store.getJob(q, a))?.state, 'active');
      assert.equal((await store.getJob(q, b))?.state, 'waiting');
    });

    s.test('completeJobs keeps awkward ids and return values intact', async (store) => {
      const q = uniqueQueue();
      // Characters that array literals, JSON and SQL quote or escape, as ids and as values.
      const awkward = [
        'a,b',
        '{x}',
        '"q"',
        'back\\slash',
        'NULL',
        "it's",
        'line\nbreak',
        'é ✓',
        '__proto__',
        'constructor',
      ];
      for (const id of awkward) await store.saveJob(q, job(q, 'n', {}, { jobId: id }));
      const claimed = await store.fetchNextJobs(q, 'w', 30_000, awkward.length);
      assert.equal(claimed.length, awkward.length);
      const value = (id: string) => ({ id, list: [id, null, 1.5], text: `"${id}"` });
      assert.deepEqual(
        await store.completeJobs(
          q,
          claimed.map((c) => ({ jobId: c.id, token: c.lockToken!, returnvalue: value(c.id) })),
        ),
        claimed.map(() => true),
      );
      for (const id of awkward) {
        const done = await store.getJob(q, id);
        assert.equal(done?.state, 'completed', id);
        assert.deepEqual(done?.returnvalue, value(id));
      }
      assert.deepEqual(
        await store.completeJobs(q, [{
          jobId: 'NULL',
          token: claimed[0].lockToken!,
          returnvalue: 'NULL',
        }]),
        [false],
      );
    });

    s.test('completeJobs batch: one result per input, valid ones applied', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3);
      const [x, y, z] = await store.fetchNextJobs(q, 'w', 30_000, 3);
      const result = await store.completeJobs(q, [
        { jobId: x.id, token: x.lockToken!, returnvalue: 'x' },
        { jobId: y.id, token: 'stale', returnvalue: 'y' },
        { jobId: z.id, token: z.lockToken!, returnvalue: 'z' },
      ]);
      assert.deepEqual(result, [true, false, true]);
      assert.equal((await store.getJob(q, y.id))?.state, 'active');
      assert.equal(await store.countJobs(q, 'completed'), 2);
      assert.deepEqual(await store.completeJobs(q, []), []);
    });

    s.test('completeJobs with one job twice in a batch completes it once, for its first entry', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 2);
      const [x, y] = await store.fetchNextJobs(q, 'w', 30_000, 2);
      const result = await store.completeJobs(q, [
        { jobId: x.id, token: x.lockToken!, returnvalue: 'first' },
        { jobId: y.id, token: y.lockToken!, returnvalue: 'y' },
        { jobId: x.id, token: x.lockToken!, returnvalue: 'second' },
      ]);
      assert.deepEqual(result, [true, true, false]);
      assert.equal((await store.getJob(q, x.id))?.returnvalue, 'first');
    });

    s.test('a job cannot be completed twice', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      const done = { jobId: id, token: c.lockToken, returnvalue: 1 };
      assert.deepEqual(await store.completeJobs(q, [done]), [true]);
      assert.deepEqual(await store.completeJobs(q, [done]), [false]);
      assert.deepEqual(
        await store.failJobs(q, [{ jobId: id, token: c.lockToken, reason: 'late' }]),
        [false],
      );
      assert.equal((await store.getJob(q, id))?.state, 'completed');
    });

    s.test('removeOnComplete true removes the job at once', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q, 't', {}, { removeOnComplete: true }));
      const c = await claim(store, q);
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: id, token: c.lockToken, returnvalue: 1 }]),
        [true],
      );
      assert.equal(await store.getJob(q, id), null);
      assert.equal(await store.countJobs(q, 'completed'), 0);
    });

    s.test('failJobs without retryAt fails for good', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      assert.deepEqual(
        await store.failJobs(q, [{ jobId: id, token: c.lockToken, reason: 'boom', stack: 'at x' }]),
        [true],
      );
      const failed = await store.getJob(q, id);
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.failedReason, 'boom');
      assert.equal(failed?.attemptsMade, 1);
      assert.deepEqual(failed?.stacktrace, ['at x']);
      assert.ok(failed?.finishedAt);
      assert.equal(failed?.lockToken, null);
      assert.equal(await store.countJobs(q, 'failed'), 1);
    });

    s.test('failJobs with a future retryAt delays the job; stack traces accumulate', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      const retryAt = Date.now() + 60_000;
      assert.deepEqual(
        await store.failJobs(q, [{
          jobId: id,
          token: c.lockToken,
          reason: 'r1',
          stack: 's1',
          retryAt,
        }]),
        [true],
      );
      const delayed = await store.getJob(q, id);
      assert.equal(delayed?.state, 'delayed');
      assert.equal(delayed?.delayUntil, retryAt);
      assert.equal(delayed?.attemptsMade, 1);
      assert.equal(delayed?.failedReason, 'r1');
      assert.equal(delayed?.lockToken, null);
      assert.equal(await store.fetchNextJob(q, 'w', 1000), null);
      assert.equal(await store.promoteDelayedJobs(q, retryAt), 1);
      const again = await claim(store, q);
      assert.equal(again.attemptsStarted, 2);
      await store.failJobs(q, [{ jobId: id, token: again.lockToken, reason: 'r2', stack: 's2' }]);
      const failed = await store.getJob(q, id);
      assert.equal(failed?.attemptsMade, 2);
      assert.deepEqual(failed?.stacktrace, ['s1', 's2']);
    });

    s.test('failJobs with a past retryAt puts the job back to waiting', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      await store.failJobs(q, [{
        jobId: id,
        token: c.lockToken,
        reason: 'r',
        retryAt: Date.now() - 10,
      }]);
      assert.equal((await store.getJob(q, id))?.state, 'waiting');
      assert.equal((await claim(store, q)).id, id);
    });

    s.test('failJobs batch: stale entries are refused, valid ones applied', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 2);
      const [x, y] = await store.fetchNextJobs(q, 'w', 30_000, 2);
      assert.deepEqual(
        await store.failJobs(q, [
          { jobId: x.id, token: 'stale', reason: 'a' },
          { jobId: y.id, token: y.lockToken!, reason: 'b' },
        ]),
        [false, true],
      );
      assert.equal((await store.getJob(q, x.id))?.state, 'active');
      assert.equal((await store.getJob(q, x.id))?.attemptsMade, 0);
      assert.equal((await store.getJob(q, y.id))?.state, 'failed');
    });

    s.test('removeOnFail true removes the job when it fails for good, not on retry', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q, 't', {}, { removeOnFail: true }));
      let c = await claim(store, q);
      await store.failJobs(q, [{
        jobId: id,
        token: c.lockToken,
        reason: 'r',
        retryAt: Date.now() - 1,
      }]);
      assert.equal((await store.getJob(q, id))?.state, 'waiting');
      c = await claim(store, q);
      await store.failJobs(q, [{ jobId: id, token: c.lockToken, reason: 'r' }]);
      assert.equal(await store.getJob(q, id), null);
      assert.equal(await store.countJobs(q, 'failed'), 0);
    });

    s.test('fencing: after release and re-claim the old token can do nothing', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const first = await claim(store, q, 'w1');
      assert.equal(await store.releaseLock(q, id, first.lockToken), true);
      const second = await claim(store, q, 'w2');
      assert.notEqual(second.lockToken, first.lockToken);
      const old = first.lockToken;
      assert.deepEqual(await store.completeJobs(q, [{ jobId: id, token: old, returnvalue: 1 }]), [
        false,
      ]);
      assert.deepEqual(await store.failJobs(q, [{ jobId: id, token: old, reason: 'x' }]), [false]);
      assert.equal(await store.extendLock(q, id, 60_000, old), false);
      assert.equal(await store.releaseLock(q, id, old), false);
      assert.equal(await store.updateJob(q, id, { progress: 9 }, { token: old }), false);
      const now = await store.getJob(q, id);
      assert.equal(now?.state, 'active');
      assert.equal(now?.lockedBy, 'w2');
      assert.equal(now?.progress, 0);
      assert.equal(
        await store.updateJob(q, id, { progress: 5 }, { token: second.lockToken }),
        true,
      );
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: id, token: second.lockToken, returnvalue: 2 }]),
        [true],
      );
    });

    s.test('fencing: a lock that expired and was re-claimed cannot be completed', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const first = await store.fetchNextJob(q, 'w1', 1);
      assert.ok(first?.lockToken);
      await eventually(async () => (await store.requeueStalledJobs(q, 5)).requeued.includes(id), {
        message: 'the lock to expire and the job to be requeued',
      });
      assert.equal((await store.getJob(q, id))?.lockToken, null);
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: id, token: first.lockToken, returnvalue: 1 }]),
        [false],
      );
      const second = await claim(store, q, 'w2');
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: id, token: first.lockToken, returnvalue: 1 }]),
        [false],
      );
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: id, token: second.lockToken, returnvalue: 2 }]),
        [true],
      );
      assert.equal((await store.getJob(q, id))?.returnvalue, 2);
    });

    s.test('extendLock moves lockUntil forward for the holder only', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await store.fetchNextJob(q, 'w', 1000);
      assert.equal(await store.extendLock(q, id, 120_000, c!.lockToken!), true);
      const extended = await store.getJob(q, id);
      assert.ok(extended!.lockUntil! >= Date.now() + 100_000);
      assert.equal(await store.extendLock(q, id, 120_000), true);
      assert.equal(await store.extendLock(q, id, 120_000, 'wrong'), false);
      assert.equal(await store.extendLock(q, 'missing', 1000), false);
      const w = await store.saveJob(q, job(q));
      assert.equal(await store.extendLock(q, w, 1000), false);
    });

    s.test('extendLocks renews the holders in one call: one answer per lock, fenced by token', async (store) => {
      const q = uniqueQueue();
      const [a, b, c, d] = await saveN(store, q, 4);
      const claimed = await store.fetchNextJobs(q, 'w', 1000, 3);
      const token = (id: string) => claimed.find((j) => j.id === id)!.lockToken!;
      const before = Date.now();
      assert.deepEqual(
        await store.extendLocks(q, [
          { jobId: a, token: token(a) },
          { jobId: b, token: 'not-the-token' },
          { jobId: c, token: token(c) },
          { jobId: d, token: 'waiting-job' },
          { jobId: 'missing', token: 'x' },
          { jobId: a, token: token(a) },
        ], 120_000),
        [true, false, true, false, false, true],
      );
      for (const id of [a, c]) {
        assert.ok((await store.getJob(q, id))!.lockUntil! >= before + 100_000, `${id} renewed`);
      }
      // b kept its old lock (one second), and d is still waiting.
      assert.ok((await store.getJob(q, b))!.lockUntil! < before + 100_000, 'b not renewed');
      assert.equal((await store.getJob(q, d))!.state, 'waiting');
      assert.deepEqual(await store.extendLocks(q, [], 120_000), []);
      // Another queue's holder is not this queue's job.
      const other = uniqueQueue();
      assert.deepEqual(await store.extendLocks(other, [{ jobId: a, token: token(a) }], 1000), [
        false,
      ]);
    });

    s.test('extendLocks refuses bad input by name and renews nothing', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await store.fetchNextJob(q, 'w', 1000);
      const ok = { jobId: id, token: c!.lockToken! };
      const lockUntil = (await store.getJob(q, id))!.lockUntil;
      const bad: Array<[unknown, unknown, string]> = [
        ['not an array', 60_000, 'locks'],
        [[ok, null], 60_000, 'locks[1]'],
        [[ok, { jobId: 7, token: 't' }], 60_000, 'locks[1].jobId'],
        [[ok, { jobId: id }], 60_000, 'locks[1].token'],
        [[ok], 0, 'duration'],
        [[ok], NaN, 'duration'],
        [[ok], '60000', 'duration'],
      ];
      for (const [locks, duration, option] of bad) {
        await assert.rejects(
          store.extendLocks(q, locks as never, duration as never),
          (e: unknown) => e instanceof InvalidArgumentError && e.option === option,
          option,
        );
      }
      assert.equal((await store.getJob(q, id))!.lockUntil, lockUntil);
    });

    s.test('releaseLock puts the job back in its place, lock cleared', async (store) => {
      const q = uniqueQueue();
      const [a, b] = await saveN(store, q, 2);
      const c = await claim(store, q);
      assert.equal(c.id, a);
      assert.equal(await store.releaseLock(q, a, c.lockToken), true);
      const back = await store.getJob(q, a);
      assert.equal(back?.state, 'waiting');
      assert.equal(back?.lockToken, null);
      assert.equal(back?.lockedBy, null);
      assert.equal((await claim(store, q)).id, a);
      assert.equal((await claim(store, q)).id, b);
      assert.equal(await store.releaseLock(q, 'missing'), false);
    });

    s.test('releaseLock without a token releases; a waiting job cannot be released', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      await claim(store, q);
      assert.equal(await store.releaseLock(q, id), true);
      assert.equal(await store.releaseLock(q, id), false);
    });

    s.test("moveToDelayed parks the holder's job until then, attempts unchanged", async (store) => {
      const q = uniqueQueue();
      const [a, b] = await saveN(store, q, 2);
      const c = await claim(store, q);
      assert.equal(c.id, a);
      const until = Date.now() + 60_000;
      assert.equal(await store.moveToDelayed(q, a, 'not-the-token', until), false);
      assert.equal((await store.getJob(q, a))?.state, 'active');
      assert.equal(await store.moveToDelayed(q, a, c.lockToken, until), true);
      const parked = await store.getJob(q, a);
      assert.equal(parked?.state, 'delayed');
      assert.equal(parked?.delayUntil, until);
      assert.equal(parked?.attemptsMade, 0);
      assert.equal(parked?.attemptsStarted, 1);
      assert.equal(parked?.lockToken, null);
      assert.equal(parked?.lockedBy, null);
      assert.equal(await store.getNextDelayedTimestamp(q), until);
      // The token is spent: nothing else can be done with it.
      assert.equal(await store.moveToDelayed(q, a, c.lockToken, until), false);
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: a, token: c.lockToken, returnvalue: 1 }]),
        [false],
      );
      assert.equal((await claim(store, q)).id, b);
      assert.equal(await store.fetchNextJob(q, 'w', 30_000), null);
      assert.equal(await store.promoteDelayedJobs(q, until), 1);
      const again = await claim(store, q);
      assert.equal(again.id, a);
      assert.equal(again.attemptsStarted, 2);
      assert.equal(await store.moveToDelayed(q, 'missing', again.lockToken, until), false);
    });

    s.test('moveToDelayed to a time not in the future makes the job waiting again', async (store) => {
      const q = uniqueQueue();
      const [a] = await saveN(store, q, 2);
      const c = await claim(store, q);
      assert.equal(await store.moveToDelayed(q, a, c.lockToken, Date.now() - 1000), true);
      const back = await store.getJob(q, a);
      assert.equal(back?.state, 'waiting');
      assert.equal(back?.delayUntil, 0);
      assert.equal(back?.lockToken, null);
      assert.equal((await claim(store, q)).id, a);
    });

    s.test('moveToDelayed refuses a bad time or token, and changes nothing', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      for (const bad of [NaN, Infinity, '1000', null]) {
        await assert.rejects(
          store.moveToDelayed(q, id, c.lockToken, bad as number),
          (e: Error) => e instanceof InvalidArgumentError && e.message.includes('delayUntil'),
        );
      }
      await assert.rejects(
        store.moveToDelayed(q, id, undefined as unknown as string, Date.now() + 1000),
        (e: Error) => e instanceof InvalidArgumentError && e.message.includes('token'),
      );
      const still = await store.getJob(q, id);
      assert.equal(still?.state, 'active');
      assert.equal(still?.lockToken, c.lockToken);
    });

    s.test('promoteDelayedJobs moves due jobs only and counts them', async (store) => {
      const q = uniqueQueue();
      const soon = await store.saveJob(q, delayedJob(q, 10_000));
      await store.saveJob(q, delayedJob(q, 100_000));
      assert.equal(await store.promoteDelayedJobs(q, Date.now()), 0);
      assert.equal(await store.promoteDelayedJobs(q, Date.now() + 50_000), 1);
      assert.equal((await store.getJob(q, soon))?.state, 'waiting');
      assert.equal(await store.countJobs(q, 'delayed'), 1);
      assert.equal(await store.countJobs(q, 'waiting'), 1);
      assert.equal(await store.promoteDelayedJobs(uniqueQueue(), Date.now()), 0);
    });

    s.test('promoted jobs keep priority and their FIFO place', async (store) => {
      const q = uniqueQueue();
      const d1 = await store.saveJob(q, delayedJob(q, 10_000));
      const w1 = await store.saveJob(q, job(q));
      const d2 = await store.saveJob(q, delayedJob(q, 10_000, { priority: -1 }));
      const w2 = await store.saveJob(q, job(q));
      assert.equal(await store.promoteDelayedJobs(q, Date.now() + 20_000), 2);
      const order = [];
      for (let i = 0; i < 4; i++) order.push((await claim(store, q)).id);
      assert.deepEqual(order, [d2, d1, w1, w2]);
    });

    s.test('getNextDelayedTimestamp is the earliest delayUntil, or null', async (store) => {
      const q = uniqueQueue();
      assert.equal(await store.getNextDelayedTimestamp(q), null);
      const late = Date.now() + 90_000;
      const early = Date.now() + 30_000;
      await store.saveJob(q, job(q, 't', {}, {}, { state: 'delayed', delayUntil: late }));
      await store.saveJob(q, job(q, 't', {}, {}, { state: 'delayed', delayUntil: early }));
      assert.equal(await store.getNextDelayedTimestamp(q), early);
      await store.promoteDelayedJobs(q, early);
      assert.equal(await store.getNextDelayedTimestamp(q), late);
    });

    s.test("updateJob of a delayed job's delayUntil publishes delayed with the new time", async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, delayedJob(q, 60_000));
      const rec = record(store, q);
      const delayedAt = (until: number) => (e: StoreEvent) =>
        e.type === 'delayed' && e.jobId === id && e.data?.delayUntil === until;
      // Earlier, as Job.changeDelay does it: state named, guarded by state.
      const sooner = Date.now() + 30_000;
      assert.equal(
        await store.updateJob(q, id, { state: 'delayed', delayUntil: sooner }, {
          state: 'delayed',
        }),
        true,
      );
      await rec.until(delayedAt(sooner), 'delayed at the sooner time');
      // Only delayUntil given: the job stays delayed, and the new time is published too.
      const soonest = Date.now() + 20_000;
      assert.equal(await store.updateJob(q, id, { delayUntil: soonest }), true);
      await rec.until(delayedAt(soonest), 'delayed at the soonest time');
      assert.equal(await store.getNextDelayedTimestamp(q), soonest);
      rec.stop();
    });

    s.test('getStalledJobs lists active jobs whose lock expired', async (store) => {
      const q = uniqueQueue();
      const [stale, fresh] = await saveN(store, q, 2);
      await store.fetchNextJob(q, 'w', 1);
      await store.fetchNextJob(q, 'w', 60_000);
      const found = await eventually(async () => {
        const list = await store.getStalledJobs(q, 0);
        return list.length > 0 ? list : null;
      }, { message: 'a stalled job' });
      assert.deepEqual(found.map((j) => j.id), [stale]);
      assert.equal(found[0].state, 'active');
      assert.deepEqual(await store.getStalledJobs(q, 3_600_000), []);
      assert.equal((await store.getJob(q, fresh))?.state, 'active');
    });

    s.test('requeueStalledJobs requeues expired locks and counts stalls', async (store) => {
      const q = uniqueQueue();
      const [id, other] = await saveN(store, q, 2);
      await store.fetchNextJob(q, 'w', 1);
      await store.fetchNextJob(q, 'w', 60_000);
      const result = await eventually(async () => {
        const r = await store.requeueStalledJobs(q, 1);
        return r.requeued.length > 0 ? r : null;
      }, { message: 'the lock to expire' });
      assert.deepEqual(result, { requeued: [id], failed: [], failedJobs: [] });
      const job1 = await store.getJob(q, id);
      assert.equal(job1?.state, 'waiting');
      assert.equal(job1?.stalledCount, 1);
      assert.equal(job1?.lockToken, null);
      assert.equal((await store.getJob(q, other))?.state, 'active');
      assert.deepEqual(await store.requeueStalledJobs(q, 1), {
        requeued: [],
        failed: [],
        failedJobs: [],
      });
    });

    s.test('requeueStalledJobs fails a job that stalled more than maxStalledCount', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      await store.fetchNextJob(q, 'w', 1);
      await eventually(async () => (await store.requeueStalledJobs(q, 1)).requeued.length === 1);
      await store.fetchNextJob(q, 'w', 1);
      const r = await eventually(async () => {
        const res = await store.requeueStalledJobs(q, 1);
        return res.failed.length > 0 ? res : null;
      }, { message: 'the second stall' });
      assert.deepEqual(r.requeued, []);
      assert.deepEqual(r.failed, [id]);
      const failed = await store.getJob(q, id);
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.stalledCount, 2);
      assert.equal(failed?.failedReason, 'job stalled more than allowable limit');
      assert.ok(failed?.finishedAt);
      // The job as its failure left it: what the store now holds.
      assert.deepEqual(r.failedJobs, [failed]);
    });

    s.test('requeueStalledJobs returns each job it failed for good, even one removeOnFail removed', async (store) => {
      const q = uniqueQueue();
      const data = { to: 'a@b.c', n: 1.5, list: [1, null, 'x'], text: '{"not":"parsed"}' };
      const id = await store.saveJob(q, job(q, 'mail', data, { removeOnFail: true, attempts: 3 }));
      const kept = await store.saveJob(q, job(q, 'kept', 'plain'));
      const claimed = await store.fetchNextJobs(q, 'w', 1, 2);
      assert.equal(claimed.length, 2);
      const r = await eventually(async () => {
        const res = await store.requeueStalledJobs(q, 0);
        return res.failed.length > 0 ? res : null;
      }, { message: 'the locks to expire' });
      assert.deepEqual(r.requeued, []);
      assert.deepEqual(r.failed.toSorted(), [id, kept].toSorted());
      assert.deepEqual(r.failedJobs.map((j) => j.id), r.failed);
      const gone = r.failedJobs.find((j) => j.id === id)!;
      assert.equal(gone.queueName, q);
      assert.equal(gone.name, 'mail');
      assert.deepEqual(gone.data, data);
      assert.equal(gone.opts.removeOnFail, true);
      assert.equal(gone.opts.attempts, 3);
      assert.equal(gone.state, 'failed');
      assert.equal(gone.attemptsMade, 1);
      assert.equal(gone.attemptsStarted, 1);
      assert.equal(gone.stalledCount, 1);
      assert.equal(gone.failedReason, 'job stalled more than allowable limit');
      assert.equal(typeof gone.finishedAt, 'number');
      assert.equal(gone.lockToken, null);
      assert.equal(gone.lockedBy, null);
      assert.equal(await store.getJob(q, id), null, 'removeOnFail: true removed it');
      const other = r.failedJobs.find((j) => j.id === kept)!;
      assert.equal(other.data, 'plain');
      assert.deepEqual(other, await store.getJob(q, kept));
    });

    s.test('requeueStalledJobs with maxStalledCount 0 fails at the first stall', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      await store.fetchNextJob(q, 'w', 1);
      const r = await eventually(async () => {
        const res = await store.requeueStalledJobs(q, 0);
        return res.failed.length > 0 ? res : null;
      });
      assert.deepEqual(r.failed, [id]);
      assert.equal((await store.getJob(q, id))?.state, 'failed');
    });

    s.test('an extended lock is not stalled', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await store.fetchNextJob(q, 'w', 1);
      assert.equal(await store.extendLock(q, id, 60_000, c!.lockToken!), true);
      assert.deepEqual(await store.getStalledJobs(q, 0), []);
      assert.deepEqual(await store.requeueStalledJobs(q, 1), {
        requeued: [],
        failed: [],
        failedJobs: [],
      });
      assert.equal((await store.getJob(q, id))?.lockToken, c!.lockToken);
    });

    s.test('a stalled job keeps its attempts and can be claimed again', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      await store.fetchNextJob(q, 'w1', 1);
      await eventually(async () => (await store.requeueStalledJobs(q, 3)).requeued.length === 1);
      const again = await claim(store, q, 'w2');
      assert.equal(again.id, id);
      assert.equal(again.attemptsStarted, 2);
      assert.equal(again.attemptsMade, 0);
      assert.equal(again.stalledCount, 1);
    });
  });
}
