/**
 * Behaviour: a Worker's `prefetch` (jobs claimed ahead of free slots, graphile-worker's local
 * queue): claim order, locks, `pause` and `close` giving them back, `'auto'` (the default),
 * validation.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, LockLostError, type StoreInterface } from '@conveyor/shared';
import { AUTO_PREFETCH_MOST, type Job, Worker } from '@conveyor/core';
import { eventually } from '../helpers.ts';
import { collect, gate, next, replacing, type Suite } from './context.ts';

/** Registers the prefetch cases. */
export function prefetchCases(s: Suite): void {
  describe('prefetch', () => {
    s.test('prefetch claims ahead: the jobs wait locked in the worker and start in claim order as slots free', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const jobs = await qu.addBulk(['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, data: 1 })));
      const hold = gate();
      const started: string[] = [];
      let running = 0;
      let most = 0;
      const w = worker(async (job) => {
        started.push(job.name);
        most = Math.max(most, ++running);
        if (job.name === 'a') await hold.promise;
        running--;
      }, { concurrency: 1, prefetch: 2 });
      const active = collect<[Job]>(w, 'active');
      await next(w, 'active');
      // One claim took a, b and c: a runs, b and c wait here, locked by this worker.
      const rows = await eventually(async () => {
        const all = await Promise.all(jobs.map((j) => store.getJob(q, j.id)));
        return all.filter((r) => r?.state === 'active').length === 3 ? all : null;
      }, { message: 'three jobs active in the store' });
      assert.deepEqual(rows.map((r) => r?.state), [
        'active',
        'active',
        'active',
        'waiting',
        'waiting',
      ]);
      for (const r of rows.slice(0, 3)) assert.equal(r?.lockedBy, w.id);
      assert.deepEqual(active.map(([j]) => j.name), ['a'], 'active is emitted when a job starts');
      assert.deepEqual(started, ['a']);
      const done = collect<[Job]>(w, 'completed');
      hold.open();
      await eventually(() => done.length === 5, { message: 'five completions' });
      assert.deepEqual(started, ['a', 'b', 'c', 'd', 'e']);
      assert.equal(most, 1, 'never more than concurrency jobs running');
      assert.deepEqual(active.map(([j]) => j.name), ['a', 'b', 'c', 'd', 'e']);
    });

    s.test('pause gives the prefetched jobs back to waiting, in their place, with no attempt or stall counted', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const [a, b, c] = await qu.addBulk(['a', 'b', 'c', 'd'].map((name) => ({ name, data: 1 })));
      const hold = gate();
      const started: string[] = [];
      const w = worker(async (job) => {
        started.push(job.name);
        if (job.name === 'a') await hold.promise;
      }, { concurrency: 1, prefetch: 2 });
      await next(w, 'active');
      await eventually(async () => (await store.getJob(q, c.id))?.state === 'active', {
        message: 'c claimed ahead',
      });
      const pausing = w.pause();
      // b and c go back at once; a, still running, keeps its slot until it ends.
      await eventually(
        async () =>
          (await store.getJob(q, b.id))?.state === 'waiting' &&
          (await store.getJob(q, c.id))?.state === 'waiting',
        { message: 'b and c given back' },
      );
      assert.equal((await store.getJob(q, a.id))?.state, 'active');
      for (const id of [b.id, c.id]) {
        const row = await store.getJob(q, id);
        assert.equal(row?.attemptsMade, 0);
        assert.equal(row?.stalledCount, 0);
        assert.equal(row?.lockedBy, null);
      }
      hold.open();
      await pausing;
      assert.deepEqual(started, ['a']);
      const done = collect<[Job]>(w, 'completed');
      w.resume();
      await eventually(() => done.length === 3, { message: 'b, c and d completed' });
      assert.deepEqual(started, ['a', 'b', 'c', 'd'], 'given back in their place');
    });

    s.test('close gives the prefetched jobs back at once; another worker runs them, each once', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const jobs = await qu.addBulk(['a', 'b', 'c', 'd'].map((name) => ({ name, data: 1 })));
      const hold = gate();
      const runs = new Map<string, number>();
      const count = (job: Job) => runs.set(job.name, (runs.get(job.name) ?? 0) + 1);
      const w1 = worker(async (job) => {
        count(job);
        if (job.name === 'a') await hold.promise;
      }, { concurrency: 1, prefetch: 3 });
      await next(w1, 'active');
      await eventually(async () => (await store.getJob(q, jobs[3].id))?.state === 'active', {
        message: 'd claimed ahead',
      });
      const closing = w1.close();
      // While a still runs on the closing worker, b, c and d are free for another.
      const w2 = worker(count, { concurrency: 3 });
      const done = collect<[Job]>(w2, 'completed');
      await eventually(() => done.length === 3, { message: 'b, c, d completed elsewhere' });
      assert.deepEqual(done.map(([j]) => j.name).sort(), ['b', 'c', 'd']);
      hold.open();
      await closing;
      assert.equal((await store.getJob(q, jobs[0].id))?.state, 'completed');
      assert.deepEqual([...runs.entries()].sort(), [['a', 1], ['b', 1], ['c', 1], ['d', 1]]);
    });

    s.test('the locks of prefetched jobs are renewed while they wait: no stall', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const [, b] = await qu.addBulk(['a', 'b'].map((name) => ({ name, data: 1 })));
      const hold = gate();
      const runs: string[] = [];
      const w = worker(async (job) => {
        runs.push(job.name);
        if (job.name === 'a') await hold.promise;
      }, { concurrency: 1, prefetch: 1, lockDuration: 300, stalledInterval: 40 });
      const stalled = collect(w, 'stalled');
      await next(w, 'active');
      const first = await eventually(async () => {
        const row = await store.getJob(q, b.id);
        return row?.state === 'active' ? row : null;
      }, { message: 'b claimed ahead' });
      // Past the lock b was claimed with, several stalled sweeps later, b is still held here
      // (renewed every 150 ms, each renewal 150 ms later than the one before).
      await eventually(async () => {
        const row = await store.getJob(q, b.id);
        return row?.state === 'active' && row.lockUntil! > first.lockUntil! + 250;
      }, { message: 'b renewed twice' });
      assert.deepEqual(runs, ['a']);
      const done = next<[Job]>(w, 'completed', (j) => j.name === 'b');
      hold.open();
      await done;
      assert.deepEqual(runs, ['a', 'b']);
      assert.equal(stalled.length, 0);
      assert.equal((await store.getJob(q, b.id))?.stalledCount, 0);
    });

    s.test('a prefetched job whose lock renewal is refused is dropped with a LockLostError, never started', async ({ store, q, queue, defer }) => {
      const qu = queue();
      const [, b] = await qu.addBulk(['a', 'b'].map((name) => ({ name, data: 1 })));
      const { w, hold, started } = refusingRenewalOf(store, q, b.id);
      defer(() => w.close(0));
      const [err] = await next<[Error]>(w, 'error', (e) => e instanceof LockLostError);
      assert.equal((err as LockLostError).jobId, b.id);
      // Listening before c is added: its completion cannot come first.
      const cDone = next<[Job]>(w, 'completed', (j) => j.name === 'c');
      hold.open();
      const c = await qu.add('c', 1);
      const [done] = await cDone;
      assert.equal(done.id, c.id);
      assert.deepEqual(started, ['a', 'c'], 'b was not started');
    });

    s.test('a prefetched job dropped for a refused renewal frees its place at once: the next waiting job is claimed ahead while the slot is busy', async ({ store, q, queue, defer }) => {
      const qu = queue();
      const [, b, c] = await qu.addBulk(['a', 'b', 'c'].map((name) => ({ name, data: 1 })));
      const { w, hold, started } = refusingRenewalOf(store, q, b.id);
      defer(() => w.close(0));
      await next<[Error]>(w, 'error', (e) => e instanceof LockLostError);
      // c was waiting all along: no event announces it, and a still runs.
      await eventually(async () => (await qu.getJob(c.id))?.lockedBy === w.id, {
        message: 'c claimed ahead while a runs',
        timeout: 2_000,
      });
      assert.deepEqual(started, ['a']);
      const cDone = next<[Job]>(w, 'completed', (j) => j.id === c.id);
      hold.open();
      await cDone;
      assert.deepEqual(started, ['a', 'c'], 'b was not started');
    });

    s.test('a prefetching worker whose jobs finish at once claims full batches: slots and prefetch together', async ({ store, q, queue, defer }) => {
      const qu = queue();
      await qu.addBulk(Array.from({ length: 12 }, (_, i) => ({ name: `j${i}`, data: i })));
      const asked: number[] = [];
      const view = replacing(store, 'fetchNextJobs', (real) => (...args) => {
        asked.push(args[3] ?? 1);
        return real(...args);
      });
      // Each job is done after two promise reactions: no I/O, but not synchronous either.
      const w = new Worker(q, async () => {
        await null;
        await null;
      }, { store: view, concurrency: 2, prefetch: 2, maintenance: false });
      defer(() => w.close(0));
      let done = 0;
      const all = new Promise<void>((resolve) =>
        w.on('completed', () => ++done === 12 && resolve())
      );
      await all;
      // Three claims of four took the twelve jobs; none asked for fewer because the jobs started
      // from the prefetched ones had not yet been counted as finished.
      assert.ok(asked.length >= 3, `claims: ${asked}`);
      assert.deepEqual(asked.filter((n) => n !== 4), [], `claims: ${asked}`);
    });

    s.test("prefetch 'auto' (the default) claims ahead once jobs finish faster than a claim, up to four times concurrency", async ({ store, q, queue, defer }) => {
      const qu = queue();
      const jobs = await qu.addBulk(
        Array.from({ length: 40 }, (_, i) => ({ name: `j${i}`, data: i })),
      );
      const { view, asked } = slowClaims(store);
      const runs = new Map<string, number>();
      const w = new Worker(q, async (job) => {
        runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
        await null;
      }, { store: view, concurrency: 3, maintenance: false });
      defer(() => w.close(0));
      const done = collect<[Job]>(w, 'completed');
      await eventually(() => done.length === 40, { message: 'forty completions' });
      // Nothing is known before the first claim: it asks for the free slots only. Then claims
      // take the slots and, for jobs this much quicker than a claim, four times as many ahead
      // (AUTO_PREFETCH_MOST), never more.
      assert.equal(asked[0], 3, `claims: ${asked}`);
      assert.ok(asked.some((n) => n > 6), `claims ahead: ${asked}`);
      assert.ok(asked.every((n) => n <= 3 + AUTO_PREFETCH_MOST * 3), `claims: ${asked}`);
      assert.equal(runs.size, 40);
      assert.ok([...runs.values()].every((n) => n === 1), 'each job ran once');
      assert.deepEqual(
        jobs.map((j) => runs.has(j.id)),
        jobs.map(() => true),
      );
    });

    s.test("prefetch 'auto' claims nothing ahead for jobs longer than a claim, nor under limits", async ({ store, q, queue, defer }) => {
      const qu = queue();
      await qu.addBulk(Array.from({ length: 6 }, (_, i) => ({ name: `long${i}`, data: i })));
      const long = slowClaims(store);
      const w1 = new Worker(q, () => new Promise<void>((r) => setTimeout(r, 150)), {
        store: long.view,
        concurrency: 2,
        maintenance: false,
      });
      defer(() => w1.close(0));
      const done1 = collect<[Job]>(w1, 'completed');
      await eventually(() => done1.length === 6, { message: 'six long jobs' });
      assert.ok(long.asked.every((n) => n <= 2), `long jobs, claims: ${long.asked}`);
      await w1.close();
      // Quick jobs, but under a global concurrency: a job claimed ahead would hold a slot of it.
      await qu.addBulk(Array.from({ length: 30 }, (_, i) => ({ name: `quick${i}`, data: i })));
      const limited = slowClaims(store);
      const w2 = new Worker(q, async () => {}, {
        store: limited.view,
        concurrency: 2,
        maxGlobalConcurrency: 10,
        maintenance: false,
      });
      defer(() => w2.close(0));
      const done2 = collect<[Job]>(w2, 'completed');
      await eventually(() => done2.length === 30, { message: 'thirty quick jobs' });
      assert.ok(limited.asked.every((n) => n <= 2), `limited, claims: ${limited.asked}`);
    });

    s.test("prefetch 'auto' gives back a job claimed ahead that waits behind a job turned long: in its place, for another worker", async ({ store, q, queue, defer }) => {
      const qu = queue();
      await qu.addBulk(['a', 'b', 'c', 'd', 'slow'].map((name) => ({ name, data: 1 })));
      const x = await qu.add('x', 1);
      const { view } = slowClaims(store);
      const hold = gate();
      const runs: string[] = [];
      const w1 = new Worker(q, async (job) => {
        runs.push(job.name);
        if (job.name === 'slow') await hold.promise;
      }, { store: view, concurrency: 1, maintenance: false });
      defer(() => w1.close(0));
      await next(w1, 'active', (j: Job) => j.name === 'slow');
      // The quick jobs before it made the worker claim ahead: x waits here behind slow...
      await eventually(async () => (await store.getJob(q, x.id))?.lockedBy === w1.id, {
        message: 'x claimed ahead',
      });
      // ...until the hold passes: then it is waiting again, untouched.
      const back = await eventually(async () => {
        const row = await store.getJob(q, x.id);
        return row?.state === 'waiting' ? row : null;
      }, { message: 'x given back' });
      assert.equal(back.lockedBy, null);
      assert.equal(back.attemptsMade, 0);
      assert.equal(back.stalledCount, 0);
      const w2 = new Worker(q, (job) => {
        runs.push(`${job.name} (w2)`);
      }, { store, concurrency: 1, prefetch: 0, maintenance: false });
      defer(() => w2.close(0));
      const [done] = await next<[Job]>(w2, 'completed');
      assert.equal(done.id, x.id, 'another worker ran x while slow still runs');
      const slowDone = next<[Job]>(w1, 'completed', (j) => j.name === 'slow');
      hold.open();
      await slowDone;
      assert.deepEqual(runs, ['a', 'b', 'c', 'd', 'slow', 'x (w2)']);
    });

    s.test("prefetch is validated: a whole number or 'auto', a number only with a one-job processor", async ({ store, q }) => {
      await Promise.resolve();
      const cases: Array<[() => unknown, unknown]> = [
        [() => new Worker(q, () => {}, { store, autorun: false, prefetch: -1 }), -1],
        [() => new Worker(q, () => {}, { store, autorun: false, prefetch: 'max' as never }), 'max'],
        [() => new Worker(q, () => {}, { store, autorun: false, prefetch: null as never }), null],
        [() => new Worker(q, () => {}, { store, autorun: false, prefetch: 1.5 }), 1.5],
        [() => new Worker(q, () => {}, { store, autorun: false, prefetch: '2' as never }), '2'],
        [
          () => new Worker(q, () => {}, { store, autorun: false, prefetch: 2, batch: { size: 5 } }),
          2,
        ],
        [() => new Worker(q, null, { store, prefetch: 2 }), 2],
      ];
      for (const [make, value] of cases) {
        assert.throws(
          make,
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'opts.prefetch' && e.value === value,
          String(value),
        );
      }
      // 'auto' (the default) is valid everywhere: with batch or without a processor it claims
      // nothing ahead.
      const made = [
        new Worker(q, () => {}, { store, autorun: false, prefetch: 0 }),
        new Worker(q, () => {}, { store, autorun: false, prefetch: 'auto' }),
        new Worker(q, () => {}, { store, autorun: false, prefetch: 'auto', batch: { size: 5 } }),
        new Worker(q, null, { store, prefetch: 'auto' }),
      ];
      for (const w of made) await w.close();
    });
  });
}

