/**
 * Behaviour: Queue (add, addBulk, schedule, options, pause, drain, clean, queries, bulk moves).
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { GroupFullError, InvalidArgumentError, type StoreInterface } from '@conveyor/shared';
import { Queue, QueueEvents } from '@conveyor/core';
import { eventually } from '../helpers.ts';
import { next, spy, type Suite } from './context.ts';

/** Registers the Queue cases. */
export function queueCases(s: Suite): void {
  describe('queue', () => {
    s.test('add saves a waiting job and returns it', async ({ queue }) => {
      const queue1 = queue();
      const job = await queue1.add('email', { to: 'a' });
      assert.equal(job.name, 'email');
      assert.deepEqual(job.data, { to: 'a' });
      assert.equal(job.state, 'waiting');
      const stored = await queue1.getJob(job.id);
      assert.ok(stored);
      assert.deepEqual(stored.data, { to: 'a' });
      assert.equal(await queue1.count(), 1);
    });

    s.test('delay as ms or a human string makes a delayed job', async ({ queue }) => {
      const qu = queue();
      const before = Date.now();
      const a = await qu.add('a', 1, { delay: '10m' });
      const b = await qu.add('b', 1, { delay: 1500 });
      assert.equal(a.state, 'delayed');
      assert.ok(Math.abs(a.delayUntil - (before + 600_000)) < 1000);
      assert.ok(Math.abs(b.delayUntil - (before + 1500)) < 1000);
      assert.deepEqual(await qu.getJobCounts('waiting', 'delayed'), { waiting: 0, delayed: 2 });
    });

    s.test('schedule accepts ms, a Date, "in 10 minutes", "2h" and "1h30m"', async ({ queue }) => {
      const qu = queue();
      const now = Date.now();
      const cases: Array<[number | string | Date, number]> = [
        [5000, 5000],
        [new Date(now + 60_000), 60_000],
        ['in 10 minutes', 600_000],
        ['2h', 7_200_000],
        ['1h30m', 5_400_000],
      ];
      for (const [when, ms] of cases) {
        const job = await qu.schedule(when, 'x', null);
        assert.equal(job.state, 'delayed');
        assert.ok(Math.abs(job.delayUntil - (now + ms)) < 1000, `${String(when)}`);
      }
      await assert.rejects(() => qu.schedule('whenever', 'x', null), InvalidArgumentError);
    });

    s.test('now() adds a job that runs at once, ignoring a default delay', async ({ queue }) => {
      const qu = queue({ defaultJobOptions: { delay: '1h' } });
      assert.equal((await qu.add('late', 1)).state, 'delayed');
      assert.equal((await qu.now('soon', 1)).state, 'waiting');
    });

    s.test('addBulk saves every job in one store call, ids in order', async ({ store, q }) => {
      const { store: spied, calls } = spy(store);
      const qu = new Queue(q, { store: spied });
      const jobs = await qu.addBulk([
        { name: 'a', data: 1 },
        { name: 'b', data: 2, opts: { delay: 60_000 } },
        { name: 'c', data: 3, opts: { priority: 2 } },
      ]);
      assert.equal(calls.get('saveBulk'), 1);
      assert.equal(calls.get('saveJob'), undefined);
      assert.deepEqual(jobs.map((j) => j.name), ['a', 'b', 'c']);
      assert.equal(jobs[1].state, 'delayed');
      assert.equal((await qu.getJob(jobs[2].id))?.priority, 2);
    });

    s.test('a custom jobId is idempotent: adding it again returns the existing job', async ({ queue }) => {
      const qu = queue();
      const a = await qu.add('x', { v: 1 }, { jobId: 'order-7' });
      const b = await qu.add('x', { v: 2 }, { jobId: 'order-7' });
      assert.equal(a.id, 'order-7');
      assert.equal(b.id, 'order-7');
      assert.deepEqual(b.data, { v: 1 });
      assert.equal(await qu.count(), 1);
    });

    s.test('deduplication by key, by hash, and with a ttl', async ({ queue }) => {
      const qu = queue();
      const a = await qu.add('x', 1, { deduplication: { key: 'k' } });
      const b = await qu.add('x', 2, { deduplication: { key: 'k' } });
      assert.equal(a.id, b.id);
      // BullMQ's name for the key: id.
      const i1 = await qu.add('x', 3, { deduplication: { id: 'i' } });
      const i2 = await qu.add('x', 4, { deduplication: { id: 'i' } });
      const i3 = await qu.add('x', 5, { deduplication: { key: 'i' } });
      assert.deepEqual([i2.id, i3.id], [i1.id, i1.id]);
      assert.equal(await qu.getDeduplicationJobId('i'), i1.id);
      const h1 = await qu.add('h', { n: 1, m: 2 }, { deduplication: { hash: true } });
      const h2 = await qu.add('h', { m: 2, n: 1 }, { deduplication: { hash: true } });
      const h3 = await qu.add('h', { n: 2 }, { deduplication: { hash: true } });
      assert.equal(h1.id, h2.id);
      assert.notEqual(h1.id, h3.id);
      const t1 = await qu.add('t', 1, { delay: '1h', deduplication: { key: 't', ttl: 50 } });
      const t2 = await eventually(async () => {
        const j = await qu.add('t', 2, { delay: '1h', deduplication: { key: 't', ttl: 50 } });
        return j.id !== t1.id ? j : null;
      }, { message: 'ttl expiry' });
      assert.notEqual(t2.id, t1.id);
    });

    s.test('bad options throw InvalidArgumentError naming the option and value; nothing is saved', async ({ queue }) => {
      const qu = queue();
      const bad: Array<[Record<string, unknown>, string]> = [
        [{ attempts: 0 }, 'opts.attempts'],
        [{ attempts: 1.5 }, 'opts.attempts'],
        [{ delay: 'soonish' }, 'opts.delay'],
        [{ delay: -5 }, 'opts.delay'],
        [{ priority: 0.5 }, 'opts.priority'],
        [{ backoff: { type: 'linear', delay: 1 } }, 'opts.backoff.type'],
        [{ backoff: { type: 'fixed', delay: -1 } }, 'opts.backoff.delay'],
        [{ backoff: { type: 'exponential', delay: 1, jitter: 2 } }, 'opts.backoff.jitter'],
        [{ timeout: 0 }, 'opts.timeout'],
        [{ removeOnComplete: -1 }, 'opts.removeOnComplete'],
        [{ removeOnFail: { age: -1 } }, 'opts.removeOnFail.age'],
        [{ failParentOnChildFailure: 'explode' }, 'opts.failParentOnChildFailure'],
        [{ ignoreDependencyOnFailure: 'yes' }, 'opts.ignoreDependencyOnFailure'],
        [
          { failParentOnChildFailure: 'ignore', removeDependencyOnFailure: true },
          'opts.removeDependencyOnFailure',
        ],
        [
          { failParentOnFailure: true, ignoreDependencyOnFailure: true },
          'opts.ignoreDependencyOnFailure',
        ],
        [{ continueParentOnFailure: true }, 'opts.continueParentOnFailure'],
        [{ debounce: { id: 'd' } }, 'opts.debounce'],
        [{ stackTraceLimit: 5 }, 'opts.stackTraceLimit'],
        [{ deduplication: { id: 'a', key: 'b' } }, 'opts.deduplication.id'],
        [{ deduplication: { id: '' } }, 'opts.deduplication.id'],
        [{ deduplication: { id: 'a', ttl: 10, extend: true } }, 'opts.deduplication.extend'],
        [{ deduplication: { id: 'a', replace: true } }, 'opts.deduplication.replace'],
        [{ attempt: 3 }, 'opts.attempt'],
        [{ deduplication: {} }, 'opts.deduplication'],
        [{ deduplication: { key: 'k', ttl: 0 } }, 'opts.deduplication.ttl'],
        [{ group: { id: '' } }, 'opts.group.id'],
        [{ group: { id: 'g', maxSize: 0 } }, 'opts.group.maxSize'],
        [{ jobId: '' }, 'opts.jobId'],
      ];
      for (const [opts, option] of bad) {
        await assert.rejects(() => qu.add('x', 1, opts), (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError, `${option}: ${String(e)}`);
          assert.equal(e.option, option);
          assert.ok(e.message.includes(option));
          return true;
        });
      }
      await assert.rejects(() => qu.add('', 1), InvalidArgumentError);
      await assert.rejects(
        () =>
          qu.addBulk([{ name: 'ok', data: 1 }, { name: 'bad', data: 1, opts: { attempts: -1 } }]),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'jobs[1].opts.attempts',
      );
      assert.throws(() => new Queue('', { store: qu.store }), InvalidArgumentError);
      // An option of BullMQ's with another form here is named, with what to use instead.
      assert.throws(
        () => new Queue('q', { store: qu.store, prefix: 'app1' } as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'opts.prefix' &&
          /schema/.test(e.message),
      );
      assert.throws(
        () => new Queue('q', { store: qu.store, defaultJobOptions: { sizeLimit: 1 } } as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'defaultJobOptions.sizeLimit',
      );
      assert.equal(await qu.count(), 0);
    });

    s.test('a jobId or a deduplication key in defaultJobOptions is refused (every add would return the first job)', async ({ store, q, queue }) => {
      const refused = (defaultJobOptions: Record<string, unknown>, option: string) =>
        assert.throws(
          () => new Queue(q, { store, defaultJobOptions }),
          (e: unknown) => e instanceof InvalidArgumentError && e.option === option,
        );
      refused({ jobId: 'same' }, 'defaultJobOptions.jobId');
      refused({ deduplication: { key: 'same' } }, 'defaultJobOptions.deduplication.key');
      refused({ deduplication: { id: 'same' } }, 'defaultJobOptions.deduplication.id');
      // A hash is per job (name + data): a fine default.
      const qu = queue({ defaultJobOptions: { deduplication: { hash: true } } });
      const a = await qu.add('x', 1);
      const b = await qu.add('x', 2);
      assert.notEqual(a.id, b.id);
    });

    s.test('null options and a missing store throw InvalidArgumentError, not TypeError', async ({ queue }) => {
      const qu = queue();
      const nul = null as unknown as Record<string, never>;
      const isOpts = (e: unknown) => e instanceof InvalidArgumentError && e.option === 'opts';
      await assert.rejects(() => qu.add('x', 1, nul), isOpts);
      await assert.rejects(() => qu.now('x', 1, nul), isOpts);
      await assert.rejects(() => qu.schedule(1000, 'x', 1, nul), isOpts);
      await assert.rejects(() => qu.addBulk([{ name: 'x', data: 1 }], nul), isOpts);
      for (const opts of [{}, undefined, null]) {
        assert.throws(
          () => new QueueEvents('q', opts as unknown as { store: never }),
          (e: unknown) => e instanceof InvalidArgumentError && e.option === 'opts.store',
        );
      }
      assert.equal(await qu.count(), 0);
    });

    s.test('getJobs refuses a negative start and an end below -1, with one state or several', async ({ queue }) => {
      const qu = queue();
      for (let i = 0; i < 4; i++) await qu.add('w', i);
      for (let i = 0; i < 3; i++) await qu.add('d', i, { delay: '1h' });
      for (const states of [['waiting', 'delayed'], ['waiting'], 'delayed'] as const) {
        const list = states as Parameters<typeof qu.getJobs>[0];
        await assert.rejects(
          () => qu.getJobs(list, -2, -1),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'start' && e.value === -2,
        );
        await assert.rejects(
          () => qu.getJobs(list, 0, -3),
          (e: unknown) => e instanceof InvalidArgumentError && e.option === 'end' && e.value === -3,
        );
        await assert.rejects(() => qu.getJobs(list, 0.5, 2), InvalidArgumentError);
        assert.deepEqual(await qu.getJobs(list, 3, 2), []);
      }
      assert.deepEqual(
        (await qu.getJobs(['waiting', 'delayed'], 3, 4)).map((j) => `${j.name}${j.data}`),
        ['w3', 'd0'],
      );
    });

    s.test('group maxSize refuses the add with GroupFullError', async ({ queue }) => {
      const qu = queue();
      await qu.add('x', 1, { group: { id: 'g', maxSize: 2 } });
      await qu.add('x', 2, { group: { id: 'g', maxSize: 2 } });
      await assert.rejects(
        () => qu.add('x', 3, { group: { id: 'g', maxSize: 2 } }),
        GroupFullError,
      );
      await qu.add('x', 4, { group: { id: 'other', maxSize: 2 } });
      assert.equal(await qu.count(), 3);
    });

    s.test('pause and resume the whole queue or one job name', async ({ queue, worker }) => {
      const qu = queue();
      await qu.pause();
      assert.equal(await qu.isPaused(), true);
      const ran: string[] = [];
      const w = worker((job) => void ran.push(job.name));
      await qu.add('a', 1);
      await qu.pause({ jobName: 'b' });
      assert.equal(await qu.isPaused({ jobName: 'b' }), true);
      await qu.add('b', 1);
      const done = next(w, 'completed', (job) => job.name === 'a');
      await qu.resume();
      await done;
      assert.deepEqual(ran, ['a']);
      assert.equal(await qu.isPaused(), false);
      const doneB = next(w, 'completed', (job) => job.name === 'b');
      await qu.resume({ jobName: 'b' });
      await doneB;
      assert.deepEqual(ran, ['a', 'b']);
    });

    s.test('drain removes waiting and delayed jobs only', async ({ queue }) => {
      const qu = queue();
      await qu.add('a', 1);
      await qu.add('b', 1, { delay: '1h' });
      await qu.drain();
      assert.equal(await qu.count(), 0);
    });

    s.test('clean removes finished jobs older than the grace period', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(() => 'ok');
      const done = next(w, 'completed', (job) => job.name === 'c');
      await qu.addBulk([{ name: 'a', data: 1 }, { name: 'b', data: 1 }, { name: 'c', data: 1 }]);
      await done;
      await eventually(async () => (await qu.getJobCounts('completed')).completed === 3);
      assert.equal(await qu.clean('1h', 0, 'completed'), 0);
      await eventually(async () => (await qu.clean(0, 2, 'completed')) === 2);
      assert.equal((await qu.getJobCounts('completed')).completed, 1);
      await assert.rejects(() => qu.clean(0, 0, 'active'), InvalidArgumentError);
    });

    s.test('getJobs lists several states with pagination; getJobCounts counts', async ({ queue }) => {
      const qu = queue();
      for (let i = 0; i < 3; i++) await qu.add('w', i);
      for (let i = 0; i < 2; i++) await qu.add('d', i, { delay: (i + 1) * 60_000 });
      const all = await qu.getJobs(['waiting', 'delayed']);
      assert.deepEqual(all.map((j) => j.name), ['w', 'w', 'w', 'd', 'd']);
      const page = await qu.getJobs(['waiting', 'delayed'], 2, 3);
      assert.deepEqual(page.map((j) => `${j.name}${j.data}`), ['w2', 'd0']);
      assert.deepEqual((await qu.getJobs('waiting', 0, 0)).map((j) => j.data), [0]);
      const counts = await qu.getJobCounts();
      assert.equal(counts.waiting, 3);
      assert.equal(counts.delayed, 2);
      assert.equal(counts.active, 0);
    });

    s.test('retryJobs moves failed jobs back; promoteJobs makes delayed jobs run', async ({ queue, worker }) => {
      const qu = queue();
      let fail = true;
      const w = worker(() => {
        if (fail) throw new Error('nope');
        return 'ok';
      });
      const failed = next(w, 'failed');
      await qu.add('x', 1);
      await failed;
      await eventually(async () => (await qu.getJobCounts('failed')).failed === 1);
      fail = false;
      const completed = next(w, 'completed');
      assert.equal(await qu.retryJobs(), 1);
      await completed;
      const d = await qu.add('later', 1, { delay: '1h' });
      const ran = next(w, 'completed', (job) => job.id === d.id);
      assert.equal(await qu.promoteJobs(), 1);
      await ran;
    });

    s.test('obliterate removes everything; refuses with active jobs unless forced', async ({ queue, worker }) => {
      const qu = queue();
      let release!: () => void;
      const w = worker(() => new Promise<void>((r) => (release = r)));
      const active = next(w, 'active');
      await qu.add('x', 1);
      await qu.add('y', 1, { delay: '1h' });
      await active;
      await assert.rejects(
        () => qu.obliterate(),
        (e: unknown) => (e as { code?: string }).code === 'QUEUE_ACTIVE',
      );
      await qu.obliterate({ force: true });
      release();
      assert.equal(await qu.count(), 0);
    });

    s.test('getWaiting/getActive/getDelayed/getCompleted/getFailed/getWaitingChildren and their counts follow claims and finishes, paginated', async ({ q, store, queue, flows }) => {
      const qu = queue();
      const kids = `${q}-kids`;
      for (let i = 0; i < 5; i++) await qu.add('w', i);
      await qu.add('d', 1, { delay: '2h' });
      await qu.add('d', 0, { delay: '1h' });
      const tree = await flows().add({
        name: 'parent',
        queueName: q,
        children: [{ name: 'kid', queueName: kids }],
      });
      const claim = async () => (await store.fetchNextJob(q, 'w1', 60_000))!;
      const a = await claim(); // w0
      const b = await claim(); // w1
      const c = await claim(); // w2
      const [d0] = await store.completeJobs(q, [{
        jobId: a.id,
        token: a.lockToken!,
        returnvalue: 'A',
      }]);
      assert.ok(d0);
      // The next finish lands on a later ms, so "most recent first" has one answer.
      const finishedA = (await qu.getJob(a.id))!.finishedOn!;
      await eventually(() => Date.now() > finishedA, { message: 'the clock to move on' });
      await store.completeJobs(q, [{ jobId: b.id, token: b.lockToken!, returnvalue: 'B' }]);
      await eventually(() => Date.now() > finishedA + 1, { message: 'the clock to move on' });
      const [f0] = await store.failJobs(q, [{ jobId: c.id, token: c.lockToken!, reason: 'no' }]);
      assert.ok(f0);
      const d = await claim(); // w3
      const names = (jobs: Array<{ name: string; data: unknown }>) =>
        jobs.map((j) => `${j.name}${j.data ?? ''}`);
      assert.deepEqual(names(await qu.getWaiting()), ['w4']);
      assert.deepEqual(names(await qu.getActive()), ['w3']);
      assert.equal((await qu.getActive())[0].id, d.id);
      assert.deepEqual(names(await qu.getDelayed()), ['d0', 'd1']);
      assert.deepEqual(names(await qu.getDelayed(1, 1)), ['d1']);
      assert.deepEqual(names(await qu.getCompleted()), ['w1', 'w0']);
      assert.deepEqual(names(await qu.getCompleted(1)), ['w0']);
      assert.deepEqual(names(await qu.getCompleted(0, 0)), ['w1']);
      assert.deepEqual(await qu.getCompleted(2), []);
      assert.deepEqual((await qu.getFailed()).map((j) => [j.id, j.failedReason]), [[c.id, 'no']]);
      assert.deepEqual((await qu.getWaitingChildren()).map((j) => j.id), [tree.job.id]);
      assert.deepEqual(
        (await qu.getDelayed()).map((j) => j.id),
        (await qu.getJobs('delayed')).map((j) => j.id),
      );
      assert.ok((await qu.getWaiting()).every((j) => j.state === 'waiting'));
      const counts = {
        waiting: await qu.getWaitingCount(),
        active: await qu.getActiveCount(),
        delayed: await qu.getDelayedCount(),
        completed: await qu.getCompletedCount(),
        failed: await qu.getFailedCount(),
        'waiting-children': await qu.getWaitingChildrenCount(),
      };
      assert.deepEqual(counts, {
        waiting: 1,
        active: 1,
        delayed: 2,
        completed: 2,
        failed: 1,
        'waiting-children': 1,
      });
      assert.deepEqual(counts, await qu.getJobCounts(...Object.keys(counts) as never[]));
      // The child, in its own queue, lets the parent go once it completes.
      const kid = (await store.fetchNextJob(kids, 'w1', 60_000))!;
      await store.completeJobs(kids, [{ jobId: kid.id, token: kid.lockToken!, returnvalue: 1 }]);
      assert.equal(await qu.getWaitingChildrenCount(), 0);
      assert.deepEqual(await qu.getWaitingChildren(), []);
      assert.deepEqual(names(await qu.getWaiting()), ['w4', 'parent']);
      assert.equal(await qu.getWaitingCount(), 2);
    });

    s.test('the state getters refuse bad indexes with InvalidArgumentError naming them', async ({ queue }) => {
      const qu = queue();
      await qu.add('w', 1);
      const getters = [
        qu.getWaiting,
        qu.getActive,
        qu.getDelayed,
        qu.getCompleted,
        qu.getFailed,
        qu.getWaitingChildren,
      ];
      for (const get of getters) {
        const call = (start: unknown, end?: unknown) =>
          get.call(qu, start as number, end as number);
        for (
          const [start, end, option, value] of [
            [-1, -1, 'start', -1],
            [0.5, 2, 'start', 0.5],
            ['0', 2, 'start', '0'],
            [0, -2, 'end', -2],
            [0, 1.5, 'end', 1.5],
          ] as const
        ) {
          await assert.rejects(
            () => call(start, end),
            (e: unknown) =>
              e instanceof InvalidArgumentError && e.option === option && e.value === value,
            `${get.name}(${start}, ${end})`,
          );
        }
        assert.deepEqual(await call(2, 1), []);
      }
      assert.equal(await qu.getWaitingCount(), 1);
    });

    s.test('getJobState names every state, and unknown for a missing job', async ({ q, store, queue, flows }) => {
      const qu = queue();
      const done = await qu.add('done', 1);
      const bad = await qu.add('bad', 1);
      const running = await qu.add('running', 1);
      const claim = async () => (await store.fetchNextJob(q, 'w1', 60_000))!;
      const c1 = await claim();
      await store.completeJobs(q, [{ jobId: c1.id, token: c1.lockToken!, returnvalue: 1 }]);
      const c2 = await claim();
      await store.failJobs(q, [{ jobId: c2.id, token: c2.lockToken!, reason: 'x' }]);
      await claim();
      const waiting = await qu.add('waiting', 1);
      const delayed = await qu.add('delayed', 1, { delay: '1h' });
      const tree = await flows().add({
        name: 'parent',
        queueName: q,
        children: [{ name: 'kid', queueName: `${q}-kids` }],
      });
      const expected: Array<[string, string]> = [
        [done.id, 'completed'],
        [bad.id, 'failed'],
        [running.id, 'active'],
        [waiting.id, 'waiting'],
        [delayed.id, 'delayed'],
        [tree.job.id, 'waiting-children'],
        ['no-such-job', 'unknown'],
      ];
      for (const [id, state] of expected) assert.equal(await qu.getJobState(id), state, id);
      await qu.remove(waiting.id);
      assert.equal(await qu.getJobState(waiting.id), 'unknown');
      for (const id of ['', 42, null]) {
        await assert.rejects(
          () => qu.getJobState(id as string),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'jobId' && e.value === id,
        );
      }
    });

    s.test('getJobLogs pages the logs oldest or newest first, with the total count', async ({ queue }) => {
      const qu = queue();
      const job = await qu.add('x', 1);
      for (let i = 0; i < 5; i++) await job.log(`l${i}`);
      const all = ['l0', 'l1', 'l2', 'l3', 'l4'];
      assert.deepEqual(await qu.getJobLogs(job.id), { logs: all, count: 5 });
      assert.deepEqual(await qu.getJobLogs(job.id, 1, 2), { logs: ['l1', 'l2'], count: 5 });
      assert.deepEqual(await qu.getJobLogs(job.id, 3, 10), { logs: ['l3', 'l4'], count: 5 });
      assert.deepEqual(await qu.getJobLogs(job.id, 3), { logs: ['l3', 'l4'], count: 5 });
      assert.deepEqual(await qu.getJobLogs(job.id, 4, 2), { logs: [], count: 5 });
      assert.deepEqual(await qu.getJobLogs(job.id, 0, -1, false), {
        logs: [...all].reverse(),
        count: 5,
      });
      assert.deepEqual(await qu.getJobLogs(job.id, 0, 1, false), { logs: ['l4', 'l3'], count: 5 });
      assert.deepEqual(await qu.getJobLogs(job.id, 3, -1, false), { logs: ['l1', 'l0'], count: 5 });
      assert.deepEqual(await qu.getJobLogs('no-such-job'), { logs: [], count: 0 });
      const empty = await qu.add('y', 1);
      assert.deepEqual(await qu.getJobLogs(empty.id), { logs: [], count: 0 });
      const bad: Array<[unknown[], string, unknown]> = [
        [['', 0, -1], 'jobId', ''],
        [[7, 0, -1], 'jobId', 7],
        [[job.id, -1, -1], 'start', -1],
        [[job.id, 1.5, -1], 'start', 1.5],
        [[job.id, 0, -2], 'end', -2],
        [[job.id, 0, -1, 'no'], 'asc', 'no'],
      ];
      for (const [args, option, value] of bad) {
        await assert.rejects(
          () => (qu.getJobLogs as (...a: unknown[]) => Promise<unknown>).apply(qu, args),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === option && e.value === value,
          option,
        );
      }
      assert.equal((await qu.getJobLogs(job.id)).count, 5);
    });

    s.test('getDeduplicationJobId names the live holder of a key, null once it finished', async ({ q, store, queue }) => {
      const qu = queue();
      assert.equal(await qu.getDeduplicationJobId('k'), null);
      const first = await qu.add('x', 1, { deduplication: { key: 'k' } });
      await qu.add('other', 1, { deduplication: { key: 'other' } });
      assert.equal(await qu.getDeduplicationJobId('k'), first.id);
      const claimed = (await store.fetchNextJob(q, 'w1', 60_000))!;
      assert.equal(claimed.id, first.id);
      assert.equal(await qu.getDeduplicationJobId('k'), first.id); // active still holds it
      await store.completeJobs(q, [{ jobId: first.id, token: claimed.lockToken!, returnvalue: 1 }]);
      assert.equal(await qu.getDeduplicationJobId('k'), null);
      const second = await qu.add('x', 2, { deduplication: { key: 'k' } });
      assert.notEqual(second.id, first.id);
      assert.equal(await qu.getDeduplicationJobId('k'), second.id);
      await second.remove();
      assert.equal(await qu.getDeduplicationJobId('k'), null);
      assert.notEqual(await qu.getDeduplicationJobId('other'), null);
      for (const key of ['', 3, undefined]) {
        await assert.rejects(
          () => qu.getDeduplicationJobId(key as string),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'key' && e.value === key,
        );
      }
    });

    s.test('remove takes a job with its descendants, 0 and nothing removed while one is active', async ({ q, store, queue, flows }) => {
      const qu = queue();
      const kidsQ = `${q}-kids`;
      const kids = new Queue(kidsQ, { store });
      const tree = await flows().add({
        name: 'parent',
        queueName: q,
        children: [{
          name: 'kid',
          queueName: kidsQ,
          children: [{ name: 'grandkid', queueName: kidsQ }],
        }],
      });
      const kid = tree.children![0].job;
      const grandkid = tree.children![0].children![0].job;
      const gone = async (s: StoreInterface, queueName: string, id: string) =>
        (await s.getJob(queueName, id)) === null;
      // Unsupported option: a typed error, nothing removed.
      await assert.rejects(
        () => qu.remove(tree.job.id, { removeChildren: false }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'opts.removeChildren' &&
          e.value === false,
      );
      for (
        const [id, opts, option] of [
          ['', {}, 'jobId'],
          [5, {}, 'jobId'],
          [tree.job.id, null, 'opts'],
          [tree.job.id, { removeChildren: 'yes' }, 'opts.removeChildren'],
        ] as const
      ) {
        await assert.rejects(
          () => qu.remove(id as string, opts as never),
          (e: unknown) => e instanceof InvalidArgumentError && e.option === option,
        );
      }
      assert.equal(await qu.getWaitingChildrenCount(), 1);
      // An active descendant: refused, as BullMQ (0), everything stays.
      const claimed = (await store.fetchNextJob(kidsQ, 'w1', 60_000))!;
      assert.equal(claimed.id, grandkid.id);
      assert.equal(await qu.remove(tree.job.id), 0);
      assert.equal(await kids.remove(grandkid.id), 0);
      assert.equal(await qu.getJobState(tree.job.id), 'waiting-children');
      assert.equal(await kids.getJobState(kid.id), 'waiting-children');
      assert.equal(await kids.getJobState(grandkid.id), 'active');
      await store.releaseLock(kidsQ, grandkid.id, claimed.lockToken!);
      assert.equal(await qu.remove(tree.job.id, { removeChildren: true }), 1);
      assert.ok(await gone(store, q, tree.job.id));
      assert.ok(await gone(store, kidsQ, kid.id));
      assert.ok(await gone(store, kidsQ, grandkid.id));
      // A plain job; a missing one is "not refused" (1), as BullMQ.
      const plain = await qu.add('x', 1);
      const other = await qu.add('y', 1);
      assert.equal(await qu.remove(plain.id), 1);
      assert.equal(await qu.getJobState(plain.id), 'unknown');
      assert.equal(await qu.getJobState(other.id), 'waiting');
      assert.equal(await qu.remove('no-such-job'), 1);
      assert.equal(await qu.getWaitingCount(), 1);
    });

    s.test('close and Symbol.asyncDispose', async ({ queue }) => {
      const qu = queue();
      await qu[Symbol.asyncDispose]();
      assert.equal(qu.closed, true);
    });
  });
}
