/**
 * Behaviour: the engine's pure parts (durations, backoff, schedules, validation, emitter).
 * They need no store, but live in the suite so that every entry point checks them.
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, type JobData, newJob } from '@conveyor/shared';
import {
  backoffDelay,
  Batcher,
  delayUntilWhen,
  Emitter,
  firstRunAt,
  nextRunAt,
  parseDuration,
  runAtOf,
} from '@conveyor/core';

function jobWith(backoff: JobData['opts']['backoff']): JobData {
  return { ...newJob('q', 'n', null, { backoff }), id: '1' };
}

/** Registers the unit cases (`ran` counts them). */
export function unitCases(ran: () => void): void {
  const test = (name: string, body: () => void | Promise<void>): void => {
    it(name, async () => {
      await body();
      ran();
    });
  };
  describe('units', () => {
    test('parseDuration: units, combinations and "in …"', () => {
      assert.equal(parseDuration(250), 250);
      assert.equal(parseDuration('500ms'), 500);
      assert.equal(parseDuration('2h'), 7_200_000);
      assert.equal(parseDuration('1h30m'), 5_400_000);
      assert.equal(parseDuration('in 10 minutes'), 600_000);
      assert.equal(parseDuration('1 day 2 hours'), 93_600_000);
      assert.equal(parseDuration('1.5s'), 1500);
      assert.equal(parseDuration('1w'), 604_800_000);
      for (const bad of ['', 'soon', '10 parsecs', '-5m', 'h1']) {
        assert.throws(
          () => parseDuration(bad, 'opts.delay'),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'opts.delay' && e.value === bad,
        );
      }
      assert.throws(() => parseDuration(-1), InvalidArgumentError);
      assert.throws(() => parseDuration(Infinity), InvalidArgumentError);
    });

    test('delayUntilWhen: Date is an instant, past dates give 0', () => {
      assert.equal(delayUntilWhen(new Date(5000), 1000), 4000);
      assert.equal(delayUntilWhen(new Date(0), 1000), 0);
      assert.equal(delayUntilWhen('1m', 0), 60_000);
      assert.throws(() => delayUntilWhen(new Date('nope'), 0), InvalidArgumentError);
    });

    test('backoff: fixed, exponential, jitter range, number, custom', async () => {
      const err = new Error('x');
      assert.equal(await backoffDelay(jobWith(undefined), 1, err), 0);
      assert.equal(await backoffDelay(jobWith(300), 4, err), 300);
      assert.equal(await backoffDelay(jobWith({ type: 'fixed', delay: 100 }), 3, err), 100);
      const exp = jobWith({ type: 'exponential', delay: 100 });
      assert.deepEqual(
        await Promise.all([1, 2, 3, 4].map((n) => backoffDelay(exp, n, err))),
        [100, 200, 400, 800],
      );
      const jit = jobWith({ type: 'exponential', delay: 1000, jitter: 0.5 });
      assert.equal(await backoffDelay(jit, 1, err, undefined, () => 0), 500);
      assert.equal(await backoffDelay(jit, 1, err, undefined, () => 0.999999), 1000);
      assert.equal(await backoffDelay(jit, 2, err, undefined, () => 0), 1000);
      const custom = jobWith({ type: 'custom' });
      assert.equal(await backoffDelay(custom, 3, err, (n) => n * 7), 21);
      assert.equal(await backoffDelay(custom, 3, err, () => -1), null);
      await assert.rejects(() => backoffDelay(custom, 1, err), /backoffStrategy/);
    });

    test('backoff: a custom falsy delay retries at once, a negative one stops, nonsense throws', async () => {
      const err = new Error('x');
      const custom = jobWith({ type: 'custom' });
      const delay = (value: unknown) => backoffDelay(custom, 1, err, () => value as number);
      for (const falsy of [undefined, null, 0, NaN]) assert.equal(await delay(falsy), 0);
      assert.equal(await delay(-5), null);
      assert.equal(await delay(2.5), 2.5);
      for (const bad of [Infinity, -Infinity, '10', {}, true]) {
        await assert.rejects(
          () => delay(bad),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'backoffStrategy' && e.value === bad,
        );
      }
    });

    test('schedules: first and next runs, limit, endDate, skipped missed runs', () => {
      const t = Date.UTC(2030, 0, 1, 10, 30);
      assert.equal(firstRunAt({ every: 1000 }, t), t);
      assert.equal(firstRunAt({ every: 1000, startDate: t + 5000 }, t), t + 5000);
      assert.equal(firstRunAt({ pattern: '0 * * * *' }, t), Date.UTC(2030, 0, 1, 11));
      assert.equal(firstRunAt({ pattern: '*/15 * * * *', endDate: t + 60_000 }, t), t);
      assert.equal(firstRunAt({ pattern: '0 * * * *', endDate: t + 60_000 }, t), null);
      assert.equal(nextRunAt({ every: 1000 }, t, 1), t + 1000);
      assert.equal(nextRunAt({ every: 1000, limit: 2 }, t, 2), null);
      assert.equal(nextRunAt({ every: 1000 }, t, 1, t + 60_000), t + 60_000);
      assert.equal(
        nextRunAt({ pattern: '0 * * * *' }, Date.UTC(2030, 0, 1, 11), 1),
        Date.UTC(2030, 0, 1, 12),
      );
      assert.equal(
        nextRunAt(
          { pattern: '0 * * * *', endDate: Date.UTC(2030, 0, 1, 11, 30) },
          Date.UTC(2030, 0, 1, 11),
          1,
        ),
        null,
      );
      assert.equal(runAtOf('repeat:a:b:123'), 123);
      assert.equal(runAtOf('plain'), null);
    });

    test('emitter: on, once, off, and listener errors go to error listeners', () => {
      const e = new Emitter<{ tick: [number]; error: [unknown] }>();
      const got: number[] = [];
      const errors: unknown[] = [];
      const f = (n: number): void => void got.push(n);
      e.on('tick', f).once('tick', (n) => got.push(n * 10)).on('error', (x) => errors.push(x));
      e.emit('tick', 1);
      e.emit('tick', 2);
      e.off('tick', f);
      e.emit('tick', 3);
      assert.deepEqual(got, [1, 10, 2]);
      e.on('tick', () => {
        throw new Error('listener broke');
      });
      e.emit('tick', 4);
      assert.equal((errors[0] as Error).message, 'listener broke');
    });

    test('batcher: items added together, or during a flush, go out together', async () => {
      const batches: number[][] = [];
      let release!: () => void;
      const first = new Promise<void>((r) => (release = r));
      const b = new Batcher<number, number>(async (xs) => {
        batches.push(xs);
        if (batches.length === 1) await first;
        return xs.map((x) => x + 1);
      });
      const a = [b.add(1), b.add(2)];
      while (batches.length === 0) await Promise.resolve();
      const c = [b.add(3), b.add(4)];
      release();
      assert.deepEqual(await Promise.all([...a, ...c]), [2, 3, 4, 5]);
      assert.deepEqual(batches, [[1, 2], [3, 4]]);
      const failing = new Batcher<number, number>(() => Promise.reject(new Error('down')));
      await assert.rejects(() => failing.add(1), /down/);
    });

    test('batcher: an item that sinks a flush rejects alone; the others go again and resolve', async () => {
      const batches: number[][] = [];
      const b = new Batcher<number, number>((xs) => {
        batches.push(xs);
        if (xs.includes(13)) return Promise.reject(new Error('bad item 13'));
        return Promise.resolve(xs.map((x) => x * 2));
      });
      const results = await Promise.allSettled([b.add(1), b.add(13), b.add(3)]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
      assert.equal((results[0] as PromiseFulfilledResult<number>).value, 2);
      assert.equal((results[2] as PromiseFulfilledResult<number>).value, 6);
      assert.match(String((results[1] as PromiseRejectedResult).reason), /bad item 13/);
      assert.deepEqual(batches, [[1, 13, 3], [1], [13], [3]]);
    });

    test('errors show the refused value faithfully: NaN, Infinity, bigint, symbol, function', () => {
      const shown = (value: unknown) => new InvalidArgumentError('o', value, 'ok').message;
      assert.equal(shown(NaN), 'o must be ok (got NaN)');
      assert.equal(shown(Infinity), 'o must be ok (got Infinity)');
      assert.equal(shown(-Infinity), 'o must be ok (got -Infinity)');
      assert.equal(shown(10n), 'o must be ok (got 10n)');
      assert.equal(shown(Symbol('s')), 'o must be ok (got Symbol(s))');
      assert.equal(shown(() => 1), 'o must be ok (got a function)');
      assert.equal(shown(undefined), 'o must be ok (got undefined)');
      assert.equal(shown('x'), 'o must be ok (got "x")');
      assert.equal(shown({ a: NaN, b: [1n] }), 'o must be ok (got {"a":"NaN","b":["1n"]})');
    });
  });
}
