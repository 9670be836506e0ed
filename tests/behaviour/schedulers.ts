/**
 * Behaviour: job schedulers (every, cron with tz/startDate/endDate/limit), with an injected
 * clock for timing and real workers for runs.
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, type RepeatOptions } from '@conveyor/shared';
import { type Clock, Queue } from '@conveyor/core';
import { eventually } from '../helpers.ts';
import { collect, gate, type Suite } from './context.ts';

/** A clock frozen at `at` (ms). */
function frozen(at: number): Clock {
  return { now: () => at };
}

/** A time safely in the future, so that scheduled jobs stay delayed during the test. */
const YEAR = new Date().getUTCFullYear() + 5;

/** Registers the scheduler cases. */
export function schedulerCases(s: Suite): void {
  describe('schedulers', () => {
    s.test('cron: the first run is the first match, not now (injected clock)', async ({ store, q }) => {
      const now = Date.UTC(YEAR, 0, 15, 10, 30, 12);
      const qu = new Queue(q, { store, clock: frozen(now) });
      const job = await qu.cron('0 * * * *', 'hourly', { n: 1 }, { key: 'hourly' });
      const due = Date.UTC(YEAR, 0, 15, 11, 0, 0);
      assert.ok(job);
      assert.equal(job.state, 'delayed');
      assert.equal(job.delayUntil, due);
      assert.equal(job.id, `repeat:hourly:${due}`);
      const [sched] = await qu.getJobSchedulers();
      assert.equal(sched.id, 'hourly');
      assert.equal(sched.nextRunAt, due);
      assert.equal(sched.runCount, 1);
      // A match exactly now runs now.
      const exact = Date.UTC(YEAR, 0, 15, 11, 0, 0);
      const onTheHour = new Queue(q, { store, clock: frozen(exact) });
      const now2 = await onTheHour.cron('0 * * * *', 'exact', {}, { key: 'exact' });
      assert.equal(now2?.state, 'waiting');
      assert.equal(now2?.id, `repeat:exact:${exact}`);
    });

    s.test('cron: tz, startDate and endDate bound the runs', async ({ store, q }) => {
      const now = Date.UTC(YEAR, 0, 15, 12, 0, 0);
      const qu = new Queue(q, { store, clock: frozen(now) });
      const ny = await qu.cron('0 9 * * *', 'ny', {}, { key: 'ny', tz: 'America/New_York' });
      assert.equal(ny?.delayUntil, Date.UTC(YEAR, 0, 15, 14, 0, 0));
      const later = await qu.cron('0 9 * * *', 'later', {}, {
        key: 'later',
        startDate: new Date(Date.UTC(YEAR, 1, 1)),
      });
      assert.equal(later?.delayUntil, Date.UTC(YEAR, 1, 1, 9, 0, 0));
      const over = await qu.cron('0 9 * * *', 'over', {}, { key: 'over', endDate: now + 1000 });
      assert.equal(over, null);
      assert.equal((await qu.getJobScheduler('over'))?.nextRunAt, null);
      await assert.rejects(
        () => qu.cron('0 9 * * *', 'x', {}, { tz: 'Mars/Olympus' }),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'opts.tz',
      );
      await assert.rejects(
        () => qu.cron('not a cron', 'x', {}),
        (e: unknown) => e instanceof InvalidArgumentError && e.option === 'opts.pattern',
      );
    });

    s.test('every twice with one key keeps one scheduler and one pending job; remove clears both', async ({ queue }) => {
      const qu = queue();
      await qu.every('1h', 'tick', { v: 1 }, { key: 'tick' });
      await qu.every('1h', 'tick', { v: 2 }, { key: 'tick' });
      const list = await qu.getJobSchedulers();
      assert.equal(list.length, 1);
      assert.deepEqual(list[0].data, { v: 2 });
      assert.equal(await qu.count(), 1);
      assert.equal(await qu.removeJobScheduler('tick'), true);
      assert.equal(await qu.removeJobScheduler('tick'), false);
      assert.deepEqual(await qu.getJobSchedulers(), []);
      assert.equal(await qu.count(), 0);
    });

    s.test('upsertJobScheduler (BullMQ style) creates and replaces by id', async ({ store, q }) => {
      const now = Date.UTC(YEAR, 5, 1, 8, 0, 0);
      const qu = new Queue(q, { store, clock: frozen(now) });
      const first = await qu.upsertJobScheduler('report', { pattern: '30 8 * * *' }, {
        name: 'daily-report',
        data: { v: 1 },
        opts: { attempts: 2 },
      });
      assert.equal(first?.name, 'daily-report');
      assert.equal(first?.delayUntil, Date.UTC(YEAR, 5, 1, 8, 30, 0));
      assert.equal(first?.opts.attempts, 2);
      await qu.upsertJobScheduler('report', { every: 60_000, startDate: now + 5000 }, {
        name: 'daily-report',
        data: { v: 2 },
      });
      const list = await qu.getJobSchedulers();
      assert.equal(list.length, 1);
      assert.deepEqual(list[0].repeat.every, 60_000);
      assert.equal(list[0].nextRunAt, now + 5000);
      assert.equal(await qu.count(), 1);
    });

    s.test('upsertJobScheduler refuses both every and pattern, or an unknown repeat key; nothing is saved', async ({ queue }) => {
      const qu = queue();
      await assert.rejects(
        () => qu.upsertJobScheduler('both', { every: 1000, pattern: '* * * * *' }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.option === 'repeat' &&
          /exactly one of every, pattern/.test(e.message),
      );
      for (
        const repeat of [{ every: 1000, immediately: true }, { pattern: '* * * * *', count: 2 }]
      ) {
        await assert.rejects(
          () => qu.upsertJobScheduler('extra', repeat as RepeatOptions),
          (e: unknown) =>
            e instanceof InvalidArgumentError && /^repeat\.(immediately|count)$/.test(e.option),
        );
      }
      await assert.rejects(() => qu.upsertJobScheduler('none', {}), InvalidArgumentError);
      assert.deepEqual(await qu.getJobSchedulers(), []);
      assert.equal(await qu.count(), 0);
    });

    s.test('every with a limit, upserted again at every start, keeps its pending run', async ({ queue }) => {
      const qu = queue();
      for (let start = 0; start < 3; start++) {
        await qu.every('1h', 'tick', { start }, { key: 'once', limit: 1 });
        const scheduler = await qu.getJobScheduler('once');
        assert.equal(scheduler?.runCount, 1, `start ${start}`);
        assert.notEqual(scheduler?.nextRunAt, null, `start ${start}: the series goes on`);
        assert.equal(await qu.count(), 1, `start ${start}: one pending run`);
      }
    });

    s.test('every runs at the interval and limit counts total runs', async ({ queue, worker }) => {
      const qu = queue();
      const w = worker(() => 'tick');
      const done = collect(w, 'completed');
      await qu.every(40, 'tick', {}, { key: 't', limit: 3 });
      await eventually(() => done.length === 3);
      await eventually(async () => (await qu.getJobScheduler('t'))?.nextRunAt === null);
      assert.equal((await qu.getJobScheduler('t'))?.runCount, 3);
      assert.equal(await qu.count(), 0);
      assert.equal(done.length, 3);
    });

    s.test('the next run is scheduled when the current one starts, so failures do not end the series', async ({ queue, worker }) => {
      const qu = queue();
      const g = gate();
      let starts = 0;
      const w = worker(async () => {
        starts++;
        if (starts === 1) await g.promise;
        throw new Error('run failed');
      }, { concurrency: 2 });
      const failed = collect(w, 'failed');
      await qu.every(30, 'flaky', {}, { key: 'flaky', limit: 3 });
      // While the first run is still running, its successor already exists.
      await eventually(async () =>
        (await qu.getJobCounts('delayed', 'waiting', 'active')).active >= 1 &&
        (await qu.getJobScheduler('flaky'))!.runCount >= 2
      );
      g.open();
      await eventually(() => failed.length === 3);
      assert.equal((await qu.getJobScheduler('flaky'))?.runCount, 3);
    });

    s.test('a lost pending run is repaired by the run-schedulers service', async ({ queue, worker }) => {
      const qu = queue();
      await qu.every(50, 'r', {}, { key: 'r', startDate: Date.now() + 60 });
      await qu.drain();
      assert.equal(await qu.count(), 0);
      const w = worker(() => 'ok', { pollInterval: 30 });
      const done = collect(w, 'completed');
      await eventually(() => done.length >= 1, { message: 'a repaired run' });
    });
  });
}
