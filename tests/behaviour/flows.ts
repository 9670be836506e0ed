/**
 * Behaviour: FlowProducer (trees across queues, atomic save, getFlow) and child-failure
 * policies through three levels.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  type ChildFailurePolicy,
  DuplicateJobError,
  InvalidArgumentError,
  JobStateError,
} from '@conveyor/shared';
import { FlowProducer, type Job } from '@conveyor/core';
import { eventually, uniqueQueue } from '../helpers.ts';
import { collect, gate, next, spy, type Suite } from './context.ts';

/** Registers the flow cases. */
export function flowCases(s: Suite): void {
  describe('flows', () => {
    s.test('a 3-level flow across queues: saved in one call, children run before parents', async ({ store, q, worker, queue }) => {
      const other = uniqueQueue('b');
      const { store: spied, calls } = spy(store);
      const flows = new FlowProducer({ store: spied });
      const tree = await flows.add({
        name: 'root',
        queueName: q,
        data: 'r',
        children: [
          {
            name: 'mid',
            queueName: other,
            data: 'm',
            children: [{ name: 'leaf', queueName: q, data: 'l1' }, {
              name: 'leaf',
              queueName: other,
              data: 'l2',
            }],
          },
        ],
      });
      assert.equal(calls.get('saveFlow'), 1);
      assert.equal(tree.job.state, 'waiting-children');
      assert.equal(tree.children?.[0].job.state, 'waiting-children');
      assert.equal(tree.children?.[0].children?.length, 2);
      const order: string[] = [];
      const proc = async (job: Job): Promise<string> => {
        order.push(job.name);
        if (job.name === 'leaf') return `${job.data}!`;
        const values = await job.getChildrenValues<string>();
        return `${job.data}(${Object.values(values).sort().join(',')})`;
      };
      worker(proc);
      worker(proc, { queueName: other });
      await eventually(async () => (await queue().getJob(tree.job.id))?.state === 'completed');
      assert.deepEqual(order.slice(2), ['mid', 'root']);
      const root = await queue().getJob(tree.job.id);
      assert.equal(root?.returnvalue, 'r(m(l1!,l2!))');
      const read = await flows.getFlow({ id: tree.job.id, queueName: q });
      assert.equal(read?.children?.[0].job.name, 'mid');
      assert.equal(read?.children?.[0].children?.length, 2);
      const shallow = await flows.getFlow({ id: tree.job.id, queueName: q, depth: 1 });
      assert.equal(shallow?.children?.[0].children, undefined);
      const leaf = read!.children![0].children![0].job;
      assert.equal((await leaf.getParent())?.name, 'mid');
    });

    s.test('a parent reads the values of children removed on completion', async ({ store, q, worker, queue }) => {
      const flows = new FlowProducer({ store });
      const tree = await flows.add({
        name: 'parent',
        queueName: q,
        data: 0,
        children: [1, 2, 3].map((n) => ({
          name: 'child',
          queueName: q,
          data: n,
          opts: { removeOnComplete: true },
        })),
      });
      worker(async (job: Job<number>) => {
        if (job.name === 'child') return job.data * 10;
        const values = await job.getChildrenValues<number>();
        const deps = await job.getDependencies();
        assert.deepEqual(deps.processed, values);
        assert.deepEqual(deps.unprocessed, []);
        return Object.values(values).sort((a, b) => a - b);
      });
      await eventually(async () => (await queue().getJob(tree.job.id))?.state === 'completed');
      assert.deepEqual((await queue().getJob(tree.job.id))?.returnvalue, [10, 20, 30]);
      for (const child of tree.children ?? []) {
        assert.equal(await queue().getJob(child.job.id), null);
      }
    });

    s.test('a parent with a delay given as a duration is delayed by it once its children are done', async ({ q, worker, queue, flows }) => {
      const tree = await flows().add({
        name: 'parent',
        queueName: q,
        opts: { delay: '1m' },
        children: [{ name: 'child', queueName: q }],
      });
      worker(() => 'ok');
      const before = Date.now();
      const parent = await eventually(async () => {
        const p = await queue().getJob(tree.job.id);
        return p?.state === 'delayed' ? p : null;
      });
      assert.ok(parent.delayUntil >= before + 60_000, `delayed until ${parent.delayUntil}`);
      assert.equal(parent.opts.delay, 60_000);
    });

    s.test('a completed child that is retried is unprocessed until it completes again', async ({ q, worker, queue, flows }) => {
      const tree = await flows().add({
        name: 'parent',
        queueName: q,
        children: [
          { name: 'child', queueName: q },
          { name: 'later', queueName: q, opts: { delay: 60_000 } },
        ],
      });
      const child = tree.children![0].job;
      const parent = await queue().getJob(tree.job.id);
      let runs = 0;
      const key = `${q}:${child.id}`;
      const first = worker(() => `run ${++runs}`);
      await eventually(async () => (await queue().getJob(child.id))?.state === 'completed');
      await first.close();
      assert.deepEqual((await parent!.getDependencies()).processed, { [key]: 'run 1' });
      await (await queue().getJob(child.id))!.retry('completed');
      const retried = await parent!.getDependencies();
      assert.deepEqual(retried.processed, {});
      assert.deepEqual(
        retried.unprocessed.sort(),
        [key, `${q}:${tree.children![1].job.id}`].sort(),
      );
      assert.deepEqual(await parent!.getChildrenValues(), {});
      worker(() => `run ${++runs}`);
      await eventually(async () => (await queue().getJob(child.id))?.state === 'completed');
      assert.deepEqual(await parent!.getChildrenValues(), { [key]: 'run 2' });
    });

    for (const policy of ['fail', 'ignore', 'remove'] as ChildFailurePolicy[]) {
      s.test(`a leaf failing in a 3-level flow with policy "${policy}" settles every level`, async ({ q, worker, flows, queue }) => {
        const qu = queue();
        const tree = await flows().add({
          name: 'root',
          queueName: q,
          children: [{
            name: 'mid',
            queueName: q,
            opts: { failParentOnChildFailure: policy === 'fail' ? 'fail' : undefined },
            children: [
              { name: 'bad', queueName: q, opts: { failParentOnChildFailure: policy } },
              { name: 'good', queueName: q },
            ],
          }],
        });
        worker((job) => {
          if (job.name === 'bad') throw new Error('leaf broke');
          return job.name;
        });
        const rootId = tree.job.id;
        const midId = tree.children![0].job.id;
        const badId = tree.children![0].children![0].job.id;
        await eventually(async () => {
          const st = (await qu.getJob(rootId))?.state;
          return st === 'completed' || st === 'failed';
        }, { message: 'root settled' });
        const root = await qu.getJob(rootId);
        const mid = await qu.getJob(midId);
        const bad = await qu.getJob(badId);
        if (policy === 'fail') {
          assert.equal(mid?.state, 'failed');
          assert.equal(root?.state, 'failed');
          assert.match(mid?.failedReason ?? '', /leaf broke/);
        } else {
          assert.equal(mid?.state, 'completed');
          assert.equal(root?.state, 'completed');
          const deps = await mid!.getDependencies();
          assert.equal(Object.keys(deps.processed).length, 1);
          if (policy === 'ignore') {
            assert.equal(Object.keys(deps.failed).length, 1);
            assert.equal(bad?.parentId, midId);
          } else {
            assert.equal(Object.keys(deps.failed).length, 0);
            assert.equal(bad?.parentId, null);
          }
        }
        assert.equal(bad?.state, 'failed');
      });
    }

    const bullMqNames = [
      ['failParentOnFailure', 'fail'],
      ['ignoreDependencyOnFailure', 'ignore'],
      ['removeDependencyOnFailure', 'remove'],
    ] as const;
    for (const [option, policy] of bullMqNames) {
      s.test(`BullMQ's ${option}: true acts as failParentOnChildFailure "${policy}", also over a queue default`, async ({ q, worker, flows, queue }) => {
        const tree = await flows().add({
          name: 'parent',
          queueName: q,
          children: [
            { name: 'bad', queueName: q, opts: { [option]: true } },
            { name: 'good', queueName: q },
          ],
        });
        // The same option on Queue.add replaces the queue's default policy.
        const defaults = queue({
          defaultJobOptions: {
            failParentOnChildFailure: policy === 'ignore' ? 'remove' : 'ignore',
          },
        });
        const viaAdd = await defaults.add('bad', null, {
          [option]: true,
          parent: { id: tree.job.id, queue: q },
        });
        const badId = tree.children![0].job.id;
        for (const id of [badId, viaAdd.id]) {
          const stored = await queue().getJob(id);
          assert.equal(stored?.opts.failParentOnChildFailure, policy, id);
          assert.equal(option in stored!.opts, false, `${id}: stored under our name only`);
        }
        worker((job) => {
          if (job.name === 'bad') throw new Error('child broke');
          return job.name;
        });
        await eventually(async () => {
          const st = (await queue().getJob(tree.job.id))?.state;
          return st === 'completed' || st === 'failed';
        }, { message: 'parent settled' });
        const parent = await queue().getJob(tree.job.id);
        const bad = await queue().getJob(badId);
        assert.equal(bad?.state, 'failed');
        if (policy === 'fail') {
          assert.equal(parent?.state, 'failed');
          return;
        }
        assert.equal(parent?.state, 'completed');
        await eventually(async () => (await queue().getJob(viaAdd.id))?.state === 'failed');
        const deps = await parent!.getDependencies();
        assert.equal(Object.keys(deps.processed).length, 1);
        assert.equal(Object.keys(deps.failed).length, policy === 'ignore' ? 2 : 0);
        const ignored = await parent!.getIgnoredChildrenFailures();
        assert.deepEqual(
          ignored,
          policy === 'ignore'
            ? { [`${q}:${badId}`]: 'child broke', [`${q}:${viaAdd.id}`]: 'child broke' }
            : {},
        );
        assert.equal(bad?.parentId, policy === 'ignore' ? tree.job.id : null);
      });
    }

    s.test('a parent failed by one child and pruned by its removeOnFail count: its other children still run', async ({ q, worker, queue, flows }) => {
      const tree = await flows().add({
        name: 'parent',
        queueName: q,
        opts: { removeOnFail: { count: 0 } },
        // The failing child's own keep-count makes the worker prune after its failure.
        children: ['bad', 'slow', 'later'].map((name) => ({
          name,
          queueName: q,
          opts: { removeOnFail: { count: 10 } },
        })),
      });
      const slowGate = gate();
      let slowStarted = false;
      const w = worker(async (job) => {
        if (job.name === 'bad') throw new Error('broke');
        if (job.name === 'slow') {
          slowStarted = true;
          await slowGate.promise;
        }
        return job.name;
      }, { concurrency: 2, pruneInterval: 20 });
      const done = collect<[Job, unknown]>(w, 'completed');
      await eventually(async () => slowStarted && (await queue().getJob(tree.job.id)) === null, {
        message: 'the failed parent pruned while slow runs',
      });
      slowGate.open();
      await eventually(() => done.length === 2, { message: 'slow and later completed' });
      assert.deepEqual(done.map(([j, r]) => [j.name, r]).sort(), [['later', 'later'], [
        'slow',
        'slow',
      ]]);
      const states = await Promise.all(
        tree.children!.map(async (c) => (await queue().getJob(c.job.id))?.state),
      );
      assert.deepEqual(states, ['failed', 'completed', 'completed']);
    });

    s.test('a flow under an existing job (root opts.parent): the job waits for the root, gets its value, then runs', async ({ q, worker, queue, flows }) => {
      const other = uniqueQueue('sub');
      const report = await flows().add({
        name: 'report',
        queueName: q,
        children: [{ name: 'first', queueName: q, data: 'f' }],
      });
      const bundle = await flows().add({
        name: 'bundle',
        queueName: other,
        data: 'b',
        opts: { parent: { id: report.job.id, queue: q } },
        children: [{ name: 'part', queueName: other, data: 'p' }],
      });
      assert.equal(bundle.job.parentId, report.job.id);
      assert.equal(bundle.job.parentQueueName, q);
      assert.equal((await queue().getJob(report.job.id))?.pendingChildrenCount, 2);
      const order: string[] = [];
      const proc = async (job: Job): Promise<string> => {
        order.push(job.name);
        if (job.name === 'first' || job.name === 'part') return `${job.data}!`;
        const values = await job.getChildrenValues<string>();
        return `${job.data ?? job.name}(${Object.values(values).sort().join(',')})`;
      };
      const main = worker(proc);
      const first = next<[Job, string]>(main, 'completed', (job) => job.name === 'first');
      const done = next<[Job, string]>(main, 'completed', (job) => job.name === 'report');
      await first;
      // Its own child is done; the new flow's root is not: the job still waits.
      const waiting = await queue().getJob(report.job.id);
      assert.equal(waiting?.state, 'waiting-children');
      assert.equal(waiting?.pendingChildrenCount, 1);
      worker(proc, { queueName: other });
      const [job, value] = await done;
      assert.equal(job.id, report.job.id);
      assert.equal(value, 'report(b(p!),f!)');
      assert.deepEqual(await job.getChildrenValues(), {
        [`${q}:${report.children![0].job.id}`]: 'f!',
        [`${other}:${bundle.job.id}`]: 'b(p!)',
      });
      assert.deepEqual(order, ['first', 'part', 'bundle', 'report']);
    });

    s.test('opts.parent: refused below a root and for a job of the same call; a finished parent refused; nothing saved', async ({ q, queue, flows, worker }) => {
      const qu = queue();
      const existing = await qu.add('p', null);
      const parent = { id: existing.id, queue: q };
      await assert.rejects(
        () =>
          flows().add({
            name: 'root',
            queueName: q,
            children: [{
              name: 'mid',
              queueName: q,
              children: [{ name: 'leaf', queueName: q, opts: { parent } }],
            }],
          }),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.option === 'flows[0].children[0].children[0].opts.parent' &&
          e.message.includes("below a flow's root"),
      );
      await assert.rejects(
        () =>
          flows().addBulk([
            { name: 'a', queueName: q, opts: { jobId: 'a', parent } },
            { name: 'b', queueName: q, opts: { parent: { id: 'a', queue: q } } },
          ]),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'flows[1].opts.parent',
      );
      assert.deepEqual(await qu.getJobCounts('waiting', 'waiting-children'), {
        waiting: 1,
        'waiting-children': 0,
      });
      assert.equal((await qu.getJob(existing.id))?.pendingChildrenCount, 0);
      // Each flow of addBulk may have its own parent.
      const second = await qu.add('p', null);
      const nodes = await flows().addBulk([
        { name: 'a', queueName: q, opts: { parent } },
        { name: 'b', queueName: q, opts: { parent: { id: second.id, queue: q } } },
      ]);
      assert.equal(nodes[0].job.parentId, existing.id);
      assert.equal(nodes[1].job.parentId, second.id);
      assert.equal((await qu.getJob(existing.id))?.pendingChildrenCount, 1);
      assert.equal((await qu.getJob(second.id))?.pendingChildrenCount, 1);
      // A finished parent takes no flow.
      const solo = queue({}, `${q}-solo`);
      const done = await solo.add('solo', null);
      const w = worker(() => 'ok', { queueName: solo.name });
      await next(w, 'completed', (job: Job) => job.id === done.id);
      await assert.rejects(
        () =>
          flows().add({
            name: 'late',
            queueName: q,
            opts: { parent: { id: done.id, queue: solo.name } },
            children: [{ name: 'early', queueName: q }],
          }),
        JobStateError,
      );
      assert.deepEqual(await qu.getJobCounts('waiting', 'waiting-children'), {
        waiting: 4,
        'waiting-children': 0,
      });
    });

    s.test('addBulk saves several flows in one call; a duplicate id saves nothing', async ({ store, q, queue }) => {
      const { store: spied, calls } = spy(store);
      const flows = new FlowProducer({ store: spied });
      const nodes = await flows.addBulk([
        { name: 'a', queueName: q, children: [{ name: 'a1', queueName: q }] },
        { name: 'b', queueName: q, opts: { jobId: 'fixed' } },
      ]);
      assert.equal(calls.get('saveFlow'), 1);
      assert.equal(nodes[1].job.id, 'fixed');
      const before = await queue().getJobCounts();
      await assert.rejects(
        () =>
          flows.add({
            name: 'c',
            queueName: q,
            children: [{ name: 'dup', queueName: q, opts: { jobId: 'fixed' } }],
          }),
        DuplicateJobError,
      );
      assert.deepEqual(await queue().getJobCounts(), before);
      await assert.rejects(
        () =>
          flows.add({
            name: 'x',
            queueName: q,
            children: [{ name: 'y', queueName: q, opts: { attempts: 0 } }],
          }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'flows[0].children[0].opts.attempts',
      );
    });
  });
}
