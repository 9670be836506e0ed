/**
 * Behaviour: Job methods and their state guards.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidArgumentError,
  JobNotFoundError,
  JobStateError,
  LockLostError,
  UnrecoverableError,
} from '@conveyor/shared';
import { Job } from '@conveyor/core';
import { eventually } from '../helpers.ts';
import { gate, next, type Suite } from './context.ts';

/** Registers the Job cases. */
export function jobCases(s: Suite): void {
  describe('job', () => {
    s.test('updateProgress takes a number or an object; log keeps keepLogs lines', async ({ queue }) => {
      const qu = queue();
      const job = await qu.add('x', 1, { keepLogs: 2 });
      await job.updateProgress(10);
      assert.equal((await qu.getJob(job.id))?.progress, 10);
      await job.updateProgress({ phase: 'b' });
      assert.deepEqual((await qu.getJob(job.id))?.progress, { phase: 'b' });
      await assert.rejects(() => job.updateProgress(NaN), InvalidArgumentError);
      await job.log('one');
      await job.log('two');
      assert.equal(await job.log('three'), 2);
      assert.deepEqual((await qu.getJob(job.id))?.logs, ['two', 'three']);
      await job.remove();
      await assert.rejects(() => job.log('x'), JobNotFoundError);
    });

    s.test('isWaitingChildren is true for a parent waiting on its children only', async ({ q, store, queue, flows }) => {
      const qu = queue();
      const kidsQ = `${q}-kids`;
      const tree = await flows().add({
        name: 'parent',
        queueName: q,
        children: [{ name: 'kid', queueName: kidsQ }],
      });
      const parent = (await qu.getJob(tree.job.id))!;
      const kid = tree.children![0].job;
      assert.equal(await parent.isWaitingChildren(), true);
      assert.equal(await kid.isWaitingChildren(), false);
      assert.equal(await kid.isWaiting(), true);
      const claimed = (await store.fetchNextJob(kidsQ, 'w1', 60_000))!;
      await store.completeJobs(kidsQ, [{
        jobId: kid.id,
        token: claimed.lockToken!,
        returnvalue: 1,
      }]);
      assert.equal(await parent.isWaitingChildren(), false);
      assert.equal(await parent.isWaiting(), true);
      await parent.remove();
      assert.equal(await parent.isWaitingChildren(), false);
    });

    s.test('clearLogs(keepLogs) keeps the newest lines; clearLogs() removes them all; bad keepLogs refused', async ({ queue }) => {
      const qu = queue();
      const job = await qu.add('x', 1);
      for (const line of ['a', 'b', 'c', 'd']) await job.log(line);
      for (const bad of [-1, 1.5, NaN, '2']) {
        await assert.rejects(
          () => job.clearLogs(bad as number),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'keepLogs' && Object.is(e.value, bad),
          `keepLogs ${String(bad)}`,
        );
      }
      assert.deepEqual((await qu.getJob(job.id))?.logs, ['a', 'b', 'c', 'd']);
      const loaded = await qu.getJob(job.id);
      await loaded!.clearLogs(2);
      assert.deepEqual(loaded!.logs, ['c', 'd']);
      assert.deepEqual(await qu.getJobLogs(job.id), { logs: ['c', 'd'], count: 2 });
      await job.clearLogs(5);
      assert.deepEqual(await qu.getJobLogs(job.id), { logs: ['c', 'd'], count: 2 });
      assert.equal(await job.log('e'), 3);
      await job.clearLogs();
      assert.deepEqual(job.logs, []);
      assert.deepEqual(await qu.getJobLogs(job.id), { logs: [], count: 0 });
      assert.equal(await job.log('f'), 1);
      await job.clearLogs(0);
      assert.deepEqual((await qu.getJob(job.id))?.logs, []);
      assert.equal(await job.getState(), 'waiting');
      await job.remove();
      await assert.rejects(() => job.clearLogs(), JobNotFoundError);
      await assert.rejects(() => job.clearLogs(2), JobNotFoundError);
    });

    s.test('moveToDelayed and extendLock act for the lock holder only and check their input', async ({ queue, store }) => {
      const qu = queue();
      const added = await qu.add('x', 1);
      const claimed = await store.fetchNextJob(qu.name, 'w', 1000);
      assert.ok(claimed?.lockToken);
      const job = new Job(store, claimed);
      assert.equal(await job.extendLock(job.token!, 120_000), true);
      assert.ok((await qu.getJob(added.id))!.lockUntil! >= Date.now() + 100_000);
      assert.equal(await job.extendLock('not-the-token', 120_000), false);
      await assert.rejects(() => job.extendLock(job.token!, 0), InvalidArgumentError);
      await assert.rejects(
        () => job.moveToDelayed(NaN),
        (e: Error) => e instanceof InvalidArgumentError && e.message.includes('timestamp'),
      );
      await assert.rejects(() => job.moveToDelayed(Date.now() + 1000, 'stale'), LockLostError);
      assert.equal((await qu.getJob(added.id))?.state, 'active');
      const until = Date.now() + 60_000;
      await job.moveToDelayed(until);
      assert.equal(job.state, 'delayed');
      assert.equal(job.delayUntil, until);
      const stored = await qu.getJob(added.id);
      assert.equal(stored?.state, 'delayed');
      assert.equal(stored?.delayUntil, until);
      // Its lock is gone: a second move finds the job delayed.
      await assert.rejects(
        () => job.moveToDelayed(until, claimed.lockToken!),
        (e: Error) => e instanceof JobStateError && e.message.includes('delayed'),
      );
      assert.equal(await job.extendLock(claimed.lockToken!, 1000), false);
    });

    s.test('log with keepLogs: 0 keeps nothing and returns 0; on a removed job it throws', async ({ queue }) => {
      const qu = queue();
      const job = await qu.add('x', 1, { keepLogs: 0 });
      assert.equal(await job.log('dropped'), 0);
      assert.deepEqual((await qu.getJob(job.id))?.logs, []);
      await job.remove();
      await assert.rejects(() => job.log('x'), JobNotFoundError);
    });

    s.test('waitUntilFinished on a job that no longer exists rejects at once with JobNotFoundError', async ({ queue, worker, events }) => {
      const qu = queue();
      const ev = events();
      await ev.waitUntilReady();
      const w = worker((job) => job.name);
      const completed = next(w, 'completed');
      // The queue events hear the completion before the wait starts: an event still on its way
      // would (rightly) resolve the wait instead.
      const heard = next(ev, 'completed');
      const job = await qu.add('gone', 1, { removeOnComplete: true });
      await completed;
      await heard;
      await eventually(async () => (await qu.getJob(job.id)) === null);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        job.waitUntilFinished(ev).then(() => 'resolved', (e: unknown) => e),
        new Promise((resolve) => (timer = setTimeout(() => resolve('still waiting'), 2000))),
      ]);
      clearTimeout(timer);
      assert.ok(outcome instanceof JobNotFoundError, String(outcome));
      assert.equal(outcome.jobId, job.id);
    });

    s.test('getState and isCompleted / isFailed / isActive / isDelayed / isWaiting', async ({ queue, worker }) => {
      const qu = queue();
      const g = gate();
      const w = worker(async (job) => {
        if (job.name === 'bad') throw new Error('x');
        if (job.name === 'hold') await g.promise;
      }, { concurrency: 2 });
      const d = await qu.add('d', 1, { delay: '1h' });
      assert.equal(await d.isDelayed(), true);
      const active = next(w, 'active', (j) => j.name === 'hold');
      const hold = await qu.add('hold', 1);
      await active;
      assert.equal(await hold.isActive(), true);
      const bad = await qu.add('bad', 1);
      await eventually(() => bad.isFailed());
      g.open();
      await eventually(() => hold.isCompleted());
      assert.equal(await hold.getState(), 'completed');
      await hold.remove();
      assert.equal(await hold.getState(), 'unknown');
    });

    s.test('promote, changeDelay, changePriority, updateData, retry and remove guard the state', async ({ queue, worker }) => {
      const qu = queue();
      const waiting = await qu.add('w', 1);
      await assert.rejects(() => waiting.promote(), JobStateError);
      await assert.rejects(() => waiting.changeDelay(1000), JobStateError);
      await assert.rejects(() => waiting.retry(), JobStateError);
      await waiting.changePriority({ priority: 5 });
      assert.equal((await qu.getJob(waiting.id))?.priority, 5);
      await waiting.updateData(2);
      assert.equal((await qu.getJob(waiting.id))?.data, 2);

      const delayed = await qu.add('d', 1, { delay: '1h' });
      await delayed.changeDelay('2h');
      const moved = await qu.getJob(delayed.id);
      assert.ok(moved!.delayUntil > Date.now() + 7_000_000);
      await delayed.promote();
      assert.equal(await delayed.getState(), 'waiting');

      const w = worker(() => {
        throw new Error('boom');
      });
      const failed = next(w, 'failed', (j) => j.name === 'f');
      const f = await qu.add('f', 1);
      await failed;
      await eventually(() => f.isFailed());
      await assert.rejects(() => f.updateData(3), (e: unknown) => {
        assert.ok(e instanceof JobStateError);
        assert.equal(e.actual, 'failed');
        return true;
      });
      await assert.rejects(() => f.changePriority({ priority: 1 }), JobStateError);
      await assert.rejects(() => f.changePriority({ priority: 0.5 }), InvalidArgumentError);
      await w.close();
      await f.retry();
      assert.equal(await f.getState(), 'waiting');
      await f.remove();
      assert.equal(await qu.getJob(f.id), null);
      await assert.rejects(() => f.promote(), JobNotFoundError);
    });

    s.test('retry clears processedOn, finishedOn, failedReason and returnvalue, keeps the stacktrace; reset options zero the counters', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker((job) => {
        if (job.name === 'bad') throw new Error('boom');
        return 'done';
      });
      const failed = next(w, 'failed');
      const completed = next(w, 'completed');
      const bad = await qu.add('bad', 1);
      const good = await qu.add('good', 1);
      const bulk = await qu.add('bad', 2);
      await failed;
      await completed;
      await eventually(async () => (await qu.getJobCounts('failed')).failed === 2);
      await w.close();

      const f = (await qu.getJob(bad.id))!;
      assert.ok(f.processedOn !== null && f.finishedOn !== null);
      await f.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      for (const j of [f, (await qu.getJob(bad.id))!]) {
        assert.equal(j.state, 'waiting');
        assert.equal(j.processedOn, null);
        assert.equal(j.finishedOn, null);
        assert.equal(j.failedReason, null);
        assert.equal(j.attemptsMade, 0);
        assert.equal(j.attemptsStarted, 0);
        assert.equal(j.stacktrace.length, 1);
      }

      const c = (await qu.getJob(good.id))!;
      assert.equal(c.returnvalue, 'done');
      await c.retry('completed');
      for (const j of [c, (await qu.getJob(good.id))!]) {
        assert.equal(j.returnvalue, null);
        assert.equal(j.processedOn, null);
        assert.equal(j.finishedOn, null);
        assert.equal(j.attemptsStarted, 1);
      }

      // Queue.retryJobs resets the same fields.
      assert.equal(await qu.retryJobs(), 1);
      const b = (await qu.getJob(bulk.id))!;
      assert.equal(b.state, 'waiting');
      assert.equal(b.processedOn, null);
      assert.equal(b.finishedOn, null);
      assert.equal(b.failedReason, null);
      assert.equal(b.stacktrace.length, 1);
    });

    s.test('moveToFailed with an UnrecoverableError fails the job for good, whatever attempts remain', async ({ store, q, queue }) => {
      const qu = queue();
      const job = await qu.add('x', 1, { attempts: 3 });
      const claimed = await store.fetchNextJob(q, 'me', 30_000);
      assert.equal(claimed?.id, job.id);
      const running = new Job(store, claimed!);
      await running.moveToFailed(new UnrecoverableError('bad input'), claimed!.lockToken!);
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'failed');
      assert.equal(stored?.attemptsMade, 1);
      assert.equal(stored?.failedReason, 'bad input');
    });

    s.test('remove refuses an active job; moveToFailed with a stale token throws LockLostError', async ({ store, q, queue }) => {
      const qu = queue();
      const job = await qu.add('x', 1, { attempts: 1 });
      const claimed = await store.fetchNextJob(q, 'me', 30_000);
      assert.ok(claimed);
      await assert.rejects(() => job.remove(), JobStateError);
      const running = new Job(store, claimed);
      await assert.rejects(
        () => running.moveToFailed(new Error('x'), 'stale-token'),
        LockLostError,
      );
      await running.moveToFailed(new Error('gave up'), claimed.lockToken!);
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'failed');
      assert.equal(stored?.failedReason, 'gave up');
      await assert.rejects(
        () => running.moveToFailed(new Error('x'), claimed.lockToken!),
        JobStateError,
      );
    });
  });
}
