/**
 * MemoryStore-specific tests (the contract itself is covered by the conformance suite):
 * lifecycle errors, instance independence, synchronous and re-entrant event delivery, and
 * argument checks. Run by tests/memory.test.ts on every runtime.
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidArgumentError,
  type JobData,
  newJob,
  StoreError,
  type StoreEvent,
} from '@conveyor/shared';
import { MemoryStore } from './mod.ts';
import './copy_test.ts';

async function open(options = {}): Promise<MemoryStore> {
  const store = new MemoryStore(options);
  await store.connect();
  return store;
}

describe('MemoryStore specifics', () => {
  it('refuses calls before connect and after disconnect with StoreError NOT_CONNECTED', async () => {
    const store = new MemoryStore();
    await assert.rejects(store.getJob('q', '1'), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.equal(e.code, 'NOT_CONNECTED');
      return true;
    });
    await store.connect();
    const id = await store.saveJob('q', newJob('q', 'n', {}));
    await store.disconnect();
    await assert.rejects(store.saveJob('q', newJob('q', 'n', {})), StoreError);
    await store.connect();
    assert.equal((await store.getJob('q', id))?.id, id, 'data survives a reconnect');
  });

  it('instances share nothing', async () => {
    const a = await open();
    const b = await open();
    const seen: StoreEvent[] = [];
    b.subscribe('q', (e) => seen.push(e));
    await a.saveJob('q', newJob('q', 'n', {}, { jobId: 'x' }));
    await a.pauseJobName('q', 'n');
    assert.equal(await b.getJob('q', 'x'), null);
    assert.deepEqual(await b.getPausedJobNames('q'), []);
    assert.deepEqual(await b.listQueues(), []);
    assert.deepEqual(seen, []);
  });

  it('generated ids never collide with custom ids', async () => {
    const store = await open();
    await store.saveJob('q', newJob('q', 'n', {}, { jobId: '1' }));
    await store.saveJob('q', newJob('q', 'n', {}, { jobId: '2' }));
    const generated = await store.saveBulk('q', [newJob('q', 'n', {}), newJob('q', 'n', {})]);
    assert.ok(!generated.includes('1') && !generated.includes('2'));
    assert.equal(await store.countJobs('q', 'waiting'), 4);
  });

  it('delivers events synchronously, in order, before the call resolves', async () => {
    const store = await open();
    const types: string[] = [];
    store.subscribe('q', (e) => types.push(`${e.jobId}:${e.type}`));
    const saving = store.saveBulk('q', [
      newJob('q', 'a', {}, { jobId: 'a' }),
      newJob('q', 'b', {}, { jobId: 'b' }),
    ]);
    assert.deepEqual(types, ['a:waiting', 'b:waiting'], 'delivered before the promise settles');
    await saving;
  });

  it('listeners see the finished transition, also when they call the store', async () => {
    const store = await open();
    const seen: Array<JobData | null> = [];
    store.subscribe('q', (e) => {
      if (e.type === 'waiting' && e.jobId === 'a') {
        // Re-entrant claim during delivery: the whole batch is already saved.
        void store.countJobs('q', 'waiting').then((n) => seen.push({ n } as never));
      }
      if (e.type === 'completed') void store.getJob('q', 'p').then((p) => seen.push(p));
    });
    await store.saveBulk('q', [
      newJob('q', 'a', {}, { jobId: 'a' }),
      newJob('q', 'b', {}, { jobId: 'b' }),
    ]);
    await store.saveFlow([
      {
        queueName: 'q',
        job: newJob('q', 'p', {}, { jobId: 'p' }, {
          state: 'waiting-children',
          pendingChildrenCount: 1,
        }),
      },
      {
        queueName: 'q',
        job: newJob('q', 'c', {}, { jobId: 'c' }, { parentId: 'p', parentQueueName: 'q' }),
      },
    ]);
    const c = await store.fetchNextJob('q', 'w', 1000, { jobName: 'c' });
    await store.completeJobs('q', [{ jobId: 'c', token: c!.lockToken!, returnvalue: 1 }]);
    await Promise.resolve();
    assert.deepEqual(seen[0], { n: 2 });
    assert.equal((seen[1] as JobData).state, 'waiting', 'the parent is already released');
  });

  it('a throwing listener does not stop the others; its error goes to onError', async () => {
    const errors: Error[] = [];
    const store = await open({ onError: (e: Error) => errors.push(e) });
    const got: string[] = [];
    store.subscribe('q', () => {
      throw new Error('listener broke');
    });
    store.subscribe('q', (e) => got.push(e.type));
    await store.saveJob('q', newJob('q', 'n', {}));
    assert.deepEqual(got, ['waiting']);
    assert.equal(errors[0]?.message, 'listener broke');
  });

  it('events handed to listeners are copies', async () => {
    const store = await open();
    store.subscribe('q', (e) => {
      (e.data as { returnvalue: { v: number } } | undefined)?.returnvalue &&
        ((e.data as { returnvalue: { v: number } }).returnvalue.v = 99);
    });
    const id = await store.saveJob('q', newJob('q', 'n', {}));
    const c = await store.fetchNextJob('q', 'w', 1000);
    await store.completeJobs('q', [{ jobId: id, token: c!.lockToken!, returnvalue: { v: 1 } }]);
    assert.deepEqual((await store.getJob('q', id))?.returnvalue, { v: 1 });
  });

  it("each listener gets its own event; publish copies the caller's event", async () => {
    const store = await open();
    const seen: StoreEvent[] = [];
    const spoil = (e: StoreEvent) => {
      seen.push(structuredClone(e));
      e.type = 'removed';
      (e.data as { returnvalue: { v: number } }).returnvalue.v = 99;
    };
    for (let i = 0; i < 3; i++) store.subscribe('q', (e) => spoil(e));
    const event: StoreEvent = {
      type: 'completed',
      queueName: 'q',
      jobId: '1',
      data: { returnvalue: { v: 1 } },
      timestamp: 1,
    };
    await store.publish(event);
    assert.equal(seen.length, 3);
    for (const e of seen) assert.deepEqual(e, { ...event, data: { returnvalue: { v: 1 } } });
    assert.equal(event.type, 'completed');
    assert.deepEqual(event.data, { returnvalue: { v: 1 } });
  });

  it('refuses options.tx (no transactions) and saves nothing', async () => {
    const store = await open();
    const tx = { fake: true };
    for (
      const attempt of [
        () => store.saveJob('q', newJob('q', 'n', {}), { tx }),
        () => store.saveBulk('q', [newJob('q', 'n', {})], { tx }),
        () =>
          store.saveFlow([{ queueName: 'q', job: newJob('q', 'n', {}, { jobId: 'f' }) }], { tx }),
      ]
    ) {
      await assert.rejects(attempt(), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.equal(e.option, 'options.tx');
        return true;
      });
    }
    assert.equal(await store.countJobs('q', 'waiting'), 0);
  });

  it('names the option and value of bad arguments', async () => {
    const store = await open();
    const cases: Array<[Promise<unknown>, string]> = [
      [store.fetchNextJob('q', 'w', 1000, { groupConcurrency: 0 }), 'opts.groupConcurrency'],
      [
        store.fetchNextJob('q', 'w', 1000, { limiter: { max: 1, duration: 0 } }),
        'opts.limiter.duration',
      ],
      [store.fetchNextJobs('q', 'w', 1000, 1.5), 'count'],
      [store.listJobs('q', 'nope' as never), 'state'],
      [store.saveJob('q', { ...newJob('q', 'n', {}), priority: Number.NaN }), 'job.priority'],
      [
        store.saveBulk('q', [newJob('q', 'n', {}), { ...newJob('q', 'n', {}), state: 'active' }]),
        'jobs[1].state',
      ],
      [store.saveJob('q', newJob('q', 'n', {}, { jobId: '' })), 'job.opts.jobId'],
      [store.saveJob('', newJob('q', 'n', {})), 'queueName'],
      [store.saveFlow([{ queueName: 'q', job: newJob('q', 'n', {}) }]), 'jobs[0].job.opts.jobId'],
    ];
    for (const [promise, option] of cases) {
      await assert.rejects(promise, (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${option}: ${e}`);
        assert.equal(e.option, option);
        return true;
      });
    }
    assert.equal(await store.countJobs('q', 'waiting'), 0);
  });

  it('claims exactly like a brute-force reference under random filters', async () => {
    const store = await open();
    type Ref = {
      id: string;
      priority: number;
      lifo: boolean;
      seq: number;
      group: string | null;
      name: string;
    };
    const waiting: Ref[] = [];
    const active = new Map<string, { group: string | null; token: string }>();
    const served = new Map<string, number>();
    let claims = 0;
    let seq = 0;
    let x = 7;
    // The high bits of the LCG (its low bits repeat with a short period).
    const rand = (n: number) =>
      Math.floor(((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648) * n);
    const groups = ['g0', 'g1', 'g2', 'g3', null];
    const paused = new Set<string>();
    for (let step = 0; step < 3000; step++) {
      const op = rand(11);
      if (op === 10) {
        const name = rand(2) ? 'a' : 'b';
        if (paused.has(name)) await store.resumeJobName('q', name), paused.delete(name);
        else await store.pauseJobName('q', name), paused.add(name);
      } else if (op < 5) {
        const ref: Ref = {
          id: '',
          priority: rand(3),
          lifo: rand(4) === 0,
          seq: seq++,
          group: groups[rand(groups.length)],
          name: rand(2) ? 'a' : 'b',
        };
        const opts = {
          priority: ref.priority,
          lifo: ref.lifo,
          ...(ref.group ? { group: { id: ref.group } } : {}),
        };
        ref.id = await store.saveJob('q', newJob('q', ref.name, {}, opts));
        waiting.push(ref);
      } else if (op < 8) {
        const grouped = rand(2) === 0;
        const opts = {
          groupConcurrency: grouped && rand(3) ? 1 + rand(2) : undefined,
          excludeGroups: grouped && !rand(3) ? ['g1'] : undefined,
          groupRoundRobin: grouped && rand(2) === 0,
          jobName: rand(3) ? undefined : 'a',
          lifo: rand(4) === 0,
        };
        const key = (r: Ref) => opts.lifo ? -r.seq : r.lifo ? -r.seq : r.seq;
        const order = [...waiting].sort((p, q) => p.priority - q.priority || key(p) - key(q));
        const activeIn = (g: string) => [...active.values()].filter((a) => a.group === g).length;
        const eligible = order.filter((r) =>
          (opts.jobName === undefined || r.name === opts.jobName) && !paused.has(r.name) &&
          (r.group === null ||
            (!opts.excludeGroups?.includes(r.group) &&
              (opts.groupConcurrency === undefined || activeIn(r.group) < opts.groupConcurrency)))
        );
        let expected: Ref | undefined = eligible[0];
        if (expected && opts.groupRoundRobin) {
          const level = eligible.filter((r) => r.priority === expected!.priority);
          const s = (r: Ref) => served.get(r.group ?? '-') ?? -1;
          expected = level.reduce((best, r) => (s(r) < s(best) ? r : best));
        }
        const got = await store.fetchNextJob('q', 'w', 30_000, opts);
        assert.equal(got?.id, expected?.id, `step ${step} ${JSON.stringify(opts)}`);
        if (expected) {
          waiting.splice(waiting.indexOf(expected), 1);
          active.set(expected.id, { group: expected.group, token: got!.lockToken! });
          served.set(expected.group ?? '-', claims++);
        }
      } else if (active.size > 0) {
        const [id, { token }] = [...active.entries()][rand(active.size)];
        assert.deepEqual(await store.completeJobs('q', [{ jobId: id, token, returnvalue: null }]), [
          true,
        ]);
        active.delete(id);
      }
    }
  });
});
