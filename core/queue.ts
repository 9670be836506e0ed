/**
 * {@linkcode Queue}: adds jobs and manages a queue.
 *
 * @module
 */
import {
  InvalidArgumentError,
  type JobOptions,
  type JobState,
  JobStateError,
  type NewJob,
  PAUSE_ALL,
  type RepeatOptions,
  type SchedulerData,
  type StoreInterface,
} from '@conveyor/shared';
import { type Clock, systemClock } from './clock.ts';
import { delayUntilWhen, parseDuration } from './duration.ts';
import { buildJob } from './build.ts';
import { Job, retryUpdates } from './job.ts';
import { firstRunAt, repeatJobId, schedulerJob, validateRepeat } from './schedule.ts';
import {
  checkInteger,
  checkKeys,
  checkName,
  checkOptions,
  checkStore,
  usesBullMqChildFailure,
  validateJobOptions,
  withChildFailurePolicy,
} from './validate.ts';

/**
 * Options of a {@linkcode Queue}.
 *
 * @example
 * ```ts
 * import type { QueueOptions } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 * const opts: QueueOptions = { store: new MemoryStore(), defaultJobOptions: { attempts: 3 } };
 * ```
 */
export interface QueueOptions {
  /** A connected store. */
  store: StoreInterface;
  /** Options merged under each job's own options. */
  defaultJobOptions?: JobOptions;
  /** The clock used for delays and schedules (tests inject one). Default `Date.now`. */
  clock?: Clock;
}

/**
 * Options of `add`: job options, plus `tx` to save inside a caller's transaction on stores that
 * support it (ignored by the others).
 *
 * @example
 * ```ts
 * import type { AddOptions } from '@conveyor/core';
 * const opts: AddOptions = { attempts: 3, delay: '10m' };
 * ```
 */
export interface AddOptions extends JobOptions {
  /** A store transaction to save the job in (stores that support it). */
  tx?: unknown;
}

/**
 * Options of a scheduler made with `every`, `cron` or `upsertJobScheduler`: job options plus
 * the scheduler's `key` (its stable id; default: the job name).
 *
 * @example
 * ```ts
 * import type { SchedulerOptions } from '@conveyor/core';
 * const opts: SchedulerOptions = { key: 'nightly-report', tz: 'Europe/Paris', limit: 10 };
 * ```
 */
export interface SchedulerOptions extends Omit<JobOptions, 'repeat' | 'jobId' | 'delay'> {
  /** The scheduler id; calling again with the same key replaces it. Default: the job name. */
  key?: string;
  /** IANA time zone (cron). */
  tz?: string;
  /** No run before this time. */
  startDate?: number | Date;
  /** No run after this time. */
  endDate?: number | Date;
  /** Total number of runs. */
  limit?: number;
}

/**
 * Which jobs `retryJobs` / `promoteJobs` touch.
 *
 * @example
 * ```ts
 * import type { BulkJobsOptions } from '@conveyor/core';
 * const opts: BulkJobsOptions = { count: 100 };
 * ```
 */
export interface BulkJobsOptions {
  /** At most this many jobs (default all). */
  count?: number;
  /** For `retryJobs`: `failed` (default) or `completed`. */
  state?: 'failed' | 'completed';
}

/**
 * A job for `addBulk`.
 *
 * @example
 * ```ts
 * import type { BulkJob } from '@conveyor/core';
 * const j: BulkJob = { name: 'email', data: { to: 'a@b.c' }, opts: { priority: 1 } };
 * ```
 */
export interface BulkJob<D = unknown> {
  /** Job name. */
  name: string;
  /** Payload. */
  data: D;
  /** Job options. */
  opts?: JobOptions;
}

/**
 * A queue: adds jobs, schedules repeating ones, and inspects or manages the queue. It holds no
 * connection of its own; the store is shared.
 *
 * @example
 * ```ts
 * import { Queue } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * await using queue = new Queue('emails', { store });
 * await queue.add('welcome', { to: 'ada@example.com' }, { attempts: 3 });
 * await queue.schedule('in 10 minutes', 'reminder', { to: 'ada@example.com' });
 * console.log(await queue.getJobCounts('waiting', 'delayed')); // { waiting: 1, delayed: 1 }
 * ```
 */
