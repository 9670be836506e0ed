/**
 * Conformance: flows (parent/child trees across queues): saving, releasing parents, the three
 * child-failure policies through every level, and removal of trees.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  type ChildFailurePolicy,
  ConveyorError,
  DuplicateJobError,
  GroupFullError,
  JobNotFoundError,
  JobStateError,
  type StoreInterface,
} from '@conveyor/shared';
import { eventually } from '../helpers.ts';
import {
  delayedJob,
  flowNode as node,
  ids,
  job,
  record,
  type Ref,
  saveFamily,
  type Suite,
  uniqueQueue,
} from './context.ts';

/** Claims one job (nodes are named after their id); returns its token. */
async function claimNode(store: StoreInterface, ref: Ref, lockDuration = 30_000): Promise<string> {
  const got = await store.fetchNextJob(ref.queue, 'w', lockDuration, { jobName: ref.id });
  assert.equal(got?.id, ref.id, `${ref.queue}/${ref.id} should be claimable`);
  return got!.lockToken!;
}

/** Claims and completes one job (it must be waiting in its queue). */
async function complete(store: StoreInterface, ref: Ref): Promise<void> {
  const token = await claimNode(store, ref);
  const [ok] = await store.completeJobs(ref.queue, [{ jobId: ref.id, token, returnvalue: ref.id }]);
  assert.equal(ok, true);
}

/** Claims and fails (for good) one job. */
async function fail(store: StoreInterface, ref: Ref, reason = 'boom'): Promise<void> {
  const token = await claimNode(store, ref);
  const [ok] = await store.failJobs(ref.queue, [{ jobId: ref.id, token, reason }]);
  assert.equal(ok, true);
}

/** A three-level tree over three queues: root ← mid ← (leaf, sibling), plus a second root child. */
function tree(midPolicy?: ChildFailurePolicy, leafPolicy?: ChildFailurePolicy) {
  const root = { queue: uniqueQueue('root'), id: 'root' };
  const mid = { queue: uniqueQueue('mid'), id: 'mid' };
  const other = { queue: mid.queue, id: 'other' };
  const leaf = { queue: uniqueQueue('leaf'), id: 'leaf' };
  const sibling = { queue: leaf.queue, id: 'sibling' };
  const flow = [
    node(root, null, 2),
    node(mid, root, 2, midPolicy),
    node(other, root),
    node(leaf, mid, 0, leafPolicy),
    node(sibling, mid),
  ];
  return { root, mid, other, leaf, sibling, flow };
}

async function state(store: StoreInterface, ref: Ref): Promise<string | undefined> {
  return (await store.getJob(ref.queue, ref.id))?.state;
}

