/**
 * {@linkcode Job}: a job's data plus the operations on it.
 *
 * @module
 */
import {
  checkToken,
  InvalidArgumentError,
  isUnrecoverableError,
  type JobData,
  JobNotFoundError,
  type JobOptions,
  type JobState,
  JobStateError,
  LockLostError,
  type NewJob,
  type RemoveOnFinish,
  type StoreInterface,
  type UpdateGuard,
} from '@conveyor/shared';
import { backoffDelay } from './backoff.ts';
import { parseDuration } from './duration.ts';
import { checkInteger, checkNumber, checkReturnValue } from './validate.ts';

/**
 * The dependencies of a flow parent, keyed `<queue>:<id>`.
 *
 * @example
 * ```ts
 * import type { Dependencies } from '@conveyor/core';
 * const d: Dependencies = { processed: { 'q:1': 42 }, failed: {}, unprocessed: ['q:2'] };
 * ```
 */
export interface Dependencies {
  /** Completed children and their return values. */
  processed: Record<string, unknown>;
  /** Children that failed for good, with their reasons. */
  failed: Record<string, string>;
  /** Children not finished yet. */
  unprocessed: string[];
}

/**
 * The part of `QueueEvents` that {@linkcode Job.waitUntilFinished} needs.
 *
 * @example
 * ```ts
 * import type { FinishedEvents } from '@conveyor/core';
 * ```
 */
export interface FinishedEvents {
  /** Adds a listener. */
  on(
    event: 'completed' | 'failed',
    listener: (e: { jobId: string; returnvalue?: unknown; failedReason?: string }) => unknown,
  ): unknown;
  /** Removes a listener. */
  off(
    event: 'completed' | 'failed',
    listener: (e: { jobId: string; returnvalue?: unknown; failedReason?: string }) => unknown,
  ): unknown;
}

/** @internal hooks set by a worker on the jobs it runs (one object per worker). */
interface RunHooks {
  // deno-lint-ignore no-explicit-any
  onProgress?: (job: Job<any, any>, progress: number | Record<string, unknown>) => void;
  /** The worker's `removeOnComplete`, for `moveToCompleted` (a job taken by `getNextJob`). */
  removeOnComplete?: RemoveOnFinish;
  /** The worker's `removeOnFail`, for `moveToFailed` (a job taken by `getNextJob`). */
  removeOnFail?: RemoveOnFinish;
}

/** The hooks of a job no worker runs: shared, never changed (a worker replaces the object). */
const NO_HOOKS: RunHooks = Object.freeze({});

/**
 * What a retry writes (as BullMQ's reprocessJob): back to `waiting`, the last attempt's
 * timestamps, reason and return value cleared, the stacktrace kept, and the counters zeroed
 * on request. Used by `Job.retry` and `Queue.retryJobs`.
 *
 * @example
 * ```ts
 * import { retryUpdates } from '@conveyor/core';
 * console.log(retryUpdates({ resetAttemptsMade: true }).attemptsMade); // 0
 * ```
 */
export function retryUpdates(
  opts: { resetAttemptsMade?: boolean; resetAttemptsStarted?: boolean } = {},
): Partial<JobData> {
  const updates: Partial<JobData> = {
    state: 'waiting',
    processedAt: null,
    finishedAt: null,
    failedReason: null,
    returnvalue: null,
    delayUntil: 0,
  };
  if (opts.resetAttemptsMade) updates.attemptsMade = 0;
  if (opts.resetAttemptsStarted) updates.attemptsStarted = 0;
  return updates;
}

/**
 * A job: the stored fields (a snapshot taken when the object was made or last refreshed) and
 * operations that go to the store. State-changing operations check the job's state atomically
 * and throw {@linkcode JobStateError} when it is wrong.
 *
 * @example
 * ```ts
 * import { Queue } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * const queue = new Queue('mail', { store });
 * const job = await queue.add('welcome', { to: 'a@b.c' }, { delay: '1h' });
 * await job.promote();
 * console.log(await job.getState()); // "waiting"
 * ```
 */
