/**
 * Conformance: saving, reading, updating and removing jobs; ids, deduplication, group sizes,
 * logs, and copy semantics.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  GroupFullError,
  InvalidArgumentError,
  JobNotFoundError,
  JobStateError,
  type NewJob,
} from '@conveyor/shared';
import { eventually } from '../helpers.ts';
import { claim, delayedJob, job, saveFamily, saveN, type Suite, uniqueQueue } from './context.ts';

/** Registers the job CRUD cases. */
export function jobCases(s: Suite): void {
  describe('jobs', () => {
    s.test('saveJob returns an id and getJob returns the stored job', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q, 'email', { to: 'a' }, { attempts: 3 }));
      assert.equal(typeof id, 'string');
      assert.ok(id.length > 0);
      const got = await store.getJob(q, id);
      assert.ok(got);
      assert.equal(got.id, id);
      assert.equal(got.queueName, q);
      assert.equal(got.name, 'email');
      assert.deepEqual(got.data, { to: 'a' });
      assert.equal(got.opts.attempts, 3);
      assert.equal(got.state, 'waiting');
      assert.equal(got.attemptsMade, 0);
      assert.equal(got.attemptsStarted, 0);
      assert.equal(got.lockToken, null);
      assert.deepEqual(got.logs, []);
    });

    s.test('generated ids are unique strings', async (store) => {
      const q = uniqueQueue();
      const ids = await saveN(store, q, 25);
      assert.equal(new Set(ids).size, 25);
      for (const id of ids) assert.equal(typeof id, 'string');
    });

    s.test('getJob returns null for a missing job or another queue', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      assert.equal(await store.getJob(q, 'missing'), null);
      assert.equal(await store.getJob(uniqueQueue(), id), null);
    });

    s.test('saveJob keeps the state given: delayed and waiting-children', async (store) => {
      const q = uniqueQueue();
      const d = await store.saveJob(q, delayedJob(q, 60_000));
      const p = await store.saveJob(
        q,
        job(q, 'parent', {}, {}, { state: 'waiting-children', pendingChildrenCount: 2 }),
      );
      assert.equal((await store.getJob(q, d))?.state, 'delayed');
      const parent = await store.getJob(q, p);
      assert.equal(parent?.state, 'waiting-children');
      assert.equal(parent?.pendingChildrenCount, 2);
      assert.equal(await store.countJobs(q, 'waiting'), 0);
    });

    s.test('saveJob with an existing jobId returns it and changes nothing', async (store) => {
      const q = uniqueQueue();
      const a = await store.saveJob(q, job(q, 'a', { v: 1 }, { jobId: 'fixed' }));
      const b = await store.saveJob(q, job(q, 'b', { v: 2 }, { jobId: 'fixed' }));
      assert.equal(a, 'fixed');
      assert.equal(b, 'fixed');
      const got = await store.getJob(q, 'fixed');
      assert.equal(got?.name, 'a');
      assert.deepEqual(got?.data, { v: 1 });
      assert.equal(await store.countJobs(q, 'waiting'), 1);
    });

    s.test('the same jobId may exist in two queues', async (store) => {
      const q1 = uniqueQueue();
      const q2 = uniqueQueue();
      await store.saveJob(q1, job(q1, 'a', {}, { jobId: 'same' }));
      await store.saveJob(q2, job(q2, 'b', {}, { jobId: 'same' }));
      assert.equal((await store.getJob(q1, 'same'))?.name, 'a');
      assert.equal((await store.getJob(q2, 'same'))?.name, 'b');
    });

    s.test('a jobId of a completed job still answers with the existing job', async (store) => {
      const q = uniqueQueue();
      await store.saveJob(q, job(q, 'a', {}, { jobId: 'done' }));
      const c = await claim(store, q);
      await store.completeJobs(q, [{ jobId: 'done', token: c.lockToken, returnvalue: 1 }]);
      assert.equal(await store.saveJob(q, job(q, 'a', {}, { jobId: 'done' })), 'done');
      assert.equal((await store.getJob(q, 'done'))?.state, 'completed');
      assert.equal(await store.countJobs(q, 'waiting'), 0);
    });

    s.test('saveBulk returns ids in input order and saves every job', async (store) => {
      const q = uniqueQueue();
      const ids = await store.saveBulk(q, [
        job(q, 'a', { i: 0 }),
        job(q, 'b', { i: 1 }, { jobId: 'custom' }),
        job(q, 'c', { i: 2 }),
      ]);
      assert.equal(ids.length, 3);
      assert.equal(ids[1], 'custom');
      for (const [i, id] of ids.entries()) {
        assert.deepEqual((await store.getJob(q, id))?.data, { i });
      }
    });

    s.test('a tx that is not a transaction of this store is refused, naming tx, with nothing saved', async (store) => {
      const q = uniqueQueue();
      const tx = { notATransaction: true };
      const named = (e: unknown) => e instanceof InvalidArgumentError && /\btx\b/.test(e.message);
      await assert.rejects(store.saveJob(q, job(q), { tx }), named);
      await assert.rejects(store.saveBulk(q, [job(q), job(q)], { tx }), named);
      const flow = [{ queueName: q, job: job(q, 'f', {}, { jobId: 'f' }) }];
      await assert.rejects(store.saveFlow(flow, { tx }), named);
      assert.equal(await store.countJobs(q, 'waiting'), 0);
    });
    s.test('saveBulk keeps each job its own values, shared by the batch or mixed with defaults', async (store) => {
      const q = uniqueQueue();
      const at = Date.now() + 60_000;
      // Every job alike: the same name, data, priority, options and delay.
      const alike = await store.saveBulk(
        q,
        [0, 1, 2].map(() => ({
          ...job(q, 'same', { s: 1 }, { attempts: 3, lifo: true }, { priority: 5 }),
          state: 'delayed' as const,
          delayUntil: at,
        })),
      );
      assert.equal(new Set(alike).size, 3);
      for (const id of alike) {
        const got = await store.getJob(q, id);
        assert.equal(got?.name, 'same');
        assert.deepEqual(got?.data, { s: 1 });
        assert.equal(got?.priority, 5);
        assert.equal(got?.opts.attempts, 3);
        assert.equal(got?.state, 'delayed');
        assert.equal(got?.delayUntil, at);
      }
      // Set values next to defaults, column by column.
      const mixed = await store.saveBulk(q, [
        job(q, 'a', { i: 0 }, { jobId: 'm0', lifo: true }, { priority: 7 }),
        job(q, 'b', { i: 1 }, {}, {}),
        job(q, 'a', { i: 2 }, { jobId: 'm2' }, { priority: 7 }),
      ]);
      assert.equal(mixed[0], 'm0');
      assert.equal(mixed[2], 'm2');
      const [m0, m1, m2] = await Promise.all(mixed.map((id) => store.getJob(q, id)));
      assert.deepEqual([m0?.name, m1?.name, m2?.name], ['a', 'b', 'a']);
      assert.deepEqual([m0?.data, m1?.data, m2?.data], [{ i: 0 }, { i: 1 }, { i: 2 }]);
      assert.deepEqual([m0?.priority, m1?.priority, m2?.priority], [7, 0, 7]);
      assert.deepEqual([m0?.opts.lifo, m1?.opts.lifo, m2?.opts.lifo], [true, undefined, undefined]);
      // Claim order: priority 0 first, then the LIFO job ahead of the older FIFO one.
      assert.equal((await claim(store, q)).id, mixed[1]);
      assert.equal((await claim(store, q)).id, 'm0');
      assert.equal((await claim(store, q)).id, 'm2');
    });
    s.test('saveBulk with an empty list returns an empty list', async (store) => {
      assert.deepEqual(await store.saveBulk(uniqueQueue(), []), []);
    });

    s.test('saveBulk honours existing jobIds and repeats within the batch', async (store) => {
      const q = uniqueQueue();
      await store.saveJob(q, job(q, 'old', {}, { jobId: 'x' }));
      const ids = await store.saveBulk(q, [
        job(q, 'new', {}, { jobId: 'x' }),
        job(q, 'y1', {}, { jobId: 'y' }),
        job(q, 'y2', {}, { jobId: 'y' }),
      ]);
      assert.deepEqual(ids, ['x', 'y', 'y']);
      assert.equal((await store.getJob(q, 'x'))?.name, 'old');
      assert.equal((await store.getJob(q, 'y'))?.name, 'y1');
      assert.equal(await store.countJobs(q, 'waiting'), 2);
    });

    s.test('saveBulk deduplicates by key against stored jobs and within the batch', async (store) => {
      const q = uniqueQueue();
      const first = await store.saveJob(q, job(q, 'a', {}, { deduplication: { key: 'k1' } }));
      const ids = await store.saveBulk(q, [
        job(q, 'b', {}, { deduplication: { key: 'k1' } }),
        job(q, 'c', {}, { deduplication: { key: 'k2' } }),
        job(q, 'd', {}, { deduplication: { key: 'k2' } }),
      ]);
      assert.equal(ids[0], first);
      assert.equal(ids[1], ids[2]);
      assert.notEqual(ids[1], first);
      assert.equal(await store.countJobs(q, 'waiting'), 2);
    });

    s.test('a dedup key without TTL holds while the job is unfinished', async (store) => {
      const q = uniqueQueue();
      const a = await store.saveJob(q, job(q, 'a', {}, { deduplication: { key: 'k' } }));
      assert.equal((await store.findByDeduplicationKey(q, 'k'))?.id, a);
      assert.equal(await store.saveJob(q, job(q, 'a', {}, { deduplication: { key: 'k' } })), a);
      const c = await claim(store, q);
      assert.equal(await store.saveJob(q, job(q, 'a', {}, { deduplication: { key: 'k' } })), a);
      await store.completeJobs(q, [{ jobId: a, token: c.lockToken, returnvalue: null }]);
      assert.equal(await store.findByDeduplicationKey(q, 'k'), null);
      const b = await store.saveJob(q, job(q, 'a', {}, { deduplication: { key: 'k' } }));
      assert.notEqual(b, a);
      assert.equal((await store.findByDeduplicationKey(q, 'k'))?.id, b);
    });

    s.test('a dedup key without TTL is released when the job fails for good', async (store) => {
      const q = uniqueQueue();
      const a = await store.saveJob(q, job(q, 'a', {}, { deduplication: { key: 'k' } }));
      const c = await claim(store, q);
      await store.failJobs(q, [{ jobId: a, token: c.lockToken, reason: 'x' }]);
      assert.equal(await store.findByDeduplicationKey(q, 'k'), null);
      assert.notEqual(await store.saveJob(q, job(q, 'a', {}, { deduplication: { key: 'k' } })), a);
    });

    s.test('a dedup key with TTL holds after completion until it expires', async (store) => {
      const q = uniqueQueue();
      const opts = { deduplication: { key: 'k', ttl: 60_000 } };
      const a = await store.saveJob(q, job(q, 'a', {}, opts));
      const c = await claim(store, q);
      await store.completeJobs(q, [{ jobId: a, token: c.lockToken, returnvalue: null }]);
      assert.equal((await store.findByDeduplicationKey(q, 'k'))?.id, a);
      assert.equal(await store.saveJob(q, job(q, 'a', {}, opts)), a);
      assert.equal(await store.countJobs(q, 'waiting'), 0);
    });

    s.test('a dedup key with TTL expires, then a new job is saved', async (store) => {
      const q = uniqueQueue();
      // Long enough for two saves on a slow store, short enough to wait for.
      const short = { deduplication: { key: 'k', ttl: 400 } };
      const a = await store.saveJob(q, job(q, 'a', {}, short));
      assert.equal(await store.saveJob(q, job(q, 'a', {}, short)), a);
      await eventually(async () => (await store.findByDeduplicationKey(q, 'k')) === null, {
        message: 'dedup TTL to expire',
      });
      const b = await store.saveJob(q, job(q, 'a', {}, short));
      assert.notEqual(b, a);
      assert.equal(await store.countJobs(q, 'waiting'), 2);
    });

    s.test('dedup keys are per queue', async (store) => {
      const q1 = uniqueQueue();
      const q2 = uniqueQueue();
      const opts = { deduplication: { key: 'shared' } };
      const a = await store.saveJob(q1, job(q1, 'a', {}, opts));
      await store.saveJob(q2, job(q2, 'a', {}, opts));
      assert.equal(await store.countJobs(q2, 'waiting'), 1);
      assert.equal((await store.findByDeduplicationKey(q1, 'shared'))?.id, a);
      assert.equal(await store.findByDeduplicationKey(q1, 'other'), null);
    });

    s.test('removeJob with unlessActive refuses an active job and removes any other', async (store) => {
      const q = uniqueQueue();
      const [a, b] = await saveN(store, q, 2);
      const c = await claim(store, q);
      assert.equal(c.id, a);
      await assert.rejects(
        () => store.removeJob(q, a, { unlessActive: true }),
        (e: unknown) => e instanceof JobStateError && e.jobId === a && e.actual === 'active',
      );
      assert.equal((await store.getJob(q, a))?.state, 'active');
      await store.removeJob(q, b, { unlessActive: true });
      assert.equal(await store.getJob(q, b), null);
      await store.removeJob(q, 'missing', { unlessActive: true });
      // Without the option, removal is unconditional (the seed meaning).
      await store.removeJob(q, a);
      assert.equal(await store.getJob(q, a), null);
    });

    s.test('removeJob refuses options that are not { unlessActive: boolean }', async (store) => {
      const q = uniqueQueue();
      const [a] = await saveN(store, q, 1);
      for (const bad of [{ unlessActive: 'yes' }, 'unlessActive', null]) {
        await assert.rejects(
          () => store.removeJob(q, a, bad as never),
          (e: unknown) => e instanceof InvalidArgumentError && e.option.startsWith('options'),
        );
      }
      assert.equal((await store.getJob(q, a))?.state, 'waiting');
    });

    s.test('removing the dedup holder frees the key', async (store) => {
      const q = uniqueQueue();
      const opts = { deduplication: { key: 'k' } };
      const a = await store.saveJob(q, job(q, 'a', {}, opts));
      await store.removeJob(q, a);
      assert.equal(await store.findByDeduplicationKey(q, 'k'), null);
      assert.notEqual(await store.saveJob(q, job(q, 'a', {}, opts)), a);
    });

    s.test('group maxSize: GroupFullError names the group and nothing is saved', async (store) => {
      const q = uniqueQueue();
      const opts = { group: { id: 'g', maxSize: 2 } };
      await saveN(store, q, 2, opts);
      await assert.rejects(store.saveJob(q, job(q, 'x', {}, opts)), (e: unknown) => {
        assert.ok(e instanceof GroupFullError);
        assert.equal(e.groupId, 'g');
        assert.equal(e.maxSize, 2);
        return true;
      });
      assert.equal(await store.getWaitingGroupCount(q, 'g'), 2);
      assert.equal(await store.countJobs(q, 'waiting'), 2);
      // Other groups and claimed jobs do not count toward the limit.
      await store.saveJob(q, job(q, 'x', {}, { group: { id: 'h', maxSize: 2 } }));
      await claim(store, q);
      await store.saveJob(q, job(q, 'x', {}, opts));
      assert.equal(await store.getWaitingGroupCount(q, 'g'), 2);
    });

    s.test('group maxSize counts waiting jobs and bounds every add, delayed ones too', async (store) => {
      const q = uniqueQueue();
      const opts = { group: { id: 'g', maxSize: 1 } };
      // Delayed jobs of the group do not count toward its size...
      await store.saveJob(q, delayedJob(q, 60_000, opts));
      await store.saveJob(q, delayedJob(q, 60_000, opts));
      await store.saveJob(q, job(q, 'w', {}, opts));
      // ...but a full group refuses any add, whatever state the new job starts in.
      await assert.rejects(store.saveJob(q, delayedJob(q, 60_000, opts)), GroupFullError);
      await assert.rejects(store.saveJob(q, job(q, 'w', {}, opts)), GroupFullError);
      assert.equal(await store.countJobs(q, 'delayed'), 2);
      assert.equal(await store.getWaitingGroupCount(q, 'g'), 1);
    });

    s.test('group maxSize in saveBulk: a full group saves none of the batch', async (store) => {
      const q = uniqueQueue();
      const opts = { group: { id: 'g', maxSize: 2 } };
      await assert.rejects(
        store.saveBulk(q, [
          job(q, 'free'),
          job(q, 'a', {}, opts),
          job(q, 'b', {}, opts),
          job(q, 'c', {}, opts),
        ]),
        GroupFullError,
      );
      assert.equal(await store.countJobs(q, 'waiting'), 0);
      assert.deepEqual(
        await store.saveBulk(q, [job(q, 'a', {}, opts), job(q, 'b', {}, opts)]).then((x) =>
          x.length
        ),
        2,
      );
    });

    s.test('getWaitingGroupCount and getGroupActiveCount follow claims', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3, { group: { id: 'g' } });
      await saveN(store, q, 1, { group: { id: 'h' } });
      assert.equal(await store.getWaitingGroupCount(q, 'g'), 3);
      assert.equal(await store.getGroupActiveCount(q, 'g'), 0);
      await claim(store, q);
      await claim(store, q);
      assert.equal(await store.getWaitingGroupCount(q, 'g'), 1);
      assert.equal(await store.getGroupActiveCount(q, 'g'), 2);
      assert.equal(await store.getWaitingGroupCount(q, 'h'), 1);
      assert.equal(await store.getGroupActiveCount(q, 'missing'), 0);
    });

    s.test('updateJob of logs and stacktrace stores lists that later lines append to', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      assert.equal(await store.updateJob(q, id, { logs: ['a'], stacktrace: ['s1'] }), true);
      assert.equal(await store.addLog(q, id, 'b'), 2);
      assert.deepEqual((await store.getJob(q, id))?.logs, ['a', 'b']);
      assert.equal(await store.updateJob(q, id, { logs: [] }), true);
      assert.equal(await store.addLog(q, id, 'c'), 1);
      assert.deepEqual((await store.getJob(q, id))?.logs, ['c']);
      const got = await claim(store, q);
      await store.failJobs(q, [{ jobId: id, token: got.lockToken!, reason: 'x', stack: 's2' }]);
      assert.deepEqual((await store.getJob(q, id))?.stacktrace, ['s1', 's2']);
    });

    s.test('updateJob changes fields but never id or queueName', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q, 'a', { v: 1 }));
      assert.equal(
        await store.updateJob(q, id, { data: { v: 2 }, progress: 50, id: 'other', queueName: 'x' }),
        true,
      );
      const got = await store.getJob(q, id);
      assert.deepEqual(got?.data, { v: 2 });
      assert.equal(got?.progress, 50);
      assert.equal(got?.id, id);
      assert.equal(got?.queueName, q);
      assert.equal(await store.getJob(q, 'other'), null);
      assert.equal(await store.updateJob(q, 'missing', { progress: 1 }), false);
    });

    s.test('updateJob refuses a bad field with InvalidArgumentError naming it, and changes nothing', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q, 'a', { v: 1 }));
      const bad: Array<[string, Record<string, unknown>]> = [
        ['updates.priority', { priority: NaN }],
        ['updates.priority', { priority: Infinity }],
        ['updates.priority', { priority: 'high' }],
        ['updates.attemptsMade', { attemptsMade: 1.5 }],
        ['updates.attemptsMade', { attemptsMade: -1 }],
        ['updates.delayUntil', { delayUntil: 'soon' }],
        ['updates.data', { data: 10n }],
        ['updates.returnvalue', { returnvalue: () => 1 }],
        ['updates.failedReason', { failedReason: 42 }],
        ['updates.stacktrace', { stacktrace: 'one line' }],
        ['updates.state', { state: 'done' }],
      ];
      for (const [field, updates] of bad) {
        await assert.rejects(
          store.updateJob(q, id, { progress: 99, ...updates }),
          (e) => e instanceof InvalidArgumentError && e.message.includes(field),
          `${field}: ${String(Object.values(updates)[0])}`,
        );
      }
      const got = await store.getJob(q, id);
      assert.equal(got?.progress, 0);
      assert.equal(got?.priority, 0);
      assert.deepEqual(got?.data, { v: 1 });
    });

    s.test('a child that finishes again after a retry counts once for its parent', async (store) => {
      const q = uniqueQueue();
      await saveFamily(store, q, 'p', ['done', 'ignored', 'other'], {}, {
        failParentOnChildFailure: 'ignore',
      });
      /** Finishes child `id` twice (retried in between), then removes it. */
      const finishTwice = async (id: string, how: 'complete' | 'fail', pending: number) => {
        for (const round of [1, 2]) {
          const c = await store.fetchNextJobs(q, 'w', 30_000, 3, { jobName: 'c' });
          const mine = c.find((j) => j.id === id)!;
          for (const other of c.filter((j) => j.id !== id)) {
            await store.releaseLock(q, other.id, other.lockToken!);
          }
          if (how === 'complete') {
            await store.completeJobs(q, [{ jobId: id, token: mine.lockToken!, returnvalue: 1 }]);
          } else {
            await store.failJobs(q, [{ jobId: id, token: mine.lockToken!, reason: 'no' }]);
          }
          const parent = await store.getJob(q, 'p');
          assert.equal(parent?.pendingChildrenCount, pending, `${id}, finished ${round}×`);
          assert.equal(parent?.state, 'waiting-children');
          // What Job.retry does: back to waiting, guarded by the finished state.
          const state = how === 'complete' ? 'completed' : 'failed';
          assert.equal(
            await store.updateJob(q, id, { state: 'waiting', finishedAt: null }, { state }),
            true,
          );
        }
        await store.removeJob(q, id);
        assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, pending, `${id} removed`);
      };
      await finishTwice('done', 'complete', 2);
      await finishTwice('ignored', 'fail', 1);
    });

    s.test('removeOnFail: true on a parent removes just the parent; a running child finishes', async (store) => {
      const q = uniqueQueue();
      await saveFamily(store, q, 'p', ['bad', 'good'], { removeOnFail: true });
      const c = Object.fromEntries(
        (await store.fetchNextJobs(q, 'w', 30_000, 2)).map((j) => [j.id, j.lockToken!]),
      );
      assert.deepEqual(
        await store.failJobs(q, [{ jobId: 'bad', token: c.bad, reason: 'broke' }]),
        [true],
      );
      assert.equal(await store.getJob(q, 'p'), null, 'the failed parent is removed');
      assert.equal((await store.getJob(q, 'good'))?.state, 'active', 'its running child stays');
      assert.deepEqual(
        await store.completeJobs(q, [{ jobId: 'good', token: c.good, returnvalue: 1 }]),
        [true],
      );
      assert.equal((await store.getJob(q, 'good'))?.state, 'completed');
    });

    s.test('updateJob with a state guard applies only in that state', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, delayedJob(q, 60_000));
      assert.equal(await store.updateJob(q, id, { progress: 1 }, { state: 'waiting' }), false);
      assert.equal((await store.getJob(q, id))?.progress, 0);
      assert.equal(
        await store.updateJob(q, id, { progress: 2 }, { state: ['waiting', 'delayed'] }),
        true,
      );
      assert.equal((await store.getJob(q, id))?.progress, 2);
    });

    s.test('updateJob of priority re-indexes the claim order', async (store) => {
      const q = uniqueQueue();
      const [a, b, c] = await saveN(store, q, 3);
      assert.equal(await store.updateJob(q, c, { priority: -5 }), true);
      const order = [];
      for (let i = 0; i < 3; i++) order.push((await claim(store, q)).id);
      assert.deepEqual(order, [c, a, b]);
    });

    s.test('updateJob into delayed makes a job unclaimable; back to waiting makes it claimable', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const until = Date.now() + 60_000;
      assert.equal(await store.updateJob(q, id, { state: 'delayed', delayUntil: until }), true);
      assert.equal(await store.fetchNextJob(q, 'w', 30_000), null);
      assert.equal(await store.countJobs(q, 'delayed'), 1);
      assert.equal(await store.getNextDelayedTimestamp(q), until);
      assert.equal(await store.updateJob(q, id, { state: 'waiting', delayUntil: 0 }), true);
      assert.equal(await store.countJobs(q, 'delayed'), 0);
      assert.equal((await claim(store, q)).id, id);
    });

    s.test('removeJob removes a job; removing a missing job is a no-op', async (store) => {
      const q = uniqueQueue();
      const [a, b] = await saveN(store, q, 2);
      await store.removeJob(q, a);
      await store.removeJob(q, a);
      await store.removeJob(q, 'missing');
      assert.equal(await store.getJob(q, a), null);
      assert.equal(await store.countJobs(q, 'waiting'), 1);
      assert.equal((await claim(store, q)).id, b);
    });

    s.test('addLog appends lines and returns the count; keepLogs keeps the newest', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      assert.equal(await store.addLog(q, id, 'one'), 1);
      assert.equal(await store.addLog(q, id, 'two'), 2);
      assert.equal(await store.addLog(q, id, 'three', 2), 2);
      assert.deepEqual((await store.getJob(q, id))?.logs, ['two', 'three']);
      assert.equal(await store.addLog(q, id, 'four', 5), 3);
      assert.deepEqual((await store.getJob(q, id))?.logs, ['two', 'three', 'four']);
      assert.equal(await store.addLog(q, 'missing', 'x'), 0);
    });

    s.test('trimLogs keeps the newest lines without adding one; 0 clears; refuses a missing job and a bad keep', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      assert.equal(await store.trimLogs(q, id, 3), 0, 'no lines yet');
      for (const line of ['one', 'two', 'three', 'four', 'five']) await store.addLog(q, id, line);
      assert.equal(await store.trimLogs(q, id, 3), 3);
      assert.deepEqual((await store.getJob(q, id))?.logs, ['three', 'four', 'five']);
      assert.equal(await store.trimLogs(q, id, 10), 3, 'fewer lines than keep: all kept');
      assert.deepEqual((await store.getJob(q, id))?.logs, ['three', 'four', 'five']);
      assert.equal(await store.addLog(q, id, 'six'), 4, 'lines go on after a trim');
      for (const bad of [-1, 1.5, NaN, Infinity, '2', null, undefined]) {
        await assert.rejects(
          async () => await store.trimLogs(q, id, bad as number),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'keep' && Object.is(e.value, bad),
          `keep ${String(bad)}`,
        );
      }
      assert.deepEqual((await store.getJob(q, id))?.logs, ['three', 'four', 'five', 'six']);
      await assert.rejects(
        async () => await store.trimLogs(q, 'missing', 1),
        (e: unknown) => e instanceof JobNotFoundError && e.jobId === 'missing' && e.queueName === q,
      );
      assert.equal(await store.trimLogs(q, id, 1), 1);
      assert.deepEqual((await store.getJob(q, id))?.logs, ['six']);
      assert.equal(await store.trimLogs(q, id, 0), 0);
      assert.deepEqual((await store.getJob(q, id))?.logs, []);
    });

    s.test('returned jobs are copies: mutating them changes nothing stored', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q, 'a', { nested: { v: 1 } }));
      const got = await store.getJob(q, id);
      (got!.data as { nested: { v: number } }).nested.v = 99;
      got!.state = 'failed';
      got!.logs.push('x');
      const again = await store.getJob(q, id);
      assert.deepEqual(again?.data, { nested: { v: 1 } });
      assert.equal(again?.state, 'waiting');
      assert.deepEqual(again?.logs, []);
      const claimed = await claim(store, q);
      (claimed.data as { nested: { v: number } }).nested.v = 7;
      assert.deepEqual((await store.getJob(q, id))?.data, { nested: { v: 1 } });
      const listed = await store.listJobs(q, 'active');
      listed[0].name = 'changed';
      assert.equal((await store.getJob(q, id))?.name, 'a');
    });

    s.test('saved jobs are copies: mutating the input afterwards changes nothing', async (store) => {
      const q = uniqueQueue();
      const input = job(q, 'a', { nested: { v: 1 } }, { attempts: 2 });
      const id = await store.saveJob(q, input);
      (input.data as { nested: { v: number } }).nested.v = 99;
      input.opts.attempts = 9;
      const updates = { data: { list: [1] } };
      await store.updateJob(q, id, updates);
      updates.data.list.push(2);
      const got = await store.getJob(q, id);
      assert.deepEqual(got?.data, { list: [1] });
      assert.equal(got?.opts.attempts, 2);
    });

    s.test('a job saved in a state that cannot be saved is refused with InvalidArgumentError', async (store) => {
      const q = uniqueQueue();
      await assert.rejects(
        store.saveJob(q, job(q, 'a', {}, {}, { state: 'active' })),
        InvalidArgumentError,
      );
      await assert.rejects(
        store.saveJob(q, job(q, 'a', {}, {}, { state: 'completed' })),
        InvalidArgumentError,
      );
      assert.equal(await store.countJobs(q, 'active'), 0);
      assert.equal(await store.countJobs(q, 'completed'), 0);
    });

    s.test('every store refuses the same malformed jobs, naming the field, and saves none', async (store) => {
      const q = uniqueQueue();
      const cases: Array<[string, NewJob]> = [
        ['parentQueueName', job(q, 'a', {}, {}, { parentId: 'p' })],
        ['parentId', job(q, 'a', {}, {}, { parentQueueName: q })],
        ['parentId', job(q, 'a', {}, {}, { parentId: '', parentQueueName: q })],
        ['delayUntil', job(q, 'a', {}, {}, { delayUntil: NaN })],
        ['priority', job(q, 'a', {}, {}, { priority: Infinity })],
        ['opts.group.maxSize', job(q, 'a', {}, { group: { id: 'g', maxSize: 0 } })],
        ['opts.group.maxSize', job(q, 'a', {}, { group: { id: 'g', maxSize: 1.5 } })],
        ['opts.deduplication.ttl', job(q, 'a', {}, { deduplication: { key: 'd', ttl: -1 } })],
        [
          'opts.failParentOnChildFailure',
          job(q, 'a', {}, { failParentOnChildFailure: 'explode' as never }),
        ],
        ['opts.jobId', job(q, 'a', {}, { jobId: '' })],
      ];
      for (const [field, bad] of cases) {
        const named = (e: unknown) =>
          e instanceof InvalidArgumentError && e.message.includes(`.${field} `);
        await assert.rejects(store.saveJob(q, bad), named, field);
        await assert.rejects(store.saveBulk(q, [job(q, 'ok'), bad]), named, field);
      }
      assert.equal(await store.countJobs(q, 'waiting'), 0);
    });

    s.test('saveBulk saves mixed states and indexes each', async (store) => {
      const q = uniqueQueue();
      const [w, d] = await store.saveBulk(q, [job(q, 'w'), {
        ...job(q, 'd'),
        state: 'delayed',
        delayUntil: Date.now() + 60_000,
      }]);
      assert.equal((await store.getJob(q, w))?.state, 'waiting');
      assert.equal((await store.getJob(q, d))?.state, 'delayed');
      assert.equal(await store.countJobs(q, 'delayed'), 1);
      assert.equal((await claim(store, q)).id, w);
      assert.equal(await store.fetchNextJob(q, 'w', 1000), null);
    });

    s.test('updateJob with a token guard fails on a job that is not active', async (store) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      assert.equal(await store.updateJob(q, id, { progress: 3 }, { token: 'any' }), false);
      assert.equal(await store.updateJob(q, id, { progress: 3 }, { state: 'active' }), false);
      assert.equal((await store.getJob(q, id))?.progress, 0);
    });
  });
}
