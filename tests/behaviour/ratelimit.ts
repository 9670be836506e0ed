/**
 * Behaviour: BullMQ's manual rate limit through the engine: `worker.rateLimit(ms)`,
 * `Worker.RateLimitError()`, `queue.getRateLimitTtl()`, `queue.removeRateLimitKey()`.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { InvalidArgumentError, type StoreEvent } from '@conveyor/shared';
import { type Job, Worker } from '@conveyor/core';
import { eventually } from '../helpers.ts';
import { collect, next, replacing, spy, type Suite } from './context.ts';

/** Registers the manual rate-limit cases. */
export function rateLimitCases(s: Suite): void {
  describe('manual rate limit', () => {
    s.test('rateLimit + RateLimitError: the job runs again after the limit, no attempt counted, every worker waits', async ({ store, queue, worker }) => {
      const qu = queue();
      const spied = spy(store);
      const LIMIT = 500;
      const starts: Array<{ id: string; at: number; run: number }> = [];
      let limitFrom = 0;
      const limiter = { max: 10, duration: 1000 };
      // The BullMQ example, in two workers: the first run of job `a` meets a 429, and the worker
      // running it limits the queue and throws Worker.RateLimitError().
      const workers: Worker[] = [];
      const processor = (self: () => Worker) => async (job: Job) => {
        starts.push({ id: job.name, at: Date.now(), run: job.attemptsStarted });
        if (job.name === 'a' && job.attemptsStarted === 1) {
          limitFrom = Date.now();
          await self().rateLimit(LIMIT);
          throw Worker.RateLimitError();
        }
        return job.name;
      };
      for (let i = 0; i < 2; i++) {
        workers.push(worker(processor(() => workers[i]), { store: spied.store, limiter }));
      }
      const failed: unknown[] = [];
      const errors: unknown[] = [];
      const done = new Map<string, Job>();
      for (const w of workers) {
        w.on('failed', (...args) => failed.push(args));
        w.on('error', (e) => errors.push(e));
        w.on('completed', (job) => done.set(job.name, job));
      }

      const a = await qu.add('a', 1);
      await eventually(() => limitFrom > 0 && starts.length === 1, { message: 'a first run' });
      const back = await eventually(async () => {
        const j = await qu.getJob(a.id);
        return j?.state === 'waiting' ? j : null;
      }, { message: 'a back to waiting' });
      assert.equal(back.attemptsMade, 0);
      const ttl = await qu.getRateLimitTtl();
      assert.ok(ttl > 0 && ttl <= LIMIT, `ttl ${ttl}`);
      const claimsAtLimit = spied.calls.get('fetchNextJobs') ?? 0;
      // Jobs added during the limit wake both workers; neither may claim before it ends.
      await qu.add('b', 2);
      await qu.add('c', 3);
      await eventually(() => done.size === 3, { message: 'a, b and c to complete' });
      for (const st of starts.slice(1)) {
        assert.ok(
          st.at >= limitFrom + LIMIT - 5,
          `${st.id} started ${st.at - limitFrom} ms after the limit was set`,
        );
      }
      assert.deepEqual(starts.map((st) => st.id).sort(), ['a', 'a', 'b', 'c']);
      // Waiting, not polling: a handful of claims at most during the limit (none is needed).
      const claimsDuring = (spied.calls.get('fetchNextJobs') ?? 0) - claimsAtLimit;
      assert.ok(claimsDuring <= 12, `${claimsDuring} claims in all after the limit was set`);
      const stored = await qu.getJob(a.id);
      assert.equal(stored?.state, 'completed');
      assert.equal(stored?.attemptsMade, 0);
      assert.equal(stored?.attemptsStarted, 2);
      assert.equal(done.get('a')?.returnvalue, 'a');
      assert.deepEqual(failed, []);
      assert.deepEqual(errors, []);
      assert.equal(await qu.getRateLimitTtl(), 0);
    });

    s.test('a worker that hears no event waits for the end of a limit set elsewhere, not for its window or a poll', async ({ store, queue, worker }) => {
      const qu = queue();
      // The worker's store delivers no event (a missed notification, a poll-only subscriber):
      // it learns of the limit from its empty claim alone.
      const deaf = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'subscribe' || prop === 'unsubscribe') return () => {};
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const spied = spy(deaf);
      const LIMIT = 300;
      await qu.add('z', null);
      const from = Date.now();
      await store.setRateLimit(qu.name, LIMIT); // as another process's worker.rateLimit would
      // A window far longer than the test and the context's 5 s poll: only the limit's own end
      // can start the job in time.
      const w = worker(() => Date.now(), {
        store: spied.store,
        limiter: { max: 100, duration: 1_000_000_000 },
      });
      const [, startedAt] = await next<[Job, number]>(w, 'completed');
      assert.ok(startedAt >= from + LIMIT - 5, `started ${startedAt - from} ms after the limit`);
      assert.ok(startedAt < from + LIMIT + 2000, `started ${startedAt - from} ms after the limit`);
      const claims = spied.calls.get('fetchNextJobs') ?? 0;
      assert.ok(claims <= 4, `${claims} claims`);
    });

    s.test('removeRateLimitKey ends the limit: waiting workers claim at once', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker((job) => job.name, { limiter: { max: 10, duration: 1000 } });
      await w.rateLimit(60_000);
      assert.ok((await qu.getRateLimitTtl()) > 55_000);
      const completed = next<[Job, unknown]>(w, 'completed');
      const added = await qu.add('x', null);
      assert.equal((await qu.getJob(added.id))?.state, 'waiting');
      assert.equal(await qu.removeRateLimitKey(), true);
      assert.equal(await qu.getRateLimitTtl(), 0);
      // Well within the 60 s the worker was told to wait: the removal woke it.
      const [job] = await completed;
      assert.equal(job.id, added.id);
      assert.equal(await qu.removeRateLimitKey(), false);
    });

    s.test('rateLimit needs a limiter and a good ms: typed errors, nothing changed', async ({ queue, worker }) => {
      const qu = queue();
      const plain = worker(() => null, { autorun: false });
      await assert.rejects(
        plain.rateLimit(1000),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'opts.limiter' &&
          /limiter/.test(e.message),
      );
      const limited = worker(() => null, {
        autorun: false,
        limiter: { max: 1, duration: 1000 },
      });
      for (const bad of [-1, NaN, Infinity, '5000', undefined]) {
        await assert.rejects(
          limited.rateLimit(bad as number),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'ms' && Object.is(e.value, bad),
          `ms ${String(bad)}`,
        );
      }
      assert.equal(await qu.getRateLimitTtl(), 0);
    });

    s.test('a RateLimitError with no limit in force backs off for limiter.duration: no hot loop, no attempt, no failed', async ({ store, queue, worker }) => {
      const qu = queue();
      const spied = spy(store);
      const WINDOW = 300;
      // Runs 1 to 3 throw Worker.RateLimitError() with no manual limit in force: run 1 never
      // set one, run 2 set one and ended it (rateLimit(0)), run 3 set one that expired before
      // the throw. The old worker claimed the job back at once, every time.
      const w: Worker = worker(async (job: Job) => {
        if (job.attemptsStarted === 2) await w.rateLimit(0);
        if (job.attemptsStarted === 3) {
          await w.rateLimit(20);
          await eventually(async () => (await qu.getRateLimitTtl()) === 0, {
            message: 'the 20 ms limit to end',
          });
        }
        if (job.attemptsStarted <= 3) throw Worker.RateLimitError();
        return 'ok';
      }, { store: spied.store, limiter: { max: 100, duration: WINDOW } });
      // The time of every `active` event: one per claim of the job.
      const starts: number[] = [];
      w.on('active', () => starts.push(Date.now()));
      const failed = collect<[Job, Error]>(w, 'failed');
      const completed = next<[Job, unknown]>(w, 'completed', () => true, 10_000);
      const added = await qu.add('x', null, { attempts: 1 });
      // The observable end: the fourth run completes. By then the job was claimed exactly four
      // times, each claim at least WINDOW after the put-back before it (run 3 adds its wait).
      const [job, value] = await completed;
      assert.equal(job.id, added.id);
      assert.equal(value, 'ok');
      assert.equal(starts.length, 4, `${starts.length} active events`);
      for (let i = 1; i < starts.length; i++) {
        const gap = starts[i] - starts[i - 1];
        assert.ok(gap >= WINDOW - 5, `run ${i + 1} claimed ${gap} ms after run ${i}`);
      }
      // Waiting, not polling: about one claim per back-off (and a wake-up or two), not hundreds.
      const claims = spied.calls.get('fetchNextJobs') ?? 0;
      assert.ok(claims <= 16, `${claims} claims`);
      const stored = await qu.getJob(added.id);
      assert.equal(stored?.attemptsMade, 0);
      assert.equal(stored?.attemptsStarted, 4);
      assert.deepEqual(failed, []);
    });

    s.test("a late rate-limit event heard during the back-off's read does not cut the back-off short", async ({ store, queue, worker }) => {
      const qu = queue();
      const WINDOW = 300;
      // A poll-only store hears events late: the echo of a 20 ms limit, long over, can arrive
      // while the worker reads the store's TTL after a RateLimitError. The store's answer (no
      // limit) must decide, and the worker back off for the limiter's duration.
      const listeners: Array<(e: StoreEvent) => void> = [];
      let echo = false;
      const heard = replacing(store, 'subscribe', (real) => (name, callback, types) => {
        if (name === qu.name) listeners.push(callback);
        return real(name, callback, types);
      });
      const late = replacing(heard, 'getRateLimitTtl', (real) => (name, maxJobs) => {
        if (echo) {
          echo = false;
          for (const callback of listeners) {
            callback({
              type: 'rate-limit',
              queueName: name,
              data: { ttl: 20 },
              timestamp: Date.now(),
            });
          }
        }
        return real(name, maxJobs);
      });
      const starts: number[] = [];
      const w = worker(() => {
        starts.push(Date.now());
        if (starts.length === 1) {
          echo = true;
          throw Worker.RateLimitError();
        }
        return 'ok';
      }, { store: late, limiter: { max: 100, duration: WINDOW } });
      const completed = next<[Job, unknown]>(w, 'completed', () => true, 10_000);
      const added = await qu.add('x', null, { attempts: 1 });
      const [job] = await completed;
      assert.equal(job.id, added.id);
      assert.equal(echo, false, 'the back-off read the TTL');
      assert.ok(listeners.length > 0, 'the worker subscribed');
      assert.equal(starts.length, 2);
      assert.ok(starts[1] - starts[0] >= WINDOW - 5, `ran again after ${starts[1] - starts[0]} ms`);
    });

    s.test('an error named RateLimitError (BullMQ) puts the job back without a failed attempt; a worker without a limiter backs off for pollInterval', async ({ queue, worker }) => {
      const qu = queue();
      const POLL = 200;
      const starts: number[] = [];
      const w = worker(() => {
        starts.push(Date.now());
        if (starts.length === 1) throw Object.assign(new Error('429'), { name: 'RateLimitError' });
        return 'ok';
      }, { pollInterval: POLL });
      const failed = collect<[Job, Error]>(w, 'failed');
      const completed = next<[Job, unknown]>(w, 'completed');
      const added = await qu.add('y', null, { attempts: 1 });
      const [job, value] = await completed;
      assert.equal(job.id, added.id);
      assert.equal(value, 'ok');
      assert.equal(starts.length, 2);
      assert.ok(starts[1] - starts[0] >= POLL - 5, `ran again after ${starts[1] - starts[0]} ms`);
      assert.equal((await qu.getJob(added.id))?.attemptsMade, 0);
      assert.deepEqual(failed, []);
    });
  });
}