export class Job<D = unknown, R = unknown> {
  /** The store the job lives in. */
  readonly store: StoreInterface;
  /** The job id. */
  readonly id: string;
  /** The queue. */
  readonly queueName: string;
  /** The job name. */
  name: string;
  /** The payload. */
  data: D;
  /** The options it was added with. */
  opts: JobOptions;
  /** State at the last snapshot. */
  state: JobState;
  /** Priority (lower runs first). */
  priority: number;
  /** Failed attempts so far. */
  attemptsMade: number;
  /** Attempts started so far. */
  attemptsStarted: number;
  /** Progress. */
  progress: number | Record<string, unknown>;
  /** The return value once completed. */
  returnvalue: R | null;
  /** The last failure's message. */
  failedReason: string | null;
  /** Stack traces of failed attempts. */
  stacktrace: string[];
  /** Log lines (as of the snapshot). */
  logs: string[];
  /** When it was added. */
  timestamp: number;
  /** When it becomes due (delayed jobs), else 0. */
  delayUntil: number;
  /** When the last attempt started. */
  processedOn: number | null;
  /** When it finished. */
  finishedOn: number | null;
  /** The fencing token of the current claim (on jobs a worker runs). */
  token: string | null;
  /** How many times it stalled. */
  stalledCount: number;
  /** The flow parent's id. */
  parentId: string | null;
  /** The flow parent's queue. */
  parentQueueName: string | null;
  /** The deduplication key. */
  deduplicationKey: string | null;
  /** The group id. */
  groupId: string | null;
  /** The worker holding the lock. */
  lockedBy: string | null;
  /** When the lock expires. */
  lockUntil: number | null;
  /** Children not finished yet (flow parents). */
  pendingChildrenCount: number;
  /** When the deduplication key expires. */
  deduplicationExpiresAt: number | null;
  /** @internal */
  hooks: RunHooks = NO_HOOKS;

  /**
   * Wraps stored job data.
   *
   * @example
   * ```ts
   * import { Job } from '@conveyor/core';
   * import type { JobData, StoreInterface } from '@conveyor/shared';
   * declare const store: StoreInterface, data: JobData;
   * const job = new Job(store, data);
   * ```
   */
  constructor(store: StoreInterface, data: JobData);
  /**
   * Wraps a job just saved under `id` (no copy of the data to add the id).
   *
   * @example
   * ```ts
   * import { Job } from '@conveyor/core';
   * import { newJob, type StoreInterface } from '@conveyor/shared';
   * declare const store: StoreInterface;
   * const data = newJob('mail', 'welcome', {});
   * const job = new Job(store, data, await store.saveJob('mail', data));
   * ```
   */
  constructor(store: StoreInterface, data: NewJob, id: string);
  constructor(store: StoreInterface, data: JobData | NewJob, id?: string) {
    this.store = store;
    this.id = id ?? (data as JobData).id;
    this.queueName = data.queueName;
    this.name = data.name;
    this.data = data.data as D;
    this.opts = data.opts;
    this.state = data.state;
    this.priority = data.priority;
    this.attemptsMade = data.attemptsMade;
    this.attemptsStarted = data.attemptsStarted;
    this.progress = data.progress;
    this.returnvalue = data.returnvalue as R | null;
    this.failedReason = data.failedReason;
    this.stacktrace = data.stacktrace;
    this.logs = data.logs;
    this.timestamp = data.createdAt;
    this.delayUntil = data.delayUntil;
    this.processedOn = data.processedAt;
    this.finishedOn = data.finishedAt;
    this.token = data.lockToken;
    this.stalledCount = data.stalledCount;
    this.parentId = data.parentId;
    this.parentQueueName = data.parentQueueName;
    this.deduplicationKey = data.deduplicationKey;
    this.groupId = data.groupId;
    this.lockedBy = data.lockedBy;
    this.lockUntil = data.lockUntil;
    this.pendingChildrenCount = data.pendingChildrenCount;
    this.deduplicationExpiresAt = data.deduplicationExpiresAt;
  }

  /**
   * Reads a job from the store, or null.
   *
   * @example
   * ```ts
   * import { Job } from '@conveyor/core';
   * import type { StoreInterface } from '@conveyor/shared';
   * declare const store: StoreInterface;
   * const job = await Job.fromId(store, 'mail', '42');
   * ```
   */
  static async fromId<D = unknown, R = unknown>(
    store: StoreInterface,
    queueName: string,
    jobId: string,
  ): Promise<Job<D, R> | null> {
    const data = await store.getJob(queueName, jobId);
    return data ? new Job<D, R>(store, data) : null;
  }