/**
 * A worker of concurrency 1 and prefetch 1 on a view of `store` that refuses every lock renewal
 * of job `refused` (as when another worker took it back). Job `a` runs until `hold` opens; every
 * job's name goes into `started` as it starts.
 */
function refusingRenewalOf(
  store: StoreInterface,
  q: string,
  refused: string,
): { w: Worker; hold: ReturnType<typeof gate>; started: string[] } {
  const view = replacing(
    store,
    'extendLocks',
    (real) => async (queueName, locks, duration) =>
      (await real(queueName, locks, duration)).map((held, i) => held && locks[i].jobId !== refused),
  );
  const hold = gate();
  const started: string[] = [];
  const w = new Worker(q, async (job) => {
    started.push(job.name);
    if (job.name === 'a') await hold.promise;
  }, { store: view, concurrency: 1, prefetch: 1, lockRenewTime: 20, maintenance: false });
  return { w, hold, started };
}

/**
 * A view of `store` whose claims take 5 ms more, as over a slow network: under
 * `prefetch: 'auto'`, quick jobs are then much quicker than a claim. `asked` records each
 * claim's count.
 */
function slowClaims(store: StoreInterface): { view: StoreInterface; asked: number[] } {
  const asked: number[] = [];
  const view = replacing(store, 'fetchNextJobs', (real) => async (...args) => {
    asked.push(args[3] ?? 1);
    const jobs = await real(...args);
    await new Promise((r) => setTimeout(r, 5));
    return jobs;
  });
  return { view, asked };
}
