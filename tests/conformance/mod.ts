/**
 * The store conformance suite: every method of the store contract, with edge cases and
 * concurrency cases, written once with `node:test` so it runs on Deno, Node and Bun against
 * every store.
 *
 * A store's entry point calls {@linkcode conformanceSuite} with its harness. Each case opens a
 * fresh store through the harness and closes it afterwards; cases use unique queue names, so
 * stores of one harness may share a database. The entry point fails when no case ran. Calling
 * `harness.teardown` is the entry point's job (it may run other suites on the same harness).
 *
 * @example
 * ```ts
 * import { conformanceSuite } from './conformance/mod.ts';
 * import { MemoryStore } from '@conveyor/store-memory';
 *
 * conformanceSuite({
 *   label: 'memory',
 *   open: async () => {
 *     const store = new MemoryStore();
 *     await store.connect();
 *     return store;
 *   },
 * });
 * ```
 *
 * @module
 */
import { describe } from 'node:test';
import type { StoreHarness } from '../harness.ts';
import { requireTests } from '../helpers.ts';
import { concurrencyCases } from './concurrency.ts';
import { makeSuite } from './context.ts';
import { eventCases } from './events.ts';
import { fetchCases } from './fetch.ts';
import { flowCases } from './flows.ts';
import { jobCases } from './jobs.ts';
import { lifecycleCases } from './lifecycle.ts';
import { queryCases } from './queries.ts';
import { rateLimitCases } from './ratelimit.ts';
import { schedulerCases } from './schedulers.ts';

/** Declares the conformance cases for one store harness. */
export function conformanceSuite(harness: StoreHarness): void {
  // Registered outside the describe, so the check runs even when every case was filtered out.
  const { ran } = requireTests(`conformance (${harness.label})`);
  describe(`conformance (${harness.label})`, () => {
    const suite = makeSuite(harness, ran);
    jobCases(suite);
    fetchCases(suite);
    lifecycleCases(suite);
    queryCases(suite);
    rateLimitCases(suite);
    flowCases(suite);
    eventCases(suite);
    schedulerCases(suite);
    concurrencyCases(suite);
  });
}