  /**
   * Re-reads the job from the store and updates this object's fields. Returns false if it is gone.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.refresh();
   * ```
   */
  async refresh(): Promise<boolean> {
    const data = await this.store.getJob(this.queueName, this.id);
    if (!data) return false;
    Object.assign(this, new Job(this.store, data), { hooks: this.hooks });
    return true;
  }

  /**
   * Sets the progress (a number or an object) and publishes a `progress` event.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.updateProgress(50);
   * await job.updateProgress({ step: 'upload', percent: 80 });
   * ```
   */
  async updateProgress(progress: number | Record<string, unknown>): Promise<void> {
    const ok = typeof progress === 'number'
      ? Number.isFinite(progress)
      : typeof progress === 'object' && progress !== null && !Array.isArray(progress);
    if (!ok) throw new InvalidArgumentError('progress', progress, 'a finite number or an object');
    if (!(await this.store.updateJob(this.queueName, this.id, { progress }))) {
      throw new JobNotFoundError(this.queueName, this.id);
    }
    this.progress = progress;
    await this.store.publish({
      type: 'progress',
      queueName: this.queueName,
      jobId: this.id,
      jobName: this.name,
      data: { progress },
      timestamp: Date.now(),
    });
    this.hooks.onProgress?.(this, progress);
  }

  /**
   * Appends a log line (keeping `opts.keepLogs` lines when set). Returns the line count (0
   * with `keepLogs: 0`). Throws {@linkcode JobNotFoundError} when the job no longer exists.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.log('connected');
   * ```
   */
  async log(line: string): Promise<number> {
    const n = await this.store.addLog(this.queueName, this.id, String(line), this.opts.keepLogs);
    // 0 lines means a missing job, or `keepLogs: 0` (nothing kept): only then look.
    if (
      n === 0 && (this.opts.keepLogs !== 0 || !(await this.store.getJob(this.queueName, this.id)))
    ) {
      throw new JobNotFoundError(this.queueName, this.id);
    }
    return n;
  }

  /**
   * Removes the job's log lines but the newest `keepLogs` (BullMQ's `clearLogs(keepLogs?)`;
   * default 0: every line), in one atomic store step (`trimLogs`), so a concurrent
   * {@linkcode Job.log} lands wholly before the trim (and counts in it) or after it (and is
   * kept). This instance's `logs` snapshot is trimmed the same way. A `keepLogs` that is not a
   * whole number >= 0 throws {@linkcode InvalidArgumentError} naming `keepLogs`, and nothing
   * changes. Throws {@linkcode JobNotFoundError} when the job no longer exists.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.clearLogs(10); // keep the last ten lines
   * await job.clearLogs(); // remove them all
   * ```
   */
  async clearLogs(keepLogs = 0): Promise<void> {
    checkInteger('keepLogs', keepLogs, 0);
    const kept = await this.store.trimLogs(this.queueName, this.id, keepLogs);
    this.logs = kept === 0 ? [] : this.logs.slice(-kept);
  }

  /**
   * The job's current state in the store, or `unknown` when it no longer exists.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * if ((await job.getState()) === 'failed') await job.retry();
   * ```
   */
  async getState(): Promise<JobState | 'unknown'> {
    const data = await this.store.getJob(this.queueName, this.id);
    return data ? data.state : 'unknown';
  }

  /**
   * Whether the job is completed now.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.isCompleted();
   * ```
   */
  async isCompleted(): Promise<boolean> {
    return (await this.getState()) === 'completed';
  }

  /**
   * Whether the job failed for good.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.isFailed();
   * ```
   */
  async isFailed(): Promise<boolean> {
    return (await this.getState()) === 'failed';
  }

  /**
   * Whether a worker is running the job now.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.isActive();
   * ```
   */
  async isActive(): Promise<boolean> {
    return (await this.getState()) === 'active';
  }

  /**
   * Whether the job is delayed now.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.isDelayed();
   * ```
   */
  async isDelayed(): Promise<boolean> {
    return (await this.getState()) === 'delayed';
  }

  /**
   * Whether the job is waiting to be claimed.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.isWaiting();
   * ```
   */
  async isWaiting(): Promise<boolean> {
    return (await this.getState()) === 'waiting';
  }

