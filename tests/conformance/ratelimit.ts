/**
 * Conformance: the manual rate limit (`setRateLimit`, `getRateLimitTtl`, `removeRateLimit`),
 * BullMQ's `worker.rateLimit` / `queue.getRateLimitTtl` / `queue.removeRateLimitKey`.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { InvalidArgumentError, type StoreInterface } from '@conveyor/shared';
import { eventually } from '../helpers.ts';
import { record, saveN, type Suite, uniqueQueue } from './context.ts';

/** A window so long that no case crosses a boundary by accident. */
const LONG = 1_000_000_000;

/** Registers the manual rate-limit cases. */
export function rateLimitCases(s: Suite): void {
  describe('manual rate limit', () => {
    s.test('a manual limit holds limited claims until it ends; other claims go on', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 5);
      const limiter = { max: 100, duration: LONG };
      const started = Date.now();
      await store.setRateLimit(q, 300);
      assert.equal(await store.fetchNextJob(q, 'w', 30_000, { limiter }), null);
      assert.deepEqual(await store.fetchNextJobs(q, 'w', 30_000, 3, { limiter }), []);
      // Claims without a limiter (and with only a group limiter) are not held.
      assert.ok(await store.fetchNextJob(q, 'w', 30_000));
      assert.ok(await store.fetchNextJob(q, 'w', 30_000, { groupLimiter: limiter }));
      const ttl = await store.getRateLimitTtl(q);
      assert.ok(ttl > 0 && ttl <= 300, `ttl ${ttl}`);
      assert.ok(Number.isInteger(ttl), `ttl ${ttl} is a whole number`);
      const got = await eventually(() => store.fetchNextJob(q, 'w', 30_000, { limiter }), {
        timeout: 5000,
        message: 'a limited claim after the limit',
      });
      // By the store's clock the limit ran its 300 ms; the local clock agrees within a few ms.
      assert.ok(Date.now() - started >= 280, `claimed after ${Date.now() - started} ms`);
      assert.equal(got.state, 'active');
      assert.equal(await store.getRateLimitTtl(q), 0);
      assert.equal(await store.getActiveCount(q), 3);
    });

    s.test('getRateLimitTtl is 0 unless limited; removeRateLimit ends the limit and resets the window', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 3);
      assert.equal(await store.getRateLimitTtl(q), 0);
      assert.equal(await store.removeRateLimit(q), false);
      const limiter = { max: 1, duration: LONG };
      assert.ok(await store.fetchNextJob(q, 'w', 30_000, { limiter }));
      assert.equal(await store.fetchNextJob(q, 'w', 30_000, { limiter }), null, 'window full');
      const rec = record(store, q);
      await store.setRateLimit(q, 60_000);
      const ttl = await store.getRateLimitTtl(q);
      assert.ok(ttl > 55_000 && ttl <= 60_000, `ttl ${ttl}`);
      await rec.until((e) => e.type === 'rate-limit' && e.data?.ttl === 60_000, 'rate-limit set');
      assert.equal(await store.removeRateLimit(q), true);
      await rec.until((e) => e.type === 'rate-limit' && e.data?.ttl === 0, 'rate-limit ended');
      rec.stop();
      assert.equal(await store.getRateLimitTtl(q), 0);
      // The window's count went with it: the limiter allows `max` claims again.
      assert.ok(await store.fetchNextJob(q, 'w', 30_000, { limiter }));
      assert.equal(await store.fetchNextJob(q, 'w', 30_000, { limiter }), null);
      assert.equal(await store.removeRateLimit(q), false, 'nothing left to end');
    });

    s.test('getRateLimitTtl(maxJobs): the time a window that counted maxJobs claims has left', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 4);
      assert.equal(await store.getRateLimitTtl(q, 1), 0, 'no window yet');
      const limiter = { max: 2, duration: LONG };
      assert.ok(await store.fetchNextJob(q, 'w', 30_000, { limiter }));
      assert.equal(await store.getRateLimitTtl(q, 2), 0, 'one claim of two');
      assert.ok(await store.fetchNextJob(q, 'w', 30_000, { limiter }));
      const now = Date.now();
      const left = Math.floor(now / LONG) * LONG + LONG - now;
      for (const maxJobs of [1, 2]) {
        const ttl = await store.getRateLimitTtl(q, maxJobs);
        assert.ok(Number.isInteger(ttl), `ttl ${ttl} is a whole number`);
        // The window's end by the store's clock (PostgreSQL: the database's), the same host's.
        assert.ok(
          Math.abs(ttl - left) < 2000,
          `maxJobs ${maxJobs}: ttl ${ttl}, window left ${left}`,
        );
      }
      assert.equal(await store.getRateLimitTtl(q, 3), 0, 'two claims of three');
      assert.equal(await store.getRateLimitTtl(q), 0, 'without maxJobs: the manual limit only');
      // A manual limit in force comes first, whatever maxJobs (BullMQ counts it as a full window).
      await store.setRateLimit(q, 60_000);
      const manual = await store.getRateLimitTtl(q, 100);
      assert.ok(manual > 55_000 && manual <= 60_000, `manual ttl ${manual}`);
      // removeRateLimit resets the window too.
      await store.removeRateLimit(q);
      assert.equal(await store.getRateLimitTtl(q, 1), 0);
      // A window that ended has no time left, whatever it counted.
      const short = { max: 1, duration: 200 };
      await eventually(() => store.fetchNextJob(q, 'w', 30_000, { limiter: short }), {
        message: 'a claim under a 200 ms window',
      });
      assert.ok((await store.getRateLimitTtl(q, 1)) <= 200);
      await eventually(async () => (await store.getRateLimitTtl(q, 1)) === 0, {
        message: 'the 200 ms window to end',
      });
    });

    s.test('getRateLimitTtl refuses a maxJobs that is not a whole number >= 1, naming it', async (store) => {
      const q = uniqueQueue();
      for (const bad of [0, -1, 1.5, NaN, Infinity, '2', null]) {
        await assert.rejects(
          async () => await store.getRateLimitTtl(q, bad as number),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'maxJobs' && Object.is(e.value, bad),
          `maxJobs ${String(bad)}`,
        );
      }
      assert.equal(await store.getRateLimitTtl(q, undefined), 0);
    });

    s.test('setRateLimit replaces the limit in force; 0 ends it', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 1);
      const limiter = { max: 100, duration: LONG };
      await store.setRateLimit(q, 60_000);
      await store.setRateLimit(q, 30_000);
      const ttl = await store.getRateLimitTtl(q);
      assert.ok(ttl > 25_000 && ttl <= 30_000, `shortened: ttl ${ttl}`);
      await store.setRateLimit(q, 0);
      assert.equal(await store.getRateLimitTtl(q), 0);
      assert.ok(await store.fetchNextJob(q, 'w', 30_000, { limiter }));
    });

    s.test('a bad ttl is refused, naming it, and nothing changes', async (store) => {
      const q = uniqueQueue();
      await saveN(store, q, 1);
      await store.setRateLimit(q, 60_000);
      for (const bad of [-1, NaN, Infinity, '500', null, undefined]) {
        await assert.rejects(
          async () => await store.setRateLimit(q, bad as number),
          (e: unknown) =>
            e instanceof InvalidArgumentError && e.option === 'ttl' && Object.is(e.value, bad),
          `ttl ${String(bad)}`,
        );
      }
      const ttl = await store.getRateLimitTtl(q);
      assert.ok(ttl > 55_000, `the limit in force is kept: ttl ${ttl}`);
      const q2 = uniqueQueue();
      await saveN(store, q2, 1);
      await assert.rejects(async () => await store.setRateLimit(q2, -5), InvalidArgumentError);
      assert.equal(await store.getRateLimitTtl(q2), 0);
      assert.ok(await store.fetchNextJob(q2, 'w', 30_000, { limiter: { max: 1, duration: LONG } }));
    });

    s.test('obliterate ends the manual limit', async (store) => {
      const q = uniqueQueue();
      await store.setRateLimit(q, 60_000);
      assert.ok((await store.getRateLimitTtl(q)) > 0);
      await store.obliterate(q);
      assert.equal(await store.getRateLimitTtl(q), 0);
    });

    const openPeer = s.harness.openPeer?.bind(s.harness);
    if (!openPeer) {
      s.skip(
        'two stores: a manual limit holds the claims of every process',
        `${s.harness.label} has no peer stores (per-instance data)`,
      );
      return;
    }
    s.test('two stores: a manual limit holds the claims of every process', async (store) => {
      const peer: StoreInterface = await openPeer(store);
      try {
        const q = uniqueQueue();
        await saveN(store, q, 2);
        const limiter = { max: 100, duration: LONG };
        await store.setRateLimit(q, 60_000);
        assert.equal(await peer.fetchNextJob(q, 'wb', 30_000, { limiter }), null);
        assert.ok((await peer.getRateLimitTtl(q)) > 55_000);
        assert.equal(await peer.removeRateLimit(q), true);
        assert.equal(await store.getRateLimitTtl(q), 0);
        assert.ok(await store.fetchNextJob(q, 'wa', 30_000, { limiter }));
        await peer.setRateLimit(q, 60_000);
        assert.equal(await store.fetchNextJob(q, 'wa', 30_000, { limiter }), null);
      } finally {
        await peer.disconnect();
      }
    });
  });
}
