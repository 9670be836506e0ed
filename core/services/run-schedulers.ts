/**
 * Job schedulers at run time: advancing a scheduler when its run starts, and the service that
 * repairs a series whose pending run was lost (drained or removed).
 *
 * @module
 */
import type { JobData, StoreInterface } from '@conveyor/shared';
import type { Clock } from '../clock.ts';
import { nextRunAt, repeatJobId, runAtOf, schedulerJob } from '../schedule.ts';
import { PeriodicService } from './service.ts';

/**
 * Called when a scheduler's job starts: schedules the next run (compare-and-set on the run
 * time, so two workers starting the same run create one next job). A failed run therefore
 * never ends the series. Returns the next job's id, or null.
 *
 * @example
 * ```ts
 * import { advanceOnStart, systemClock } from '@conveyor/core';
 * import type { JobData, StoreInterface } from '@conveyor/shared';
 * declare const store: StoreInterface, job: JobData;
 * await advanceOnStart(store, job, systemClock);
 * ```
 */
export async function advanceOnStart(
  store: StoreInterface,
  job: JobData,
  clock: Clock,
): Promise<string | null> {
  const schedulerId = job.opts.repeat?.schedulerId;
  const runAt = runAtOf(job.id);
  if (schedulerId === undefined || runAt === null) return null;
  const scheduler = await store.getScheduler(job.queueName, schedulerId);
  if (!scheduler || scheduler.nextRunAt !== runAt) return null;
  const now = clock.now();
  const next = nextRunAt(scheduler.repeat, runAt, scheduler.runCount, now);
  const nextJob = next === null ? null : schedulerJob(scheduler, next, now);
  const id = await store.advanceScheduler(job.queueName, schedulerId, runAt, next, nextJob);
  return id || null;
}

/**
 * Every `interval` ms, finds schedulers whose pending run is due but no longer exists (drained,
 * removed) and schedules their next run, so a series never stops silently.
 *
 * @example
 * ```ts
 * import { RunSchedulersService, systemClock } from '@conveyor/core';
 * import type { StoreInterface } from '@conveyor/shared';
 * declare const store: StoreInterface;
 * const s = new RunSchedulersService(store, 'q', 5000, systemClock, console.error);
 * s.start();
 * await s.stop();
 * ```
 */
export class RunSchedulersService extends PeriodicService {
  /**
   * @param store The store.
   * @param queueName The queue.
   * @param interval ms between checks.
   * @param clock The clock.
   * @param onError Receives errors.
   */
  constructor(
    store: StoreInterface,
    queueName: string,
    interval: number,
    clock: Clock,
    onError: (error: unknown) => void,
  ) {
    super(interval, async () => {
      const now = clock.now();
      for (const s of await store.listSchedulers(queueName)) {
        if (s.nextRunAt === null || s.nextRunAt > now) continue;
        if (await store.getJob(queueName, repeatJobId(s.id, s.nextRunAt))) continue;
        const next = nextRunAt(s.repeat, s.nextRunAt, s.runCount, now);
        const job = next === null ? null : schedulerJob(s, next, now);
        await store.advanceScheduler(queueName, s.id, s.nextRunAt, next, job);
      }
    }, onError);
  }
}