  /**
   * Whether the job waits for its children now (`waiting-children`).
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const parent: Job;
   * await parent.isWaitingChildren();
   * ```
   */
  async isWaitingChildren(): Promise<boolean> {
    return (await this.getState()) === 'waiting-children';
  }

  /**
   * Fails the active job held with `token` (the attempt counts; retried per `attempts` and
   * `backoff` unless `retryAt` is null or `error` is an `UnrecoverableError`). Throws
   * {@linkcode LockLostError} when the token is stale and {@linkcode JobStateError} when the job
   * is not active.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.moveToFailed(new Error('bad input'), job.token!, null);
   * ```
   */
  async moveToFailed(error: Error, token: string, retryAt?: number | null): Promise<void> {
    let at = retryAt;
    if (at === undefined) {
      const attempts = this.opts.attempts ?? 1;
      const delay = this.attemptsMade + 1 < attempts && !isUnrecoverableError(error)
        ? await backoffDelay(this.toData(), this.attemptsMade + 1, error)
        : null;
      at = delay === null ? null : Date.now() + delay;
    }
    const failure = {
      jobId: this.id,
      token,
      reason: error.message,
      stack: error.stack,
      retryAt: at,
    };
    const removeOnFail = this.hooks.removeOnFail;
    const [ok] = await this.store.failJobs(
      this.queueName,
      [failure],
      removeOnFail === undefined ? undefined : { removeOnFail },
    );
    if (!ok) await this.#explainRefusal('fail', ['active'], token);
    this.attemptsMade++;
    this.failedReason = error.message;
    this.token = null;
  }

  /**
   * Completes the running job with `returnValue`, as BullMQ's `moveToCompleted`: for a job
   * processed by hand (`worker.getNextJob()`), in one atomic store step with its parent's
   * bookkeeping, removal per `removeOnComplete` (the job's own, else the worker's that took
   * it), and the `completed` event. `token` is the lock token of the job's claim (`job.token`).
   * Throws {@linkcode LockLostError} when that lock is lost (the job was taken back, and may run
   * elsewhere), {@linkcode JobStateError} when the job is not active, and
   * {@linkcode InvalidArgumentError} for a return value that cannot be stored
   * as JSON (nothing is stored then). `fetchNext` must be false: take the next job with
   * `worker.getNextJob()`.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.moveToCompleted({ sent: true }, job.token!);
   * ```
   */
  async moveToCompleted(returnValue: R, token: string, fetchNext = false): Promise<void> {
    if (fetchNext !== false) {
      throw new InvalidArgumentError(
        'fetchNext',
        fetchNext,
        'false (take the next job with worker.getNextJob())',
      );
    }
    checkToken(token);
    const value = returnValue === undefined ? null : returnValue;
    const unstorable = checkReturnValue(this.id, value);
    if (unstorable) throw unstorable;
    const completion = { jobId: this.id, token, returnvalue: value };
    const removeOnComplete = this.hooks.removeOnComplete;
    const [ok] = await this.store.completeJobs(
      this.queueName,
      [completion],
      removeOnComplete === undefined ? undefined : { removeOnComplete },
    );
    if (!ok) await this.#explainRefusal('complete', ['active'], token);
    this.state = 'completed';
    this.returnvalue = value as R;
    this.token = this.lockedBy = this.lockUntil = null;
  }

