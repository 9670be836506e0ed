/**
 * The service that rescues stalled jobs (expired locks) every `stalledInterval`.
 *
 * @module
 */
import type { StalledResult, StoreInterface } from '@conveyor/shared';
import { PeriodicService } from './service.ts';

/**
 * Every `interval` ms, requeues the queue's active jobs whose lock expired (or fails those that
 * stalled more than `maxStalledCount` times) and reports them to `onStalled`.
 *
 * @example
 * ```ts
 * import { RescueStalledService } from '@conveyor/core';
 * import type { StoreInterface } from '@conveyor/shared';
 * declare const store: StoreInterface;
 * const s = new RescueStalledService(store, 'q', 30_000, 1, (r) => console.log(r), console.error);
 * s.start();
 * await s.stop();
 * ```
 */
export class RescueStalledService extends PeriodicService {
  /**
   * @param store The store.
   * @param queueName The queue.
   * @param interval ms between sweeps.
   * @param maxStalledCount Stalls allowed before the job fails.
   * @param onStalled Receives each sweep's result when it found something; a returned promise
   *   is awaited as part of the sweep (so `stop()` waits for it).
   * @param onError Receives errors.
   */
  constructor(
    store: StoreInterface,
    queueName: string,
    interval: number,
    maxStalledCount: number,
    onStalled: (result: StalledResult) => void | Promise<void>,
    onError: (error: unknown) => void,
  ) {
    super(interval, async () => {
      const result = await store.requeueStalledJobs(queueName, maxStalledCount);
      if (result.requeued.length > 0 || result.failed.length > 0) await onStalled(result);
    }, onError);
  }
}
