/**
 * Conformance: claim order (FIFO, LIFO, priority), filters (job name, pauses, groups), limits
 * (group and global concurrency, rate limits), round-robin and batch claims.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, PAUSE_ALL } from '@conveyor/shared';
import { eventually } from '../helpers.ts';
import { claim, claimAll, ids, job, saveN, type Suite, uniqueQueue } from './context.ts';

/** A window long enough that no test crosses a boundary (fixed windows, multiples of this). */
const LONG = 1_000_000_000;

/** Registers the claim cases. */
export function fetchCases(s: Suite): void {
  describe('fetch', () => {
    s.test('claims in FIFO order', async (store) => {
      const q = uniqueQueue();
      const saved = await saveN(store, q, 5);
      assert.deepEqual(await claimAll(store, q), saved);
    });

    s.test('a claim sets the lock, token, processedAt and attemptsStarted', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const before = Date.now();
      const got = await store.fetchNextJob(q, 'worker-7', 10_000);
      assert.ok(got);
      assert.equal(got.id, id);
      assert.equal(got.state, 'active');
      assert.equal(got.lockedBy, 'worker-7');
      assert.equal(typeof got.lockToken, 'string');
      assert.ok(got.lockToken!.length > 0);
      assert.equal(got.attemptsStarted, 1);
      assert.ok(got.processedAt !== null && got.processedAt >= before - 1000);
      assert.ok(got.lockUntil !== null && got.lockUntil >= before + 9_000);
      const stored = await store.getJob(q, id);
      assert.equal(stored?.state, 'active');
      assert.equal(stored?.lockToken, got.lockToken);
      assert.equal(await store.getActiveCount(q), 1);
    });

    s.test('returns null on an empty or unknown queue', async (store) => {
      const q = uniqueQueue();
      assert.equal(await store.fetchNextJob(q, 'w', 1000), null);
      await saveN(store, q, 1);
      await claim(store, q);
      assert.equal(await store.fetchNextJob(q, 'w', 1000), null);
      assert.deepEqual(await store.fetchNextJobs(q, 'w', 1000, 5), []);
    });

    s.test('each claim gets its own token', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3);
      const tokens = [];
      for (let i = 0; i < 3; i++) tokens.push((await claim(store, q)).lockToken);
      assert.equal(new Set(tokens).size, 3);
    });

    s.test('lower priority numbers first, FIFO within a priority', async (store) => {
      const q = uniqueQueue();
      const low = await store.saveJob(q, job(q, 'a', {}, { priority: 5 }));
      const normal1 = await store.saveJob(q, job(q, 'b'));
      const high = await store.saveJob(q, job(q, 'c', {}, { priority: -1 }));
      const normal2 = await store.saveJob(q, job(q, 'd'));
      const low2 = await store.saveJob(q, job(q, 'e', {}, { priority: 5 }));
      assert.deepEqual(await claimAll(store, q), [high, normal1, normal2, low, low2]);
    });

    s.test('per-job lifo goes in front of its priority level, newest first', async (store) => {
      const q = uniqueQueue();
      const f1 = await store.saveJob(q, job(q));
      const l1 = await store.saveJob(q, job(q, 'task', {}, { lifo: true }));
      const f2 = await store.saveJob(q, job(q));
      const l2 = await store.saveJob(q, job(q, 'task', {}, { lifo: true }));
      const urgent = await store.saveJob(q, job(q, 'task', {}, { priority: -1 }));
      const lowLifo = await store.saveJob(q, job(q, 'task', {}, { lifo: true, priority: 3 }));
      assert.deepEqual(await claimAll(store, q), [urgent, l2, l1, f1, f2, lowLifo]);
    });

    s.test('fetch option lifo takes the most recently added first, priority still first', async (store) => {
      const q = uniqueQueue();
      const a = await store.saveJob(q, job(q));
      const b = await store.saveJob(q, job(q));
      const low = await store.saveJob(q, job(q, 'task', {}, { priority: 2 }));
      const c = await store.saveJob(q, job(q));
      assert.deepEqual(await claimAll(store, q, { lifo: true }), [c, b, a, low]);
    });

    s.test('jobName filter claims only that name, in order', async (store) => {
      const q = uniqueQueue();
      const a1 = await store.saveJob(q, job(q, 'a'));
      const b1 = await store.saveJob(q, job(q, 'b'));
      const a2 = await store.saveJob(q, job(q, 'a'));
      assert.deepEqual(await claimAll(store, q, { jobName: 'a' }), [a1, a2]);
      assert.equal(await store.fetchNextJob(q, 'w', 1000, { jobName: 'zzz' }), null);
      assert.equal((await claim(store, q)).id, b1);
    });

    s.test('pausing a job name skips it; resuming restores it', async (store) => {
      const q = uniqueQueue();
      const a = await store.saveJob(q, job(q, 'a'));
      const b = await store.saveJob(q, job(q, 'b'));
      await store.pauseJobName(q, 'a');
      assert.deepEqual(await store.getPausedJobNames(q), ['a']);
      assert.equal((await claim(store, q)).id, b);
      assert.equal(await store.fetchNextJob(q, 'w', 1000), null);
      assert.equal(await store.fetchNextJob(q, 'w', 1000, { jobName: 'a' }), null);
      await store.resumeJobName(q, 'a');
      assert.deepEqual(await store.getPausedJobNames(q), []);
      assert.equal((await claim(store, q)).id, a);
    });

    s.test('pausing __all__ stops every claim; pauses are per queue', async (store) => {
      const q = uniqueQueue();
      const other = uniqueQueue();
      await saveN(store, q, 2);
      await saveN(store, other, 1);
      await store.pauseJobName(q, PAUSE_ALL);
      await store.pauseJobName(q, 'x');
      assert.deepEqual((await store.getPausedJobNames(q)).sort(), [PAUSE_ALL, 'x'].sort());
      assert.equal(await store.fetchNextJob(q, 'w', 1000), null);
      assert.deepEqual(await store.fetchNextJobs(q, 'w', 1000, 2), []);
      await claim(store, other);
      await store.resumeJobName(q, PAUSE_ALL);
      assert.deepEqual(await store.getPausedJobNames(q), ['x']);
      assert.equal((await store.fetchNextJobs(q, 'w', 1000, 5)).length, 2);
    });

    s.test('pausing twice and resuming an unpaused name are harmless', async (store) => {
      const q = uniqueQueue();
      await store.pauseJobName(q, 'a');
      await store.pauseJobName(q, 'a');
      await store.resumeJobName(q, 'b');
      assert.deepEqual(await store.getPausedJobNames(q), ['a']);
      await store.resumeJobName(q, 'a');
      assert.deepEqual(await store.getPausedJobNames(q), []);
    });

    s.test('groupConcurrency limits active jobs per group; ungrouped jobs are not limited', async (store) => {
      const q = uniqueQueue();
      const g1 = await store.saveJob(q, job(q, 't', {}, { group: { id: 'g' } }));
      const g2 = await store.saveJob(q, job(q, 't', {}, { group: { id: 'g' } }));
      const n1 = await store.saveJob(q, job(q));
      const h1 = await store.saveJob(q, job(q, 't', {}, { group: { id: 'h' } }));
      const n2 = await store.saveJob(q, job(q));
      const opts = { groupConcurrency: 1 };
      assert.deepEqual(await claimAll(store, q, opts), [g1, n1, h1, n2]);
      const active = await store.getJob(q, g1);
      await store.completeJobs(q, [{ jobId: g1, token: active!.lockToken!, returnvalue: null }]);
      assert.deepEqual(await claimAll(store, q, opts), [g2]);
    });

    s.test('groupConcurrency above 1 allows that many per group', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 4, { group: { id: 'g' } });
      assert.equal((await claimAll(store, q, { groupConcurrency: 3 })).length, 3);
      assert.equal(await store.getGroupActiveCount(q, 'g'), 3);
    });

    s.test('excludeGroups skips those groups only', async (store) => {
      const q = uniqueQueue();
      await store.saveJob(q, job(q, 't', {}, { group: { id: 'a' } }));
      const b = await store.saveJob(q, job(q, 't', {}, { group: { id: 'b' } }));
      const none = await store.saveJob(q, job(q));
      await store.saveJob(q, job(q, 't', {}, { group: { id: 'c' } }));
      assert.deepEqual(await claimAll(store, q, { excludeGroups: ['a', 'c'] }), [b, none]);
      assert.equal(await store.countJobs(q, 'waiting'), 2);
    });

    s.test('groupRoundRobin serves the least recently served group first', async (store) => {
      const q = uniqueQueue();
      const g = (id: string) => ({ group: { id } });
      const a1 = await store.saveJob(q, job(q, 't', {}, g('A')));
      const a2 = await store.saveJob(q, job(q, 't', {}, g('A')));
      const a3 = await store.saveJob(q, job(q, 't', {}, g('A')));
      const b1 = await store.saveJob(q, job(q, 't', {}, g('B')));
      const n1 = await store.saveJob(q, job(q));
      const b2 = await store.saveJob(q, job(q, 't', {}, g('B')));
      assert.deepEqual(await claimAll(store, q, { groupRoundRobin: true }), [
        a1,
        b1,
        n1,
        a2,
        b2,
        a3,
      ]);
    });

    s.test('groupRoundRobin still takes priority first', async (store) => {
      const q = uniqueQueue();
      const a1 = await store.saveJob(q, job(q, 't', {}, { group: { id: 'A' } }));
      const a2 = await store.saveJob(q, job(q, 't', {}, { group: { id: 'A' }, priority: -1 }));
      const b1 = await store.saveJob(q, job(q, 't', {}, { group: { id: 'B' } }));
      const order = await claimAll(store, q, { groupRoundRobin: true });
      assert.equal(order[0], a2);
      assert.deepEqual(order.slice(1), [b1, a1]);
    });

    s.test("globalConcurrency caps the queue's active jobs", async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 4);
      const first = await claim(store, q);
      assert.equal((await claimAll(store, q, { globalConcurrency: 2 })).length, 1);
      assert.equal(await store.fetchNextJob(q, 'w', 1000, { globalConcurrency: 2 }), null);
      await store.completeJobs(q, [{ jobId: first.id, token: first.lockToken, returnvalue: null }]);
      assert.ok(await store.fetchNextJob(q, 'w', 1000, { globalConcurrency: 2 }));
      assert.equal(await store.getActiveCount(q), 2);
    });

    s.test('limiter allows max claims per window, shared by all workers', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 5);
      const limiter = { max: 2, duration: LONG };
      assert.ok(await store.fetchNextJob(q, 'w1', 1000, { limiter }));
      assert.ok(await store.fetchNextJob(q, 'w2', 1000, { limiter }));
      assert.equal(await store.fetchNextJob(q, 'w3', 1000, { limiter }), null);
      assert.equal(await store.countJobs(q, 'waiting'), 3);
    });

    s.test('limiter opens again in the next window', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3);
      const limiter = { max: 1, duration: 50 };
      assert.ok(await store.fetchNextJob(q, 'w', 1000, { limiter }));
      await eventually(() => store.fetchNextJob(q, 'w', 1000, { limiter }), {
        message: 'next window',
      });
      assert.equal(await store.getActiveCount(q), 2);
    });

    s.test('groupLimiter limits claims per group; ungrouped jobs are not limited', async (store) => {
      const q = uniqueQueue();
      const a1 = await store.saveJob(q, job(q, 't', {}, { group: { id: 'a' } }));
      await store.saveJob(q, job(q, 't', {}, { group: { id: 'a' } }));
      const b1 = await store.saveJob(q, job(q, 't', {}, { group: { id: 'b' } }));
      const n1 = await store.saveJob(q, job(q));
      const n2 = await store.saveJob(q, job(q));
      const groupLimiter = { max: 1, duration: LONG };
      assert.deepEqual(await claimAll(store, q, { groupLimiter }), [a1, b1, n1, n2]);
      assert.equal(await store.countJobs(q, 'waiting'), 1);
    });

    s.test('fetchNextJobs claims up to count, in order, each with its own token', async (store) => {
      const q = uniqueQueue();
      const saved = await saveN(store, q, 5);
      const got = await store.fetchNextJobs(q, 'w', 30_000, 3);
      assert.deepEqual(ids(got), saved.slice(0, 3));
      assert.equal(new Set(got.map((j) => j.lockToken)).size, 3);
      for (const j of got) assert.equal(j.state, 'active');
      assert.deepEqual(ids(await store.fetchNextJobs(q, 'w', 30_000, 10)), saved.slice(3));
    });

    s.test('fetchNextJobs returns a batch in claim order: priority, lifo, FIFO', async (store) => {
      const q = uniqueQueue();
      const f1 = await store.saveJob(q, job(q));
      const low = await store.saveJob(q, job(q, 'task', {}, { priority: 4 }));
      const l1 = await store.saveJob(q, job(q, 'task', {}, { lifo: true }));
      const f2 = await store.saveJob(q, job(q));
      const urgent = await store.saveJob(q, job(q, 'task', {}, { priority: -2 }));
      const l2 = await store.saveJob(q, job(q, 'task', {}, { lifo: true }));
      const low2 = await store.saveJob(q, job(q, 'task', {}, { priority: 4 }));
      const got = await store.fetchNextJobs(q, 'w', 30_000, 10);
      assert.deepEqual(ids(got), [urgent, l2, l1, f1, f2, low, low2]);
      // The lifo fetch option: newest first within each priority.
      const p = uniqueQueue();
      const a = await store.saveJob(p, job(p));
      const b = await store.saveJob(p, job(p, 'task', {}, { priority: 1 }));
      const c = await store.saveJob(p, job(p));
      const d = await store.saveJob(p, job(p, 'task', {}, { priority: 1 }));
      const e = await store.saveJob(p, job(p, 'task', {}, { priority: -1 }));
      assert.deepEqual(ids(await store.fetchNextJobs(p, 'w', 30_000, 10, { lifo: true })), [
        e,
        c,
        a,
        d,
        b,
      ]);
    });

    s.test('fetchNextJobs respects groupConcurrency, excludeGroups and jobName', async (store) => {
      const q = uniqueQueue();
      const a1 = await store.saveJob(q, job(q, 'x', {}, { group: { id: 'a' } }));
      await store.saveJob(q, job(q, 'x', {}, { group: { id: 'a' } }));
      const b1 = await store.saveJob(q, job(q, 'x', {}, { group: { id: 'b' } }));
      await store.saveJob(q, job(q, 'x', {}, { group: { id: 'c' } }));
      await store.saveJob(q, job(q, 'y'));
      const got = await store.fetchNextJobs(q, 'w', 30_000, 10, {
        groupConcurrency: 1,
        excludeGroups: ['c'],
        jobName: 'x',
      });
      assert.deepEqual(ids(got), [a1, b1]);
    });

    s.test('fetchNextJobs respects globalConcurrency, limiter and groupLimiter', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 6);
      assert.equal(
        (await store.fetchNextJobs(q, 'w', 30_000, 10, { globalConcurrency: 2 })).length,
        2,
      );
      const q2 = uniqueQueue();
      await saveN(store, q2, 6);
      const limiter = { max: 3, duration: LONG };
      assert.equal((await store.fetchNextJobs(q2, 'w', 30_000, 10, { limiter })).length, 3);
      assert.equal((await store.fetchNextJobs(q2, 'w', 30_000, 10, { limiter })).length, 0);
      const q3 = uniqueQueue();
      await saveN(store, q3, 3, { group: { id: 'g' } });
      await saveN(store, q3, 3, { group: { id: 'h' } });
      const groupLimiter = { max: 2, duration: LONG };
      const got = await store.fetchNextJobs(q3, 'w', 30_000, 10, { groupLimiter });
      assert.equal(got.length, 4);
      assert.equal(got.filter((j) => j.groupId === 'g').length, 2);
    });

    s.test('fetchNextJobs with groupRoundRobin interleaves groups', async (store) => {
      const q = uniqueQueue();
      const a = await saveN(store, q, 2, { group: { id: 'A' } });
      const b = await saveN(store, q, 2, { group: { id: 'B' } });
      const got = await store.fetchNextJobs(q, 'w', 30_000, 4, { groupRoundRobin: true });
      assert.deepEqual(ids(got), [a[0], b[0], a[1], b[1]]);
    });

    s.test('fetch refuses a non-positive lockDuration with InvalidArgumentError', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 1);
      await assert.rejects(store.fetchNextJob(q, 'w', 0), InvalidArgumentError);
      await assert.rejects(store.fetchNextJobs(q, 'w', -5, 1), InvalidArgumentError);
      assert.equal(await store.countJobs(q, 'waiting'), 1);
    });

    s.test('fetch option lifo combines with the jobName filter', async (store) => {
      const q = uniqueQueue();
      const a1 = await store.saveJob(q, job(q, 'a'));
      await store.saveJob(q, job(q, 'b'));
      const a2 = await store.saveJob(q, job(q, 'a'));
      await store.saveJob(q, job(q, 'b'));
      assert.deepEqual(await claimAll(store, q, { lifo: true, jobName: 'a' }), [a2, a1]);
    });

    s.test('a paused name is skipped while jobs behind it are claimed in order', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3, {}, 'paused');
      const later = await saveN(store, q, 2, {}, 'free');
      await store.pauseJobName(q, 'paused');
      assert.deepEqual(ids(await store.fetchNextJobs(q, 'w', 30_000, 10)), later);
      assert.equal(await store.countJobs(q, 'waiting'), 3);
    });
  });
}