  /**
   * Moves the running job to `delayed` until `timestamp` (ms since the epoch), or back to
   * `waiting` when that is not in the future, without counting a failed attempt, as BullMQ's
   * `moveToDelayed`. In a processor, throw a `DelayedError` next: the worker then
   * leaves the job alone. `token` defaults to the lock token of this job's claim. Throws
   * {@linkcode LockLostError} when that lock is lost, {@linkcode JobStateError} when the job is
   * not active, and {@linkcode InvalidArgumentError} for a timestamp that is not a finite number.
   *
   * @example
   * ```ts
   * import { DelayedError } from '@conveyor/shared';
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.moveToDelayed(Date.now() + 60_000);
   * throw new DelayedError();
   * ```
   */
  async moveToDelayed(timestamp: number, token?: string): Promise<void> {
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) {
      throw new InvalidArgumentError(
        'timestamp',
        timestamp,
        'a finite number of ms since the epoch',
      );
    }
    const held = this.#heldToken(token);
    const ok = await this.store.moveToDelayed(this.queueName, this.id, held, timestamp);
    if (!ok) await this.#explainRefusal('moveToDelayed', ['active'], held);
    const delayed = timestamp > Date.now();
    this.state = delayed ? 'delayed' : 'waiting';
    this.delayUntil = delayed ? timestamp : 0;
    this.token = this.lockedBy = this.lockUntil = null;
  }

  /**
   * Parks the running job until its children finish, as BullMQ's `moveToWaitingChildren`: with
   * unfinished children (added with `opts.parent`, or a flow's), it becomes `waiting-children`
   * and resolves true; in a processor, throw a `WaitingChildrenError` next, and the job runs again
   * once its last child finished. With no unfinished child it resolves false and the job stays
   * active (the processor goes on). `token` defaults to the lock token of this job's claim.
   * Throws {@linkcode LockLostError} when that lock is lost, {@linkcode JobStateError} when the
   * job is not active.
   *
   * @example
   * ```ts
   * import { WaitingChildrenError } from '@conveyor/shared';
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * if (await job.moveToWaitingChildren()) throw new WaitingChildrenError();
   * ```
   */
  async moveToWaitingChildren(token?: string): Promise<boolean> {
    const held = this.#heldToken(token);
    const outcome = await this.store.moveToWaitingChildren(this.queueName, this.id, held);
    if (outcome === 'lost') await this.#explainRefusal('moveToWaitingChildren', ['active'], held);
    if (outcome === 'none') return false;
    this.state = 'waiting-children';
    this.token = this.lockedBy = this.lockUntil = null;
    return true;
  }

  /**
   * Extends the lock of the running job to `duration` ms from now, as BullMQ's `extendLock`: for
   * a job run outside a worker, or a processor that blocks the event loop for longer than the
   * worker's renewals allow. Resolves false, with nothing changed, when `token` no longer holds
   * the lock.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.extendLock(job.token!, 60_000); // true while the lock is held
   * ```
   */
  async extendLock(token: string, duration: number): Promise<boolean> {
    checkToken(token);
    checkNumber('duration', duration, 1);
    return await this.store.extendLock(this.queueName, this.id, duration, token);
  }

  /**
   * Moves a finished job back to `waiting` (`failed` by default), as BullMQ does: clears
   * `processedOn`, `finishedOn`, `failedReason` and `returnvalue` (the `stacktrace` of earlier
   * attempts is kept), and with `resetAttemptsMade` / `resetAttemptsStarted` sets those counters
   * to 0. Throws {@linkcode JobStateError} when the job is not in that state.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.retry(); // a failed job runs again
   * ```
   */
  async retry(
    state: 'failed' | 'completed' = 'failed',
    opts: { resetAttemptsMade?: boolean; resetAttemptsStarted?: boolean } = {},
  ): Promise<void> {
    await this.#guarded('retry', retryUpdates(opts), { state });
    this.state = 'waiting';
    this.processedOn = null;
    this.finishedOn = null;
    this.failedReason = null;
    this.returnvalue = null;
    this.delayUntil = 0;
    if (opts.resetAttemptsMade) this.attemptsMade = 0;
    if (opts.resetAttemptsStarted) this.attemptsStarted = 0;
  }

  /**
   * Removes the job and its flow descendants. Throws {@linkcode JobStateError}, and removes
   * nothing, when a worker holds the job or one of its descendants (`active`).
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.remove();
   * ```
   */
  async remove(): Promise<void> {
    // One atomic store step: a worker claiming it meanwhile either runs it (and this throws)
    // or finds nothing.
    await this.store.removeJob(this.queueName, this.id, { unlessActive: true });
  }

  /**
   * Makes a delayed job run now. Throws {@linkcode JobStateError} unless it is `delayed`.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.promote();
   * ```
   */
  async promote(): Promise<void> {
    await this.#guarded('promote', { state: 'waiting', delayUntil: 0 }, { state: 'delayed' });
    this.state = 'waiting';
    this.delayUntil = 0;
  }

  /**
   * Changes the priority of a job that is not running or finished.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.changePriority({ priority: 1 });
   * ```
   */
  async changePriority(opts: { priority: number }): Promise<void> {
    checkInteger('priority', opts?.priority, -(2 ** 31), 2 ** 31);
    await this.#guarded('change the priority of', { priority: opts.priority }, {
      state: ['waiting', 'delayed', 'waiting-children'],
    });
    this.priority = opts.priority;
  }

  /**
   * Sets a delayed job's due time to `delay` (ms or a human duration) from now. Throws
   * {@linkcode JobStateError} unless it is `delayed`.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * await job.changeDelay('5m');
   * ```
   */
  async changeDelay(delay: number | string): Promise<void> {
    const ms = parseDuration(delay, 'delay');
    const delayUntil = Date.now() + ms;
    const updates: Partial<JobData> = ms > 0
      ? { delayUntil, state: 'delayed' }
      : { delayUntil: 0, state: 'waiting' };
    await this.#guarded('change the delay of', updates, { state: 'delayed' });
    this.delayUntil = updates.delayUntil!;
    this.state = updates.state!;
  }

  /**
   * Replaces the job's data. Throws {@linkcode JobStateError} when it is finished.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job<{ n: number }>;
   * await job.updateData({ n: 2 });
   * ```
   */
  async updateData(data: D): Promise<void> {
    await this.#guarded('update the data of', { data }, {
      state: ['waiting', 'waiting-children', 'delayed', 'active'],
    });
    this.data = data;
  }

  /**
   * The flow parent, or null.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * const parent = await job.getParent();
   * ```
   */
  async getParent(): Promise<Job | null> {
    if (!this.parentId || !this.parentQueueName) return null;
    return await Job.fromId(this.store, this.parentQueueName, this.parentId);
  }

  /**
   * The children of a flow parent by outcome, keyed `<queue>:<id>`.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const parent: Job;
   * const { processed, unprocessed } = await parent.getDependencies();
   * ```
   */
  async getDependencies(): Promise<Dependencies> {
    const [children, values] = await Promise.all([
      this.store.getChildrenJobs(this.queueName, this.id),
      this.store.getChildrenValues(this.queueName, this.id),
    ]);
    // Completed children, also those removed since (their values stay with the parent). A
    // child that still exists is where its state says: one retried after completing is
    // unprocessed until it completes again.
    const deps: Dependencies = { processed: values, failed: {}, unprocessed: [] };
    for (const c of children) {
      const key = `${c.queueName}:${c.id}`;
      if (c.state === 'completed') {
        deps.processed[key] = c.returnvalue;
        continue;
      }
      delete deps.processed[key];
      if (c.state === 'failed') deps.failed[key] = c.failedReason ?? '';
      else deps.unprocessed.push(key);
    }
    return deps;
  }

  /**
   * The children that failed for good while this job waited for them, as BullMQ's
   * `getIgnoredChildrenFailures`: their failure reasons keyed `<queue>:<id>`. With
   * `failParentOnChildFailure: 'ignore'` (BullMQ's `ignoreDependencyOnFailure`), a parent
   * finds here which children it runs without.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * for (const [key, reason] of Object.entries(await job.getIgnoredChildrenFailures())) {
   *   console.log(key, reason);
   * }
   * ```
   */
  async getIgnoredChildrenFailures(): Promise<Record<string, string>> {
    return (await this.getDependencies()).failed;
  }

  /**
   * The return values of the completed children, keyed `<queue>:<id>`, also of children removed
   * since they completed (`removeOnComplete`): each value is kept with the parent.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const parent: Job;
   * const values = await parent.getChildrenValues();
   * ```
   */
  async getChildrenValues<T = unknown>(): Promise<Record<string, T>> {
    return (await this.getDependencies()).processed as Record<string, T>;
  }

  /**
   * Resolves with the return value when the job completes, or rejects with an `Error` carrying
   * the failure reason when it fails for good (also when the job is removed on completion,
   * since the `completed` event carries the return value). Rejects after `ttl` ms if given,
   * and at once with {@linkcode JobNotFoundError} when the job no longer exists (as BullMQ
   * does: it may have finished and been removed before the call).
   *
   * @example
   * ```ts
   * import { Queue, QueueEvents } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const store = new MemoryStore();
   * await store.connect();
   * const queue = new Queue('q', { store });
   * const events = new QueueEvents('q', { store });
   * const job = await queue.add('x', 1);
   * // ... a worker runs it ...
   * // const result = await job.waitUntilFinished(events, 5000);
   * ```
   */
  waitUntilFinished(events: FinishedEvents, ttl?: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let done = false;
      const finish = (fn: () => void): void => {
        if (done) return;
        done = true;
        events.off('completed', onCompleted);
        events.off('failed', onFailed);
        if (timer !== undefined) clearTimeout(timer);
        fn();
      };
      const onCompleted = (e: { jobId: string; returnvalue?: unknown }): void => {
        if (e.jobId === this.id) finish(() => resolve(e.returnvalue as R));
      };
      const onFailed = (e: { jobId: string; failedReason?: string }): void => {
        if (e.jobId === this.id) finish(() => reject(new Error(e.failedReason ?? 'failed')));
      };
      events.on('completed', onCompleted);
      events.on('failed', onFailed);
      if (ttl !== undefined) {
        timer = setTimeout(
          () =>
            finish(() =>
              reject(
                new Error(`job ${this.id} in queue ${this.queueName} not finished after ${ttl} ms`),
              )
            ),
          ttl,
        );
      }
      this.store.getJob(this.queueName, this.id).then((data) => {
        if (done) return;
        // Gone already (removed, or removeOnComplete ran before we listened): no event will
        // come for it.
        if (!data) finish(() => reject(new JobNotFoundError(this.queueName, this.id)));
        else if (data.state === 'completed') finish(() => resolve(data.returnvalue as R));
        else if (data.state === 'failed') {
          finish(() => reject(new Error(data.failedReason ?? 'failed')));
        }
      }, (e) => finish(() => reject(e)));
    });
  }

  /**
   * The job as plain stored data.
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * console.log(JSON.stringify(job.toJSON()));
   * ```
   */
  toJSON(): JobData {
    return this.toData();
  }

  /**
   * The job's snapshot as stored data ({@linkcode JobData}).
   *
   * @example
   * ```ts
   * import type { Job } from '@conveyor/core';
   * declare const job: Job;
   * console.log(job.toData().state);
   * ```
   */
  toData(): JobData {
    return {
      id: this.id,
      queueName: this.queueName,
      name: this.name,
      data: this.data,
      opts: this.opts,
      state: this.state,
      priority: this.priority,
      attemptsMade: this.attemptsMade,
      attemptsStarted: this.attemptsStarted,
      progress: this.progress,
      returnvalue: this.returnvalue,
      failedReason: this.failedReason,
      stacktrace: this.stacktrace,
      logs: this.logs,
      createdAt: this.timestamp,
      delayUntil: this.delayUntil,
      processedAt: this.processedOn,
      finishedAt: this.finishedOn,
      lockedBy: this.lockedBy,
      lockUntil: this.lockUntil,
      lockToken: this.token,
      stalledCount: this.stalledCount,
      parentId: this.parentId,
      parentQueueName: this.parentQueueName,
      pendingChildrenCount: this.pendingChildrenCount,
      deduplicationKey: this.deduplicationKey,
      deduplicationExpiresAt: this.deduplicationExpiresAt,
      groupId: this.groupId,
    };
  }

  async #guarded(operation: string, updates: Partial<JobData>, guard: UpdateGuard): Promise<void> {
    if (await this.store.updateJob(this.queueName, this.id, updates, guard)) return;
    const expected = Array.isArray(guard.state) ? guard.state : [guard.state!];
    await this.#explainRefusal(operation, expected);
  }

  /** The token a move on the running job uses: the one given, or this job's claim's. */
  #heldToken(token: string | undefined): string {
    const held = token ?? this.token;
    if (held === null) {
      throw new InvalidArgumentError('token', held, "the lock token of the job's claim");
    }
    return held;
  }

  async #explainRefusal(operation: string, expected: string[], token?: string): Promise<never> {
    const data = await this.store.getJob(this.queueName, this.id);
    if (!data) throw new JobNotFoundError(this.queueName, this.id);
    if (token !== undefined && data.state === 'active') {
      throw new LockLostError(this.queueName, this.id);
    }
    throw new JobStateError(this.queueName, this.id, operation, expected, data.state);
  }
}
