/**
 * Behaviour: processing jobs by hand (a Worker without a processor, `getNextJob`,
 * `job.moveToCompleted`, `job.moveToFailed`), as BullMQ's manual processing.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidArgumentError,
  JobStateError,
  LockLostError,
  type StoreInterface,
} from '@conveyor/shared';
import { Worker } from '@conveyor/core';
import { eventually } from '../helpers.ts';
import { next, type Suite } from './context.ts';

/**
 * A view of `store` and a function that resolves once a claim through the view came back and
 * its caller went on (its continuation ran): a `getNextJob` that found nothing is waiting then.
 */
function watchClaims(
  store: StoreInterface,
): { view: StoreInterface; claimed: () => Promise<void> } {
  let done!: () => void;
  const claim = new Promise<void>((r) => (done = r));
  const view = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop !== 'fetchNextJobs') return value.bind(target);
      return async (...args: unknown[]) => {
        const rows = await value.apply(target, args);
        // After the caller's continuation (queued when this returns), not before it.
        setTimeout(done, 0);
        return rows;
      };
    },
  });
  return { view, claimed: () => claim };
}

/** Registers the manual-processing cases. */
export function manualCases(s: Suite): void {
  describe('manual processing', () => {
    s.test('getNextJob claims a job under its own token; moveToCompleted finishes it and tells QueueEvents', async ({ store, q, queue, events, defer }) => {
      const ev = events();
      await ev.waitUntilReady();
      const job = await queue().add('resize', { w: 100 });
      const completed = next<[{ jobId: string; returnvalue: unknown }]>(
        ev,
        'completed',
        (e) => e.jobId === job.id,
      );
      const w = new Worker<{ w: number }, { ok: boolean }>(q, null, {
        store,
        lockDuration: 10_000,
      });
      defer(() => w.close());
      const got = await w.getNextJob({ block: false });
      assert.ok(got, 'a job');
      assert.equal(got.id, job.id);
      assert.deepEqual(got.data, { w: 100 });
      assert.equal(got.state, 'active');
      assert.equal(typeof got.token, 'string');
      const stored = await queue().getJob(job.id);
      assert.equal(stored?.state, 'active');
      assert.equal(stored?.lockedBy, w.id);
      const token = got.token!;
      await got.moveToCompleted({ ok: true }, token);
      assert.equal(got.state, 'completed');
      assert.equal(got.token, null);
      const [e] = await completed;
      assert.deepEqual(e.returnvalue, { ok: true });
      const done = await queue().getJob(job.id);
      assert.equal(done?.state, 'completed');
      assert.deepEqual(done?.returnvalue, { ok: true });
      // The same token cannot finish the job twice.
      await assert.rejects(() => got.moveToCompleted({ ok: false }, token), JobStateError);
      assert.deepEqual((await queue().getJob(job.id))?.returnvalue, { ok: true });
      assert.equal(await w.getNextJob({ block: false }), undefined, 'nothing left');
    });

    s.test('a token whose lock was taken back cannot complete the job (fencing)', async ({ store, q, queue, defer }) => {
      const job = await queue().add('x', 1);
      const w = new Worker(q, null, { store, lockDuration: 10_000 });
      defer(() => w.close());
      const first = await w.getNextJob({ block: false });
      assert.equal(first?.id, job.id);
      const stale = first!.token!;
      // The lock is released (as a stalled sweep would) and the job claimed again.
      assert.equal(await store.releaseLock(q, job.id, stale), true);
      const second = await w.getNextJob({ block: false });
      assert.equal(second?.id, job.id);
      assert.notEqual(second!.token, stale);
      await assert.rejects(() => first!.moveToCompleted('late', stale), LockLostError);
      await second!.moveToCompleted('on time', second!.token!);
      assert.equal((await queue().getJob(job.id))?.returnvalue, 'on time');
    });

    s.test('moveToFailed of a job taken by hand retries it per attempts; the retry is claimed again', async ({ store, q, queue, defer }) => {
      const job = await queue().add('x', 1, { attempts: 2 });
      const w = new Worker(q, null, { store });
      defer(() => w.close());
      const first = await w.getNextJob({ block: false });
      await first!.moveToFailed(new Error('try again'), first!.token!);
      const again = await w.getNextJob();
      assert.equal(again?.id, job.id);
      assert.equal(again?.attemptsMade, 1);
      await again!.moveToFailed(new Error('gave up'), again!.token!);
      const failed = await queue().getJob(job.id);
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.failedReason, 'gave up');
      assert.equal(failed?.attemptsMade, 2);
    });

    s.test('getNextJob waits for a job added after it was called; without block it does not wait', async ({ store, q, queue, defer }) => {
      const { view, claimed } = watchClaims(store);
      const w = new Worker(q, null, { store: view, pollInterval: 20_000 });
      defer(() => w.close());
      const waiting = w.getNextJob();
      await claimed(); // it found nothing and now waits
      const job = await queue().add('late', 2);
      const got = await Promise.race([
        waiting,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000)),
      ]);
      assert.notEqual(got, 'timeout', 'woken by the new job, not the 20 s poll');
      assert.equal((got as { id: string } | undefined)?.id, job.id);
      assert.equal(await w.getNextJob({ block: false }), undefined, 'no wait without block');
    });

    s.test('a blocked getNextJob resolves undefined at its pollInterval, and at once on close', async ({ store, q, defer }) => {
      const w = new Worker(q, null, { store, pollInterval: 50 });
      defer(() => w.close());
      assert.equal(await w.getNextJob(), undefined);
      const { view, claimed } = watchClaims(store);
      const slow = new Worker(q, null, { store: view, pollInterval: 60_000 });
      const pending = slow.getNextJob();
      await claimed(); // it found nothing and now waits
      await slow.close();
      assert.equal(await pending, undefined);
      await assert.rejects(() => slow.getNextJob(), /closed/);
    });

    s.test('startStalledCheckTimer (BullMQ) starts the stalled check before any getNextJob', async ({ store, q, queue, defer }) => {
      const job = await queue().add('x', 1);
      // Claimed elsewhere with a short lock that lapses.
      assert.equal((await store.fetchNextJob(q, 'gone', 30))?.id, job.id);
      const w = new Worker(q, null, { store, stalledInterval: 20 });
      defer(() => w.close());
      const stalled = next(w, 'stalled');
      await w.startStalledCheckTimer();
      await w.startStalledCheckTimer(); // again: nothing more
      assert.deepEqual(await stalled, [job.id]);
      await w.close();
      await assert.rejects(() => w.startStalledCheckTimer(), /closed/);
    });

    s.test("a job taken by hand whose lock lapses is taken back by the worker's stalled check", async ({ store, q, queue, defer }) => {
      const job = await queue().add('x', 1);
      const w = new Worker(q, null, { store, lockDuration: 30, stalledInterval: 20 });
      defer(() => w.close());
      const stalled = next(w, 'stalled');
      const got = await w.getNextJob({ block: false });
      assert.equal(got?.id, job.id);
      assert.deepEqual(await stalled, [job.id]);
      await eventually(async () => (await queue().getJob(job.id))?.state === 'waiting');
      await assert.rejects(() => got!.moveToCompleted(1, got!.token!), JobStateError);
    });

    s.test('jobs finished by hand are pruned per removeOnComplete { count }, and a scheduler moves on when its job is taken', async ({ store, q, queue, defer }) => {
      const qu = queue();
      const w = new Worker(q, null, { store, pruneInterval: 20 });
      defer(() => w.close());
      for (let i = 0; i < 3; i++) {
        await qu.add('x', i, { removeOnComplete: { count: 1 } });
        const job = await w.getNextJob({ block: false });
        await job!.moveToCompleted(i, job!.token!);
      }
      await eventually(async () => (await qu.getJobCounts('completed')).completed === 1, {
        message: 'pruned to 1 completed job',
      });
      await qu.upsertJobScheduler('tick', { every: 60_000 }, { name: 'tick' });
      const first = await w.getNextJob({ block: false });
      assert.equal(first?.name, 'tick');
      await eventually(async () => (await qu.getJobCounts('delayed')).delayed === 1, {
        message: "the scheduler's next run",
      });
      const [nextRun] = await qu.getDelayed();
      assert.equal(nextRun.name, 'tick');
      assert.notEqual(nextRun.id, first!.id);
    });

    s.test("jobs finished by hand follow the worker's removeOnComplete / removeOnFail when they have none", async ({ store, q, queue, defer }) => {
      const qu = queue();
      const w = new Worker(q, null, { store, removeOnComplete: true, removeOnFail: true });
      defer(() => w.close());
      const plain = await qu.add('x', 1);
      const own = await qu.add('x', 2, { removeOnComplete: false });
      const failing = await qu.add('x', 3);
      for (const id of [plain.id, own.id]) {
        const job = await w.getNextJob({ block: false });
        assert.equal(job?.id, id);
        await job!.moveToCompleted('done', job!.token!);
      }
      const job = await w.getNextJob({ block: false });
      assert.equal(job?.id, failing.id);
      await job!.moveToFailed(new Error('no'), job!.token!, null);
      assert.equal(await qu.getJob(plain.id), null, "the worker's removeOnComplete");
      assert.equal((await qu.getJob(own.id))?.returnvalue, 'done', 'its own false wins');
      assert.equal(await qu.getJob(failing.id), null, "the worker's removeOnFail");
    });

    s.test('manual processing refuses what it cannot honour with InvalidArgumentError', async ({ store, q, queue, defer }) => {
      const w = new Worker(q, null, { store });
      defer(() => w.close());
      await assert.rejects(
        () => w.run(),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'processor',
      );
      await assert.rejects(
        () => w.getNextJob('my-token' as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'opts' && /job\.token/.test(e.message),
      );
      await assert.rejects(
        () => w.getNextJob({ block: 'yes' as never }),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'opts.block',
      );
      assert.throws(
        () => new Worker(q, null, { store, batch: { size: 2 } } as never),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'opts.batch',
      );
      const running = new Worker(q, () => 1, { store, autorun: false });
      defer(() => running.close());
      await assert.rejects(
        () => running.getNextJob(),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'processor',
      );
      const job = await queue().add('x', 1);
      const got = await w.getNextJob({ block: false });
      assert.equal(got?.id, job.id);
      await assert.rejects(
        () => got!.moveToCompleted(1, got!.token!, true),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'fetchNext',
      );
      await assert.rejects(
        () => got!.moveToCompleted(10n as never, got!.token!),
        (e: unknown) => e instanceof InvalidArgumentError && /return value/.test(e.option),
      );
      // Nothing was stored by the refused calls.
      assert.equal((await queue().getJob(job.id))?.state, 'active');
      await got!.moveToCompleted(2, got!.token!);
      assert.equal((await queue().getJob(job.id))?.returnvalue, 2);
    });
  });
}