/** Registers the flow cases. */
export function flowCases(s: Suite): void {
  describe('flows', () => {
    s.test('saveFlow saves a tree across queues and returns ids in input order', async (store) => {
      const t = tree();
      assert.deepEqual(await store.saveFlow(t.flow), ['root', 'mid', 'other', 'leaf', 'sibling']);
      assert.equal(await state(store, t.root), 'waiting-children');
      assert.equal(await state(store, t.mid), 'waiting-children');
      assert.equal(await state(store, t.leaf), 'waiting');
      const mid = await store.getJob(t.mid.queue, 'mid');
      assert.equal(mid?.parentId, 'root');
      assert.equal(mid?.parentQueueName, t.root.queue);
      assert.equal(mid?.pendingChildrenCount, 2);
      assert.deepEqual(ids(await store.getChildrenJobs(t.root.queue, 'root')).sort(), [
        'mid',
        'other',
      ]);
      assert.deepEqual(ids(await store.getChildrenJobs(t.mid.queue, 'mid')).sort(), [
        'leaf',
        'sibling',
      ]);
      assert.deepEqual(await store.getChildrenJobs(t.leaf.queue, 'leaf'), []);
    });

    s.test('saveFlow with an existing id throws DuplicateJobError and saves nothing', async (store) => {
      const t = tree();
      await store.saveJob(t.leaf.queue, job(t.leaf.queue, 'x', {}, { jobId: 'sibling' }));
      await assert.rejects(store.saveFlow(t.flow), DuplicateJobError);
      assert.equal(await store.getJob(t.root.queue, 'root'), null);
      assert.equal(await store.getJob(t.mid.queue, 'mid'), null);
      assert.equal(await store.getJob(t.leaf.queue, 'leaf'), null);
      assert.equal(await store.countJobs(t.leaf.queue, 'waiting'), 1);
    });

    s.test('completing the last child releases the parent, at every level', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await complete(store, t.leaf);
      assert.equal(await state(store, t.mid), 'waiting-children');
      assert.equal((await store.getJob(t.mid.queue, 'mid'))?.pendingChildrenCount, 1);
      await complete(store, t.sibling);
      assert.equal(await state(store, t.mid), 'waiting');
      assert.equal((await store.getJob(t.mid.queue, 'mid'))?.pendingChildrenCount, 0);
      await complete(store, t.other);
      assert.equal(await state(store, t.root), 'waiting-children');
      await complete(store, t.mid);
      assert.equal(await state(store, t.root), 'waiting');
      await complete(store, t.root);
      assert.equal(await state(store, t.root), 'completed');
    });

    s.test('a parent with opts.delay becomes delayed, from its last child, when its children are done', async (store) => {
      const q = uniqueQueue();
      const parent = { queue: q, id: 'p' };
      const plain = { queue: q, id: 'plain' };
      await store.saveFlow([
        node(parent, null, 1, undefined, { delay: 60_000 }),
        node({ queue: q, id: 'c' }, parent),
        node(plain, null, 1),
        node({ queue: q, id: 'd' }, plain),
      ]);
      const events = record(store, q);
      const before = Date.now();
      await complete(store, { queue: q, id: 'c' });
      const after = Date.now();
      const p = await store.getJob(q, 'p');
      assert.equal(p?.state, 'delayed');
      assert.equal(p?.pendingChildrenCount, 0);
      assert.ok(
        p!.delayUntil >= before + 60_000 && p!.delayUntil <= after + 60_000,
        `delayUntil ${p!.delayUntil} in [${before + 60_000}, ${after + 60_000}]`,
      );
      const delayed = await events.until(
        (e) => e.type === 'delayed' && e.jobId === 'p',
        'delayed of the parent',
      );
      assert.equal(delayed.data?.delayUntil, p!.delayUntil);
      assert.equal(await store.getNextDelayedTimestamp(q), p!.delayUntil);
      assert.equal(await store.fetchNextJob(q, 'w', 1000, { jobName: 'p' }), null);
      // Without a delay, the parent becomes waiting, as before.
      await complete(store, { queue: q, id: 'd' });
      const released = await store.getJob(q, 'plain');
      assert.equal(released?.state, 'waiting');
      assert.equal(released?.delayUntil, 0);
      await events.until((e) => e.type === 'waiting' && e.jobId === 'plain', 'waiting of plain');
      events.stop();
      assert.deepEqual(events.of('p', 'waiting'), []);
      await claimNode(store, plain);
      // notifyChildCompleted releases it the same way, and answers `delayed`.
      await store.saveJob(
        q,
        node({ queue: q, id: 'n' }, null, 1, undefined, { delay: 60_000 }).job,
      );
      assert.equal(await store.notifyChildCompleted(q, 'n'), 'delayed');
      assert.ok((await store.getJob(q, 'n'))!.delayUntil >= after + 60_000);
    });

    s.test('policy fail (default) fails every ancestor with a chained reason', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await fail(store, t.leaf, 'boom');
      const mid = await store.getJob(t.mid.queue, 'mid');
      assert.equal(mid?.state, 'failed');
      assert.equal(mid?.failedReason, `child ${t.leaf.queue}/leaf failed: boom`);
      const root = await store.getJob(t.root.queue, 'root');
      assert.equal(root?.state, 'failed');
      assert.equal(root?.failedReason, `child ${t.mid.queue}/mid failed: ${mid?.failedReason}`);
      assert.ok(root?.finishedAt);
      assert.equal(await state(store, t.sibling), 'waiting');
    });

    s.test('policy ignore counts the failed child as finished', async (store) => {
      const t = tree(undefined, 'ignore');
      await store.saveFlow(t.flow);
      await fail(store, t.leaf);
      assert.equal(await state(store, t.mid), 'waiting-children');
      await complete(store, t.sibling);
      assert.equal(await state(store, t.mid), 'waiting');
      assert.equal((await store.getJob(t.leaf.queue, 'leaf'))?.parentId, 'mid');
      assert.deepEqual(ids(await store.getChildrenJobs(t.mid.queue, 'mid')).sort(), [
        'leaf',
        'sibling',
      ]);
    });

    s.test('policy remove detaches the failed child and counts it as finished', async (store) => {
      const t = tree(undefined, 'remove');
      await store.saveFlow(t.flow);
      await complete(store, t.sibling);
      await fail(store, t.leaf);
      assert.equal(await state(store, t.mid), 'waiting');
      const leaf = await store.getJob(t.leaf.queue, 'leaf');
      assert.equal(leaf?.state, 'failed');
      assert.equal(leaf?.parentId, null);
      assert.equal(leaf?.parentQueueName, null);
      assert.deepEqual(ids(await store.getChildrenJobs(t.mid.queue, 'mid')), ['sibling']);
    });

    s.test('the middle level applies its own policy: fail then ignore', async (store) => {
      const t = tree('ignore');
      await store.saveFlow(t.flow);
      await fail(store, t.leaf);
      assert.equal(await state(store, t.mid), 'failed');
      assert.equal(await state(store, t.root), 'waiting-children');
      await complete(store, t.other);
      assert.equal(await state(store, t.root), 'waiting');
    });

    s.test('the middle level applies its own policy: fail then remove', async (store) => {
      const t = tree('remove');
      await store.saveFlow(t.flow);
      await complete(store, t.other);
      await fail(store, t.leaf);
      assert.equal(await state(store, t.mid), 'failed');
      assert.equal((await store.getJob(t.mid.queue, 'mid'))?.parentId, null);
      assert.equal(await state(store, t.root), 'waiting');
      assert.deepEqual(ids(await store.getChildrenJobs(t.root.queue, 'root')), ['other']);
    });

    s.test('ignore at the leaf, then the released middle fails and fails the root', async (store) => {
      const t = tree(undefined, 'ignore');
      await store.saveFlow(t.flow);
      await fail(store, t.leaf);
      await complete(store, t.sibling);
      await fail(store, t.mid, 'mid broke');
      const root = await store.getJob(t.root.queue, 'root');
      assert.equal(root?.state, 'failed');
      assert.equal(root?.failedReason, `child ${t.mid.queue}/mid failed: mid broke`);
    });

    s.test('a retried child does not touch its parent', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      const token = await claimNode(store, t.leaf);
      await store.failJobs(t.leaf.queue, [{
        jobId: 'leaf',
        token,
        reason: 'x',
        retryAt: Date.now() + 60_000,
      }]);
      assert.equal(await state(store, t.mid), 'waiting-children');
      assert.equal((await store.getJob(t.mid.queue, 'mid'))?.pendingChildrenCount, 2);
    });

    s.test('a child that stalls too often fails and applies the parent policy', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await claimNode(store, t.leaf, 1);
      await claimNode(store, t.sibling, 1);
      await eventually(async () => {
        await store.requeueStalledJobs(t.leaf.queue, 0);
        return (await store.countJobs(t.leaf.queue, 'failed')) === 2;
      }, { message: 'both leaf-queue jobs to stall' });
      assert.equal(await state(store, t.mid), 'failed');
      assert.equal(await state(store, t.root), 'failed');
    });

    s.test('a child with removeOnFail: true that stalls too often is returned and applies the parent policy', async (store) => {
      for (const policy of ['fail', 'ignore', 'remove'] as const) {
        const t = tree();
        t.flow[3] = node(t.leaf, t.mid, 0, policy, { removeOnFail: true });
        await store.saveFlow(t.flow);
        await claimNode(store, t.leaf, 1);
        const r = await eventually(async () => {
          const res = await store.requeueStalledJobs(t.leaf.queue, 0);
          return res.failed.length > 0 ? res : null;
        }, { message: `the leaf to stall (${policy})` });
        assert.deepEqual(r.failed, ['leaf'], policy);
        // The job as its failure left it, before the parent policy and the removal.
        const [leaf] = r.failedJobs;
        assert.equal(leaf.id, 'leaf', policy);
        assert.equal(leaf.state, 'failed', policy);
        assert.equal(leaf.failedReason, 'job stalled more than allowable limit', policy);
        assert.equal(leaf.parentId, 'mid', policy);
        assert.equal(leaf.parentQueueName, t.mid.queue, policy);
        assert.equal(await store.getJob(t.leaf.queue, 'leaf'), null, policy);
        const mid = await store.getJob(t.mid.queue, 'mid');
        if (policy === 'fail') {
          assert.equal(mid?.state, 'failed');
          assert.equal(
            mid?.failedReason,
            `child ${t.leaf.queue}/leaf failed: job stalled more than allowable limit`,
          );
          assert.equal(await state(store, t.root), 'failed');
        } else {
          assert.equal(mid?.state, 'waiting-children', policy);
          assert.equal(mid?.pendingChildrenCount, 1, policy);
          assert.deepEqual(ids(await store.getChildrenJobs(t.mid.queue, 'mid')), ['sibling']);
        }
      }
    });

    s.test('notifyChildCompleted counts down and releases at zero', async (store) => {
      const q = uniqueQueue();
      await store.saveJob(
        q,
        job(q, 'p', {}, { jobId: 'p' }, { state: 'waiting-children', pendingChildrenCount: 2 }),
      );
      assert.equal(await store.notifyChildCompleted(q, 'p'), 'waiting-children');
      assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 1);
      assert.equal(await store.notifyChildCompleted(q, 'p'), 'waiting');
      assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 0);
      assert.equal((await store.fetchNextJob(q, 'w', 1000))?.id, 'p');
      await assert.rejects(store.notifyChildCompleted(q, 'missing'), JobNotFoundError);
    });

    s.test('failParentOnChildFailure fails an unfinished parent and walks up', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      assert.equal(await store.failParentOnChildFailure(t.mid.queue, 'mid', 'manual'), true);
      const mid = await store.getJob(t.mid.queue, 'mid');
      assert.equal(mid?.state, 'failed');
      assert.equal(mid?.failedReason, 'manual');
      assert.equal(await state(store, t.root), 'failed');
      assert.equal(await store.failParentOnChildFailure(t.mid.queue, 'mid', 'again'), false);
      assert.equal((await store.getJob(t.mid.queue, 'mid'))?.failedReason, 'manual');
      assert.equal(await store.failParentOnChildFailure(t.mid.queue, 'missing', 'x'), false);
    });

    s.test('removeJob of a parent removes every descendant in every queue', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      const events = record(store, t.leaf.queue);
      await store.removeJob(t.root.queue, 'root');
      for (const ref of [t.root, t.mid, t.other, t.leaf, t.sibling]) {
        assert.equal(await store.getJob(ref.queue, ref.id), null, ref.id);
      }
      await events.until((e) => e.type === 'removed' && e.jobId === 'leaf', 'removed of leaf');
      events.stop();
    });

    s.test('removeJob with unlessActive refuses while a descendant is active; nothing removed', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      const token = await claimNode(store, t.leaf);
      await assert.rejects(
        () => store.removeJob(t.root.queue, 'root', { unlessActive: true }),
        (e: unknown) => e instanceof JobStateError && e.jobId === 'leaf' && e.actual === 'active',
      );
      for (const ref of [t.root, t.mid, t.other, t.leaf, t.sibling]) {
        assert.notEqual(await store.getJob(ref.queue, ref.id), null, ref.id);
      }
      const [ok] = await store.completeJobs(t.leaf.queue, [{
        jobId: 'leaf',
        token,
        returnvalue: 1,
      }]);
      assert.equal(ok, true);
      await store.removeJob(t.root.queue, 'root', { unlessActive: true });
      for (const ref of [t.root, t.mid, t.other, t.leaf, t.sibling]) {
        assert.equal(await store.getJob(ref.queue, ref.id), null, ref.id);
      }
    });

    s.test('saveJob with a parent adds a child to that job: its count goes up in the same step', async (store) => {
      const q = uniqueQueue();
      const kids = uniqueQueue('kids');
      await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
      const parent = { parentId: 'p', parentQueueName: q };
      const a = await store.saveJob(kids, job(kids, 'c', {}, {}, parent));
      const [b, c] = await store.saveBulk(kids, [
        job(kids, 'c', {}, { jobId: 'b' }, parent),
        job(kids, 'c', {}, {}, parent),
      ]);
      // Not inserted (an existing id): adds nothing.
      assert.equal(await store.saveJob(kids, job(kids, 'c', {}, { jobId: 'b' }, parent)), b);
      const p = await store.getJob(q, 'p');
      assert.equal(p?.state, 'waiting');
      assert.equal(p?.pendingChildrenCount, 3);
      assert.deepEqual(ids(await store.getChildrenJobs(q, 'p')).sort(), [a, b, c].sort());
      assert.equal((await store.getJob(kids, a))?.parentId, 'p');
    });

    s.test('saveJob with a missing or finished parent throws and saves nothing', async (store) => {
      const q = uniqueQueue();
      const orphan = job(q, 'c', {}, { jobId: 'c' }, { parentId: 'nope', parentQueueName: q });
      await assert.rejects(store.saveJob(q, orphan), JobNotFoundError);
      await assert.rejects(store.saveBulk(q, [job(q, 'free'), orphan]), JobNotFoundError);
      assert.equal(await store.countJobs(q, 'waiting'), 0);
      await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
      await complete(store, { queue: q, id: 'p' });
      const late = job(q, 'c', {}, { jobId: 'c' }, { parentId: 'p', parentQueueName: q });
      await assert.rejects(store.saveJob(q, late), JobStateError);
      assert.equal(await store.getJob(q, 'c'), null);
      assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 0);
      // The parent is checked first, even for a jobId that exists already (as in BullMQ).
      await store.saveJob(q, job(q, 'x', {}, { jobId: 'x' }));
      const again = job(q, 'x', {}, { jobId: 'x' }, { parentId: 'gone', parentQueueName: q });
      await assert.rejects(store.saveJob(q, again), JobNotFoundError);
      assert.equal((await store.getJob(q, 'x'))?.parentId, null);
    });

    s.test('saveFlow under an existing job counts its root once, in any unfinished state of that job', async (store) => {
      const q = uniqueQueue();
      const sub = uniqueQueue('sub');
      const waiting = { queue: q, id: 'w' };
      const delayed = { queue: q, id: 'd' };
      const active = { queue: q, id: 'a' };
      const parked = { queue: q, id: 'wc' };
      await store.saveJob(q, job(q, 'w', {}, { jobId: 'w' }));
      await store.saveJob(q, delayedJob(q, 60_000, { jobId: 'd' }));
      await store.saveJob(q, job(q, 'a', {}, { jobId: 'a' }));
      await claimNode(store, active);
      await store.saveFlow([node(parked, null, 1), node({ queue: q, id: 'x' }, parked)]);
      for (const parent of [waiting, delayed, active, parked]) {
        const before = await store.getJob(q, parent.id);
        const root = { queue: sub, id: `r-${parent.id}` };
        const leaf = { queue: sub, id: `l-${parent.id}` };
        assert.deepEqual(await store.saveFlow([node(root, parent, 1), node(leaf, root)]), [
          root.id,
          leaf.id,
        ]);
        const after = await store.getJob(q, parent.id);
        assert.equal(after?.pendingChildrenCount, before!.pendingChildrenCount + 1, parent.id);
        assert.equal(after?.state, before!.state, parent.id);
        assert.ok(ids(await store.getChildrenJobs(q, parent.id)).includes(root.id), parent.id);
        const saved = await store.getJob(sub, root.id);
        assert.equal(saved?.parentId, parent.id);
        assert.equal(saved?.parentQueueName, q);
        assert.equal(saved?.state, 'waiting-children');
        assert.equal(saved?.pendingChildrenCount, 1);
      }
      // Two roots of one save under one parent: two children.
      await store.saveFlow([
        node({ queue: sub, id: 'r1' }, waiting),
        node({ queue: sub, id: 'r2' }, waiting),
      ]);
      assert.equal((await store.getJob(q, 'w'))?.pendingChildrenCount, 3);
    });

    s.test('a flow root under an existing job releases it with its value, as any child', async (store) => {
      const q = uniqueQueue();
      const sub = uniqueQueue('sub');
      const parent = { queue: q, id: 'p' };
      const own = { queue: q, id: 'own' };
      const root = { queue: sub, id: 'r' };
      const leaf = { queue: sub, id: 'leaf' };
      await store.saveFlow([node(parent, null, 1), node(own, parent)]);
      await store.saveFlow([node(root, parent, 1), node(leaf, root)]);
      await complete(store, own);
      assert.equal(await state(store, parent), 'waiting-children');
      await complete(store, leaf);
      assert.equal(await state(store, parent), 'waiting-children');
      await complete(store, root);
      const released = await store.getJob(q, 'p');
      assert.equal(released?.state, 'waiting');
      assert.equal(released?.pendingChildrenCount, 0);
      assert.deepEqual(await store.getChildrenValues(q, 'p'), {
        [`${q}:own`]: 'own',
        [`${sub}:r`]: 'r',
      });
      assert.deepEqual(await store.getChildrenValues(sub, 'r'), { [`${sub}:leaf`]: 'leaf' });
    });

    s.test('a flow root under an existing job applies its failure policy to that job', async (store) => {
      const q = uniqueQueue();
      const sub = uniqueQueue('sub');
      for (const policy of ['fail', 'ignore', 'remove'] as ChildFailurePolicy[]) {
        const parent = { queue: q, id: `p-${policy}` };
        const own = { queue: q, id: `own-${policy}` };
        const root = { queue: sub, id: `r-${policy}` };
        await store.saveFlow([node(parent, null, 1), node(own, parent)]);
        await store.saveFlow([node(root, parent, 0, policy)]);
        await complete(store, own);
        assert.equal(await state(store, parent), 'waiting-children', policy);
        await fail(store, root);
        const after = await store.getJob(q, parent.id);
        if (policy === 'fail') {
          assert.equal(after?.state, 'failed');
          assert.equal(after?.failedReason, `child ${sub}/${root.id} failed: boom`);
        } else {
          assert.equal(after?.state, 'waiting', policy);
          assert.equal(after?.pendingChildrenCount, 0, policy);
        }
        const failed = await store.getJob(sub, root.id);
        assert.equal(failed?.parentId, policy === 'remove' ? null : parent.id, policy);
      }
    });

    s.test('saveFlow under a missing or finished job throws and saves nothing of the flow', async (store) => {
      const q = uniqueQueue();
      const sub = uniqueQueue('sub');
      const root = { queue: sub, id: 'r' };
      const leaf = { queue: sub, id: 'leaf' };
      const under = (parent: Ref) => [node(root, parent, 1), node(leaf, root)];
      await assert.rejects(store.saveFlow(under({ queue: q, id: 'nope' })), JobNotFoundError);
      // Parents are checked first: before the flow's own ids.
      await store.saveJob(sub, job(sub, 'taken', {}, { jobId: 'taken' }));
      await assert.rejects(
        store.saveFlow([
          node(root, { queue: q, id: 'nope' }, 1),
          node({ queue: sub, id: 'taken' }, root),
        ]),
        JobNotFoundError,
      );
      const done = { queue: q, id: 'done' };
      const broke = { queue: q, id: 'broke' };
      await store.saveJob(q, job(q, 'done', {}, { jobId: 'done' }));
      await store.saveJob(q, job(q, 'broke', {}, { jobId: 'broke' }));
      await complete(store, done);
      await fail(store, broke);
      for (const parent of [done, broke]) {
        await assert.rejects(
          store.saveFlow(under(parent)),
          (e: unknown) => e instanceof JobStateError && e.message.includes(parent.id),
        );
        assert.equal((await store.getJob(q, parent.id))?.pendingChildrenCount, 0);
        assert.deepEqual(await store.getChildrenJobs(q, parent.id), []);
      }
      assert.equal(await store.getJob(sub, 'r'), null);
      assert.equal(await store.getJob(sub, 'leaf'), null);
      assert.equal(await store.countJobs(sub, 'waiting'), 1);
      assert.equal(await store.countJobs(sub, 'waiting-children'), 0);
      // The same flow under an unfinished job is saved.
      await store.saveJob(q, job(q, 'open', {}, { jobId: 'open' }));
      assert.deepEqual(await store.saveFlow(under({ queue: q, id: 'open' })), ['r', 'leaf']);
    });

    s.test('moveToWaitingChildren parks the holder until its children finish', async (store) => {
      const q = uniqueQueue();
      await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
      const token = await claimNode(store, { queue: q, id: 'p' });
      // No child yet: the job stays active.
      assert.equal(await store.moveToWaitingChildren(q, 'p', token), 'none');
      assert.equal((await store.getJob(q, 'p'))?.state, 'active');
      const parent = { parentId: 'p', parentQueueName: q };
      await store.saveJob(q, job(q, 'c1', {}, { jobId: 'c1' }, parent));
      await store.saveJob(q, job(q, 'c2', {}, { jobId: 'c2' }, parent));
      assert.equal(await store.moveToWaitingChildren(q, 'p', 'stale'), 'lost');
      await complete(store, { queue: q, id: 'c1' });
      assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 1);
      assert.equal(await store.moveToWaitingChildren(q, 'p', token), 'moved');
      const parked = await store.getJob(q, 'p');
      assert.equal(parked?.state, 'waiting-children');
      assert.equal(parked?.lockToken, null);
      assert.equal(await store.moveToWaitingChildren(q, 'p', token), 'lost');
      await complete(store, { queue: q, id: 'c2' });
      assert.equal((await store.getJob(q, 'p'))?.state, 'waiting');
      const again = await claimNode(store, { queue: q, id: 'p' });
      assert.equal(await store.moveToWaitingChildren(q, 'p', again), 'none');
      assert.deepEqual(await store.getChildrenValues(q, 'p'), {
        [`${q}:c1`]: 'c1',
        [`${q}:c2`]: 'c2',
      });
    });

    s.test('moveToWaitingChildren publishes waiting-children', async (store) => {
      const q = uniqueQueue();
      const rec = record(store, q);
      await store.saveJob(q, job(q, 'p', {}, { jobId: 'p' }));
      const token = await claimNode(store, { queue: q, id: 'p' });
      await store.saveJob(
        q,
        job(q, 'c', {}, { jobId: 'c' }, { parentId: 'p', parentQueueName: q }),
      );
      assert.equal(await store.moveToWaitingChildren(q, 'p', token), 'moved');
      await rec.until((e) => e.jobId === 'p' && e.type === 'waiting-children');
      rec.stop();
    });

    s.test('removeJob of a pending child releases its parent', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await complete(store, t.sibling);
      await store.removeJob(t.leaf.queue, 'leaf');
      const mid = await store.getJob(t.mid.queue, 'mid');
      assert.equal(mid?.state, 'waiting');
      assert.equal(mid?.pendingChildrenCount, 0);
      assert.deepEqual(ids(await store.getChildrenJobs(t.mid.queue, 'mid')), ['sibling']);
    });

    s.test('removeJob of an unfinished child counts it off a parent that already failed', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await fail(store, t.leaf);
      assert.equal((await store.getJob(t.mid.queue, 'mid'))?.state, 'failed');
      assert.equal((await store.getJob(t.mid.queue, 'mid'))?.pendingChildrenCount, 2);
      // As in BullMQ, a removed child leaves its parent's dependencies whatever the parent's state.
      await store.removeJob(t.sibling.queue, 'sibling');
      const mid = await store.getJob(t.mid.queue, 'mid');
      assert.equal(mid?.state, 'failed');
      assert.equal(mid?.pendingChildrenCount, 1);
    });

    s.test('removeJob of a finished child leaves the parent count alone', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await complete(store, t.leaf);
      await store.removeJob(t.leaf.queue, 'leaf');
      const mid = await store.getJob(t.mid.queue, 'mid');
      assert.equal(mid?.state, 'waiting-children');
      assert.equal(mid?.pendingChildrenCount, 1);
    });

    s.test('a child removed on completion still releases its parent', async (store) => {
      const q = uniqueQueue();
      await saveFamily(store, q, 'p', ['c'], {}, { removeOnComplete: true });
      await complete(store, { queue: q, id: 'c' });
      assert.equal(await store.getJob(q, 'c'), null);
      assert.equal((await store.getJob(q, 'p'))?.state, 'waiting');
      assert.deepEqual(await store.getChildrenJobs(q, 'p'), []);
      // Its return value stays with the parent.
      assert.deepEqual(await store.getChildrenValues(q, 'p'), { [`${q}:c`]: 'c' });
    });

    s.test('getChildrenValues keeps each completed child value, also after the child is removed', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      assert.deepEqual(await store.getChildrenValues(t.mid.queue, 'mid'), {});
      const token = await claimNode(store, t.leaf);
      const value = { rows: [1, 'two', null], nested: { ok: true } };
      const [ok] = await store.completeJobs(t.leaf.queue, [
        { jobId: 'leaf', token, returnvalue: value },
      ]);
      assert.equal(ok, true);
      await complete(store, t.sibling);
      const expected = { [`${t.leaf.queue}:leaf`]: value, [`${t.leaf.queue}:sibling`]: 'sibling' };
      assert.deepEqual(await store.getChildrenValues(t.mid.queue, 'mid'), expected);
      await store.removeJob(t.leaf.queue, 'leaf');
      assert.deepEqual(await store.getChildrenValues(t.mid.queue, 'mid'), expected);
      // Only direct children: the root sees mid's value once mid completes, not the leaves'.
      assert.deepEqual(await store.getChildrenValues(t.root.queue, 'root'), {});
      assert.deepEqual(await store.getChildrenValues(t.mid.queue, 'missing'), {});
    });

    s.test('removing a parent drops its children values with it', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await complete(store, t.leaf);
      await store.removeJob(t.mid.queue, 'mid');
      assert.deepEqual(await store.getChildrenValues(t.mid.queue, 'mid'), {});
      // A new job under the same id starts with none.
      await store.saveJob(t.mid.queue, job(t.mid.queue, 'mid', {}, { jobId: 'mid' }));
      assert.deepEqual(await store.getChildrenValues(t.mid.queue, 'mid'), {});
    });

    s.test('drain removes a released parent together with its finished children', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await complete(store, t.leaf);
      await complete(store, t.sibling);
      assert.equal(await state(store, t.mid), 'waiting');
      await store.drain(t.mid.queue);
      assert.equal(await store.getJob(t.mid.queue, 'mid'), null);
      assert.equal(await store.getJob(t.leaf.queue, 'leaf'), null);
      assert.equal(await store.getJob(t.leaf.queue, 'sibling'), null);
      assert.equal(await store.getJob(t.mid.queue, 'other'), null);
      assert.equal(await state(store, t.root), 'waiting');
    });

    s.test('finishing a child whose parent is gone is harmless', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      const token = await claimNode(store, t.leaf);
      await store.removeJob(t.mid.queue, 'mid');
      assert.deepEqual(
        await store.completeJobs(t.leaf.queue, [{ jobId: 'leaf', token, returnvalue: 1 }]),
        [false],
      );
      // An unfinished child whose parent finished while running and was removed at once.
      const gone = { queue: t.mid.queue, id: 'gone' };
      await store.saveJob(
        gone.queue,
        job(gone.queue, 'gone', {}, {
          jobId: 'gone',
          removeOnComplete: true,
        }),
      );
      const held = await claimNode(store, gone);
      const orphan = { queue: t.leaf.queue, id: 'orphan' };
      await store.saveJob(
        orphan.queue,
        job(orphan.queue, 'orphan', {}, { jobId: 'orphan' }, {
          parentId: 'gone',
          parentQueueName: gone.queue,
        }),
      );
      await store.completeJobs(gone.queue, [{ jobId: 'gone', token: held, returnvalue: 1 }]);
      assert.equal(await store.getJob(gone.queue, 'gone'), null);
      await complete(store, orphan);
      assert.equal(await state(store, orphan), 'completed');
    });

    s.test('a parent failed by one child stays failed when another child completes', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      await fail(store, t.leaf);
      assert.equal(await state(store, t.mid), 'failed');
      await complete(store, t.sibling);
      const mid = await store.getJob(t.mid.queue, 'mid');
      assert.equal(mid?.state, 'failed');
      assert.equal(await store.fetchNextJob(t.mid.queue, 'w', 1000, { jobName: 'mid' }), null);
    });

    s.test('notifyChildCompleted on a released parent keeps it waiting at zero', async (store) => {
      const q = uniqueQueue();
      await store.saveJob(
        q,
        job(q, 'p', {}, { jobId: 'p' }, { state: 'waiting-children', pendingChildrenCount: 1 }),
      );
      assert.equal(await store.notifyChildCompleted(q, 'p'), 'waiting');
      assert.equal(await store.notifyChildCompleted(q, 'p'), 'waiting');
      assert.equal((await store.getJob(q, 'p'))?.pendingChildrenCount, 0);
      assert.equal(await store.countJobs(q, 'waiting'), 1);
    });

    s.test('a failed child with removeOnFail still applies its policy to the parent', async (store) => {
      const q = uniqueQueue();
      await store.saveFlow([
        {
          queueName: q,
          job: job(q, 'p', {}, { jobId: 'p' }, {
            state: 'waiting-children',
            pendingChildrenCount: 1,
          }),
        },
        {
          queueName: q,
          job: job(q, 'c', {}, { jobId: 'c', removeOnFail: true }, {
            parentId: 'p',
            parentQueueName: q,
          }),
        },
      ]);
      await fail(store, { queue: q, id: 'c' }, 'gone');
      assert.equal(await store.getJob(q, 'c'), null);
      const p = await store.getJob(q, 'p');
      assert.equal(p?.state, 'failed');
      assert.equal(p?.failedReason, `child ${q}/c failed: gone`);
    });

    s.test('flow jobs hold their deduplication keys: a later save with the key answers with the flow job', async (store) => {
      const parent = { queue: uniqueQueue('parent'), id: 'p' };
      const child = { queue: uniqueQueue('child'), id: 'c' };
      await store.saveFlow([
        node(parent, null, 1, undefined, { deduplication: { key: 'pk' } }),
        node(child, parent, 0, undefined, { deduplication: { key: 'ck' } }),
      ]);
      assert.equal((await store.findByDeduplicationKey(child.queue, 'ck'))?.id, 'c');
      assert.equal((await store.findByDeduplicationKey(parent.queue, 'pk'))?.id, 'p');
      const again = (q: string, key: string) => job(q, 'again', {}, { deduplication: { key } });
      assert.equal(await store.saveJob(child.queue, again(child.queue, 'ck')), 'c');
      assert.deepEqual(await store.saveBulk(child.queue, [again(child.queue, 'ck')]), ['c']);
      assert.equal(await store.saveJob(parent.queue, again(parent.queue, 'pk')), 'p');
      assert.equal(await store.countJobs(child.queue, 'waiting'), 1);
      assert.equal(await store.countJobs(parent.queue, 'waiting'), 0);
      assert.equal(await store.countJobs(parent.queue, 'waiting-children'), 1);
    });

    s.test('saveFlow with a deduplication key held by a live job throws DuplicateJobError and saves nothing', async (store) => {
      const parent = { queue: uniqueQueue('parent'), id: 'p' };
      const child = { queue: uniqueQueue('child'), id: 'c' };
      const sibling = { queue: uniqueQueue('sibling'), id: 's' };
      const dedup = { deduplication: { key: 'k' } };
      const holder = await store.saveJob(child.queue, job(child.queue, 'holder', {}, dedup));
      await assert.rejects(
        store.saveFlow([
          node(parent, null, 2),
          node(sibling, parent),
          node(child, parent, 0, undefined, dedup),
        ]),
        (e: unknown) => e instanceof DuplicateJobError && e.jobId === holder,
      );
      for (const ref of [parent, child, sibling]) {
        assert.equal(await store.getJob(ref.queue, ref.id), null, ref.id);
      }
      assert.equal(await store.countJobs(child.queue, 'waiting'), 1);
      assert.equal((await store.findByDeduplicationKey(child.queue, 'k'))?.id, holder);
      // Two jobs of one flow with one key in one queue: the second finds the first.
      const twin = { queue: child.queue, id: 'twin' };
      await assert.rejects(
        store.saveFlow([
          node(parent, null, 2),
          node({ queue: child.queue, id: 'c2' }, parent, 0, undefined, {
            deduplication: { key: 'k2' },
          }),
          node(twin, parent, 0, undefined, { deduplication: { key: 'k2' } }),
        ]),
        DuplicateJobError,
      );
      assert.equal(await store.getJob(parent.queue, 'p'), null);
      assert.equal(await store.findByDeduplicationKey(child.queue, 'k2'), null);
      assert.equal(await store.countJobs(child.queue, 'waiting'), 1);
    });

    s.test('saveFlow into a full group throws GroupFullError and saves nothing', async (store) => {
      const parent = { queue: uniqueQueue('parent'), id: 'p' };
      const child = { queue: uniqueQueue('child'), id: 'c' };
      const opts = { group: { id: 'g', maxSize: 1 } };
      await store.saveJob(child.queue, job(child.queue, 'x', {}, opts));
      await assert.rejects(
        store.saveFlow([node(parent, null, 1), node(child, parent, 0, undefined, opts)]),
        (e: unknown) => e instanceof GroupFullError && e.groupId === 'g' && e.maxSize === 1,
      );
      assert.equal(await store.getJob(parent.queue, 'p'), null);
      assert.equal(await store.getJob(child.queue, 'c'), null);
      assert.equal(await store.getWaitingGroupCount(child.queue, 'g'), 1);
      // The flow's own jobs count too: three into an empty group of two.
      const two = { group: { id: 'h', maxSize: 2 } };
      await assert.rejects(
        store.saveFlow([
          node(parent, null, 3),
          ...['a', 'b', 'c'].map((id) =>
            node({ queue: child.queue, id }, parent, 0, undefined, two)
          ),
        ]),
        GroupFullError,
      );
      assert.equal(await store.getJob(parent.queue, 'p'), null);
      assert.equal(await store.getWaitingGroupCount(child.queue, 'h'), 0);
      assert.equal(await store.countJobs(child.queue, 'waiting'), 1);
    });

    s.test('obliterate counts its unfinished jobs as finished for parents in other queues', async (store) => {
      const parent = { queue: uniqueQueue('parent'), id: 'p' };
      const b = uniqueQueue('b');
      const c = uniqueQueue('c');
      const done = { queue: b, id: 'done' };
      const pending = { queue: b, id: 'pending' };
      const busy = { queue: c, id: 'busy' };
      await store.saveFlow([
        node(parent, null, 3),
        node(done, parent),
        node(pending, parent),
        node(busy, parent),
      ]);
      await complete(store, done);
      const events = record(store, parent.queue);
      // The completed child was counted already; the waiting one counts now.
      await store.obliterate(b);
      assert.equal(await store.getJob(b, 'pending'), null);
      let p = await store.getJob(parent.queue, 'p');
      assert.equal(p?.state, 'waiting-children');
      assert.equal(p?.pendingChildrenCount, 1);
      // An active child removed with force counts too, and releases the parent.
      await claimNode(store, busy);
      await store.obliterate(c, { force: true });
      p = await store.getJob(parent.queue, 'p');
      assert.equal(p?.state, 'waiting');
      assert.equal(p?.pendingChildrenCount, 0);
      await events.until((e) => e.type === 'waiting' && e.jobId === 'p', 'parent waiting');
      events.stop();
      assert.equal(await store.getJob(c, 'busy'), null);
      // The completed child's value stays with the parent; obliterating the parent drops it.
      assert.deepEqual(await store.getChildrenValues(parent.queue, 'p'), { [`${b}:done`]: 'done' });
      await store.obliterate(parent.queue);
      assert.deepEqual(await store.getChildrenValues(parent.queue, 'p'), {});
    });

    s.test('obliterate leaves the children in other queues of a job of its queue pruned before', async (store) => {
      const parent = { queue: uniqueQueue('parent'), id: 'p' };
      const kids = uniqueQueue('kids');
      const bad = { queue: kids, id: 'bad' };
      await store.saveFlow([
        node(parent, null, 2, undefined, { removeOnFail: { count: 0 } }),
        node(bad, parent),
        node({ queue: kids, id: 'good' }, parent),
      ]);
      // bad fails for good, and the parent with it; pruned, the parent goes alone.
      const token = await claimNode(store, bad);
      assert.deepEqual(await store.failJobs(kids, [{ jobId: 'bad', token, reason: 'broke' }]), [
        true,
      ]);
      assert.equal(await store.pruneFinished(parent.queue), 1);
      await store.saveJob(parent.queue, job(parent.queue, 'other'));
      await store.obliterate(parent.queue);
      assert.equal(await store.countJobs(parent.queue, 'waiting'), 0);
      assert.equal((await store.getJob(kids, 'good'))?.state, 'waiting');
    });

    s.test('obliterate removes the descendants of its jobs in other queues', async (store) => {
      // root (A) <- mid (B) <- leaf, sibling (C); root <- other (B); mid <- back (A).
      const t = tree();
      const back = { queue: t.root.queue, id: 'back' };
      const flow = t.flow.map((n) => n.job.opts.jobId === 'mid' ? node(t.mid, t.root, 3) : n);
      await store.saveFlow([...flow, node(back, t.mid)]);
      const keepB = await store.saveJob(t.mid.queue, job(t.mid.queue));
      const keepC = await store.saveJob(t.leaf.queue, job(t.leaf.queue));
      await complete(store, t.sibling);
      const inB = record(store, t.mid.queue);
      const inC = record(store, t.leaf.queue);
      await store.obliterate(t.root.queue);
      // Every descendant goes, wherever it is and whatever its state (sibling completed).
      for (const ref of [t.root, t.mid, t.other, t.leaf, t.sibling, back]) {
        assert.equal(await store.getJob(ref.queue, ref.id), null, ref.id);
      }
      assert.equal((await store.getJob(t.mid.queue, keepB))?.state, 'waiting');
      assert.equal((await store.getJob(t.leaf.queue, keepC))?.state, 'waiting');
      assert.deepEqual(await store.getChildrenValues(t.mid.queue, 'mid'), {});
      // Their queues hear of it, as with removeJob.
      for (
        const [events, id] of [[inB, 'mid'], [inB, 'other'], [inC, 'leaf'], [
          inC,
          'sibling',
        ]] as const
      ) {
        await events.until((e) => e.type === 'removed' && e.jobId === id, `removed of ${id}`);
      }
      inB.stop();
      inC.stop();
    });

    s.test('obliterate treats a parent in another queue as removeJob of the child does', async (store) => {
      const a = uniqueQueue('a');
      const b = uniqueQueue('b');
      // A flow parent with a delay moves on to delayed when its last child goes.
      const later = { queue: b, id: 'later' };
      await store.saveFlow([
        node(later, null, 1, undefined, { delay: 60_000 }),
        node({ queue: a, id: 'c1' }, later),
      ]);
      // An active parent (its child added while it runs) just counts the child off.
      await store.saveJob(b, job(b, 'running', {}, { jobId: 'running' }));
      const token = await claimNode(store, { queue: b, id: 'running' });
      await store.saveJob(
        a,
        job(a, 'c2', {}, { jobId: 'c2' }, {
          parentId: 'running',
          parentQueueName: b,
        }),
      );
      const before = Date.now();
      await store.obliterate(a);
      const parent = await store.getJob(b, 'later');
      assert.equal(parent?.state, 'delayed');
      assert.equal(parent?.pendingChildrenCount, 0);
      assert.ok(parent!.delayUntil >= before + 60_000, 'delayed from the removal');
      const running = await store.getJob(b, 'running');
      assert.equal(running?.state, 'active');
      assert.equal(running?.pendingChildrenCount, 0);
      assert.equal(await store.moveToWaitingChildren(b, 'running', token), 'none');
    });

    s.test('obliterate without force refuses while a descendant in another queue is active; nothing removed', async (store) => {
      const t = tree();
      await store.saveFlow(t.flow);
      const token = await claimNode(store, t.leaf);
      await assert.rejects(store.obliterate(t.root.queue), (e: unknown) => {
        assert.ok(e instanceof ConveyorError);
        assert.equal(e.code, 'QUEUE_ACTIVE');
        assert.ok(e.message.includes(`${t.leaf.queue}/leaf`), e.message);
        return true;
      });
      for (const ref of [t.root, t.mid, t.other, t.sibling]) {
        assert.notEqual(await store.getJob(ref.queue, ref.id), null, ref.id);
      }
      assert.equal(await state(store, t.leaf), 'active');
      assert.equal((await store.getJob(t.mid.queue, 'mid'))?.pendingChildrenCount, 2);
      // With force, the running descendant goes too: its worker can no longer finish it.
      await store.obliterate(t.root.queue, { force: true });
      for (const ref of [t.root, t.mid, t.other, t.leaf, t.sibling]) {
        assert.equal(await store.getJob(ref.queue, ref.id), null, ref.id);
      }
      assert.deepEqual(
        await store.completeJobs(t.leaf.queue, [{ jobId: 'leaf', token, returnvalue: 1 }]),
        [false],
      );
    });
  });
}
