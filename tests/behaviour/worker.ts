/**
 * Behaviour: Worker (processing, ordering, concurrency, retries, timeouts, limits, locks,
 * stalled jobs, fencing, close, pause, batches, delivery wake-ups, events).
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DelayedError,
  InvalidArgumentError,
  JobNotFoundError,
  JobTimeoutError,
  LockLostError,
  type StoreEvent,
  type StoreInterface,
  UnrecoverableError,
  WaitingChildrenError,
} from '@conveyor/shared';
import { type Job, Queue, Worker } from '@conveyor/core';
import { eventually } from '../helpers.ts';
import { collect, gate, next, replacing, spy, type Suite } from './context.ts';

/** A long fixed window so no test crosses a boundary by accident. */
const LONG = 1_000_000_000;

/**
 * A view of `store` whose events reach the worker only through `wake` (the test sends them);
 * `override` may replace other members (undefined keeps the store's).
 */
function deaf(
  store: StoreInterface,
  override: (target: StoreInterface, prop: string | symbol) => unknown = () => undefined,
): { view: StoreInterface; wake: (event: StoreEvent) => void } {
  let listener: ((event: StoreEvent) => void) | undefined;
  const view = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'subscribe') return (_q: string, cb: (e: StoreEvent) => void) => (listener = cb);
      if (prop === 'unsubscribe') return () => {};
      const replaced = override(target, prop);
      if (replaced !== undefined) return replaced;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { view, wake: (event) => listener!(event) };
}

/** A view of `store` whose completions are stored only once the test opens `held`. */
function holdingCompletions(store: StoreInterface): {
  view: StoreInterface;
  held: ReturnType<typeof gate>;
} {
  const held = gate();
  const view = replacing(store, 'completeJobs', (real) => async (...args) => {
    await held.promise;
    return real(...args);
  });
  return { view, held };
}

/** Resolves when `signal` aborts (at once if it already has). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true })
  );
}

/** A worker with 5 slots that polls only once a minute: store events are what wake it. */
function eventDriven(q: string, store: StoreInterface): Worker {
  return new Worker(q, (job) => job.name, {
    store,
    concurrency: 5,
    pollInterval: 60_000,
    maintenance: false,
  });
}

