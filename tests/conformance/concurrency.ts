/**
 * Conformance: racing callers. Run on one store and, when the harness has `openPeer`, across
 * two stores over the same data (how shared stores prove cross-process safety).
 *
 * @module
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreInterface } from '@conveyor/shared';
import { claim, job, saveN, type Suite, uniqueQueue } from './context.ts';

/** `n` fetchers loop until the queue is empty; returns every claimed id. */
async function fetchAll(stores: StoreInterface[], queue: string, n: number): Promise<string[]> {
  const claimed: string[] = [];
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const store = stores[i % stores.length];
      for (;;) {
        const got = await store.fetchNextJob(queue, `w${i}`, 30_000);
        if (!got) return;
        claimed.push(got.id);
      }
    }),
  );
  return claimed;
}

/** Registers the concurrency cases, for `stores(store)` (one store, or a store and a peer). */
function raceCases(
  s: Suite,
  label: string,
  open: (store: StoreInterface) => Promise<StoreInterface[]>,
): void {
  const using = async <T>(store: StoreInterface, body: (all: StoreInterface[]) => Promise<T>) => {
    const all = await open(store);
    try {
      return await body(all);
    } finally {
      for (const extra of all.slice(1)) await extra.disconnect();
    }
  };

  s.test(`${label}: 50 parallel fetchers over 200 jobs never share a job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const saved = await store.saveBulk(
        q,
        Array.from({ length: 200 }, (_, i) => job(q, 't', { i })),
      );
      const claimed = await fetchAll(all, q, 50);
      assert.equal(claimed.length, 200);
      assert.equal(new Set(claimed).size, 200);
      assert.deepEqual([...claimed].sort(), [...saved].sort());
      assert.equal(await store.getActiveCount(q), 200);
    }));

  s.test(`${label}: parallel batch fetchers never share a job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      await saveN(store, q, 100);
      const batches = await Promise.all(
        Array.from(
          { length: 10 },
          (_, i) => all[i % all.length].fetchNextJobs(q, `w${i}`, 30_000, 15),
        ),
      );
      const claimed = batches.flat().map((j) => j.id);
      assert.equal(claimed.length, 100);
      assert.equal(new Set(claimed).size, 100);
    }));

  s.test(`${label}: 20 parallel saves with one dedup key make one job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const opts = { deduplication: { key: 'only-one' } };
      const results = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => all[i % all.length].saveJob(q, job(q, 't', { i }, opts)),
        ),
      );
      assert.equal(new Set(results).size, 1);
      assert.equal(await store.countJobs(q, 'waiting'), 1);
      assert.equal((await store.findByDeduplicationKey(q, 'only-one'))?.id, results[0]);
    }));

  s.test(`${label}: 20 parallel saves with one jobId make one job`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const results = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => all[i % all.length].saveJob(q, job(q, 't', { i }, { jobId: 'same' })),
        ),
      );
      assert.deepEqual(new Set(results), new Set(['same']));
      assert.equal(await store.countJobs(q, 'waiting'), 1);
    }));

  s.test(`${label}: racing completions with the same token: exactly one wins`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const id = await store.saveJob(q, job(q));
      const c = await claim(store, q);
      const results = await Promise.all(
        Array.from(
          { length: 6 },
          (_, i) =>
            all[i % all.length].completeJobs(q, [{
              jobId: id,
              token: c.lockToken,
              returnvalue: i,
            }]),
        ),
      );
      assert.equal(results.flat().filter(Boolean).length, 1);
    }));

  s.test(`${label}: a stale token cannot complete after a re-claim elsewhere`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const peer = all[all.length - 1];
      const id = await store.saveJob(q, job(q));
      const first = await claim(store, q);
      assert.equal(await store.releaseLock(q, id, first.lockToken), true);
      const second = await claim(peer, q);
      const [stale, current] = await Promise.all([
        store.completeJobs(q, [{ jobId: id, token: first.lockToken, returnvalue: 'old' }]),
        peer.completeJobs(q, [{ jobId: id, token: second.lockToken, returnvalue: 'new' }]),
      ]);
      assert.deepEqual(stale, [false]);
      assert.deepEqual(current, [true]);
      assert.equal((await store.getJob(q, id))?.returnvalue, 'new');
    }));

  s.test(`${label}: 20 parallel saves into a group with maxSize never exceed it`, (store) =>
    using(store, async (all) => {
      const q = uniqueQueue();
      const opts = { group: { id: 'g', maxSize: 5 } };
      const results = await Promise.allSettled(
        Array.from(
          { length: 20 },
          (_, i) => all[i % all.length].saveJob(q, job(q, 't', { i }, opts)),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 5);
      assert.equal(await store.getWaitingGroupCount(q, 'g'), 5);
    }));
}

/** Registers the concurrency cases (and their cross-store variant when the harness has peers). */
export function concurrencyCases(s: Suite): void {
  describe('concurrency', () => {
    raceCases(s, 'one store', (store) => Promise.resolve([store]));
    const openPeer = s.harness.openPeer?.bind(s.harness);
    if (openPeer) {
      raceCases(s, 'two stores', async (store) => [store, await openPeer(store)]);
    } else {
      s.skip(
        'two stores: cross-store races',
        `${s.harness.label} has no peer stores (per-instance data)`,
      );
    }
  });
}
