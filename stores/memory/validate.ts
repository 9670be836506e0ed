/**
 * Argument checks of the {@linkcode MemoryStore}: bad input gets an `InvalidArgumentError`
 * naming the option and the value, before anything changes.
 *
 * @module
 */
import {
  checkInteger,
  type FetchOptions,
  InvalidArgumentError,
  JOB_STATES,
  type JobState,
  type RateLimit,
} from '@conveyor/shared';

/**
 * Checks a job state argument.
 *
 * @example
 * ```ts
 * import { checkState } from './validate.ts';
 * checkState('state', 'waiting'); // ok
 * ```
 */
export function checkState(option: string, state: unknown): asserts state is JobState {
  if (!JOB_STATES.includes(state as JobState)) {
    throw new InvalidArgumentError(option, state, `one of ${JOB_STATES.join(', ')}`);
  }
}

/**
 * Checks a duration or timestamp in ms: a finite number >= `min`.
 *
 * @example
 * ```ts
 * import { checkMs } from './validate.ts';
 * checkMs('lockDuration', 30_000, 1); // ok
 * ```
 */
export function checkMs(option: string, value: unknown, min = 0): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(option, value, `a finite number >= ${min} (ms)`);
  }
}

/**
 * Checks fetch options.
 *
 * @example
 * ```ts
 * import { checkFetchOptions } from './validate.ts';
 * checkFetchOptions({ groupConcurrency: 2 }); // ok
 * ```
 */
export function checkFetchOptions(opts: FetchOptions): void {
  if (opts.jobName !== undefined && typeof opts.jobName !== 'string') {
    throw new InvalidArgumentError('opts.jobName', opts.jobName, 'a string');
  }
  if (opts.groupConcurrency !== undefined) {
    checkInteger('opts.groupConcurrency', opts.groupConcurrency, 1);
  }
  if (opts.globalConcurrency !== undefined) {
    checkInteger('opts.globalConcurrency', opts.globalConcurrency, 1);
  }
  if (opts.excludeGroups !== undefined && !Array.isArray(opts.excludeGroups)) {
    throw new InvalidArgumentError('opts.excludeGroups', opts.excludeGroups, 'an array of ids');
  }
  if (opts.limiter) checkLimit('opts.limiter', opts.limiter);
  if (opts.groupLimiter) checkLimit('opts.groupLimiter', opts.groupLimiter);
}

function checkLimit(option: string, limit: RateLimit): void {
  checkInteger(`${option}.max`, limit.max, 1);
  checkMs(`${option}.duration`, limit.duration, 1);
}