/** Registers the Worker cases. */
export function workerCases(s: Suite): void {
  describe('worker', () => {
    s.test('runs a job: active then completed, with the return value stored', async ({ queue, worker }) => {
      const qu = queue<{ a: number; b: number }>();
      const w = worker<{ a: number; b: number }, number>((job) => job.data.a + job.data.b);
      const active = next(w, 'active');
      const completed = next(w, 'completed');
      const job = await qu.add('sum', { a: 2, b: 3 });
      assert.equal((await active)[0].id, job.id);
      const [done, result] = await completed;
      assert.equal(done.id, job.id);
      assert.equal(result, 5);
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'completed');
      assert.equal(stored?.returnvalue, 5);
    });

    s.test("worker removeOnComplete { count: 1 } and removeOnFail: true apply to jobs without their own; a job's own option wins", async ({ queue, worker }) => {
      const qu = queue<null>();
      const ownKeep = await qu.add('ok', null, { removeOnComplete: false });
      const plain = [];
      for (let i = 0; i < 3; i++) plain.push(await qu.add('ok', null));
      const bad = await qu.add('bad', null);
      const badOwn = await qu.add('bad', null, { removeOnFail: false });
      const w = worker((job) => {
        if (job.name === 'bad') throw new Error('broke');
        return 1;
      }, { removeOnComplete: { count: 1 }, removeOnFail: true, pruneInterval: 20 });
      const goneAtFail: Array<[string, boolean]> = [];
      w.on('failed', (job) => {
        // Read at once: removed in the step that failed it, not later.
        qu.getJob(job.id).then((j) => goneAtFail.push([job.id, j === null]));
      });
      const completed = collect(w, 'completed');
      await eventually(() => completed.length === 4 && goneAtFail.length === 2, {
        message: 'four completed, two failed',
      });
      assert.deepEqual(goneAtFail.sort(), [[bad.id, true], [badOwn.id, false]].sort());
      assert.equal((await qu.getJob(badOwn.id))?.failedReason, 'broke');
      await eventually(async () => (await qu.getJobCounts('completed')).completed === 2, {
        message: 'completed jobs pruned to the newest plain one and the one keeping itself',
      });
      const kept = (await qu.getCompleted()).map((j) => j.id).sort();
      assert.deepEqual(kept, [ownKeep.id, plain[2].id].sort());
    });

    s.test('priority runs lower first; per-job lifo jumps its priority level', async ({ queue, worker }) => {
      const qu = queue();
      await qu.add('p2', 1, { priority: 2 });
      await qu.add('p1a', 1, { priority: 1 });
      await qu.add('p1b', 1, { priority: 1 });
      await qu.add('p1lifo', 1, { priority: 1, lifo: true });
      await qu.add('p0', 1, { priority: 0 });
      const order: string[] = [];
      const w = worker((job) => void order.push(job.name));
      await eventually(() => order.length === 5);
      assert.deepEqual(order, ['p0', 'p1lifo', 'p1a', 'p1b', 'p2']);
      await w.close();
    });

    s.test('the lifo worker option takes the newest job first', async ({ queue, worker }) => {
      const qu = queue();
      for (const n of ['a', 'b', 'c']) await qu.add(n, 1);
      const order: string[] = [];
      worker((job) => void order.push(job.name), { lifo: true });
      await eventually(() => order.length === 3);
      assert.deepEqual(order, ['c', 'b', 'a']);
    });

    s.test('the jobName filter claims only that name', async ({ queue, worker }) => {
      const qu = queue();
      const seen: string[] = [];
      const w = worker((job) => void seen.push(job.name), { jobName: 'mine' });
      const done = next(w, 'completed', (job) => job.name === 'mine');
      await qu.add('other', 1);
      await qu.add('mine', 1);
      await done;
      assert.deepEqual(seen, ['mine']);
      assert.equal((await qu.getJobCounts('waiting')).waiting, 1);
    });

    s.test('concurrency bounds the jobs running at once', async ({ queue, worker }) => {
      const qu = queue();
      let running = 0;
      let peak = 0;
      const g = gate();
      worker(async () => {
        peak = Math.max(peak, ++running);
        await g.promise;
        running--;
      }, { concurrency: 3 });
      for (let i = 0; i < 8; i++) await qu.add('x', i);
      await eventually(() => running === 3);
      g.open();
      await eventually(async () => (await qu.getJobCounts('completed')).completed === 8);
      assert.equal(peak, 3);
    });

    s.test('retries with a fixed backoff; failed fires for each attempt', async ({ queue, worker }) => {
      const qu = queue();
      const starts: number[] = [];
      const w = worker((job) => {
        starts.push(Date.now());
        if (job.attemptsMade < 2) throw new Error(`try ${job.attemptsMade}`);
        return 'third time';
      });
      const failed = collect<[Job, Error]>(w, 'failed');
      const done = next(w, 'completed');
      const job = await qu.add('x', 1, { attempts: 3, backoff: { type: 'fixed', delay: 60 } });
      const [, result] = await done;
      assert.equal(result, 'third time');
      assert.equal(failed.length, 2);
      assert.deepEqual(failed.map(([, e]) => e.message), ['try 0', 'try 1']);
      assert.ok(starts[1] - starts[0] >= 55, `gap ${starts[1] - starts[0]}`);
      assert.ok(starts[2] - starts[1] >= 55, `gap ${starts[2] - starts[1]}`);
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.attemptsMade, 2);
      assert.equal(stored?.stacktrace.length, 2);
    });

    s.test('retries with an exponential backoff (delay doubles)', async ({ queue, worker }) => {
      const qu = queue();
      const starts: number[] = [];
      const w = worker(() => {
        starts.push(Date.now());
        if (starts.length < 3) throw new Error('again');
      });
      const done = next(w, 'completed');
      await qu.add('x', 1, { attempts: 3, backoff: { type: 'exponential', delay: 40 } });
      await done;
      assert.ok(starts[1] - starts[0] >= 35, `first gap ${starts[1] - starts[0]}`);
      assert.ok(starts[2] - starts[1] >= 75, `second gap ${starts[2] - starts[1]}`);
    });

    s.test('a number backoff is a fixed delay; a job without backoff retries at once', async ({ queue, worker }) => {
      const qu = queue();
      const starts = new Map<string, number[]>();
      const w = worker((job) => {
        const list = starts.get(job.name) ?? [];
        list.push(Date.now());
        starts.set(job.name, list);
        if (list.length < 2) throw new Error('again');
      }, { concurrency: 2 });
      const done = collect(w, 'completed');
      await qu.add('number', 1, { attempts: 2, backoff: 80 });
      await qu.add('none', 1, { attempts: 2 });
      await eventually(() => done.length === 2);
      const [a0, a1] = starts.get('number')!;
      assert.ok(a1 - a0 >= 75, `gap ${a1 - a0}`);
      assert.equal(starts.get('none')!.length, 2);
    });

    s.test('a custom backoff asks the worker backoffStrategy; negative stops retrying', async ({ queue, worker }) => {
      const qu = queue();
      const asked: Array<[number, string]> = [];
      const w = worker(() => {
        throw new Error('always');
      }, {
        backoffStrategy: (attemptsMade, type, err) => {
          asked.push([attemptsMade, err.message]);
          assert.equal(type, 'custom');
          return attemptsMade < 2 ? 10 : -1;
        },
      });
      const final = next(w, 'failed', (job) => job.attemptsMade === 2);
      const job = await qu.add('x', 1, { attempts: 10, backoff: { type: 'custom' } });
      await final;
      await eventually(async () => (await qu.getJob(job.id))?.state === 'failed');
      assert.deepEqual(asked, [[1, 'always'], [2, 'always']]);
    });

    s.test('a custom backoff returning undefined/null/0/NaN retries at once; Infinity fails for good with an error', async ({ queue, worker }) => {
      const qu = queue();
      const delays: Record<string, unknown> = {
        undef: undefined,
        nul: null,
        zero: 0,
        nan: NaN,
        inf: Infinity,
        text: '10',
      };
      const w = worker((job) => {
        if (job.attemptsMade === 0) throw new Error('first try');
        return 'ok';
      }, { backoffStrategy: (_n, _t, _e, job) => delays[job.name] as number });
      const errors = collect<[Error]>(w, 'error');
      const completed = collect(w, 'completed');
      const failed = collect(w, 'failed');
      const ids: Record<string, string> = {};
      for (const name of Object.keys(delays)) {
        ids[name] = (await qu.add(name, 1, { attempts: 3, backoff: { type: 'custom' } })).id;
      }
      await eventually(() => completed.length === 4 && failed.length === 6 && errors.length === 2);
      for (const name of ['undef', 'nul', 'zero', 'nan']) {
        const job = await qu.getJob(ids[name]);
        assert.equal(job?.state, 'completed', name);
        assert.equal(job?.attemptsMade, 1, name);
      }
      for (const name of ['inf', 'text']) {
        const job = await qu.getJob(ids[name]);
        assert.equal(job?.state, 'failed', name);
        assert.equal(job?.attemptsMade, 1, name);
        assert.match(job?.failedReason ?? '', /^first try \(not retried: backoffStrategy /);
      }
      assert.ok(errors.every(([e]) => e instanceof InvalidArgumentError));
      const messages = errors.map(([e]) => e.message).sort();
      assert.match(messages[0], /^backoffStrategy .*\(got "10"\)$/);
      assert.match(messages[1], /^backoffStrategy .*\(got Infinity\)$/);
    });

    s.test('a return value that cannot be stored fails its job only; the other completions of the batch are stored', async ({ queue, worker }) => {
      const qu = queue();
      const release = gate();
      const w = worker(async (job) => {
        await release.promise;
        if (job.name === 'bigint') return 10n;
        if (job.name === 'function') return () => 1;
        if (job.name === 'nested') return { f: Symbol('s') };
        return job.name;
      }, { concurrency: 5 });
      const started = collect(w, 'active');
      const failed = collect<[Job, Error]>(w, 'failed');
      const names = ['a', 'bigint', 'function', 'nested', 'b'];
      const jobs = await Promise.all(names.map((n) => qu.add(n, 1)));
      await eventually(() => started.length === 5);
      release.open();
      await eventually(async () => {
        const states = await Promise.all(jobs.map(async (j) => (await qu.getJob(j.id))?.state));
        return states.join() === 'completed,failed,failed,failed,completed';
      });
      assert.equal((await qu.getJob(jobs[0].id))?.returnvalue, 'a');
      assert.equal((await qu.getJob(jobs[4].id))?.returnvalue, 'b');
      for (const j of jobs.slice(1, 4)) {
        assert.match((await qu.getJob(j.id))?.failedReason ?? '', /return value of job .* JSON/);
      }
      assert.deepEqual(failed.map(([j]) => j.name).sort(), ['bigint', 'function', 'nested']);
      assert.ok(failed.every(([, e]) => e instanceof InvalidArgumentError));
    });

    s.test('a completion the store does not take is sent again; the job completes, not fails', async ({ store, q, queue, defer }) => {
      // The first completeJobs call fails, as a dropped connection would.
      let calls = 0;
      const view = replacing(
        store,
        'completeJobs',
        (real) => (...args) =>
          ++calls === 1 ? Promise.reject(new Error('connection dropped')) : real(...args),
      );
      const w = new Worker(q, () => 'done', { store: view, maintenance: false });
      defer(() => w.close(0));
      const failed = collect(w, 'failed');
      const completed = next(w, 'completed');
      const qu = queue();
      const added = await qu.add('x', 1);
      const [job, result] = await completed;
      assert.equal(job.id, added.id);
      assert.equal(result, 'done');
      assert.equal(calls, 2);
      assert.equal((await qu.getJob(job.id))?.state, 'completed');
      assert.equal(failed.length, 0);
    });

    s.test('a completion the store never takes leaves the job to the stalled check: it runs again, never fails', async ({ store, q, queue, defer }) => {
      // completeJobs fails (the database is away) until the job has run twice.
      let runs = 0;
      const view = replacing(
        store,
        'completeJobs',
        (real) => (...args) =>
          runs < 2 ? Promise.reject(new Error('database away')) : real(...args),
      );
      const w = new Worker(q, () => ++runs, {
        store: view,
        lockDuration: 150,
        stalledInterval: 30,
      });
      defer(() => w.close(0));
      const failed = collect(w, 'failed');
      const errors = collect<[Error]>(w, 'error');
      const stalled = collect(w, 'stalled');
      const completed = next(w, 'completed');
      const qu = queue();
      const job = await qu.add('x', 1);
      await eventually(() => errors.length > 0, { message: 'the error of the completion' });
      assert.equal(errors[0][0].message, 'database away');
      assert.equal((await qu.getJob(job.id))?.state, 'active', 'left active, not failed');
      const [done, result] = await completed;
      assert.equal(done.id, job.id);
      assert.equal(result, 2, 'completed by its second run');
      assert.deepEqual(stalled.map(([id]) => id), [job.id]);
      assert.equal(failed.length, 0);
      assert.equal((await qu.getJob(job.id))?.state, 'completed');
    });

    s.test('final failure: state failed, failedReason and stack kept', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(() => {
        throw new TypeError('bad data');
      });
      const failed = next(w, 'failed');
      const job = await qu.add('x', 1);
      const [j, err] = await failed;
      assert.equal(j.id, job.id);
      assert.equal(err.message, 'bad data');
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'failed');
      assert.equal(stored?.failedReason, 'bad data');
      assert.match(stored?.stacktrace[0] ?? '', /TypeError: bad data/);
    });

    s.test('moveToDelayed then DelayedError: the job waits, runs again later, no attempt counted', async ({ queue, worker }) => {
      const qu = queue();
      const starts: number[] = [];
      const w = worker(async (job) => {
        starts.push(job.attemptsStarted);
        if (job.attemptsStarted === 1) {
          await job.moveToDelayed(Date.now() + 300);
          assert.equal(job.state, 'delayed');
          assert.equal(job.token, null);
          throw new DelayedError();
        }
        return 'second run';
      });
      const failed = collect<[Job, Error]>(w, 'failed');
      const errors = collect<[Error]>(w, 'error');
      const done = next<[Job, unknown]>(w, 'completed');
      const added = await qu.add('later', 1, { attempts: 1 });
      await eventually(async () => (await qu.getJob(added.id))?.state === 'delayed', {
        message: 'the job to be delayed by its processor',
      });
      const parked = await qu.getJob(added.id);
      assert.equal(parked?.attemptsMade, 0);
      assert.equal(parked?.failedReason, null);
      const [job, value] = await done;
      assert.equal(job.id, added.id);
      assert.equal(value, 'second run');
      assert.deepEqual(starts, [1, 2]);
      const stored = await qu.getJob(added.id);
      assert.equal(stored?.state, 'completed');
      assert.equal(stored?.attemptsMade, 0);
      assert.deepEqual(failed, []);
      assert.deepEqual(errors, []);
    });

    s.test('a job moved on by its processor is left alone, whatever the processor does next', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(async (job) => {
        await job.moveToDelayed(Date.now() + 60_000);
        if (job.name === 'returns') return 'ignored';
        throw new Error('after the move');
      });
      const failed = collect<[Job, Error]>(w, 'failed');
      const completed = collect<[Job, unknown]>(w, 'completed');
      const errors = collect<[Error]>(w, 'error');
      const a = await qu.add('returns', 1);
      const b = await qu.add('throws', 1);
      await eventually(async () => (await qu.getJobCounts('delayed')).delayed === 2, {
        message: 'both jobs delayed by their processors',
      });
      // The worker settles both runs without a store call of its own: idle at once.
      await eventually(() => w.activeCount === 0, { message: 'the runs to settle' });
      for (const id of [a.id, b.id]) {
        const stored = await qu.getJob(id);
        assert.equal(stored?.state, 'delayed');
        assert.equal(stored?.attemptsMade, 0);
      }
      assert.deepEqual(failed, []);
      assert.deepEqual(completed, []);
      assert.deepEqual(errors, []);
    });

    s.test('children added with opts.parent, then moveToWaitingChildren: the parent runs again when they are done', async ({ queue, worker, q }) => {
      const orders = queue<{ step: number }>();
      const parts = queue<{ n: number }>({}, `${q}-parts`);
      const runs: number[] = [];
      const w = worker<{ step: number }, number>(async (job) => {
        runs.push(job.data.step);
        if (job.data.step === 0) {
          for (const n of [2, 3]) {
            await parts.add('part', { n }, { parent: { id: job.id, queue: job.queueName } });
          }
          await job.updateData({ step: 1 });
          assert.equal(await job.moveToWaitingChildren(), true);
          throw new WaitingChildrenError();
        }
        const values = await job.getChildrenValues<number>();
        return Object.values(values).reduce((a, b) => a + b, 0);
      });
      const failed = collect<[Job, Error]>(w, 'failed');
      const done = next<[Job, number]>(w, 'completed');
      const order = await orders.add('order', { step: 0 });
      await eventually(async () => (await orders.getJob(order.id))?.state === 'waiting-children', {
        message: 'the order to wait for its parts',
      });
      assert.equal((await orders.getJob(order.id))?.pendingChildrenCount, 2);
      const partWorker = worker<{ n: number }, number>((job) => job.data.n, {
        queueName: parts.name,
      });
      const [job, sum] = await done;
      assert.equal(job.id, order.id);
      assert.equal(sum, 5);
      assert.deepEqual(runs, [0, 1]);
      assert.equal((await orders.getJob(order.id))?.attemptsMade, 0);
      assert.deepEqual(failed, []);
      await partWorker.close();
    });

    s.test('moveToWaitingChildren with no unfinished child returns false and the run goes on', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(async (job) => (await job.moveToWaitingChildren()) ? 'parked' : 'went on');
      const done = next<[Job, string]>(w, 'completed');
      await qu.add('x', 1);
      assert.equal((await done)[1], 'went on');
    });

    s.test('opts.parent: a missing parent or a bad value is refused, and nothing is saved', async ({ queue, flows }) => {
      const qu = queue();
      await assert.rejects(
        () => qu.add('c', 1, { parent: { id: 'missing', queue: qu.name } }),
        JobNotFoundError,
      );
      await assert.rejects(
        () => qu.add('c', 1, { parent: { id: '', queue: qu.name } }),
        (e: Error) => e instanceof InvalidArgumentError && e.message.includes('opts.parent.id'),
      );
      await assert.rejects(
        () => qu.add('c', 1, { parent: 'p' as unknown as { id: string; queue: string } }),
        (e: Error) => e instanceof InvalidArgumentError && e.message.includes('opts.parent'),
      );
      await assert.rejects(
        () =>
          flows().add({
            name: 'p',
            queueName: qu.name,
            opts: { parent: { id: 'x', queue: qu.name } },
          }),
        JobNotFoundError,
      );
      assert.equal((await qu.getJobCounts('waiting')).waiting, 0);
    });

    s.test('a DelayedError without moveToDelayed fails the job like any error', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(() => {
        throw new DelayedError('forgot to move');
      });
      const [job, err] = await (async () => {
        const failed = next<[Job, Error]>(w, 'failed');
        await qu.add('x', 1);
        return await failed;
      })();
      assert.equal(err.message, 'forgot to move');
      assert.equal(job.state, 'failed');
      assert.equal((await qu.getJob(job.id))?.state, 'failed');
    });

    s.test('an UnrecoverableError (or an error so named) fails the job at once, whatever attempts remain', async ({ queue, worker }) => {
      const qu = queue();
      const runs = new Map<string, number>();
      const w = worker((job) => {
        runs.set(job.name, (runs.get(job.name) ?? 0) + 1);
        if (job.name === 'ours') throw new UnrecoverableError('no recipient');
        // BullMQ's class, or any error of another library that carries the name.
        throw Object.assign(new Error('bad payload'), { name: 'UnrecoverableError' });
      });
      const failed = collect<[Job, Error]>(w, 'failed');
      const ours = await qu.add('ours', 1, { attempts: 5, backoff: 10 });
      const named = await qu.add('named', 1, { attempts: 5 });
      await eventually(() => failed.length >= 2, { message: 'two failed events' });
      for (const [job, reason] of [[ours, 'no recipient'], [named, 'bad payload']] as const) {
        const [emitted, err] = failed.find(([j]) => j.id === job.id)!;
        assert.equal(err.message, reason);
        assert.equal(emitted.state, 'failed');
        assert.equal(emitted.attemptsMade, 1);
        const stored = await qu.getJob(job.id);
        assert.equal(stored?.state, 'failed');
        assert.equal(stored?.attemptsMade, 1);
        assert.equal(stored?.failedReason, reason);
        assert.equal(runs.get(job.name), 1);
      }
      assert.ok(failed.find(([j]) => j.id === ours.id)![1] instanceof UnrecoverableError);
      assert.equal(failed.length, 2);
    });

    s.test('timeout aborts the signal, fails the attempt, retries, and frees the slot', async ({ queue, worker }) => {
      const qu = queue();
      const reasons: unknown[] = [];
      let calls = 0;
      const w = worker(async (job, signal) => {
        calls++;
        if (job.name === 'quick') return 'quick done';
        if (job.attemptsMade === 0) {
          // Hangs until aborted, and keeps hanging after (ignores the abort).
          await new Promise<void>((resolve) =>
            signal.addEventListener('abort', () => {
              reasons.push(signal.reason);
              resolve();
            })
          );
          await new Promise(() => {});
        }
        return 'second attempt';
      }, { concurrency: 1 });
      const failed = next(w, 'failed');
      const slow = await qu.add('slow', 1, { timeout: 80, attempts: 2 });
      const [, err] = await failed;
      assert.ok(err instanceof JobTimeoutError);
      assert.ok(reasons[0] instanceof JobTimeoutError);
      const done = collect<[Job, unknown]>(w, 'completed');
      await qu.add('quick', 1);
      await eventually(() => done.length === 2, { message: 'retry and quick job completed' });
      assert.deepEqual(done.map(([j, r]) => [j.name, r]).sort(), [['quick', 'quick done'], [
        'slow',
        'second attempt',
      ]]);
      assert.equal((await qu.getJob(slow.id))?.attemptsMade, 1);
      assert.ok(calls >= 3);
    });

    s.test('removeOnComplete/removeOnFail: true removes at once; a count keeps the newest', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker((job) => {
        if (job.name === 'bad') throw new Error('x');
        return job.data;
      }, { pruneInterval: 20 });
      const finished = collect(w, 'completed');
      const gone = await qu.add('good', 0, { removeOnComplete: true });
      const failGone = await qu.add('bad', 0, { removeOnFail: true });
      await eventually(async () => !(await qu.getJob(gone.id)) && !(await qu.getJob(failGone.id)));
      const kept: string[] = [];
      for (let i = 1; i <= 5; i++) kept.push((await qu.add('good', i, { removeOnComplete: 2 })).id);
      await eventually(() => finished.length === 6, { message: 'all completed' });
      await eventually(async () => (await qu.getJobCounts('completed')).completed === 2, {
        message: 'prune to 2',
      });
      const left = (await qu.getJobs('completed')).map((j) => j.id).sort();
      assert.deepEqual(left, kept.slice(3).sort());
      await eventually(() => (w.activeCount === 0));
    });

    s.test('removeOnComplete { age } removes completed jobs older than age seconds', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(() => 'ok', { pruneInterval: 20 });
      const done = next(w, 'completed');
      const old = await qu.add('x', 1, { removeOnComplete: { age: 0 } });
      const kept = await qu.add('y', 1, { removeOnComplete: { age: 3600 } });
      await done;
      await eventually(async () => (await qu.getJob(old.id)) === null, { message: 'aged out' });
      await eventually(async () => (await qu.getJob(kept.id))?.state === 'completed');
    });

    s.test('maxGlobalConcurrency holds across workers', async ({ queue, worker }) => {
      const qu = queue();
      let running = 0;
      let peak = 0;
      const g = gate();
      const proc = async (): Promise<void> => {
        peak = Math.max(peak, ++running);
        await g.promise;
        running--;
      };
      worker(proc, { concurrency: 4, maxGlobalConcurrency: 3 });
      worker(proc, { concurrency: 4, maxGlobalConcurrency: 3 });
      for (let i = 0; i < 10; i++) await qu.add('x', i);
      await eventually(() => running === 3);
      g.open();
      await eventually(async () => (await qu.getJobCounts('completed')).completed === 10);
      assert.equal(peak, 3);
    });

    s.test('limiter: at most max claims per window, then the worker waits for the next window', async ({ queue, worker }) => {
      const qu = queue();
      const duration = 150;
      const starts: number[] = [];
      // processedOn is the claim time by the store's clock, which is what the limiter counts.
      worker((job) => void starts.push(job.processedOn!), {
        concurrency: 5,
        limiter: { max: 2, duration },
      });
      for (let i = 0; i < 6; i++) await qu.add('x', i);
      await eventually(() => starts.length === 6, { message: '6 runs' });
      const perWindow = new Map<number, number>();
      for (const t of starts) {
        const w = Math.floor(t / duration);
        perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
      }
      for (const [, n] of perWindow) assert.ok(n <= 2, `window had ${n}`);
      assert.ok(perWindow.size >= 3);
    });

    s.test('limiter: an idle worker does not claim once per window on an empty queue', async ({ store, q, queue, defer }) => {
      const { store: spied, calls } = spy(store);
      const w = new Worker(q, (job) => job.name, {
        store: spied,
        limiter: { max: 5, duration: 20 },
        pollInterval: 60_000,
      });
      defer(() => w.close(0));
      await next(w, 'drained');
      // Due in 300 ms (15 windows): the promoter's wake-up is what should make the next claim.
      const completed = next(w, 'completed');
      await queue().add('later', 1, { delay: 300 });
      assert.equal((await completed)[1], 'later');
      const claims = calls.get('fetchNextJobs') ?? 0;
      assert.ok(claims <= 4, `${claims} claims for one job`);
    });

    s.test('group concurrency with round-robin fairness between groups', async ({ queue, worker }) => {
      const qu = queue();
      for (let i = 0; i < 6; i++) await qu.add('a', i, { group: { id: 'A' } });
      for (let i = 0; i < 2; i++) await qu.add('b', i, { group: { id: 'B' } });
      const order: string[] = [];
      let runningA = 0;
      let peakA = 0;
      worker(async (job) => {
        order.push(job.groupId!);
        if (job.groupId === 'A') peakA = Math.max(peakA, ++runningA);
        await Promise.resolve();
        if (job.groupId === 'A') runningA--;
      }, { concurrency: 1, group: { concurrency: 1 } });
      await eventually(() => order.length === 8);
      assert.deepEqual(order.slice(0, 4), ['A', 'B', 'A', 'B']);
      assert.equal(peakA, 1);
    });

    s.test('group concurrency is per group across workers', async ({ queue, worker }) => {
      const qu = queue();
      const running = new Map<string, number>();
      const peak = new Map<string, number>();
      const g = gate();
      const proc = async (job: Job): Promise<void> => {
        const n = (running.get(job.groupId!) ?? 0) + 1;
        running.set(job.groupId!, n);
        peak.set(job.groupId!, Math.max(peak.get(job.groupId!) ?? 0, n));
        await g.promise;
        running.set(job.groupId!, running.get(job.groupId!)! - 1);
      };
      worker(proc, { concurrency: 5, group: { concurrency: 2 } });
      worker(proc, { concurrency: 5, group: { concurrency: 2 } });
      for (let i = 0; i < 5; i++) await qu.add('x', i, { group: { id: 'A' } });
      for (let i = 0; i < 5; i++) await qu.add('x', i, { group: { id: 'B' } });
      await eventually(() => running.get('A') === 2 && running.get('B') === 2);
      g.open();
      await eventually(async () => (await qu.getJobCounts('completed')).completed === 10);
      assert.equal(peak.get('A'), 2);
      assert.equal(peak.get('B'), 2);
    });

    s.test('group limiter: per-group claims per window', async ({ queue, worker }) => {
      const qu = queue();
      const starts: Array<[string, number]> = [];
      worker((job) => void starts.push([job.groupId!, Date.now()]), {
        concurrency: 4,
        group: { limiter: { max: 1, duration: LONG } },
      });
      for (let i = 0; i < 3; i++) await qu.add('x', i, { group: { id: 'A' } });
      for (let i = 0; i < 3; i++) await qu.add('x', i, { group: { id: 'B' } });
      await eventually(() => starts.length === 2);
      assert.deepEqual(starts.map(([g]) => g).sort(), ['A', 'B']);
      assert.equal((await qu.getJobCounts('waiting')).waiting, 4);
    });

    s.test('locks are renewed while a long job runs: no stall, one run', async ({ queue, worker }) => {
      const qu = queue();
      let runs = 0;
      // Renewed every 150 ms (half the lock): a renewal can come 150 ms late before the lock
      // lapses. With 60 ms of slack (a 120 ms lock), a CI run through PgBouncer once lost it.
      const w = worker(async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 700));
        return 'done';
      }, { lockDuration: 300, stalledInterval: 40 });
      const stalled = collect(w, 'stalled');
      const done = next(w, 'completed');
      await qu.add('long', 1);
      await done;
      assert.equal(runs, 1);
      assert.equal(stalled.length, 0);
    });

    s.test('a worker renews all its locks in one store call per renewal, each job with its token', async ({ store, queue, worker }) => {
      const qu = queue();
      // Every renewal the worker sends: the locks it carried.
      const sent: Array<Array<{ jobId: string; token: string }>> = [];
      const spied = spy(store);
      const view = replacing(spied.store, 'extendLocks', (real) => (name, locks, duration) => {
        sent.push(locks.map((l) => ({ ...l })));
        return real(name, locks, duration);
      });
      const hold = gate();
      const tokens = new Map<string, string>();
      const started = new Set<string>();
      const w = worker(async (job: Job) => {
        tokens.set(job.id, job.token!);
        started.add(job.id);
        await hold.promise;
        return 'done';
      }, { store: view, concurrency: 3, lockDuration: 30_000, lockRenewTime: 20 });
      const jobs = await qu.addBulk([1, 2, 3].map((i) => ({ name: `j${i}`, data: i })));
      await eventually(() => started.size === 3, { message: 'three jobs running' });
      await eventually(
        () => sent.filter((locks) => locks.length === 3).length >= 2,
        { message: 'two renewals of the three locks' },
      );
      const completed = collect<[Job]>(w, 'completed');
      hold.open();
      await eventually(() => completed.length === 3, { message: 'three completions' });
      const full = sent.find((locks) => locks.length === 3)!;
      assert.deepEqual(
        full.map((l) => `${l.jobId}:${l.token}`).sort(),
        jobs.map((j) => `${j.id}:${tokens.get(j.id)}`).sort(),
      );
      assert.equal(spied.calls.get('extendLock') ?? 0, 0, 'no lock renewed on its own');
    });

    s.test('a stalled job (dead worker) is requeued and run again; stalled fires', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const job = await qu.add('x', 1);
      const claimed = await store.fetchNextJob(q, 'dead-worker', 30);
      assert.equal(claimed?.id, job.id);
      const w = worker(() => 'rescued', { stalledInterval: 30 });
      const [id] = await next(w, 'stalled');
      assert.equal(id, job.id);
      const [, result] = await next(w, 'completed');
      assert.equal(result, 'rescued');
      assert.equal((await qu.getJob(job.id))?.stalledCount, 1);
    });

    s.test('maxStalledCount: a job stalling too often fails', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const job = await qu.add('x', 1);
      await store.fetchNextJob(q, 'dead-worker', 20);
      const w = worker(() => 'never', { stalledInterval: 25, maxStalledCount: 0, autorun: false });
      w.run();
      await next(w, 'stalled');
      await eventually(async () => (await qu.getJob(job.id))?.state === 'failed');
      assert.match((await qu.getJob(job.id))?.failedReason ?? '', /stalled/);
    });

    s.test('a job failed by the stalled sweep fires failed on the sweeping worker, after stalled', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const job = await qu.add('x', 1, { attempts: 3 });
      await store.fetchNextJob(q, 'dead-worker', 20);
      const w = worker(() => 'never', { stalledInterval: 25, maxStalledCount: 0, autorun: false });
      const events: string[] = [];
      w.on('stalled', (id) => events.push(`stalled ${id}`));
      const failed = next<[Job, Error]>(w, 'failed');
      w.on('failed', (j) => events.push(`failed ${j.id}`));
      w.run();
      const [j, err] = await failed;
      assert.equal(j.id, job.id);
      assert.equal(j.state, 'failed');
      assert.equal(j.attemptsMade, 1);
      assert.equal(err.message, 'job stalled more than allowable limit');
      assert.deepEqual(events, [`stalled ${job.id}`, `failed ${job.id}`]);
    });

    s.test('a job failed by the stalled sweep fires failed with the job even when removeOnFail: true removed it', async ({ store, q, queue, worker, events }) => {
      const ev = events();
      await ev.waitUntilReady();
      const evFailed = collect<[{ jobId: string; failedReason: string; attemptsMade: number }]>(
        ev,
        'failed',
      );
      const qu = queue();
      const job = await qu.add('mail', { to: 'a@b.c' }, { removeOnFail: true, attempts: 3 });
      assert.equal((await store.fetchNextJob(q, 'dead-worker', 20))?.id, job.id);
      const w = worker(() => 'never', {
        lockDuration: 50,
        stalledInterval: 25,
        maxStalledCount: 0,
        autorun: false,
      });
      const order: string[] = [];
      w.on('stalled', (id) => order.push(`stalled ${id}`));
      w.on('failed', (j) => order.push(`failed ${j.id}`));
      const failed = next<[Job, Error]>(w, 'failed');
      w.run();
      const [j, err] = await failed;
      assert.equal(j.id, job.id);
      assert.equal(j.name, 'mail');
      assert.deepEqual(j.data, { to: 'a@b.c' });
      assert.equal(j.state, 'failed');
      assert.equal(j.attemptsMade, 1);
      assert.equal(j.failedReason, 'job stalled more than allowable limit');
      assert.equal(err.message, 'job stalled more than allowable limit');
      assert.deepEqual(order, [`stalled ${job.id}`, `failed ${job.id}`]);
      assert.equal(await qu.getJob(job.id), null, 'removeOnFail: true removed it');
      await eventually(() => evFailed.length === 1, { message: 'QueueEvents failed' });
      assert.equal(evFailed[0][0].jobId, job.id);
      assert.equal(evFailed[0][0].failedReason, 'job stalled more than allowable limit');
      assert.equal(evFailed[0][0].attemptsMade, 1);
      // Events of a queue arrive in order: past this one, a second `failed` would have arrived.
      // The worker stops first: with its 50 ms lock on a loaded machine it could otherwise claim
      // the barrier, lose the lock and see the sweep fail it, a `failed` of another job.
      await w.close();
      const waiting = next(ev, 'waiting', (e: { jobId: string }) => e.jobId === 'barrier');
      await qu.add('barrier', null, { jobId: 'barrier' });
      await waiting;
      assert.deepEqual(evFailed.map(([e]) => e.jobId), [job.id]);
    });

    s.test('the failed event of a stalled job needs no read: a removal racing the sweep does not hide it', async ({ store, q, queue, defer }) => {
      const job = await queue().add('x', 1);
      assert.equal((await store.fetchNextJob(q, 'dead-worker', 20))?.id, job.id);
      // Every read of a job finds it gone, as if it were removed right after the sweep.
      const { view } = deaf(
        store,
        (_t, prop) => prop === 'getJob' ? () => Promise.resolve(null) : undefined,
      );
      const w = new Worker(q, () => 'never', {
        store: view,
        stalledInterval: 25,
        maxStalledCount: 0,
        autorun: false,
      });
      w.on('error', () => {});
      defer(() => w.close(0));
      const failed = next<[Job, Error]>(w, 'failed');
      w.run();
      const [j] = await failed;
      assert.equal(j.id, job.id);
      assert.equal(j.failedReason, 'job stalled more than allowable limit');
    });

    s.test('removeOnFail count applies to jobs failed by the stalled sweep', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const first = await qu.add('x', 1, { removeOnFail: 1 });
      const second = await qu.add('x', 2, { removeOnFail: 1 });
      assert.equal((await store.fetchNextJob(q, 'dead-worker', 20))?.id, first.id);
      assert.equal((await store.fetchNextJob(q, 'dead-worker', 20))?.id, second.id);
      const w = worker(() => 'never', {
        stalledInterval: 25,
        maxStalledCount: 0,
        pruneInterval: 20,
      });
      const stalled = collect(w, 'stalled');
      await eventually(() => stalled.length === 2, { message: 'both stalled' });
      await eventually(async () => (await qu.getJobCounts('failed')).failed === 1, {
        message: 'pruned to 1 failed job',
      });
    });

    s.test('fencing: a worker that lost its lock cannot complete the job', async ({ store, q, queue, worker }) => {
      const qu = queue();
      const g = gate();
      const first = worker(async () => {
        await g.promise;
        return 'stale';
      }, { lockDuration: 60_000, maintenance: false });
      const errors = collect<[Error]>(first, 'error');
      const firstCompleted = collect(first, 'completed');
      const active = next(first, 'active');
      const job = await qu.add('x', 1);
      await active;
      // Force the lock loss: expire it and let the stalled sweep requeue the job.
      await store.updateJob(q, job.id, { lockUntil: Date.now() - 1000 });
      await store.requeueStalledJobs(q, 5);
      const second = worker(() => 'fresh', { maintenance: false });
      await next(second, 'completed');
      g.open();
      await eventually(() => errors.length > 0, { message: 'LockLostError' });
      assert.ok(errors[0][0] instanceof LockLostError);
      assert.equal(firstCompleted.length, 0);
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'completed');
      assert.equal(stored?.returnvalue, 'fresh');
    });

    s.test('close waits for in-flight jobs to finish', async ({ queue, worker }) => {
      const qu = queue();
      const g = gate();
      const w = worker(async () => {
        await g.promise;
        return 'finished';
      }, { concurrency: 2 });
      const both = new Promise<void>((resolve) => {
        let n = 0;
        w.on('active', () => ++n === 2 && resolve());
      });
      const a = await qu.add('a', 1);
      const b = await qu.add('b', 1);
      await both;
      let closed = false;
      const closing = w.close().then(() => (closed = true));
      await qu.add('c', 1);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(closed, false);
      g.open();
      await closing;
      assert.equal((await qu.getJob(a.id))?.state, 'completed');
      assert.equal((await qu.getJob(b.id))?.state, 'completed');
      assert.equal(
        (await qu.getJobCounts('waiting')).waiting,
        1,
        'c was not claimed while closing',
      );
    });

    s.test('no error after closed: store calls in flight at close settle before closed', async ({ store, q, queue, defer }) => {
      // The drained event and the lock renewals are store calls the worker does not wait for
      // where it makes them. Here they hang until the worker stops listening while it closes,
      // then fail (a connection lost): as in BullMQ, no `error` may come after `closed`.
      let lose!: (e: Error) => void;
      const lost = new Promise<never>((_, reject) => (lose = reject));
      lost.catch(() => {});
      const hanging = new Set<string>();
      const view = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'unsubscribe') {
            return (...args: Parameters<StoreInterface['unsubscribe']>) => {
              target.unsubscribe(...args);
              lose(new Error('connection lost'));
            };
          }
          if (prop === 'publish') {
            return (e: StoreEvent) => {
              if (e.type !== 'drained') return target.publish(e);
              hanging.add('publish');
              return lost;
            };
          }
          if (prop === 'extendLocks') {
            return () => {
              hanging.add('extendLocks');
              return lost;
            };
          }
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const g = gate();
      const w = new Worker(q, async () => {
        await g.promise;
        return 'done';
      }, { store: view, lockDuration: 30_000, lockRenewTime: 10, maintenance: false });
      defer(() => w.close(0));
      const order: string[] = [];
      w.on('error', (e) => void order.push(`error: ${e.message}`));
      w.on('closed', () => void order.push('closed'));
      // Drained first (a job added before the first claim would be claimed instead).
      await eventually(() => hanging.has('publish'), { message: 'a drained event in flight' });
      const completed = next(w, 'completed');
      await queue().add('x', 1);
      await eventually(() => hanging.has('extendLocks'), { message: 'a lock renewal in flight' });
      g.open();
      await completed;
      await w.close();
      await lost.catch(() => {});
      // A macrotask: every reaction to the failed calls has run.
      await new Promise((r) => setTimeout(r, 0));
      assert.equal(order.at(-1), 'closed', order.join(', '));
      assert.ok(order.includes('error: connection lost'), 'the failed calls were reported');
    });

    s.test('close(forceTimeout) aborts running jobs and releases them at once', async ({ queue, worker }) => {
      const qu = queue();
      let aborted: unknown;
      const w = worker((_job, signal) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted = signal.reason;
            reject(signal.reason);
          })
        )
      );
      const closedEvent = next(w, 'closed');
      const active = next(w, 'active');
      const job = await qu.add('x', 1);
      await active;
      await w.close(30);
      await closedEvent;
      assert.ok(aborted instanceof Error);
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'waiting');
      assert.equal(stored?.token, null);
      assert.equal(stored?.attemptsMade, 0);
    });

    s.test('cancelJob aborts the signal with the reason; the thrown reason fails the attempt, retried per attempts', async ({ queue, worker }) => {
      const qu = queue();
      const seen: unknown[] = [];
      const w = worker(async (job, signal) => {
        if (job.attemptsMade > 0) return 'second attempt';
        await aborted(signal);
        seen.push(signal.reason);
        throw signal.reason;
      });
      // Once its processor has ended, a job is no longer cancellable (its failure is stored).
      const late: boolean[] = [];
      w.on('failed', (job) => late.push(w.cancelJob(job.id, 'too late')));
      const active = next(w, 'active');
      const failed = next<[Job, Error]>(w, 'failed');
      const completed = next(w, 'completed');
      const job = await qu.add('x', 1, { attempts: 2 });
      await active;
      assert.equal(w.cancelJob(job.id, 'user asked'), true);
      const [emitted, err] = await failed;
      assert.deepEqual(seen, ['user asked']);
      assert.equal(err.message, 'user asked');
      assert.equal(emitted.id, job.id);
      assert.equal(emitted.attemptsMade, 1);
      assert.equal(emitted.failedReason, 'user asked');
      assert.deepEqual(late, [false]);
      const [done, result] = await completed;
      assert.equal(done.id, job.id);
      assert.equal(result, 'second attempt');
      assert.equal(w.cancelJob(job.id), false, 'not running any more');
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'completed');
      assert.equal(stored?.attemptsMade, 1);
    });

    s.test('cancelJob then an UnrecoverableError fails the job for good, whatever attempts remain', async ({ queue, worker }) => {
      const qu = queue();
      let runs = 0;
      const w = worker(async (_job, signal) => {
        runs++;
        await aborted(signal);
        throw new UnrecoverableError(`cancelled: ${signal.reason}`);
      });
      const active = next(w, 'active');
      const failed = next<[Job, Error]>(w, 'failed');
      const job = await qu.add('x', 1, { attempts: 3, backoff: 10 });
      await active;
      assert.equal(w.cancelJob(job.id, 'stop'), true);
      const [emitted, err] = await failed;
      assert.ok(err instanceof UnrecoverableError);
      assert.equal(emitted.state, 'failed');
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'failed');
      assert.equal(stored?.attemptsMade, 1);
      assert.equal(stored?.failedReason, 'cancelled: stop');
      assert.equal(runs, 1);
    });

    s.test('a processor that ignores the cancel completes its job; cancelled inside active, it starts aborted', async ({ queue, worker }) => {
      const qu = queue();
      const g = gate();
      const states: Array<[boolean, string | undefined]> = [];
      const w = worker(async (_job, signal) => {
        states.push([signal.aborted, (signal.reason as Error | undefined)?.name]);
        await g.promise;
        return 'done anyway';
      });
      const results: boolean[] = [];
      w.on('active', (job) => results.push(w.cancelJob(job.id)));
      const completed = next(w, 'completed');
      const job = await qu.add('x', 1, { attempts: 3 });
      await eventually(() => states.length === 1, { message: 'processor started' });
      g.open();
      const [done, result] = await completed;
      assert.deepEqual(results, [true]);
      assert.deepEqual(states, [[true, 'AbortError']], 'no reason: the standard AbortError');
      assert.equal(done.id, job.id);
      assert.equal(result, 'done anyway');
      const stored = await qu.getJob(job.id);
      assert.equal(stored?.state, 'completed');
      assert.equal(stored?.attemptsMade, 0);
    });

    s.test('cancelJob of a job not running here returns false and changes nothing; bad input throws', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(() => 'ok');
      const delayed = await qu.add('w', 1, { delay: 60_000 });
      const completed = next(w, 'completed');
      const done = await qu.add('d', 1);
      await completed;
      assert.equal(w.cancelJob('no-such-job', 'x'), false);
      assert.equal(w.cancelJob(delayed.id, 'x'), false);
      assert.equal(w.cancelJob(done.id, 'x'), false);
      assert.equal((await qu.getJob(delayed.id))?.state, 'delayed');
      assert.equal((await qu.getJob(done.id))?.state, 'completed');
      for (const bad of [42, undefined, null, '']) {
        assert.throws(
          () => w.cancelJob(bad as never),
          (e: unknown) => e instanceof InvalidArgumentError && e.option === 'jobId',
          String(bad),
        );
      }
      for (
        const call of [() => w.cancelJob(done.id, 7 as never), () => w.cancelAllJobs({} as never)]
      ) {
        assert.throws(
          call,
          (e: unknown) => e instanceof InvalidArgumentError && e.option === 'reason',
        );
      }
    });

    s.test('cancelAllJobs aborts every running job; the worker goes on with the next ones', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(async (job, signal) => {
        if (job.name === 'after') return 'after done';
        await aborted(signal);
        throw signal.reason;
      }, { concurrency: 3 });
      const active = collect<[Job]>(w, 'active');
      const failed = collect<[Job, Error]>(w, 'failed');
      const ids = new Set<string>();
      for (let i = 0; i < 3; i++) ids.add((await qu.add('hang', i)).id);
      await eventually(() => active.length === 3, { message: 'three jobs running' });
      w.cancelAllJobs('shutdown');
      await eventually(() => failed.length === 3, { message: 'three failed events' });
      assert.deepEqual(new Set(failed.map(([j]) => j.id)), ids);
      assert.deepEqual(failed.map(([, e]) => e.message), ['shutdown', 'shutdown', 'shutdown']);
      assert.equal((await qu.getJobCounts('failed')).failed, 3);
      const completed = next(w, 'completed');
      const after = await qu.add('after', 1);
      const [job, result] = await completed;
      assert.equal(job.id, after.id);
      assert.equal(result, 'after done');
    });

    s.test('batch: cancelJob of one job aborts the batch signal; every job of the batch fails', async ({ store, q, queue, defer }) => {
      const qu = queue();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await qu.add('x', i)).id);
      const w = new Worker(q, async (_jobs, signal) => {
        await aborted(signal);
        throw signal.reason;
      }, { store, batch: { size: 3 }, maintenance: false });
      w.on('error', () => {});
      defer(() => w.close(0));
      const failed = collect<[Job, Error]>(w, 'failed');
      await next(w, 'active');
      assert.equal(w.activeCount, 1, 'one batch');
      assert.equal(w.cancelJob(ids[1], 'batch cancelled'), true);
      await eventually(() => failed.length === 3, { message: 'three failed events' });
      assert.deepEqual(failed.map(([j]) => j.id).sort(), [...ids].sort());
      assert.deepEqual(failed.map(([, e]) => e.message), Array(3).fill('batch cancelled'));
      assert.equal((await qu.getJobCounts('failed')).failed, 3);
    });

    s.test('pause and resume are local to the worker', async ({ queue, worker }) => {
      const qu = queue();
      const w1 = worker(() => 'w1');
      const w2 = worker(() => 'w2', { autorun: false });
      await w1.pause();
      assert.equal(w1.isPaused(), true);
      w2.run();
      const [job, by] = await Promise.all([
        next(w2, 'completed').then(([, r]) => r),
        qu.add('x', 1),
      ]).then(([r, j]) => [j, r] as const);
      assert.equal(by, 'w2');
      assert.equal(await qu.isPaused(), false);
      await w2.close();
      const resumed = next(w1, 'completed');
      const other = await qu.add('y', 1);
      assert.equal((await qu.getJob(other.id))?.state, 'waiting');
      w1.resume();
      const [done] = await resumed;
      assert.equal(done.id, other.id);
      assert.ok(job.id);
    });

    s.test('batch: claimed in one call and finished in one call', async ({ store, q, queue }) => {
      const qu = queue();
      for (let i = 0; i < 7; i++) await qu.add('x', i);
      const { store: spied, calls } = spy(store);
      const sizes: number[] = [];
      const w = new Worker<number, number>(q, (jobs) => {
        sizes.push(jobs.length);
        return jobs.map((j) => j.data * 10);
      }, { store: spied, batch: { size: 5 }, maintenance: false });
      const done = collect<[Job, number]>(w, 'completed');
      await eventually(() => done.length === 7);
      await w.close();
      assert.deepEqual(sizes, [5, 2]);
      assert.equal(calls.get('completeJobs'), 2);
      assert.deepEqual(done.map(([, r]) => r).sort((a, b) => a - b), [0, 10, 20, 30, 40, 50, 60]);
      assert.ok((calls.get('fetchNextJobs') ?? 0) >= 2);
      assert.equal(calls.get('fetchNextJob'), undefined);
    });

    s.test('batch: a throw fails every job of the batch in one call', async ({ store, q, queue }) => {
      const qu = queue();
      for (let i = 0; i < 3; i++) await qu.add('x', i);
      const { store: spied, calls } = spy(store);
      const w = new Worker(q, () => {
        throw new Error('batch broke');
      }, { store: spied, batch: { size: 3 }, maintenance: false });
      const failed = collect(w, 'failed');
      await eventually(() => failed.length === 3);
      await w.close();
      assert.equal(calls.get('failJobs'), 1);
      assert.equal((await qu.getJobCounts('failed')).failed, 3);
    });

    s.test('delivery is event-driven: new and delayed jobs start without polling', async ({ queue, worker }) => {
      const qu = queue();
      const starts = new Map<string, number>();
      const w = worker((job) => void starts.set(job.name, Date.now()), { pollInterval: 60_000 });
      await next(w, 'drained');
      const t0 = Date.now();
      await qu.add('now', 1);
      await eventually(() => starts.has('now'));
      assert.ok(starts.get('now')! - t0 < 1000, 'a new job starts long before the 60 s poll');
      const t1 = Date.now();
      await qu.add('later', 1, { delay: 150 });
      await eventually(() => starts.has('later'));
      const waited = starts.get('later')! - t1;
      assert.ok(waited >= 140 && waited < 1500, `delayed job started after ${waited} ms`);
    });

    s.test('pollInterval is the fallback when store events are missed', async ({ store, q, queue }) => {
      // A view of the store that delivers no events: only polling can find the job.
      const deaf = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'subscribe' || prop === 'unsubscribe') return () => {};
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const w = new Worker(q, () => 'polled', {
        store: deaf,
        pollInterval: 30,
        maintenance: false,
      });
      await next(w, 'drained');
      const done = next(w, 'completed');
      await queue().add('x', 1);
      const [, result] = await done;
      assert.equal(result, 'polled');
      await w.close();
    });

    s.test('a job announced while a partial claim is in flight runs at once, not at the poll', async ({ store, q, queue, defer }) => {
      // A deaf view of the store: the test delivers the wake-up itself, during the claim.
      let during: (() => Promise<void>) | undefined;
      const { view, wake } = deaf(store, (target, prop) => {
        if (prop !== 'fetchNextJobs') return undefined;
        return async (...args: Parameters<StoreInterface['fetchNextJobs']>) => {
          const jobs = await target.fetchNextJobs(...args);
          const hook = jobs.length > 0 ? during : undefined;
          during = undefined;
          await hook?.();
          return jobs;
        };
      });
      const qu = queue();
      await qu.add('first', 1);
      during = async () => {
        // The claim took `first` (1 of 5); `second` is saved and announced before it returns.
        const second = await qu.add('second', 2);
        wake({ type: 'waiting', queueName: q, jobId: second.id, timestamp: Date.now() });
      };
      const w = eventDriven(q, view);
      defer(() => w.close(0));
      const done = collect<[Job, string]>(w, 'completed');
      await eventually(() => done.length === 2, { timeout: 3000, message: 'both jobs' });
      assert.deepEqual(done.map(([, r]) => r).sort(), ['first', 'second']);
    });

    s.test('a finished job frees its slot while its completion is stored; close waits for it', async ({ store, q, queue, defer }) => {
      // completeJobs is held until the test opens the gate.
      const { view, held } = holdingCompletions(store);
      const qu = queue();
      const a = await qu.add('a', 1);
      const b = await qu.add('b', 2);
      let running = 0;
      let most = 0;
      const started: string[] = [];
      const w = new Worker(q, async (job) => {
        most = Math.max(most, ++running);
        started.push(job.id);
        await Promise.resolve();
        running--;
        return job.name;
      }, { store: view, concurrency: 1, maintenance: false });
      defer(() => w.close(0));
      const done = collect<[Job, string]>(w, 'completed');
      // b runs while a's completion is still held: a's slot was freed when it finished.
      await eventually(() => started.length === 2, { message: 'b started before a was stored' });
      assert.equal(most, 1, 'never more than concurrency jobs in the processor');
      assert.equal(done.length, 0, 'completed is emitted only once stored');
      assert.equal((await store.getJob(q, a.id))?.state, 'active');
      const closing = w.close();
      // A store round trip ends first: close cannot end while completions are held.
      const first = await Promise.race([
        closing.then(() => 'closed'),
        store.getJob(q, b.id).then(() => 'read'),
      ]);
      assert.equal(first, 'read', 'close waits for the completions being stored');
      held.open();
      await closing;
      assert.deepEqual(done.map(([j]) => j.id).sort(), [a.id, b.id].sort());
      assert.equal((await store.getJob(q, a.id))?.state, 'completed');
      assert.equal((await store.getJob(q, b.id))?.state, 'completed');
    });

    s.test('claims run ahead of completions: up to 4 × concurrency finished jobs wait to be stored with their slots freed', async ({ store, q, queue, defer }) => {
      const { view, held } = holdingCompletions(store);
      const qu = queue();
      const jobs = await qu.addBulk([1, 2, 3, 4, 5, 6].map((i) => ({ name: `j${i}`, data: i })));
      const started: string[] = [];
      const w = new Worker(q, (job) => {
        started.push(job.name);
      }, { store: view, concurrency: 1, prefetch: 0, maintenance: false });
      defer(() => w.close(0));
      // (`prefetch: 'auto'` would allow 4 × (concurrency + concurrency) here.)
      // j1-j4 freed their slot at once; j5 finished with four completions waiting, so it keeps
      // its slot until they are stored, and j6 waits for it.
      await eventually(() => started.length === 5, { message: 'five jobs started' });
      await store.getJob(q, jobs[5].id);
      assert.deepEqual(started, ['j1', 'j2', 'j3', 'j4', 'j5']);
      assert.equal((await store.getJob(q, jobs[5].id))?.state, 'waiting');
      const done = collect<[Job]>(w, 'completed');
      held.open();
      await eventually(() => done.length === 6, { message: 'six completions' });
      assert.deepEqual(started, ['j1', 'j2', 'j3', 'j4', 'j5', 'j6']);
    });

    s.test('an idle worker claims again only when a job is announced (no empty claims)', async ({ store, q, queue, defer }) => {
      const { store: spied, calls } = spy(store);
      const { view, wake } = deaf(spied);
      const qu = queue();
      await qu.add('first', 1);
      const w = eventDriven(q, view);
      defer(() => w.close(0));
      const drained = next(w, 'drained');
      await next(w, 'completed');
      await drained;
      assert.equal(calls.get('fetchNextJobs'), 1, 'one claim took the only job');
      const second = await qu.add('second', 2);
      const completed = next(w, 'completed');
      wake({ type: 'waiting', queueName: q, jobId: second.id, timestamp: Date.now() });
      assert.equal((await completed)[1], 'second');
      assert.equal(
        calls.get('fetchNextJobs'),
        2,
        'one claim per wake-up, none after a partial one',
      );
    });

    s.test('progress and drained events; progress takes a number or an object', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(async (job) => {
        await job.updateProgress(50);
        await job.updateProgress({ step: 'upload' });
      });
      const progress = collect<[Job, unknown]>(w, 'progress');
      await next(w, 'drained');
      const drainedAgain = next(w, 'drained');
      await qu.add('x', 1);
      await drainedAgain;
      await eventually(() => progress.length === 2);
      assert.deepEqual(progress.map(([, p]) => p), [50, { step: 'upload' }]);
    });

    s.test('worker options are validated with InvalidArgumentError', async ({ store, q }) => {
      await Promise.resolve();
      const bad: Array<[Record<string, unknown>, string]> = [
        [{ concurrency: 0 }, 'opts.concurrency'],
        [{ lockDuration: -1 }, 'opts.lockDuration'],
        [{ limiter: { max: 0, duration: 10 } }, 'opts.limiter.max'],
        [{ group: { concurrency: 0 } }, 'opts.group.concurrency'],
        [{ maxGlobalConcurrency: 1.5 }, 'opts.maxGlobalConcurrency'],
        [{ batch: { size: 0 } }, 'opts.batch.size'],
        [{ pollInterval: 0 }, 'opts.pollInterval'],
        [{ removeOnComplete: -1 }, 'opts.removeOnComplete'],
        [{ removeOnComplete: { count: 1.5 } }, 'opts.removeOnComplete.count'],
        [{ removeOnFail: { age: -1 } }, 'opts.removeOnFail.age'],
        [{ removeOnFail: 'yes' }, 'opts.removeOnFail'],
        // Unknown options, and BullMQ's that have another form here, are named, not ignored.
        [{ concurency: 2 }, 'opts.concurency'],
        [{ drainDelay: 5 }, 'opts.drainDelay'],
        [{ connection: { host: 'localhost' } }, 'opts.connection'],
        [{ settings: { backoffStrategy: () => 1 } }, 'opts.settings'],
        [{ limiter: { max: 1, duration: 10, groupKey: 'id' } }, 'opts.limiter.groupKey'],
        [{ group: { concurency: 2 } }, 'opts.group.concurency'],
      ];
      for (const [opts, option] of bad) {
        assert.throws(
          () => new Worker(q, () => {}, { store, autorun: false, ...opts }),
          (e: unknown) => e instanceof InvalidArgumentError && e.option === option,
          option,
        );
      }
      assert.throws(
        () => new Worker(q, 'nope' as never, { store }),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'processor',
      );
    });

    s.test('lockRenewTime must be less than lockDuration', async ({ store, q, worker }) => {
      await Promise.resolve();
      for (const lockRenewTime of [1000, 5000]) {
        assert.throws(
          () =>
            new Worker(q, () => 1, { store, lockDuration: 1000, lockRenewTime, autorun: false }),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'opts.lockRenewTime' &&
            e.value === lockRenewTime && /lockDuration \(1000\)/.test(e.message),
        );
      }
      assert.ok(worker(() => 1, { lockDuration: 1000, lockRenewTime: 999, autorun: false }));
    });

    s.test('autorun: false waits for run(); closed fires on close', async ({ store, q }) => {
      const qu = new Queue(q, { store });
      const w = new Worker(q, () => 'ran', { store, autorun: false });
      assert.equal(w.isRunning(), false);
      const job = await qu.add('x', 1);
      assert.equal((await qu.getJob(job.id))?.state, 'waiting');
      const done = next(w, 'completed');
      w.run();
      await done;
      const closed = next(w, 'closed');
      await w.close();
      await closed;
      assert.equal(w.isRunning(), false);
    });
  });
}
