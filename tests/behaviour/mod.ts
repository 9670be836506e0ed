/**
 * The engine behaviour suite: written once, run through Queue, Worker, FlowProducer and
 * QueueEvents against any store.
 *
 * ```ts
 * import { behaviourSuite } from './behaviour/mod.ts';
 * behaviourSuite(harness);
 * ```
 *
 * @module
 */
import { describe } from 'node:test';
import type { StoreHarness } from '../harness.ts';
import { requireTests } from '../helpers.ts';
import { makeSuite } from './context.ts';
import { eventCases } from './events.ts';
import { flowCases } from './flows.ts';
import { jobCases } from './job.ts';
import { manualCases } from './manual.ts';
import { prefetchCases } from './prefetch.ts';
import { queueCases } from './queue.ts';
import { rateLimitCases } from './ratelimit.ts';
import { schedulerCases } from './schedulers.ts';
import { unitCases } from './units.ts';
import { workerCases } from './worker.ts';

/** Registers the behaviour suite for a store harness. Fails the run if no case ran. */
export function behaviourSuite(harness: StoreHarness): void {
  const { ran } = requireTests(`behaviour (${harness.label})`);
  describe(`behaviour: ${harness.label}`, () => {
    const s = makeSuite(harness, ran);
    unitCases(ran);
    queueCases(s);
    workerCases(s);
    rateLimitCases(s);
    flowCases(s);
    schedulerCases(s);
    eventCases(s);
    jobCases(s);
    manualCases(s);
    prefetchCases(s);
  });
}
