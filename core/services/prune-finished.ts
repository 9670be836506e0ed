/**
 * The service that applies `removeOnComplete` / `removeOnFail` counts and ages.
 *
 * @module
 */
import type { StoreInterface } from '@conveyor/shared';
import { PeriodicService } from './service.ts';

/**
 * Every `interval` ms, removes finished jobs beyond their own keep-count or keep-age.
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
   */
  constructor(
    store: StoreInterface,
    queueName: string,
    interval: number,
    onError: (error: unknown) => void,
  ) {
    super(interval, () => store.pruneFinished(queueName), onError);
  }
}
