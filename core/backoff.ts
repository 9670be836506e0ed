/**
 * Retry delays: fixed, exponential (with optional jitter), or a custom strategy.
 *
 * @module
 */
import { type BackoffOptions, InvalidArgumentError, type JobData } from '@conveyor/shared';

/**
 * A custom backoff, set on the worker as `backoffStrategy` and used by jobs whose backoff type
 * is `custom` (BullMQ's signature). Returns the delay in ms, a negative number to stop
 * retrying (the job fails for good), or a falsy value (`undefined`, `null`, `0`, `NaN`) to
 * retry at once. Anything else (`Infinity`, a string, an object) is refused: the job fails
 * for good and the worker emits `error`.
 *
 * @example
 * ```ts
 * import type { BackoffStrategy } from '@conveyor/core';
 * const linear: BackoffStrategy = (attemptsMade) => attemptsMade * 1000;
 * ```
 */
export type BackoffStrategy = (
  attemptsMade: number,
  type: string,
  error: Error,
  job: JobData,
) => number | null | undefined | Promise<number | null | undefined>;

/**
 * The delay before the next attempt, in ms, after `attemptsMade` failed attempts; `null` when
 * the job must not be retried (a custom strategy returned a negative number). A job without a
 * backoff retries at once, and so does one whose custom strategy returned `undefined`, `null`,
 * `0` or `NaN` (as in BullMQ). Throws {@linkcode InvalidArgumentError} naming
 * `backoffStrategy` when the strategy returned anything else (`Infinity`, a string…).
 *
 * @example
 * ```ts
 * import { backoffDelay } from '@conveyor/core';
 * const job = { opts: { backoff: { type: 'exponential', delay: 100 } } } as any;
 * await backoffDelay(job, 3, new Error('x')); // 400
 * ```
 */
export async function backoffDelay(
  job: JobData,
  attemptsMade: number,
  error: Error,
  strategy?: BackoffStrategy,
  random: () => number = Math.random,
): Promise<number | null> {
  const backoff: BackoffOptions | undefined = job.opts.backoff;
  if (backoff === undefined) return 0;
  if (typeof backoff === 'number') return backoff;
  const base = backoff.delay ?? 0;
  let delay: number;
  switch (backoff.type) {
    case 'fixed':
      delay = base;
      break;
    case 'exponential':
      delay = base * 2 ** (attemptsMade - 1);
      break;
    default: {
      if (!strategy) {
        throw new Error(
          `job ${job.id} has backoff type "custom" but the worker has no backoffStrategy`,
        );
      }
      return customDelay(await strategy(attemptsMade, backoff.type, error, job));
    }
  }
  const jitter = backoff.jitter ?? 0;
  if (jitter > 0) delay = delay * (1 - jitter) + random() * delay * jitter;
  return Math.round(delay);
}

/** A custom strategy's result as a delay: falsy → 0 (now), negative → null (no retry). */
function customDelay(value: unknown): number | null {
  if (value === undefined || value === null || value === 0 || Number.isNaN(value)) return 0;
  if (typeof value === 'number' && Number.isFinite(value)) return value < 0 ? null : value;
  throw new InvalidArgumentError(
    'backoffStrategy',
    value,
    'a function returning a finite delay in ms, a negative number (no retry) or ' +
      'undefined/null/0/NaN (retry at once)',
  );
}