export class Queue<D = unknown, R = unknown> {
  /** The queue name. */
  readonly name: string;
  /** The store. */
  readonly store: StoreInterface;
  /** Defaults merged under each job's options. */
  readonly defaultJobOptions: JobOptions;
  readonly #clock: Clock;
  #closed = false;

  /**
   * Creates a queue handle.
   *
   * @example
   * ```ts
   * import { Queue } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const queue = new Queue('emails', { store: new MemoryStore() });
   * ```
   */
  constructor(name: string, opts: QueueOptions) {
    checkName('queueName', name);
    checkStore(opts);
    checkKeys('opts', opts, new Set(['store', 'defaultJobOptions', 'clock']));
    this.name = name;
    this.store = opts.store;
    validateJobOptions(opts.defaultJobOptions ?? {}, 'defaultJobOptions');
    this.defaultJobOptions = withChildFailurePolicy(opts.defaultJobOptions ?? {});
    // One id or deduplication key for every job would make every add return the first job.
    if (this.defaultJobOptions.jobId !== undefined) {
      throw new InvalidArgumentError(
        'defaultJobOptions.jobId',
        this.defaultJobOptions.jobId,
        'absent (an id is per job: pass it to add)',
      );
    }
    const dedup = this.defaultJobOptions.deduplication;
    const dedupKey = dedup?.key ?? dedup?.id;
    if (dedupKey !== undefined) {
      throw new InvalidArgumentError(
        `defaultJobOptions.deduplication.${dedup?.key !== undefined ? 'key' : 'id'}`,
        dedupKey,
        'absent (a key is per job: pass it to add, or use { hash: true })',
      );
    }
    this.#clock = opts.clock ?? systemClock;
  }

  /**
   * Adds a job. With `jobId` or `deduplication`, adding it again returns the existing job.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const job = await queue.add('resize', { file: 'a.png' }, { priority: 1, attempts: 3 });
   * ```
   */
  async add(name: string, data: D, opts: AddOptions = {}): Promise<Job<D, R>> {
    checkOptions('opts', opts);
    const { tx, ...jobOpts } = opts;
    const job = this.#build(name, data, jobOpts);
    const id = await this.store.saveJob(this.name, job, tx === undefined ? undefined : { tx });
    return needsLookup(job) ? await this.#stored(id, job) : this.#wrap(id, job);
  }

