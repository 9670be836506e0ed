/**
 * Conformance: racing callers. Run on one store and, when the harness has `openPeer`, across
 * two stores over the same data (how shared stores prove cross-process safety).
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DuplicateJobError,
  type JobData,
  JobStateError,
  PAUSE_ALL,
  type StoreInterface,
} from '@conveyor/shared';
import {
  claim,
  flowNode,
  job,
  record,
  saveFamily,
  saveN,
  type Suite,
  uniqueQueue,
} from './context.ts';

/** `n` fetchers loop until the queue is empty; returns every claimed id. */
async function fetchAll(stores: StoreInterface[], queue: string, n: number): Promise<string[]> {
  const claimed: string[] = [];
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const store = stores[i % stores.length];
      for (;;) {
        const got = await store.fetchNextJob(queue, `w${i}`, 30_000);
        if (!got) return;
        claimed.push(got.id);
      }
    }),
  );
  return claimed;
}

/** Claims the first waiting child (named `c`) of a queue. */
async function claimChild(store: StoreInterface, queue: string): Promise<JobData> {
  const [got] = await store.fetchNextJobs(queue, 'w', 30_000, 1, { jobName: 'c' });
  if (!got) throw new Error(`expected a child to claim in ${queue}`);
  return got;
}

/** Registers the concurrency cases, for `stores(store)` (one store, or a store and a peer). */
function raceCases(
  s: Suite,
  label: string,
  open: (store: StoreInterface) => Promise<StoreInterface[]>,
): void {
  const using = async <T>(store: StoreInterface, body: (all: StoreInterface[]) => Promise<T>) => {
    const all = await open(store);
    try {
      return await body(all);
    } finally {
      for (const extra of all.slice(1)) await extra.disconnect();
    }
  };

  s.test(`${label}: 20 parallel adds of children to one parent count each child once`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
      const parent = { parentId: 'p', parentQueueName: q };
      await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) =>
            all[i % all.length].saveJob(q, job(q, 'c', { i }, { jobId: `c${i % 15}` }, parent)),
        ),
      );
      assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 15);
      assert.equal((await store.getChildrenJobs(q, 'p')).length, 15);
    }));

  s.test(`${label}: a child added while its parent is removed goes with it or is refused`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const adds: Promise<unknown>[] = [];
      for (let round = 0; round < 30; round++) {
        const p = `p${round}`;
        await store.saveJob(q, job(q, 'p', {}, { jobId: p }));
        const parent = { parentId: p, parentQueueName: q };
        const children = Array.from(
          { length: 6 },
          (_, i) =>
            all[(i + 1) % all.length].saveJob(
              q,
              job(q, 'c', {}, { jobId: `${p}.${i}` }, parent),
            ),
        );
        adds.push(...children);
        await Promise.allSettled([all[0].removeJob(q, p), ...children]);
      }
      for (const outcome of await Promise.allSettled(adds)) {
        // A child either went in before the removal (and went with its parent) or was refused.
        if (outcome.status === 'rejected') {
          assert.equal((outcome.reason as Error).name, 'JobNotFoundError');
        }
      }
      const left = await store.listJobs(q, 'waiting', 0, -1);
      assert.deepEqual(left.map((j) => `${j.id} (parent ${j.parentId})`), []);
    }));

  s.test(`${label}: 20 parallel flows under one parent count each root once`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const sub = uniqueQueue('sub');
      await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
      const flow = (i: number) => {
        const id = `r${i % 15}`;
        return [
          {
            queueName: sub,
            job: job(sub, 'r', { i }, { jobId: id }, {
              state: 'waiting-children',
              pendingChildrenCount: 1,
              parentId: 'p',
              parentQueueName: q,
            }),
          },
          {
            queueName: sub,
            job: job(sub, 'c', { i }, { jobId: `c${i % 15}` }, {
              parentId: id,
              parentQueueName: sub,
            }),
          },
        ];
      };
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => all[i % all.length].saveFlow(flow(i))),
      );
      const refused = results.filter((r) => r.status === 'rejected');
      assert.equal(refused.length, 5);
      for (const r of refused) assert.ok(r.reason instanceof DuplicateJobError, String(r.reason));
      assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 15);
      assert.equal((await store.getChildrenJobs(q, 'p')).length, 15);
      assert.equal(await store.countJobs(sub, 'waiting-children'), 15);
      assert.equal(await store.countJobs(sub, 'waiting'), 15);
    }));

  s.test(`${label}: a flow attached while the parent's last other child completes never leaves it waiting for nothing`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const sub = uniqueQueue('sub');
      for (let round = 0; round < 10; round++) {
        const p = `p${round}`;
        await saveFamily(store, q, p, [`c${round}`]);
        const child = await claimChild(store, q);
        const root = job(sub, 'r', {}, { jobId: `r${round}` }, { parentId: p, parentQueueName: q });
        await Promise.all([
          all[0].saveFlow([{ queueName: sub, job: root }]),
          all[all.length - 1].completeJobs(q, [{
            jobId: child.id,
            token: child.lockToken!,
            returnvalue: 1,
          }]),
        ]);
        const mid = await store.getJob(q, p);
        // Attached first: still waiting for the root. Released first: waiting, the root counted.
        assert.equal(mid?.pendingChildrenCount, 1, `round ${round}`);
        assert.ok(mid?.state === 'waiting-children' || mid?.state === 'waiting', mid?.state);
        const r = await store.fetchNextJob(sub, 'w', 30_000);
        assert.equal(r?.id, `r${round}`);
        await store.completeJobs(sub, [{ jobId: r!.id, token: r!.lockToken!, returnvalue: 2 }]);
        const after = await store.getJob(q, p);
        assert.equal(after?.state, 'waiting', `round ${round}`);
        assert.equal(after?.pendingChildrenCount, 0, `round ${round}`);
        assert.deepEqual(await store.getChildrenValues(q, p), {
          [`${q}:c${round}`]: 1,
          [`${sub}:r${round}`]: 2,
        });
        // Out of the way of the next round's claims.
        const again = await store.fetchNextJob(q, 'w', 30_000, { jobName: 'p' });
        assert.equal(again?.id, p);
        await store.completeJobs(q, [{ jobId: p, token: again!.lockToken!, returnvalue: 3 }]);
      }
    }));

  s.test(`${label}: a parent parking while its last child completes is never left waiting`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      for (let round = 0; round < 10; round++) {
        const p = `p${round}`;
        await store.saveJob(q, job(q, 'p', {}, { jobId: p }));
        const held = await store.fetchNextJob(q, 'w', 30_000, { jobName: 'p' });
        assert.equal(held?.id, p);
        await store.saveJob(
          q,
          job(q, 'c', {}, { jobId: `c${round}` }, { parentId: p, parentQueueName: q }),
        );
        const child = await store.fetchNextJob(q, 'w', 30_000, { jobName: 'c' });
        const [outcome] = await Promise.all([
          all[0].moveToWaitingChildren(q, p, held!.lockToken!),
          all[all.length - 1].completeJobs(q, [{
            jobId: child!.id,
            token: child!.lockToken!,
            returnvalue: 1,
          }]),
        ]);
        const after = await store.getJob(q, p);
        assert.equal(after?.pendingChildrenCount, 0);
        // Parked before the child counted: released by it. After: still running, not parked.
        assert.equal(
          after?.state,
          outcome === 'moved' ? 'waiting' : 'active',
          `round ${round}: ${outcome}`,
        );
        if (outcome !== 'moved') {
          await store.completeJobs(q, [{ jobId: p, token: held!.lockToken!, returnvalue: 1 }]);
        } else {
          const again = await store.fetchNextJob(q, 'w', 30_000, { jobName: 'p' });
          await store.completeJobs(q, [{ jobId: p, token: again!.lockToken!, returnvalue: 1 }]);
        }
      }
    }));

  s.test(`${label}: 50 parallel fetchers over 200 jobs never share a job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const saved = await store.saveBulk(
        q,
        Array.from({ length: 200 }, (_, i) => job(q, 't', { i })),
      );
      const claimed = await fetchAll(all, q, 50);
      assert.equal(claimed.length, 200);
      assert.equal(new Set(claimed).size, 200);
      assert.deepEqual([...claimed].sort(), [...saved].sort());
      assert.equal(await store.getActiveCount(q), 200);
    }));

  s.test(`${label}: parallel batch fetchers never share a job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      await saveN(store, q, 100);
      const batches = await Promise.all(
        Array.from(
          { length: 10 },
          (_, i) => all[i % all.length].fetchNextJobs(q, `w${i}`, 30_000, 15),
        ),
      );
      const claimed = batches.flat().map((j) => j.id);
      assert.equal(claimed.length, 100);
      assert.equal(new Set(claimed).size, 100);
    }));

  s.test(`${label}: 20 parallel saves with one dedup key make one job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const opts = { deduplication: { key: 'only-one' } };
      const results = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => all[i % all.length].saveJob(q, job(q, 't', { i }, opts)),
        ),
      );
      assert.equal(new Set(results).size, 1);
      assert.equal(await store.countJobs(q, 'waiting'), 1);
      assert.equal((await store.findByDeduplicationKey(q, 'only-one'))?.id, results[0]);
    }));

  s.test(`${label}: 20 parallel saves with one jobId make one job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const results = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => all[i % all.length].saveJob(q, job(q, 't', { i }, { jobId: 'same' })),
        ),
      );
      assert.deepEqual(new Set(results), new Set(['same']));
      assert.equal(await store.countJobs(q, 'waiting'), 1);
    }));

  s.test(`${label}: addLog racing trimLogs: every line after the trim kept, none twice`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      // P old lines, then N appends racing one trim to K lines. With P > K + N, an append's
      // returned count says on which side of the trim it landed: above P before, at most K + N
      // after. The atomic history is then fully known, and the lines must match it.
      const P = 30, K = 5, N = 20;
      const round = async (at: number) => {
        const id = await store.saveJob(q, job(q));
        const old = Array.from({ length: P }, (_, i) => `old-${i}`);
        for (const line of old) await store.addLog(q, id, line);
        const calls: Array<Promise<number>> = [];
        let trim!: Promise<number>;
        for (let i = 0; i < N; i++) {
          if (i === at) trim = all[i % all.length].trimLogs(q, id, K);
          calls.push(all[(i + 1) % all.length].addLog(q, id, `new-${i}`));
        }
        const [counts, kept] = await Promise.all([Promise.all(calls), trim]);
        assert.equal(kept, K);
        const byCount = (side: (n: number) => boolean) =>
          counts.map((n, i) => ({ n, line: `new-${i}` })).filter(({ n }) => side(n))
            .sort((a, b) => a.n - b.n);
        const before = byCount((n) => n > P);
        const after = byCount((n) => n <= K + N);
        assert.equal(before.length + after.length, N, `counts ${counts}`);
        assert.deepEqual(before.map(({ n }) => n), before.map((_, i) => P + 1 + i));
        assert.deepEqual(after.map(({ n }) => n), after.map((_, i) => K + 1 + i));
        const expected = [...old, ...before.map(({ line }) => line)].slice(-K)
          .concat(after.map(({ line }) => line));
        assert.deepEqual((await store.getJob(q, id))?.logs, expected);
      };
      await Promise.all([0, 10, 19].map(round));
    }));

  s.test(`${label}: racing completions with the same token: exactly one wins`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      const results = await Promise.all(
        Array.from(
          { length: 6 },
          (_, i) =>
            all[i % all.length].completeJobs(q, [{
              jobId: id,
              token: c.lockToken,
              returnvalue: i,
            }]),
        ),
      );
      assert.equal(results.flat().filter(Boolean).length, 1);
    }));

  s.test(`${label}: a stale token cannot complete after a re-claim elsewhere`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const peer = all[all.length - 1];
      const id = await store.saveJob(q, job(q));
      const first = await claim(store, q);
      assert.equal(await store.releaseLock(q, id, first.lockToken), true);
      const second = await claim(peer, q);
      const [stale, current] = await Promise.all([
        store.completeJobs(q, [{ jobId: id, token: first.lockToken, returnvalue: 'old' }]),
        peer.completeJobs(q, [{ jobId: id, token: second.lockToken, returnvalue: 'new' }]),
      ]);
      assert.deepEqual(stale, [false]);
      assert.deepEqual(current, [true]);
      assert.equal((await store.getJob(q, id))?.returnvalue, 'new');
    }));

  s.test(`${label}: a claim racing a guarded removal: the job runs or is removed, never both`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const saved = await saveN(store, q, 20);
      const outcomes = await Promise.all(saved.map(async (id, i) => {
        const [claimed, removed] = await Promise.allSettled([
          all[i % all.length].fetchNextJob(q, `w${i}`, 30_000),
          all[(i + 1) % all.length].removeJob(q, id, { unlessActive: true }),
        ]);
        return { id, claimed, removed };
      }));
      for (const { id, claimed, removed } of outcomes) {
        const stored = await store.getJob(q, id);
        if (removed.status === 'fulfilled') {
          // Removed: no claim may hold it (a claim may have taken another job).
          assert.equal(stored, null, `${id} removed`);
        } else {
          assert.ok(removed.reason instanceof JobStateError, String(removed.reason));
          assert.equal(stored?.state, 'active', `${id} refused, so a claim holds it`);
        }
        assert.equal(claimed.status, 'fulfilled');
      }
      // Every claimed job still exists and is active: none was removed under a worker.
      for (const o of outcomes) {
        const got = o.claimed.status === 'fulfilled' ? o.claimed.value : null;
        if (got) assert.equal((await store.getJob(q, got.id))?.state, 'active', got.id);
      }
    }));

  /** Saves parent `p` waiting for `n` children `p.0` … in queue `q`. */
  const family = (store: StoreInterface, q: string, p: string, n: number) =>
    saveFamily(store, q, p, Array.from({ length: n }, (_, i) => `${p}.${i}`));

  s.test(`${label}: a child removed twice at once, or while it completes, counts once for its parent`, (store) =>
    using(store, async (all) => {
      // One parent (waiting for two children) per queue.
      const queues = Array.from({ length: 10 }, () => uniqueQueue());
      for (const q of queues) await family(store, q, 'p', 2);
      await Promise.all(queues.map(async (q, i) => {
        const [a, b] = [all[i % all.length], all[(i + 1) % all.length]];
        if (i % 2 === 0) {
          await Promise.all([a.removeJob(q, 'p.0'), b.removeJob(q, 'p.0')]);
        } else {
          const child = await claimChild(a, q);
          await Promise.all([
            a.completeJobs(q, [{ jobId: child.id, token: child.lockToken!, returnvalue: 1 }]),
            b.removeJob(q, child.id),
          ]);
        }
      }));
      for (const q of queues) {
        const parent = await store.getJob(q, 'p');
        assert.equal(parent?.pendingChildrenCount, 1, `${q}: the parent waits for one child`);
        assert.equal(parent?.state, 'waiting-children', q);
      }
    }));

  s.test(`${label}: a guarded removal of a parent racing its child's completion ends cleanly`, (store) =>
    using(store, async (all) => {
      const queues = Array.from({ length: 30 }, () => uniqueQueue());
      for (const q of queues) await family(store, q, 'p', 1);
      await Promise.all(queues.map(async (q, i) => {
        const child = await claimChild(all[i % all.length], q);
        const [done, removed] = await Promise.allSettled([
          all[i % all.length].completeJobs(q, [{
            jobId: child.id,
            token: child.lockToken!,
            returnvalue: 1,
          }]),
          all[(i + 1) % all.length].removeJob(q, 'p', { unlessActive: true }),
        ]);
        assert.equal(done.status, 'fulfilled', String((done as PromiseRejectedResult).reason));
        if (removed.status === 'rejected') {
          // Refused while the child was active: the completion then released the parent.
          assert.ok(removed.reason instanceof JobStateError, String(removed.reason));
          assert.equal((await store.getJob(q, 'p'))?.state, 'waiting');
        } else {
          assert.equal(await store.getJob(q, 'p'), null);
          assert.equal(await store.getJob(q, child.id), null);
        }
      }));
    }));

  s.test(`${label}: a child failing its parent (removed on failure) while a sibling completes`, (store) =>
    using(store, async (all) => {
      const queues = Array.from({ length: 30 }, () => uniqueQueue());
      for (const q of queues) {
        await saveFamily(store, q, 'p', ['bad', 'good'], { removeOnFail: true });
      }
      await Promise.all(queues.map(async (q, i) => {
        const [a, b] = [all[i % all.length], all[(i + 1) % all.length]];
        const c = Object.fromEntries(
          (await a.fetchNextJobs(q, 'w', 30_000, 2)).map((j) => [j.id, j.lockToken!]),
        );
        const [failed, completed] = await Promise.allSettled([
          a.failJobs(q, [{ jobId: 'bad', token: c.bad, reason: 'broke' }]),
          b.completeJobs(q, [{ jobId: 'good', token: c.good, returnvalue: 1 }]),
        ]);
        assert.equal(
          failed.status,
          'fulfilled',
          `${q}: ${(failed as PromiseRejectedResult).reason}`,
        );
        assert.equal(
          completed.status,
          'fulfilled',
          `${q}: ${(completed as PromiseRejectedResult).reason}`,
        );
        assert.deepEqual(failed.value, [true]);
        assert.deepEqual(completed.value, [true]);
        // The parent failed and was removed on failure, and no value is left for it.
        assert.equal(await store.getJob(q, 'p'), null);
        assert.deepEqual(await store.getChildrenValues(q, 'p'), {}, q);
      }));
    }));

  s.test(`${label}: pruning a failed parent while its child completes leaves the child whole`, (store) =>
    using(store, async (all) => {
      const queues = Array.from({ length: 30 }, () => uniqueQueue());
      for (const q of queues) {
        await saveFamily(store, q, 'p', ['bad', 'good'], { removeOnFail: { count: 0 } });
      }
      await Promise.all(queues.map(async (q, i) => {
        const [a, b] = [all[i % all.length], all[(i + 1) % all.length]];
        const c = Object.fromEntries(
          (await a.fetchNextJobs(q, 'w', 30_000, 2)).map((j) => [j.id, j.lockToken!]),
        );
        await a.failJobs(q, [{ jobId: 'bad', token: c.bad, reason: 'broke' }]);
        const [pruned, completed] = await Promise.all([
          a.pruneFinished(q),
          b.completeJobs(q, [{ jobId: 'good', token: c.good, returnvalue: 1 }]),
        ]);
        assert.equal(pruned, 1, q);
        assert.deepEqual(completed, [true], q);
        assert.equal(await store.getJob(q, 'p'), null, q);
        assert.equal((await store.getJob(q, 'good'))?.state, 'completed', q);
        // No value is left for the parent that is gone.
        assert.deepEqual(await store.getChildrenValues(q, 'p'), {}, q);
      }));
    }));

  s.test(`${label}: failure batches over the same parents in opposite orders both succeed`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const parents = Array.from({ length: 10 }, (_, i) => `p${i}`);
      for (const p of parents) await family(store, q, p, 2);
      const c = Object.fromEntries(
        (await all[0].fetchNextJobs(q, 'w', 30_000, 20, { jobName: 'c' })).map((j) => [j.id, j]),
      );
      const fail = (id: string) => ({ jobId: id, token: c[id].lockToken!, reason: 'broke' });
      const results = await Promise.all([
        all[0].failJobs(q, parents.map((p) => fail(`${p}.0`))),
        all[all.length - 1].failJobs(q, parents.toReversed().map((p) => fail(`${p}.1`))),
      ]);
      assert.deepEqual(results, [parents.map(() => true), parents.map(() => true)]);
      for (const p of parents) assert.equal((await store.getJob(q, p))?.state, 'failed', p);
    }));

  s.test(`${label}: two first upserts of one scheduler at once leave one pending job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const at = Date.now() + 60_000;
      const upsert = (s: StoreInterface, t: number) =>
        s.upsertScheduler(
          {
            id: 'tick',
            queueName: q,
            name: 'tick',
            data: {},
            opts: {},
            repeat: { every: 60_000 },
            nextRunAt: t + 60_000,
            runCount: 0,
            createdAt: Date.now(),
          },
          job(q, 'tick', {}, { jobId: `repeat:tick:${t}`, repeat: { schedulerId: 'tick' } }, {
            state: 'delayed',
            delayUntil: t,
          }),
        );
      await Promise.all([upsert(all[0], at), upsert(all[all.length - 1], at + 1)]);
      assert.equal(await store.countJobs(q, 'delayed'), 1);
    }));

  s.test(`${label}: obliterate racing claims never deletes a claimed job`, (store) =>
    using(store, async (all) => {
      const queues = Array.from({ length: 10 }, () => uniqueQueue());
      for (const q of queues) await saveN(store, q, 3);
      await Promise.all(queues.map(async (q, i) => {
        const [claimed, gone] = await Promise.allSettled([
          all[i % all.length].fetchNextJob(q, 'w', 30_000),
          all[(i + 1) % all.length].obliterate(q),
        ]);
        assert.equal(claimed.status, 'fulfilled');
        const got = claimed.status === 'fulfilled' ? claimed.value : null;
        if (gone.status === 'fulfilled') {
          assert.equal(got, null, `${q}: obliterated, so nothing was claimed`);
        } else {
          assert.equal((gone.reason as { code?: string }).code, 'QUEUE_ACTIVE');
          assert.equal((await store.getJob(q, got!.id))?.state, 'active');
        }
      }));
    }));

  s.test(`${label}: obliterate racing completions in other queues leaves no broken link`, (store) =>
    using(store, async (all) => {
      await Promise.all(Array.from({ length: 10 }, async (_, i) => {
        const a = uniqueQueue('a');
        const b = uniqueQueue('b');
        // p (a) <- c (b): c goes with p. q (b) <- d (a), e (b): q counts d off and e completes.
        await store.saveFlow([
          flowNode({ queue: a, id: 'p' }, null, 1),
          flowNode({ queue: b, id: 'c' }, { queue: a, id: 'p' }),
          flowNode({ queue: b, id: 'q' }, null, 2),
          flowNode({ queue: a, id: 'd' }, { queue: b, id: 'q' }),
          flowNode({ queue: b, id: 'e' }, { queue: b, id: 'q' }),
        ]);
        const worker = all[i % all.length];
        const claimed = await worker.fetchNextJobs(b, 'w', 30_000, 2);
        assert.deepEqual(claimed.map((j) => j.id).sort(), ['c', 'e']);
        const [done, gone] = await Promise.allSettled([
          worker.completeJobs(
            b,
            claimed.map((j) => ({
              jobId: j.id,
              token: j.lockToken!,
              returnvalue: 1,
            })),
          ),
          all[(i + 1) % all.length].obliterate(a, { force: true }),
        ]);
        assert.equal(done.status, 'fulfilled', String((done as PromiseRejectedResult).reason));
        assert.equal(gone.status, 'fulfilled', String((gone as PromiseRejectedResult).reason));
        for (const [queue, id] of [[a, 'p'], [b, 'c'], [a, 'd']]) {
          assert.equal(await store.getJob(queue, id), null, id);
        }
        assert.equal((await store.getJob(b, 'e'))?.state, 'completed');
        const q = await store.getJob(b, 'q');
        assert.equal(q?.state, 'waiting');
        assert.equal(q?.pendingChildrenCount, 0);
      }));
    }));

  s.test(`${label}: obliterate racing completions of flow children in its queue and another keeps flows whole`, (store) =>
    using(store, async (all) => {
      await Promise.all(Array.from({ length: 6 }, async (_, round) => {
        const a = uniqueQueue('a');
        const b = uniqueQueue('b');
        // In a: parents p0..p7, each with two children in a and one in b. In b: parent q with
        // a child in a under each of them, and one in b.
        const parents = Array.from({ length: 8 }, (_, i) => `p${i}`);
        const at = (queue: string, id: string) => ({ queue, id });
        await store.saveFlow([
          ...parents.flatMap((p) => [
            flowNode(at(a, p), null, 3),
            flowNode(at(a, `${p}.a0`), at(a, p)),
            flowNode(at(a, `${p}.a1`), at(a, p)),
            flowNode(at(b, `${p}.b`), at(a, p)),
          ]),
          flowNode(at(b, 'q'), null, parents.length + 1),
          ...parents.map((p) => flowNode(at(a, `q.${p}`), at(b, 'q'))),
          flowNode(at(b, 'q.b'), at(b, 'q')),
        ]);
        const claimed = new Map<string, JobData>();
        for (const queue of [a, b]) {
          for (const j of await all[0].fetchNextJobs(queue, 'w', 30_000, 100)) {
            claimed.set(`${queue}/${j.id}`, j);
          }
        }
        assert.equal(claimed.size, parents.length * 4 + 1);
        // Batches of children as flows finish them: under a's parents, in a and in b, and
        // under q, in a and in b.
        const batch = (queue: string, ids: string[]) => ({
          queue,
          done: ids.map((id) => {
            const j = claimed.get(`${queue}/${id}`)!;
            return { jobId: id, token: j.lockToken!, returnvalue: id };
          }),
        });
        const batches = [
          batch(a, parents.slice(0, 4).flatMap((p) => [`${p}.a0`, `${p}.a1`])),
          batch(a, parents.slice(4).flatMap((p) => [`${p}.a1`, `${p}.a0`])),
          batch(b, parents.map((p) => `${p}.b`)),
          batch(a, parents.map((p) => `q.${p}`)),
          batch(b, ['q.b']),
        ];
        const settled = await Promise.allSettled([
          ...batches.map((x, i) => all[(round + i) % all.length].completeJobs(x.queue, x.done)),
          all[(round + 1) % all.length].obliterate(a, { force: true }),
        ]);
        for (const r of settled) {
          assert.equal(r.status, 'fulfilled', `${a}: ${(r as PromiseRejectedResult).reason}`);
        }
        // Every job of a went, with its children in b; q counted each child once.
        for (const p of parents) {
          for (
            const [queue, id] of [[a, p], [a, `${p}.a0`], [a, `${p}.a1`], [b, `${p}.b`], [
              a,
              `q.${p}`,
            ]]
          ) {
            assert.equal(await store.getJob(queue, id), null, `${queue}/${id}`);
          }
        }
        assert.equal((await store.getJob(b, 'q.b'))?.state, 'completed');
        const q = await store.getJob(b, 'q');
        assert.equal(q?.pendingChildrenCount, 0, `${b}/q`);
        assert.equal(q?.state, 'waiting', `${b}/q`);
      }));
    }));

  s.test(`${label}: 20 parallel saves into a group with maxSize never exceed it`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const opts = { group: { id: 'g', maxSize: 5 } };
      const results = await Promise.allSettled(
        Array.from(
          { length: 20 },
          (_, i) => all[i % all.length].saveJob(q, job(q, 't', { i }, opts)),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 5);
      assert.equal(await store.getWaitingGroupCount(q, 'g'), 5);
    }));
}

/** Cases that need two stores over the same data: what one does, the other sees. */
function peerCases(s: Suite, openPeer: (store: StoreInterface) => Promise<StoreInterface>): void {
  const withPeer = (name: string, body: (a: StoreInterface, b: StoreInterface) => Promise<void>) =>
    s.test(`two stores: ${name}`, async (store) => {
      const peer = await openPeer(store);
      try {
        await body(store, peer);
      } finally {
        await peer.disconnect();
      }
    });

  withPeer('events of one store reach the subscribers of the other', async (a, b) => {
    const q = uniqueQueue();
    const rec = record(b, q);
    // A subscription settles in the background; any call on b waits for it (a store's own
    // changes cannot outrun its LISTEN), so that a's changes below are heard.
    await b.countJobs(q, 'waiting');
    const id = await a.saveJob(q, job(q, 'mail'));
    const c = await claim(a, q);
    await a.completeJobs(q, [{ jobId: id, token: c.lockToken, returnvalue: 'ok' }]);
    await a.publish({
      type: 'progress',
      queueName: q,
      jobId: id,
      data: { progress: 5 },
      timestamp: Date.now(),
    });
    await rec.until(
      (e) => e.type === 'progress' && e.jobId === id,
      'progress from the other store',
    );
    await rec.until(
      (e) => e.type === 'completed' && e.jobId === id,
      'completed from the other store',
    );
    const types = rec.of(id).map((e) => e.type).filter((t) => t !== 'progress');
    assert.deepEqual(types, ['waiting', 'active', 'completed']);
    rec.stop();
  });

  withPeer('a pause set through one store stops claims through the other', async (a, b) => {
    const q = uniqueQueue();
    await saveN(a, q, 2);
    await a.pauseJobName(q, PAUSE_ALL);
    assert.deepEqual(await b.getPausedJobNames(q), [PAUSE_ALL]);
    assert.equal(await b.fetchNextJob(q, 'w', 1000), null);
    await b.resumeJobName(q, PAUSE_ALL);
    assert.ok(await a.fetchNextJob(q, 'w', 1000));
  });

  withPeer(
    'rate limits, global and group concurrency count claims of both stores',
    async (a, b) => {
      const q = uniqueQueue();
      await saveN(a, q, 6);
      const limiter = { max: 3, duration: 1_000_000_000 };
      const claimed = await Promise.all([
        a.fetchNextJobs(q, 'wa', 30_000, 3, { limiter }),
        b.fetchNextJobs(q, 'wb', 30_000, 3, { limiter }),
      ]);
      assert.equal(claimed.flat().length, 3);
      const q2 = uniqueQueue();
      await saveN(a, q2, 6);
      const global = await Promise.all(
        Array.from(
          { length: 6 },
          (_, i) => (i % 2 ? a : b).fetchNextJob(q2, `w${i}`, 30_000, { globalConcurrency: 2 }),
        ),
      );
      assert.equal(global.filter(Boolean).length, 2);
      const q3 = uniqueQueue();
      await saveN(a, q3, 6, { group: { id: 'g' } });
      const grouped = await Promise.all(
        Array.from(
          { length: 6 },
          (_, i) => (i % 2 ? a : b).fetchNextJob(q3, `w${i}`, 30_000, { groupConcurrency: 2 }),
        ),
      );
      assert.equal(grouped.filter(Boolean).length, 2);
      assert.equal(await b.getGroupActiveCount(q3, 'g'), 2);
    },
  );

  withPeer('racing scheduler advances on two stores: exactly one wins', async (a, b) => {
    const q = uniqueQueue();
    const t1 = Date.now() + 60_000;
    const t2 = t1 + 60_000;
    await a.upsertScheduler({
      id: 's',
      queueName: q,
      name: 'tick',
      data: {},
      opts: {},
      repeat: { every: 60_000 },
      nextRunAt: t1,
      runCount: 0,
      createdAt: Date.now(),
    }, null);
    const next = job(q, 'tick', {}, { jobId: `s:${t2}`, repeat: { schedulerId: 's' } }, {
      state: 'delayed',
      delayUntil: t2,
    });
    const results = await Promise.all([
      a.advanceScheduler(q, 's', t1, t2, next),
      b.advanceScheduler(q, 's', t1, t2, next),
    ]);
    assert.equal(results.filter((r) => r === false).length, 1);
    assert.equal((await b.getScheduler(q, 's'))?.runCount, 1);
  });

  withPeer('a flow saved by one store is released by completions on the other', async (a, b) => {
    const q = uniqueQueue();
    await saveFamily(a, q, 'p', ['c']);
    const c = await claim(b, q);
    assert.deepEqual(
      await b.completeJobs(q, [{ jobId: 'c', token: c.lockToken, returnvalue: 1 }]),
      [true],
    );
    assert.equal((await a.getJob(q, 'p'))?.state, 'waiting');
  });
}

/** Registers the concurrency cases (and their cross-store variant when the harness has peers). */
export function concurrencyCases(s: Suite): void {
  describe('concurrency', () => {
    raceCases(s, 'one store', (store) => Promise.resolve([store]));
    const openPeer = s.harness.openPeer?.bind(s.harness);
    if (openPeer) {
      raceCases(s, 'two stores', async (store) => [store, await openPeer(store)]);
      peerCases(s, openPeer);
    } else {
      s.skip(
        'two stores: cross-store races',
        `${s.harness.label} has no peer stores (per-instance data)`,
      );
    }
  });
}
