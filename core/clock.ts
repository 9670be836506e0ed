/**
 * The engine's clock, injectable so that schedules can be tested without real waits.
 *
 * @module
 */

/**
 * A source of the current time in ms since the epoch.
 *
 * @example
 * ```ts
 * import type { Clock } from '@conveyor/core';
 * const frozen: Clock = { now: () => Date.UTC(2030, 0, 1) };
 * ```
 */
export interface Clock {
  /** The current time, ms since the epoch. */
  now(): number;
}

/**
 * The real clock (`Date.now`).
 *
 * @example
 * ```ts
 * import { systemClock } from '@conveyor/core';
 * console.log(systemClock.now() > 0); // true
 * ```
 */
export const systemClock: Clock = { now: () => Date.now() };
