/**
 * Run times of job schedulers (repeatable jobs): `every` intervals and cron patterns (through
 * `croner`), bounded by `startDate`, `endDate` and `limit`.
 *
 * @module
 */
import { Cron } from 'croner';
import {
  InvalidArgumentError,
  type JobOptions,
  type NewJob,
  newJob,
  type RepeatOptions,
  type SchedulerData,
} from '@conveyor/shared';
import { checkInteger, checkNumber } from './validate.ts';

/**
 * Validates repeat options: exactly one of `every` and `pattern` (a valid cron expression),
 * a valid IANA `tz`, dates, and `limit`.
 *
 * @example
 * ```ts
 * import { validateRepeat } from '@conveyor/core';
 * validateRepeat({ pattern: '0 3 * * *', tz: 'Europe/Paris' }); // ok
 * ```
 */
export function validateRepeat(repeat: RepeatOptions, prefix = 'repeat'): void {
  const hasEvery = repeat.every !== undefined;
  const hasPattern = repeat.pattern !== undefined;
  if (hasEvery === hasPattern) {
    throw new InvalidArgumentError(prefix, repeat, 'an object with exactly one of every, pattern');
  }
  if (hasEvery) checkNumber(`${prefix}.every`, repeat.every, 1);
  if (repeat.limit !== undefined) checkInteger(`${prefix}.limit`, repeat.limit, 1);
  if (repeat.startDate !== undefined) checkNumber(`${prefix}.startDate`, repeat.startDate, 0);
  if (repeat.endDate !== undefined) checkNumber(`${prefix}.endDate`, repeat.endDate, 0);
  if (repeat.tz !== undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: repeat.tz });
    } catch {
      throw new InvalidArgumentError(`${prefix}.tz`, repeat.tz, 'an IANA time zone');
    }
  }
  if (hasPattern) {
    try {
      cronOf(repeat);
    } catch (e) {
      throw new InvalidArgumentError(
        `${prefix}.pattern`,
        repeat.pattern,
        `a cron expression (${(e as Error).message})`,
      );
    }
  }
}

function cronOf(repeat: RepeatOptions): Cron {
  return new Cron(repeat.pattern!, { timezone: repeat.tz, paused: true });
}

/**
 * The first run at or after `now` (an `every` scheduler runs at once, or at `startDate`; a cron
 * scheduler at its first match), or null when the series is already over.
 *
 * @example
 * ```ts
 * import { firstRunAt } from '@conveyor/core';
 * const at = firstRunAt({ pattern: '0 * * * *' }, Date.UTC(2030, 0, 1, 10, 30));
 * console.log(new Date(at!).toISOString()); // 2030-01-01T11:00:00.000Z
 * ```
 */
export function firstRunAt(repeat: RepeatOptions, now: number): number | null {
  const from = Math.max(now, repeat.startDate ?? 0);
  let at: number | null;
  if (repeat.every !== undefined) at = from;
  else {
    // Runs match whole seconds; a match exactly at `from` counts.
    const next = cronOf(repeat).nextRun(new Date(from - 1));
    at = next ? next.getTime() : null;
  }
  return within(repeat, at, 0);
}

/**
 * The run after the one at `runAt`, given `runCount` runs so far, or null when the series ends
 * (past `endDate`, or `limit` runs made). Runs missed while nothing was running are skipped:
 * the result is never before `now` (pass `now` to enable this).
 *
 * @example
 * ```ts
 * import { nextRunAt } from '@conveyor/core';
 * nextRunAt({ every: 1000, limit: 3 }, 5000, 1); // 6000
 * nextRunAt({ every: 1000, limit: 3 }, 5000, 3); // null
 * ```
 */
export function nextRunAt(
  repeat: RepeatOptions,
  runAt: number,
  runCount: number,
  now = 0,
): number | null {
  let at: number | null;
  if (repeat.every !== undefined) at = Math.max(runAt + repeat.every, now);
  else {
    const next = cronOf(repeat).nextRun(new Date(Math.max(runAt, now - 1)));
    at = next ? next.getTime() : null;
  }
  return within(repeat, at, runCount);
}

function within(repeat: RepeatOptions, at: number | null, runCount: number): number | null {
  if (at === null) return null;
  if (repeat.limit !== undefined && runCount >= repeat.limit) return null;
  if (repeat.endDate !== undefined && at > repeat.endDate) return null;
  return at;
}

/**
 * The deterministic id of a scheduler's run, so that creating it twice saves it once.
 *
 * @example
 * ```ts
 * import { repeatJobId } from '@conveyor/core';
 * repeatJobId('report', 1000); // "repeat:report:1000"
 * ```
 */
export function repeatJobId(schedulerId: string, runAt: number): string {
  return `repeat:${schedulerId}:${runAt}`;
}

/**
 * The run time a scheduler job was created for (from its id), or null for other jobs.
 *
 * @example
 * ```ts
 * import { runAtOf } from '@conveyor/core';
 * runAtOf('repeat:report:1000'); // 1000
 * ```
 */
export function runAtOf(jobId: string): number | null {
  if (!jobId.startsWith('repeat:')) return null;
  const at = Number(jobId.slice(jobId.lastIndexOf(':') + 1));
  return Number.isFinite(at) ? at : null;
}

/**
 * Builds the job of a scheduler's run at `runAt` (delayed until then when in the future).
 *
 * @example
 * ```ts
 * import { schedulerJob } from '@conveyor/core';
 * const s = { id: 'r', queueName: 'q', name: 'n', data: 1, opts: {}, repeat: { every: 10 },
 *   nextRunAt: 0, runCount: 0, createdAt: 0 };
 * schedulerJob(s, 0, 0).opts.jobId; // "repeat:r:0"
 * ```
 */
export function schedulerJob(scheduler: SchedulerData, runAt: number, now: number): NewJob {
  const opts: JobOptions = {
    ...scheduler.opts,
    jobId: repeatJobId(scheduler.id, runAt),
    repeat: { ...scheduler.repeat, schedulerId: scheduler.id },
  };
  const job = newJob(scheduler.queueName, scheduler.name, scheduler.data, opts, {
    createdAt: now,
    delayUntil: runAt > now ? runAt : 0,
  });
  job.state = runAt > now ? 'delayed' : 'waiting';
  return job;
}
