/**
 * Behaviour: Queue (add, addBulk, schedule, options, pause, drain, clean, queries, bulk moves).
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { GroupFullError, InvalidArgumentError } from '@conveyor/shared';
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

    s.test('close and Symbol.asyncDispose', async ({ queue }) => {
      const qu = queue();
      await qu[Symbol.asyncDispose]();
      assert.equal(qu.closed, true);
    });
  });
}