  /**
   * Adds many jobs in one store round trip (one transaction).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.addBulk([{ name: 'a', data: 1 }, { name: 'b', data: 2, opts: { delay: 1000 } }]);
   * ```
   */
  async addBulk(jobs: BulkJob<D>[], opts: { tx?: unknown } = {}): Promise<Job<D, R>[]> {
    if (!Array.isArray(jobs)) throw new InvalidArgumentError('jobs', jobs, 'an array');
    checkOptions('opts', opts);
    const n = jobs.length;
    const built = new Array<NewJob>(n);
    for (let i = 0; i < n; i++) {
      const j = jobs[i];
      built[i] = this.#build(j?.name, j?.data, j?.opts ?? {}, i);
    }
    const ids = await this.store.saveBulk(
      this.name,
      built,
      opts.tx === undefined ? undefined : { tx: opts.tx },
    );
    // Synchronous for the common case: only jobs with a jobId or a deduplication key may have
    // matched an existing job, and only those are read back.
    const out = new Array<Job<D, R>>(ids.length);
    let lookups: Promise<void>[] | undefined;
    for (let i = 0; i < ids.length; i++) {
      const job = built[i];
      if (!needsLookup(job)) out[i] = this.#wrap(ids[i], job);
      else {
        (lookups ??= []).push(
          this.#stored(ids[i], job).then((stored) => {
            out[i] = stored;
          }),
        );
      }
    }
    if (lookups !== undefined) await Promise.all(lookups);
    return out;
  }

  /**
   * Adds a job to run at `when`: ms from now, a `Date`, or a human duration (`"in 10 minutes"`,
   * `"2h"`, `"1h30m"`).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.schedule('in 2 hours', 'report', {});
   * await queue.schedule(new Date('2030-01-01T00:00:00Z'), 'new-year', {});
   * ```
   */
  async schedule(
    when: number | string | Date,
    name: string,
    data: D,
    opts: AddOptions = {},
  ): Promise<Job<D, R>> {
    const delay = delayUntilWhen(when, this.#clock.now(), 'when');
    checkOptions('opts', opts);
    return await this.add(name, data, { ...opts, delay });
  }

  /**
   * Adds a job to run now (ignoring any default delay).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.now('ping', {});
   * ```
   */
  async now(name: string, data: D, opts: AddOptions = {}): Promise<Job<D, R>> {
    checkOptions('opts', opts);
    return await this.add(name, data, { ...opts, delay: 0 });
  }

  /**
   * Creates or replaces a scheduler that adds a job every `interval` (ms or a human duration),
   * starting now (or at `startDate`). The scheduler id is `opts.key`, else the job name.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.every('5m', 'heartbeat', {}, { key: 'heartbeat', limit: 100 });
   * ```
   */
  async every(
    interval: number | string,
    name: string,
    data: D,
    opts: SchedulerOptions = {},
  ): Promise<Job<D, R> | null> {
    const every = parseDuration(interval, 'interval');
    if (every <= 0) throw new InvalidArgumentError('interval', interval, 'a duration > 0');
    return await this.#scheduler({ every }, name, data, opts);
  }

  /**
   * Creates or replaces a scheduler that adds a job at each match of a cron pattern (5 or 6
   * fields, optional `tz`). The first run is the first match, not now.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.cron('0 3 * * *', 'nightly', {}, { tz: 'Europe/Paris' });
   * ```
   */
  async cron(
    pattern: string,
    name: string,
    data: D,
    opts: SchedulerOptions = {},
  ): Promise<Job<D, R> | null> {
    if (typeof pattern !== 'string') {
      throw new InvalidArgumentError('pattern', pattern, 'a cron expression string');
    }
    return await this.#scheduler({ pattern }, name, data, opts);
  }

  /**
   * BullMQ-style scheduler upsert: `repeat` gives `every` or `pattern` (plus `tz`, `startDate`,
   * `endDate`, `limit`), `template` the job. Both `every` and `pattern`, or any other key in
   * `repeat`, throw {@linkcode InvalidArgumentError}.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.upsertJobScheduler('tick', { every: 1000 }, { name: 'tick', data: {} });
   * ```
   */
  async upsertJobScheduler(
    schedulerId: string,
    repeat: RepeatOptions,
    template: { name?: string; data?: D; opts?: JobOptions } = {},
  ): Promise<Job<D, R> | null> {
    checkName('schedulerId', schedulerId);
    if (typeof repeat !== 'object' || repeat === null) {
      throw new InvalidArgumentError('repeat', repeat, 'an object { every | pattern, ... }');
    }
    for (const key of Object.keys(repeat)) {
      if (!REPEAT_KEYS.includes(key)) {
        throw new InvalidArgumentError(
          `repeat.${key}`,
          (repeat as unknown as Record<string, unknown>)[key],
          `absent (repeat takes ${REPEAT_KEYS.join(', ')})`,
        );
      }
    }
    const { every, pattern, ...rest } = repeat;
    if ((every === undefined) === (pattern === undefined)) {
      // BullMQ refuses both too (it cannot tell which one was meant).
      throw new InvalidArgumentError(
        'repeat',
        repeat,
        'an object with exactly one of every, pattern',
      );
    }
    return await this.#scheduler(
      every !== undefined ? { every } : { pattern },
      template.name ?? schedulerId,
      template.data as D,
      { ...template.opts, ...rest, key: schedulerId },
    );
  }

  /**
   * Lists the queue's schedulers by next run.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * for (const s of await queue.getJobSchedulers()) console.log(s.id, s.nextRunAt);
   * ```
   */
  getJobSchedulers(): Promise<SchedulerData[]> {
    return this.store.listSchedulers(this.name);
  }

  /**
   * Returns one scheduler, or null.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.getJobScheduler('heartbeat');
   * ```
   */
  getJobScheduler(schedulerId: string): Promise<SchedulerData | null> {
    return this.store.getScheduler(this.name, schedulerId);
  }

  /**
   * Removes a scheduler and its pending job. Returns false if it did not exist.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.removeJobScheduler('heartbeat');
   * ```
   */
  removeJobScheduler(schedulerId: string): Promise<boolean> {
    return this.store.removeScheduler(this.name, schedulerId);
  }

  /**
   * Pauses the whole queue, or one job name with `{ jobName }`, for every worker.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.pause({ jobName: 'email' });
   * ```
   */
  async pause(opts: { jobName?: string } = {}): Promise<void> {
    await this.store.pauseJobName(this.name, this.#pauseName(opts));
  }

  /**
   * Undoes `pause` (whole queue, or `{ jobName }`).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.resume();
   * ```
   */
  async resume(opts: { jobName?: string } = {}): Promise<void> {
    await this.store.resumeJobName(this.name, this.#pauseName(opts));
  }

  /**
   * Whether the queue (or a job name) is paused.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.isPaused();
   * ```
   */
  async isPaused(opts: { jobName?: string } = {}): Promise<boolean> {
    const names = await this.store.getPausedJobNames(this.name);
    return names.includes(PAUSE_ALL) ||
      (opts.jobName !== undefined && names.includes(opts.jobName));
  }

  /**
   * The ms until the queue's manual rate limit (`worker.rateLimit`) ends, by the store's clock,
   * rounded up to a whole ms; 0 when the queue is not manually limited (never limited, expired,
   * or ended by {@linkcode Queue.removeRateLimitKey}). The `limiter` windows are not counted.
   *
   * With `maxJobs` (BullMQ's `getRateLimitTtl(maxJobs)`): when no manual limit is in force, the
   * ms until the workers' `limiter` window in force ends if it has counted at least `maxJobs`
   * claims (it is full for a limiter of that `max`), else 0. A `maxJobs` that is not a whole
   * number >= 1 throws `InvalidArgumentError` naming `maxJobs`.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const ttl = await queue.getRateLimitTtl(); // e.g. 4200, or 0 when not limited
   * const full = await queue.getRateLimitTtl(10); // > 0 while a { max: 10 } window is used up
   * ```
   */
  getRateLimitTtl(maxJobs?: number): Promise<number> {
    return this.store.getRateLimitTtl(this.name, maxJobs);
  }

  /**
   * Ends the queue's manual rate limit and resets its `limiter` window counter (as BullMQ's
   * `removeRateLimitKey`), so workers with a `limiter` claim again at once (they are woken
   * through the store's events). Returns true when a manual limit was in force.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.removeRateLimitKey(); // the API is fine again: go on now
   * ```
   */
  removeRateLimitKey(): Promise<boolean> {
    return this.store.removeRateLimit(this.name);
  }

  /**
   * Removes every waiting and delayed job.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.drain();
   * ```
   */
  drain(): Promise<void> {
    return this.store.drain(this.name);
  }

  /**
   * Removes jobs in `state` (default `completed`) older than `grace` (ms or a duration), at most
   * `limit` of them (0: no limit). Returns the count removed.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.clean('1h', 1000, 'failed');
   * ```
   */
  async clean(grace: number | string, limit = 0, state: JobState = 'completed'): Promise<number> {
    const ms = parseDuration(grace, 'grace');
    checkInteger('limit', limit, 0);
    if (state === 'active') {
      throw new InvalidArgumentError('state', state, 'a state other than active');
    }
    return await this.store.clean(this.name, state, ms, limit === 0 ? undefined : limit);
  }

  /**
   * Returns a job, or null.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const job = await queue.getJob('42');
   * ```
   */
  getJob(jobId: string): Promise<Job<D, R> | null> {
    return Job.fromId<D, R>(this.store, this.name, jobId);
  }

  /**
   * Lists jobs in one or more states (concatenated in the order given), paginated by inclusive
   * indexes `start`..`end` (-1: to the last). `start` is a whole number >= 0 and `end` one
   * >= -1 (no other negative index: they would count from the end of each state, not of the
   * list); an `end` before `start` gives no jobs.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const firstTen = await queue.getJobs(['waiting', 'delayed'], 0, 9);
   * ```
   */
  async getJobs(
    states: JobState | JobState[] = ['waiting'],
    start = 0,
    end = -1,
  ): Promise<Job<D, R>[]> {
    const list = Array.isArray(states) ? states : [states];
    checkInteger('start', start, 0);
    checkInteger('end', end, -1);
    if (end !== -1 && end < start) return [];
    const rows = [];
    if (list.length === 1) rows.push(...await this.store.listJobs(this.name, list[0], start, end));
    else {
      for (const state of list) {
        rows.push(...await this.store.listJobs(this.name, state, 0, end < 0 ? -1 : end));
        if (end >= 0 && rows.length > end) break;
      }
      rows.splice(0, start);
      if (end >= 0) rows.length = Math.min(rows.length, end - start + 1);
    }
    return rows.map((r) => new Job<D, R>(this.store, r));
  }

  /**
   * Counts jobs by state (every state when none is given).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const { waiting, failed } = await queue.getJobCounts('waiting', 'failed');
   * ```
   */
  async getJobCounts(...states: JobState[]): Promise<Record<string, number>> {
    const list: JobState[] = states.length > 0
      ? states
      : ['waiting', 'waiting-children', 'delayed', 'active', 'completed', 'failed'];
    const counts = await Promise.all(list.map((s) => this.store.countJobs(this.name, s)));
    return Object.fromEntries(list.map((s, i) => [s, counts[i]]));
  }

  /**
   * The `waiting` jobs in claim order, paginated as {@linkcode Queue.getJobs} (inclusive
   * indexes, `end` -1 = to the last).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const nextTen = await queue.getWaiting(0, 9);
   * ```
   */
  getWaiting(start = 0, end = -1): Promise<Job<D, R>[]> {
    return this.getJobs('waiting', start, end);
  }

  /**
   * The `active` jobs (oldest first), paginated as {@linkcode Queue.getJobs}.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * for (const job of await queue.getActive()) console.log(job.id, job.lockedBy);
   * ```
   */
  getActive(start = 0, end = -1): Promise<Job<D, R>[]> {
    return this.getJobs('active', start, end);
  }

  /**
   * The `delayed` jobs, soonest due first, paginated as {@linkcode Queue.getJobs}.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const [soonest] = await queue.getDelayed(0, 0);
   * ```
   */
  getDelayed(start = 0, end = -1): Promise<Job<D, R>[]> {
    return this.getJobs('delayed', start, end);
  }

  /**
   * The `completed` jobs, most recently finished first, paginated as {@linkcode Queue.getJobs}.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const lastFive = await queue.getCompleted(0, 4);
   * ```
   */
  getCompleted(start = 0, end = -1): Promise<Job<D, R>[]> {
    return this.getJobs('completed', start, end);
  }

  /**
   * The jobs that failed for good, most recently finished first, paginated as
   * {@linkcode Queue.getJobs}.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * for (const job of await queue.getFailed(0, 9)) console.log(job.id, job.failedReason);
   * ```
   */
  getFailed(start = 0, end = -1): Promise<Job<D, R>[]> {
    return this.getJobs('failed', start, end);
  }

  /**
   * The jobs in `waiting-children` (flow parents waiting for their children), oldest first,
   * paginated as {@linkcode Queue.getJobs}.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const parents = await queue.getWaitingChildren();
   * ```
   */
  getWaitingChildren(start = 0, end = -1): Promise<Job<D, R>[]> {
    return this.getJobs('waiting-children', start, end);
  }

  /**
   * The number of `waiting` jobs.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const backlog = await queue.getWaitingCount();
   * ```
   */
  getWaitingCount(): Promise<number> {
    return this.store.countJobs(this.name, 'waiting');
  }

  /**
   * The number of `active` jobs.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const running = await queue.getActiveCount();
   * ```
   */
  getActiveCount(): Promise<number> {
    return this.store.countJobs(this.name, 'active');
  }

  /**
   * The number of `delayed` jobs.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const later = await queue.getDelayedCount();
   * ```
   */
  getDelayedCount(): Promise<number> {
    return this.store.countJobs(this.name, 'delayed');
  }

  /**
   * The number of `completed` jobs (still stored).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const done = await queue.getCompletedCount();
   * ```
   */
  getCompletedCount(): Promise<number> {
    return this.store.countJobs(this.name, 'completed');
  }

  /**
   * The number of jobs that failed for good (still stored).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * if ((await queue.getFailedCount()) > 0) await queue.retryJobs();
   * ```
   */
  getFailedCount(): Promise<number> {
    return this.store.countJobs(this.name, 'failed');
  }

  /**
   * The number of jobs in `waiting-children`.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const parents = await queue.getWaitingChildrenCount();
   * ```
   */
  getWaitingChildrenCount(): Promise<number> {
    return this.store.countJobs(this.name, 'waiting-children');
  }

  /**
   * The current state of a job, or `'unknown'` when no such job exists (as BullMQ).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * if ((await queue.getJobState('42')) === 'failed') await (await queue.getJob('42'))?.retry();
   * ```
   */
  async getJobState(jobId: string): Promise<JobState | 'unknown'> {
    checkName('jobId', jobId);
    const data = await this.store.getJob(this.name, jobId);
    return data ? data.state : 'unknown';
  }

  /**
   * A job's log lines (see {@linkcode Job.log}), paginated by inclusive indexes `start` (>= 0)
   * ..`end` (>= -1, -1 = to the last), oldest first, or newest first with `asc: false` (the
   * indexes then count from the newest), as BullMQ. `count` is the job's total number of
   * lines. A missing job gives `{ logs: [], count: 0 }`.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * const { logs: lastTen, count } = await queue.getJobLogs('42', 0, 9, false);
   * ```
   */
  async getJobLogs(
    jobId: string,
    start = 0,
    end = -1,
    asc = true,
  ): Promise<{ logs: string[]; count: number }> {
    checkName('jobId', jobId);
    checkInteger('start', start, 0);
    checkInteger('end', end, -1);
    if (typeof asc !== 'boolean') throw new InvalidArgumentError('asc', asc, 'a boolean');
    const all = (await this.store.getJob(this.name, jobId))?.logs ?? [];
    const ordered = asc ? all : all.slice().reverse();
    const logs = end !== -1 && end < start
      ? []
      : ordered.slice(start, end === -1 ? undefined : end + 1);
    return { logs, count: all.length };
  }

  /**
   * The id of the live job holding a deduplication key (`opts.deduplication.key`), or null:
   * a job holds its key until it completes or fails, or, with a `ttl`, until the ttl ends.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.add('sync', { user: 7 }, { deduplication: { key: 'sync-7' } });
   * const id = await queue.getDeduplicationJobId('sync-7'); // that job's id
   * ```
   */
  async getDeduplicationJobId(key: string): Promise<string | null> {
    checkName('key', key);
    return (await this.store.findByDeduplicationKey(this.name, key))?.id ?? null;
  }

  /**
   * Removes a job and its flow descendants (every level, any queue), as BullMQ's `remove`,
   * whose default `removeChildren: true` is the only mode: the store always removes a job with
   * its descendants, so `removeChildren: false` throws {@linkcode InvalidArgumentError} and
   * nothing is removed. Resolves 0, with nothing removed, when the job or a descendant is
   * `active` (a worker holds it), else 1, also for a job that does not exist (as BullMQ).
   * Check and removal are one atomic store step.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * if ((await queue.remove('42')) === 0) console.log('running now: not removed');
   * ```
   */
  async remove(jobId: string, opts: { removeChildren?: boolean } = {}): Promise<number> {
    checkName('jobId', jobId);
    checkOptions('opts', opts);
    if (opts.removeChildren !== undefined && opts.removeChildren !== true) {
      throw new InvalidArgumentError(
        'opts.removeChildren',
        opts.removeChildren,
        'true or absent (a job is always removed with its flow descendants)',
      );
    }
    try {
      await this.store.removeJob(this.name, jobId, { unlessActive: true });
    } catch (e) {
      if (e instanceof JobStateError) return 0;
      throw e;
    }
    return 1;
  }

  /**
   * The number of jobs waiting or delayed (still to run).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.count();
   * ```
   */
  async count(): Promise<number> {
    const c = await this.getJobCounts('waiting', 'delayed');
    return c.waiting + c.delayed;
  }

  /**
   * Removes everything of the queue: its jobs in every state, pauses, schedulers and rate
   * limits. Flows across queues stay whole, as with {@linkcode Job.remove}: the children (and
   * their descendants) of the queue's jobs in other queues are removed too, and a parent in
   * another queue counts a removed unfinished child as done (with none left, a parent waiting
   * for its children moves on). Throws a `ConveyorError` with code `QUEUE_ACTIVE`, removing
   * nothing, if any of those jobs is active, unless `force`.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.obliterate({ force: true });
   * ```
   */
  obliterate(opts: { force?: boolean } = {}): Promise<void> {
    return this.store.obliterate(this.name, opts);
  }

  /**
   * Moves failed (or completed) jobs back to `waiting`, clearing `processedOn`, `finishedOn`,
   * `failedReason` and `returnvalue` as {@linkcode Job.retry} does. Returns how many moved.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.retryJobs({ count: 100 });
   * ```
   */
  async retryJobs(opts: BulkJobsOptions = {}): Promise<number> {
    const state = opts.state ?? 'failed';
    if (state !== 'failed' && state !== 'completed') {
      throw new InvalidArgumentError('opts.state', state, '"failed" or "completed"');
    }
    return await this.#eachGuarded(state, opts.count, retryUpdates());
  }

  /**
   * Makes delayed jobs run now. Returns how many moved.
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.promoteJobs();
   * ```
   */
  promoteJobs(opts: BulkJobsOptions = {}): Promise<number> {
    return this.#eachGuarded('delayed', opts.count, { state: 'waiting', delayUntil: 0 });
  }

  /**
   * Releases the handle. The store stays open (it is shared).
   *
   * @example
   * ```ts
   * import type { Queue } from '@conveyor/core';
   * declare const queue: Queue;
   * await queue.close();
   * ```
   */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Whether `close` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Same as `close`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #eachGuarded(
    state: JobState,
    count: number | undefined,
    updates: Parameters<StoreInterface['updateJob']>[2],
  ): Promise<number> {
    if (count !== undefined) checkInteger('opts.count', count, 1);
    const jobs = await this.store.listJobs(
      this.name,
      state,
      0,
      count === undefined ? -1 : count - 1,
    );
    let moved = 0;
    for (const j of jobs) {
      if (await this.store.updateJob(this.name, j.id, updates, { state })) moved++;
    }
    return moved;
  }

  #pauseName(opts: { jobName?: string }): string {
    if (opts?.jobName === undefined) return PAUSE_ALL;
    checkName('opts.jobName', opts.jobName);
    return opts.jobName;
  }

  async #scheduler(
    when: RepeatOptions,
    name: string,
    data: D,
    opts: SchedulerOptions,
  ): Promise<Job<D, R> | null> {
    checkName('name', name);
    const { key, tz, startDate, endDate, limit, ...jobOpts } = opts;
    const repeat: RepeatOptions = { ...when };
    if (tz !== undefined) repeat.tz = tz;
    if (startDate !== undefined) repeat.startDate = toMs(startDate, 'opts.startDate');
    if (endDate !== undefined) repeat.endDate = toMs(endDate, 'opts.endDate');
    if (limit !== undefined) repeat.limit = limit;
    validateRepeat(repeat, 'opts');
    const merged: JobOptions = { ...this.defaultJobOptions, ...withChildFailurePolicy(jobOpts) };
    delete merged.delay;
    delete merged.jobId;
    validateJobOptions(merged, 'opts');
    const id = key ?? name;
    checkName('opts.key', id);
    const now = this.#clock.now();
    const existing = await this.store.getScheduler(this.name, id);
    const runAt = firstRunAt(repeat, now);
    const scheduler: SchedulerData = {
      id,
      queueName: this.name,
      name,
      data,
      opts: merged,
      repeat,
      nextRunAt: runAt,
      runCount: existing?.runCount ?? 0,
      createdAt: existing?.createdAt ?? now,
    };
    // The store takes back the replaced series' pending run if it never started: it does not
    // count against the limit (re-upserting at every start must not use the series up).
    const pending = existing?.nextRunAt == null
      ? null
      : await this.store.getJob(this.name, repeatJobId(id, existing.nextRunAt));
    const unstarted = pending !== null && pending.attemptsStarted === 0 &&
        (pending.state === 'waiting' || pending.state === 'delayed')
      ? 1
      : 0;
    const runs = runAt !== null &&
      (limit === undefined || scheduler.runCount - unstarted < limit);
    if (!runs) scheduler.nextRunAt = null;
    const first = runs ? schedulerJob(scheduler, runAt!, now) : null;
    const jobId = await this.store.upsertScheduler(scheduler, first);
    return jobId === null ? null : await this.getJob(jobId);
  }

  /**
   * Merges the defaults and builds the job. Errors name `opts`, or `jobs[<index>].opts` with an
   * index (that label is only made when the job is invalid: nothing per job on the bulk path).
   */
  #build(name: unknown, data: unknown, opts: JobOptions, index?: number): NewJob {
    const merged: JobOptions = { ...this.defaultJobOptions, ...opts };
    // A job's own choice of child-failure policy, in either naming, replaces the default's.
    if (
      this.defaultJobOptions.failParentOnChildFailure !== undefined && usesBullMqChildFailure(opts)
    ) {
      merged.failParentOnChildFailure = opts.failParentOnChildFailure;
    }
    const now = this.#clock.now();
    if (index === undefined) return buildJob(this.name, name, data, merged, 'opts', now);
    try {
      return buildJob(this.name, name, data, merged, 'opts', now);
    } catch {
      // Building is pure: again with the indexed label, it throws the same error, named.
      return buildJob(this.name, name, data, merged, `jobs[${index}].opts`, now);
    }
  }

  /** The job as saved: read back, since an existing job may have been returned instead. */
  async #stored(id: string, job: NewJob): Promise<Job<D, R>> {
    return (await this.getJob(id)) ?? this.#wrap(id, job);
  }

  #wrap(id: string, job: NewJob): Job<D, R> {
    return new Job<D, R>(this.store, job, id);
  }
}

/** The keys of `upsertJobScheduler`'s `repeat` (the fields of `RepeatOptions`). */
const REPEAT_KEYS: readonly string[] = ['every', 'pattern', 'tz', 'startDate', 'endDate', 'limit'];

/** Whether saving `job` may have returned an existing job (a `jobId` or a deduplication key). */
function needsLookup(job: NewJob): boolean {
  return job.opts.jobId !== undefined || job.deduplicationKey !== null;
}

function toMs(value: number | Date, option: string): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new InvalidArgumentError(option, value, 'a Date or ms since the epoch');
  }
  return ms;
}
