/**
 * Conformance: the events each transition publishes (type, job, data, order), and pub/sub.
 * Events may arrive asynchronously (other processes), so cases wait for them.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { DuplicateJobError, type JobOptions, PAUSE_ALL, type StoreEvent } from '@conveyor/shared';
import { eventually } from '../helpers.ts';
import {
  claim,
  delayedJob,
  flowNode,
  job,
  record,
  saveFamily,
  type Suite,
  uniqueQueue,
} from './context.ts';

/** The types of `events` about `jobId`, in arrival order. */
function typesOf(events: StoreEvent[], jobId: string): string[] {
  return events.filter((e) => e.jobId === jobId).map((e) => e.type);
}

/** The `duplicated` and `deduplicated` events of `events` (type, job and data), in order. */
function answered(events: StoreEvent[]): Array<Pick<StoreEvent, 'type' | 'jobId' | 'data'>> {
  return events.filter((e) => e.type === 'duplicated' || e.type === 'deduplicated')
    .map(({ type, jobId, data }) => data === undefined ? { type, jobId } : { type, jobId, data });
}

/** Registers the event cases. */
export function eventCases(s: Suite): void {
  describe('events', () => {
    s.test('saving publishes waiting, delayed (with delayUntil) and waiting-children', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const w = await store.saveJob(q, job(q, 'mail'));
      const djob = delayedJob(q, 60_000);
      const d = await store.saveJob(q, djob);
      const p = await store.saveJob(
        q,
        job(q, 'p', {}, {}, { state: 'waiting-children', pendingChildrenCount: 1 }),
      );
      const waiting = await rec.until((e) => e.jobId === w && e.type === 'waiting');
      assert.equal(waiting.queueName, q);
      assert.equal(waiting.jobName, 'mail');
      assert.equal(typeof waiting.timestamp, 'number');
      const delayed = await rec.until((e) => e.jobId === d && e.type === 'delayed');
      assert.equal(delayed.data?.delayUntil, djob.delayUntil);
      await rec.until((e) => e.jobId === p && e.type === 'waiting-children');
      rec.stop();
    });

    s.test('claim and complete publish active then completed with the return value', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      await store.completeJobs(q, [{ jobId: id, token: c.lockToken, returnvalue: { n: 42 } }]);
      const done = await rec.until((e) => e.jobId === id && e.type === 'completed');
      assert.deepEqual(done.data?.returnvalue, { n: 42 });
      assert.deepEqual(typesOf(rec.events, id), ['waiting', 'active', 'completed']);
      rec.stop();
    });

    s.test('a final failure publishes failed with reason and attempts', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      await store.failJobs(q, [{ jobId: id, token: c.lockToken, reason: 'bad' }]);
      const failed = await rec.until((e) => e.jobId === id && e.type === 'failed');
      assert.equal(failed.data?.failedReason, 'bad');
      assert.equal(failed.data?.attemptsMade, 1);
      assert.deepEqual(typesOf(rec.events, id), ['waiting', 'active', 'failed']);
      rec.stop();
    });

    s.test('a retry publishes retrying, then delayed or waiting', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const id = await store.saveJob(q, job(q));
      let c = await claim(store, q);
      const retryAt = Date.now() + 60_000;
      await store.failJobs(q, [{ jobId: id, token: c.lockToken, reason: 'r1', retryAt }]);
      const delayed = await rec.until((e) => e.jobId === id && e.type === 'delayed');
      assert.equal(delayed.data?.delayUntil, retryAt);
      const retrying = rec.of(id, 'retrying');
      assert.equal(retrying.length, 1);
      assert.equal(retrying[0].data?.failedReason, 'r1');
      assert.equal(retrying[0].data?.attemptsMade, 1);
      await store.promoteDelayedJobs(q, retryAt);
      c = await claim(store, q);
      await store.failJobs(q, [{
        jobId: id,
        token: c.lockToken,
        reason: 'r2',
        retryAt: Date.now() - 1,
      }]);
      await rec.until((e) => e.jobId === id && e.type === 'retrying' && e.data?.attemptsMade === 2);
      await rec.until(() => typesOf(rec.events, id).length === 8, 'all events');
      assert.deepEqual(typesOf(rec.events, id), [
        'waiting',
        'active',
        'retrying',
        'delayed',
        'waiting',
        'active',
        'retrying',
        'waiting',
      ]);
      rec.stop();
    });

    s.test('release, promotion and stalled requeue publish waiting; stalls publish stalled', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const id = await store.saveJob(q, delayedJob(q, 10_000));
      await store.promoteDelayedJobs(q, Date.now() + 20_000);
      const c = await claim(store, q);
      await store.releaseLock(q, id, c.lockToken);
      await store.fetchNextJob(q, 'w', 1);
      await eventually(async () => (await store.requeueStalledJobs(q, 5)).requeued.length > 0, {
        message: 'the lock to expire',
      });
      const stalled = await rec.until((e) => e.type === 'stalled');
      assert.equal(stalled.data?.stalledCount, 1);
      await rec.until(() => typesOf(rec.events, id).length === 7, 'all events');
      assert.deepEqual(typesOf(rec.events, id), [
        'delayed',
        'waiting',
        'active',
        'waiting',
        'active',
        'stalled',
        'waiting',
      ]);
      rec.stop();
    });

    s.test('a stall past maxStalledCount publishes stalled then failed, once, also with removeOnFail', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const id = await store.saveJob(q, job(q, 'gone', {}, { removeOnFail: true }));
      const kept = await store.saveJob(q, job(q, 'kept'));
      assert.equal((await store.fetchNextJobs(q, 'w', 1, 2)).length, 2);
      await eventually(async () => (await store.requeueStalledJobs(q, 0)).failed.length === 2, {
        message: 'both locks to expire',
      });
      for (const jobId of [id, kept]) {
        const failed = await rec.until((e) => e.jobId === jobId && e.type === 'failed');
        assert.equal(failed.data?.failedReason, 'job stalled more than allowable limit');
        assert.equal(failed.data?.attemptsMade, 1);
      }
      // Events of a queue arrive in order: once this one is here, any duplicate would be too.
      const last = await store.saveJob(q, job(q, 'last'));
      await rec.until((e) => e.jobId === last && e.type === 'waiting', 'the barrier event');
      assert.deepEqual(typesOf(rec.events, id), ['waiting', 'active', 'stalled', 'failed']);
      assert.deepEqual(typesOf(rec.events, kept), ['waiting', 'active', 'stalled', 'failed']);
      rec.stop();
    });

    s.test('moveToDelayed publishes delayed with the time, or waiting', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const a = await store.saveJob(q, job(q));
      const b = await store.saveJob(q, job(q));
      const until = Date.now() + 60_000;
      await store.moveToDelayed(q, a, (await claim(store, q)).lockToken, until);
      await store.moveToDelayed(q, b, (await claim(store, q)).lockToken, Date.now() - 1);
      const delayed = await rec.until((e) => e.jobId === a && e.type === 'delayed');
      assert.equal(delayed.data?.delayUntil, until);
      await rec.until(() => typesOf(rec.events, b).length === 3, 'the events of b');
      assert.deepEqual(typesOf(rec.events, a), ['waiting', 'active', 'delayed']);
      assert.deepEqual(typesOf(rec.events, b), ['waiting', 'active', 'waiting']);
      rec.stop();
    });

    s.test('removeJob publishes removed; pause and resume publish the job name', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const id = await store.saveJob(q, job(q, 'mail'));
      await store.removeJob(q, id);
      await rec.until((e) => e.jobId === id && e.type === 'removed');
      await store.pauseJobName(q, PAUSE_ALL);
      await store.resumeJobName(q, 'mail');
      const paused = await rec.until((e) => e.type === 'paused');
      assert.equal(paused.data?.jobName, PAUSE_ALL);
      const resumed = await rec.until((e) => e.type === 'resumed');
      assert.equal(resumed.data?.jobName, 'mail');
      rec.stop();
    });

    s.test('a parent released by its last child publishes waiting after the completion', async (store) => {
      const q = uniqueQueue();
      await saveFamily(store, q, 'p', ['c']);
      const rec = record(store, q);
      const c = await claim(store, q);
      await store.completeJobs(q, [{ jobId: 'c', token: c.lockToken, returnvalue: 1 }]);
      await rec.until((e) => e.jobId === 'p' && e.type === 'waiting', 'parent waiting');
      const order = rec.events.filter((e) => e.type !== 'active').map((e) =>
        `${e.jobId}:${e.type}`
      );
      assert.deepEqual(order, ['c:completed', 'p:waiting']);
      rec.stop();
    });

    s.test('updateJob into delayed or waiting publishes it', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const id = await store.saveJob(q, job(q));
      const until = Date.now() + 60_000;
      await store.updateJob(q, id, { state: 'delayed', delayUntil: until });
      const delayed = await rec.until((e) => e.jobId === id && e.type === 'delayed');
      assert.equal(delayed.data?.delayUntil, until);
      await store.updateJob(q, id, { state: 'waiting', delayUntil: 0 });
      await rec.until(() => rec.of(id, 'waiting').length === 2, 'second waiting');
      rec.stop();
    });

    s.test('a save answered by the holder of its deduplication key publishes deduplicated; others do not', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      const dedup = (key: string, opts: JobOptions = {}) => ({ ...opts, deduplication: { key } });
      const holder = await store.saveJob(q, job(q, 'a', {}, dedup('k')));
      await store.saveJob(q, job(q, 'plain'));
      await store.saveBulk(q, [job(q, 'plain'), job(q, 'plain')]);
      assert.equal(await store.saveJob(q, job(q, 'b', {}, dedup('k'))), holder);
      assert.equal(await store.saveJob(q, job(q, 'c', {}, dedup('k', { jobId: 'mine' }))), holder);
      const bulk = await store.saveBulk(q, [
        job(q, 'd', {}, dedup('k')),
        job(q, 'e', {}, dedup('k2')),
        job(q, 'f', {}, dedup('k2')),
      ]);
      assert.deepEqual(bulk, [holder, bulk[1], bulk[1]]);
      // A flow is refused whole, and announces nothing.
      const parent = { queue: q, id: 'p' };
      await assert.rejects(
        store.saveFlow([
          flowNode(parent, null, 1),
          flowNode({ queue: q, id: 'c' }, parent, 0, undefined, dedup('k')),
        ]),
        DuplicateJobError,
      );
      // Events of one queue arrive in order: the last save's comes after all of the above.
      const last = await store.saveJob(q, job(q, 'last'));
      await rec.until((e) => e.jobId === last && e.type === 'waiting', 'the last waiting');
      const data = (id: string | null) => ({ deduplicationId: 'k', deduplicatedJobId: id });
      assert.deepEqual(answered(rec.events), [
        { type: 'deduplicated', jobId: holder, data: data(null) },
        { type: 'deduplicated', jobId: holder, data: data('mine') },
        { type: 'deduplicated', jobId: holder, data: data(null) },
        {
          type: 'deduplicated',
          jobId: bulk[1],
          data: { deduplicationId: 'k2', deduplicatedJobId: null },
        },
      ]);
      rec.stop();
    });

    s.test('a save answered by an existing custom id publishes duplicated; others do not', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      assert.equal(await store.saveJob(q, job(q, 'a', {}, { jobId: 'x' })), 'x');
      assert.equal(await store.saveJob(q, job(q, 'b', {}, { jobId: 'x' })), 'x');
      // With a free deduplication key too (the checked save path): the id answers.
      const free = { jobId: 'x', deduplication: { key: 'free' } };
      assert.equal(await store.saveJob(q, job(q, 'c', {}, free)), 'x');
      const bulk = await store.saveBulk(q, [
        job(q, 'd', {}, { jobId: 'x' }),
        job(q, 'e', {}, { jobId: 'y' }),
        job(q, 'f', {}, { jobId: 'y' }),
        job(q, 'g'),
      ]);
      assert.deepEqual(bulk.slice(0, 3), ['x', 'y', 'y']);
      await assert.rejects(
        store.saveFlow([flowNode({ queue: q, id: 'x' }, null)]),
        DuplicateJobError,
      );
      const last = await store.saveJob(q, job(q, 'last'));
      await rec.until((e) => e.jobId === last && e.type === 'waiting', 'the last waiting');
      assert.deepEqual(answered(rec.events), [
        { type: 'duplicated', jobId: 'x' },
        { type: 'duplicated', jobId: 'x' },
        { type: 'duplicated', jobId: 'x' },
        { type: 'duplicated', jobId: 'y' },
      ]);
      rec.stop();
    });

    s.test('events of one queue arrive in order and stay in their queue', async (store) => {
      const q = uniqueQueue();
      const other = uniqueQueue();
      const rec = record(store, q);
      const otherRec = record(store, other);
      const saved: string[] = [];
      for (let i = 0; i < 10; i++) saved.push(await store.saveJob(q, job(q, 't', { i })));
      const foreign = await store.saveJob(other, job(other));
      await rec.until(() => rec.events.length >= 10, '10 events');
      assert.deepEqual(rec.events.map((e) => e.jobId), saved);
      await otherRec.until((e) => e.jobId === foreign);
      assert.ok(otherRec.events.every((e) => e.queueName === other));
      assert.ok(rec.events.every((e) => e.queueName === q));
      rec.stop();
      otherRec.stop();
    });

    s.test('publish delivers to subscribers; unsubscribe stops one or all', async (store) => {
      const q = uniqueQueue();
      const a: StoreEvent[] = [];
      const b: StoreEvent[] = [];
      const listenA = (e: StoreEvent) => void a.push(e);
      const listenB = (e: StoreEvent) => void b.push(e);
      store.subscribe(q, listenA);
      store.subscribe(q, listenB);
      const rec = record(store, q);
      await store.publish({
        type: 'progress',
        queueName: q,
        jobId: '1',
        data: { progress: 10 },
        timestamp: Date.now(),
      });
      await rec.until((e) => e.type === 'progress' && e.data?.progress === 10);
      assert.equal(a.length, 1);
      assert.equal(b.length, 1);
      assert.deepEqual(a[0].data, { progress: 10 });
      store.unsubscribe(q, listenA);
      await store.publish({
        type: 'progress',
        queueName: q,
        jobId: '1',
        data: { progress: 20 },
        timestamp: Date.now(),
      });
      await rec.until((e) => e.data?.progress === 20);
      assert.equal(a.length, 1);
      assert.equal(b.length, 2);
      store.unsubscribe(q);
      const late = record(store, q);
      await store.publish({ type: 'drained', queueName: q, timestamp: Date.now() });
      await late.until((e) => e.type === 'drained');
      assert.equal(b.length, 2);
      assert.ok(!rec.events.some((e) => e.type === 'drained'));
      late.stop();
    });
  });
}
