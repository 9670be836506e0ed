/**
 * The service that applies `removeOnComplete` / `removeOnFail` counts and ages.
 *
 * @module
 */
import type { StoreInterface } from '@conveyor/shared';
import { PeriodicService } from './service.ts';

/**
 * Every `interval` ms, removes finished jobs beyond their own keep-count or keep-age. With
 * `due`, a run is skipped unless `due()` says there may be something to prune (a worker passes
 * "a job with a keep-count or keep-age finished since the last run").
 *
 * @example
 * ```ts
 * import { PruneFinishedService } from '@conveyor/core';
 * import type { StoreInterface } from '@conveyor/shared';
 * declare const store: StoreInterface;
 * const s = new PruneFinishedService(store, 'q', 5000, console.error);
 * s.start();
 * await s.stop();
 * ```
 */
export class PruneFinishedService extends PeriodicService {
  /**
   * @param store The store.
   * @param queueName The queue.
   * @param interval ms between runs.
   * @param onError Receives errors.
   * @param due Optional: whether a run is worth it now.
   */
  constructor(
    store: StoreInterface,
    queueName: string,
    interval: number,
    onError: (error: unknown) => void,
    due: () => boolean = () => true,
  ) {
    super(interval, async () => {
      if (due()) await store.pruneFinished(queueName);
    }, onError);
  }
}
