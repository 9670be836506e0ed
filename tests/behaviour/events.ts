/**
 * Behaviour: QueueEvents receives every event through the store's pub/sub, with no Worker in
 * the listening "process" (a peer store when the harness has one).
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, type StoreEvent } from '@conveyor/shared';
import { FlowProducer, QueueEvents } from '@conveyor/core';
import { eventually } from '../helpers.ts';
import { collect, gate, next, type Suite } from './context.ts';

/** Registers the QueueEvents cases. */
export function eventCases(s: Suite): void {
  describe('queue events', () => {
    s.test('waiting, active, progress, completed (with value), failed, retrying, delayed, removed, drained, paused, resumed, waiting-children', async ({ store, q, queue, worker, events, flows, harness, defer }) => {
      const peer = harness.openPeer ? await harness.openPeer(store) : store;
      if (peer !== store) defer(() => peer.disconnect());
      const ev = events(q, peer);
      await ev.waitUntilReady();
      const seen = new Map<string, unknown[]>();
      for (
        const type of [
          'waiting',
          'active',
          'progress',
          'completed',
          'failed',
          'retrying',
          'delayed',
          'removed',
          'drained',
          'paused',
          'resumed',
          'waiting-children',
        ]
      ) {
        seen.set(type, collect(ev, type));
      }
      const qu = queue();
      await qu.pause();
      await qu.resume();
      const delayed = await qu.add('later', 1, { delay: '1h' });
      await delayed.remove();
      await flows().add({
        name: 'parent',
        queueName: q,
        children: [{ name: 'kid', queueName: q }],
      });
      const w = worker(async (job) => {
        if (job.name === 'bad') throw new Error('bad job');
        await job.updateProgress(42);
        return { echo: job.data };
      });
      // Match by id: `name` is optional in store events (not every transport carries it).
      const good = await qu.add('good', 7);
      const [c] = await eventually(
        () =>
          (seen.get('completed') as Array<[{ jobId: string; returnvalue: unknown }]>)
            .find(([e]) => e.jobId === good.id),
        { message: 'completed event' },
      );
      assert.deepEqual(c.returnvalue, { echo: 7 });
      const bad = await qu.add('bad', 1, { attempts: 2 });
      const [f] = await eventually(
        () =>
          (seen.get('failed') as Array<
            [{ jobId: string; failedReason: string; attemptsMade: number }]
          >)
            .find(([e]) => e.jobId === bad.id),
        { message: 'failed event' },
      );
      assert.equal(f.failedReason, 'bad job');
      assert.equal(f.attemptsMade, 2);
      await eventually(() => (seen.get('drained')!.length > 0), { message: 'drained' });
      for (const [type, list] of seen) assert.ok(list.length > 0, `no ${type} event`);
      assert.deepEqual((seen.get('progress')![0] as [{ progress: unknown }])[0].progress, 42);
      assert.deepEqual((seen.get('paused')![0] as [{ jobName: string }])[0].jobName, '__all__');
      assert.equal(
        (seen.get('delayed')![0] as [{ delayUntil: number }])[0].delayUntil,
        delayed.delayUntil,
      );
      await w.close();
      const closed = next(ev, 'closed');
      await ev.close();
      await closed;
    });

    s.test('deduplicated and duplicated reach QueueEvents, from add and addBulk', async ({ store, q, queue, events, harness, defer }) => {
      const peer = harness.openPeer ? await harness.openPeer(store) : store;
      if (peer !== store) defer(() => peer.disconnect());
      const ev = events(q, peer);
      await ev.waitUntilReady();
      type Deduplicated = { jobId: string; deduplicationId: string; deduplicatedJobId: unknown };
      const deduplicated = collect<[Deduplicated]>(ev, 'deduplicated');
      const duplicated = collect<[{ jobId: string }]>(ev, 'duplicated');
      const waiting = collect<[{ jobId: string }]>(ev, 'waiting');
      const qu = queue();
      const key = { deduplication: { key: 'user-7' } };
      const first = await qu.add('sync', 1, key);
      assert.equal((await qu.add('sync', 2, key)).id, first.id);
      const hashed = await qu.add('h', { a: 1 }, { deduplication: { hash: true } });
      assert.equal((await qu.add('h', { a: 1 }, { deduplication: { hash: true } })).id, hashed.id);
      const bulk = await qu.addBulk([
        { name: 'sync', data: 3, opts: { ...key, jobId: 'mine' } },
        { name: 'plain', data: 4 },
        { name: 'once', data: 5, opts: { jobId: 'once' } },
        { name: 'once', data: 6, opts: { jobId: 'once' } },
      ]);
      assert.equal(bulk[0].id, first.id);
      assert.equal((await qu.add('once', 7, { jobId: 'once' })).id, 'once');
      // Events of one queue arrive in order: the last add's comes after all of the above.
      const last = await qu.add('last', 8);
      await eventually(() => waiting.some(([e]) => e.jobId === last.id), {
        message: 'the last waiting',
      });
      assert.deepEqual(deduplicated.map(([e]) => e), [
        { jobId: first.id, deduplicationId: 'user-7', deduplicatedJobId: null },
        { jobId: hashed.id, deduplicationId: hashed.deduplicationKey, deduplicatedJobId: null },
        { jobId: first.id, deduplicationId: 'user-7', deduplicatedJobId: 'mine' },
      ]);
      assert.deepEqual(duplicated.map(([e]) => e), [{ jobId: 'once' }, { jobId: 'once' }]);
    });

    s.test('stalled reaches QueueEvents', async ({ store, q, queue, worker, events }) => {
      const ev = events();
      const stalled = next(ev, 'stalled');
      const job = await queue().add('x', 1);
      await store.fetchNextJob(q, 'dead', 20);
      worker(() => 'ok', { stalledInterval: 25 });
      const [e] = await stalled;
      assert.equal(e.jobId, job.id);
    });

    s.test('waitUntilFinished resolves even with removeOnComplete, rejects on failure and ttl', async ({ queue, worker, events }) => {
      const ev = events();
      const qu = queue();
      worker((job) => {
        if (job.name === 'bad') throw new Error('nope');
        if (job.name === 'slow') return new Promise(() => {});
        return job.data * 2;
      }, { concurrency: 3 });
      const gone = await qu.add('good', 21, { removeOnComplete: true });
      assert.equal(await gone.waitUntilFinished(ev, 5000), 42);
      assert.equal(await qu.getJob(gone.id), null);
      const bad = await qu.add('bad', 1);
      await assert.rejects(() => bad.waitUntilFinished(ev, 5000), /nope/);
      const slow = await qu.add('slow', 1);
      await assert.rejects(() => slow.waitUntilFinished(ev, 50), /not finished after 50 ms/);
      const done = await qu.add('good', 1);
      await eventually(async () => (await done.getState()) === 'completed');
      assert.equal(await done.waitUntilFinished(ev), 2, 'already finished');
    });

    s.test('close waits for a completed value still being read: no event after closed', async ({ store, q, queue }) => {
      const job = await queue().add('x', 1);
      const claimed = await store.fetchNextJob(q, 'w', 30_000);
      await store.completeJobs(q, [{ jobId: job.id, token: claimed!.lockToken!, returnvalue: 42 }]);
      // A view whose events come from the case, and whose reads wait for the gate.
      const reading = gate();
      let deliver: ((e: StoreEvent) => void) | undefined;
      const view = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'subscribe') {
            return (_q: string, cb: (e: StoreEvent) => void) => (deliver = cb);
          }
          if (prop === 'unsubscribe') return () => {};
          const value = Reflect.get(target, prop, receiver);
          if (prop === 'getJob') {
            return async (...args: unknown[]) => {
              await reading.promise;
              return await value.apply(target, args);
            };
          }
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const ev = new QueueEvents(q, { store: view });
      const order: string[] = [];
      ev.on('completed', (e) => order.push(`completed ${e.jobId} ${e.returnvalue}`));
      ev.on('closed', () => order.push('closed'));
      // A completed event whose value did not fit the transport: QueueEvents reads it.
      deliver!({ type: 'completed', queueName: q, jobId: job.id, timestamp: Date.now() });
      const closing = ev.close();
      reading.open();
      await closing;
      assert.deepEqual(order, [`completed ${job.id} 42`, 'closed']);
    });

    s.test('QueueEvents and FlowProducer refuse options they do not have, naming them', async ({ store, q }) => {
      await Promise.resolve();
      assert.throws(
        () => new QueueEvents(q, { store, autorun: false } as never),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'opts.autorun',
      );
      assert.throws(
        () => new FlowProducer({ store, connection: {} } as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'opts.connection' &&
          /opts\.store/.test(e.message),
      );
    });
  });
}
