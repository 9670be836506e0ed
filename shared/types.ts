/**
 * Data types shared by the engine and every store.
 *
 * @module
 */

import { ConveyorError, InvalidArgumentError, JobNotFoundError, JobStateError } from './errors.ts';

/**
 * The state a job is in.
 *
 * - `waiting`: ready to be claimed.
 * - `waiting-children`: a flow parent whose children have not all finished.
 * - `delayed`: waits until {@linkcode JobData.delayUntil} (a scheduled job, or a retry with backoff).
 * - `active`: claimed by a worker, which holds its lock.
 * - `completed` and `failed`: terminal.
 *
 * @example
 * ```ts
 * import type { JobState } from '@conveyor/shared';
 * const state: JobState = 'waiting';
 * ```
 */
export type JobState =
  | 'waiting'
  | 'waiting-children'
  | 'delayed'
  | 'active'
  | 'completed'
  | 'failed';

/**
 * Every {@linkcode JobState}, in lifecycle order.
 *
 * @example
 * ```ts
 * import { JOB_STATES } from '@conveyor/shared';
 * console.log(JOB_STATES.includes('active')); // true
 * ```
 */
export const JOB_STATES: readonly JobState[] = Object.freeze([
  'waiting',
  'waiting-children',
  'delayed',
  'active',
  'completed',
  'failed',
]);

/**
 * The job name used with `pauseJobName` to pause every job name in a queue.
 *
 * @example
 * ```ts
 * import { PAUSE_ALL } from '@conveyor/shared';
 * console.log(PAUSE_ALL); // "__all__"
 * ```
 */
export const PAUSE_ALL = '__all__';

/**
 * How many finished jobs to keep, BullMQ style: `age` in **seconds**, `count` of the newest.
 * A job is removed when either limit says so.
 *
 * @example
 * ```ts
 * import type { KeepJobs } from '@conveyor/shared';
 * const keep: KeepJobs = { age: 3600, count: 1000 };
 * ```
 */
export interface KeepJobs {
  /** Keep finished jobs for at most this many seconds after they finished. */
  age?: number;
  /** Keep at most this many of the newest finished jobs (per queue and terminal state). */
  count?: number;
}

/**
 * What to do with a finished job: `true` removes it at once, `false` (default) keeps it,
 * a number keeps that many of the newest, and {@linkcode KeepJobs} limits by age and count.
 *
 * @example
 * ```ts
 * import type { RemoveOnFinish } from '@conveyor/shared';
 * const keepLast100: RemoveOnFinish = 100;
 * ```
 */
export type RemoveOnFinish = boolean | number | KeepJobs;

/**
 * Retry delay between attempts. A number is a fixed delay in ms.
 * `custom` asks the worker's `backoffStrategy` setting.
 *
 * @example
 * ```ts
 * import type { BackoffOptions } from '@conveyor/shared';
 * const backoff: BackoffOptions = { type: 'exponential', delay: 1000, jitter: 0.5 };
 * ```
 */
export type BackoffOptions =
  | number
  | {
    /** `fixed`: always `delay`. `exponential`: `delay * 2^(attempt-1)`. `custom`: worker setting. */
    type: 'fixed' | 'exponential' | 'custom';
    /** Base delay in ms. */
    delay?: number;
    /** 0..1: the share of the delay that is randomised (0 = none, 1 = anywhere in [0, delay]). */
    jitter?: number;
  };

/**
 * What happens to a flow parent when this child fails for good.
 *
 * - `fail` (default): the parent fails too, and its own policy applies to its parent, up the tree.
 * - `ignore`: the failed child counts as finished; the parent runs when the others finish.
 * - `remove`: the child is detached from the parent (its parent link is cleared) and the parent
 *   runs when the others finish.
 *
 * @example
 * ```ts
 * import type { ChildFailurePolicy } from '@conveyor/shared';
 * const policy: ChildFailurePolicy = 'ignore';
 * ```
 */
export type ChildFailurePolicy = 'fail' | 'ignore' | 'remove';

/**
 * Options of a repeating job (a job scheduler). Exactly one of `every` and `pattern` is set.
 *
 * @example
 * ```ts
 * import type { RepeatOptions } from '@conveyor/shared';
 * const nightly: RepeatOptions = { pattern: '0 3 * * *', tz: 'Europe/Paris' };
 * ```
 */
export interface RepeatOptions {
  /** Run every this many ms. */
  every?: number;
  /** Cron expression (5 or 6 fields). */
  pattern?: string;
  /** IANA time zone for `pattern`. */
  tz?: string;
  /** No run before this time (ms since epoch). */
  startDate?: number;
  /** No run after this time (ms since epoch). */
  endDate?: number;
  /** Total number of runs. */
  limit?: number;
}

/**
 * Per-job options. Stores persist them as given (they are plain JSON) and read the few that
 * change store behaviour: `jobId`, `lifo`, `removeOnComplete`, `removeOnFail`,
 * `failParentOnChildFailure`, `group`.
 *
 * @example
 * ```ts
 * import type { JobOptions } from '@conveyor/shared';
 * const opts: JobOptions = { attempts: 3, backoff: { type: 'exponential', delay: 500 } };
 * ```
 */
export interface JobOptions {
  /** Custom id, unique per queue. Adding a job whose id exists returns the existing job. */
  jobId?: string;
  /** Total attempts (1 = no retry). Default 1. */
  attempts?: number;
  /** Delay between attempts. */
  backoff?: BackoffOptions;
  /** Delay before the first attempt: ms or a human string such as `"10m"`. */
  delay?: number | string;
  /** Lower runs first. Default 0. */
  priority?: number;
  /** Put this job in front of the jobs of the same priority. */
  lifo?: boolean;
  /** Abort the attempt after this many ms. */
  timeout?: number;
  /** Remove or keep the job when it completes. */
  removeOnComplete?: RemoveOnFinish;
  /** Remove or keep the job when it fails for good. */
  removeOnFail?: RemoveOnFinish;
  /** What a final failure of this job does to its flow parent. Default `fail`. */
  failParentOnChildFailure?: ChildFailurePolicy;
  /** BullMQ's name for `failParentOnChildFailure: 'fail'` (`false`: not set). */
  failParentOnFailure?: boolean;
  /** BullMQ's name for `failParentOnChildFailure: 'ignore'` (`false`: not set). */
  ignoreDependencyOnFailure?: boolean;
  /** BullMQ's name for `failParentOnChildFailure: 'remove'` (`false`: not set). */
  removeDependencyOnFailure?: boolean;
  /**
   * Add the job as a child of an existing, unfinished job (BullMQ's `opts.parent`; here `queue`
   * is the plain queue name): the parent's pending children count goes up with the save, and
   * the job's end counts for the parent as a flow child's does. See `Job.moveToWaitingChildren`.
   */
  parent?: {
    /** The parent job's id. */
    id: string;
    /** The parent job's queue. */
    queue: string;
  };
  /** Deduplicate by key, or by a hash of the data. */
  deduplication?: {
    /** The deduplication key. */
    key?: string;
    /** BullMQ's name for `key` (taken as the key; a `key` given too must be the same). */
    id?: string;
    /** Derive the key from a hash of the job's name and data. */
    hash?: boolean;
    /** Time to live in ms. Without it the key holds while the job is not finished. */
    ttl?: number;
  };
  /** Put the job in a group, optionally bounding the group's waiting jobs. */
  group?: {
    /** The group id. */
    id: string;
    /** Refuse the add (GroupFullError) when the group already has this many waiting jobs. */
    maxSize?: number;
  };
  /** Set by the engine on jobs created by a scheduler. */
  repeat?: RepeatOptions & {
    /** The scheduler that created the job. */
    schedulerId?: string;
  };
  /** Keep at most this many log lines (newest kept). */
  keepLogs?: number;
}

/**
 * A job as stored. Stores return copies: changing a returned object never changes stored state.
 *
 * @example
 * ```ts
 * import type { JobData } from '@conveyor/shared';
 * function describe(job: JobData): string {
 *   return `${job.queueName}/${job.id} ${job.name} is ${job.state}`;
 * }
 * ```
 */
export interface JobData {
  /** Unique within its queue: `opts.jobId`, or generated by the store. */
  id: string;
  /** The queue the job belongs to. */
  queueName: string;
  /** The job name (used by name filters and pauses). */
  name: string;
  /** The payload (JSON-serialisable). */
  data: unknown;
  /** The options the job was added with. */
  opts: JobOptions;
  /** Current state. */
  state: JobState;
  /** Lower runs first. */
  priority: number;
  /** Attempts that ended in failure (a retry increments it). */
  attemptsMade: number;
  /** Attempts started (each claim increments it). */
  attemptsStarted: number;
  /** Progress set by the processor. */
  progress: number | Record<string, unknown>;
  /** The processor's return value, once completed. */
  returnvalue: unknown;
  /** The last failure's message. */
  failedReason: string | null;
  /** Stack traces of failed attempts, newest last. */
  stacktrace: string[];
  /** Log lines added with `addLog`. */
  logs: string[];
  /** When the job was added (ms since epoch). */
  createdAt: number;
  /** When it becomes due (ms since epoch); meaningful in `delayed`. 0 when not delayed. */
  delayUntil: number;
  /** When the current or last attempt started. */
  processedAt: number | null;
  /** When the job completed or failed for good. */
  finishedAt: number | null;
  /** The worker holding the lock (while `active`). */
  lockedBy: string | null;
  /** When the lock expires (ms since epoch, store clock). */
  lockUntil: number | null;
  /** The fencing token of the current claim. Null when not active. */
  lockToken: string | null;
  /** How many times the job was found stalled. */
  stalledCount: number;
  /** The flow parent's id, if any. */
  parentId: string | null;
  /** The flow parent's queue, if any. */
  parentQueueName: string | null;
  /** Children not yet finished (flow parents in `waiting-children`). */
  pendingChildrenCount: number;
  /** The deduplication key, if any. */
  deduplicationKey: string | null;
  /** When the deduplication key expires (ms since epoch); null means "while not finished". */
  deduplicationExpiresAt: number | null;
  /** The group id, if any (`opts.group.id`). */
  groupId: string | null;
}

/**
 * A job to save: everything but the id, which the store assigns (`opts.jobId` or generated).
 *
 * @example
 * ```ts
 * import { newJob } from '@conveyor/shared';
 * const job = newJob('queue', 'email', { to: 'a@b.c' });
 * ```
 */
export type NewJob = Omit<JobData, 'id'>;

/**
 * Options of `fetchNextJob` / `fetchNextJobs`.
 *
 * @example
 * ```ts
 * import type { FetchOptions } from '@conveyor/shared';
 * const opts: FetchOptions = { jobName: 'email', groupConcurrency: 2 };
 * ```
 */
export interface FetchOptions {
  /**
   * Take the most recently added job first. Priority still comes first: within the best
   * priority level, the newest job (per-job `opts.lifo` makes no difference under this option).
   */
  lifo?: boolean;
  /** Only jobs with this name. */
  jobName?: string;
  /** At most this many active jobs per group (jobs without a group are not limited). */
  groupConcurrency?: number;
  /** Skip jobs of these groups. */
  excludeGroups?: string[];
  /**
   * Serve groups round-robin: the next claim takes the best job of the group served least
   * recently (jobs without a group form one group of their own). Priority still comes first.
   */
  groupRoundRobin?: boolean;
  /** Claim only while fewer than this many jobs of the queue are active (checked atomically). */
  globalConcurrency?: number;
  /**
   * Queue-wide rate limit, shared by every worker and process: at most `max` claims per fixed
   * window of `duration` ms (windows start at multiples of `duration` since the epoch).
   */
  limiter?: RateLimit;
  /** The same limit, per group (jobs without a group are not limited). */
  groupLimiter?: RateLimit;
}

/**
 * A rate limit: at most `max` claims per `duration` ms.
 *
 * @example
 * ```ts
 * import type { RateLimit } from '@conveyor/shared';
 * const tenPerSecond: RateLimit = { max: 10, duration: 1000 };
 * ```
 */
export interface RateLimit {
  /** Claims allowed per window. */
  max: number;
  /** Window length in ms. */
  duration: number;
}

/**
 * The kinds of {@linkcode StoreEvent}.
 *
 * @example
 * ```ts
 * import type { StoreEventType } from '@conveyor/shared';
 * const t: StoreEventType = 'completed';
 * ```
 */
export type StoreEventType =
  | 'waiting'
  | 'delayed'
  | 'active'
  | 'progress'
  | 'completed'
  | 'failed'
  | 'retrying'
  | 'stalled'
  | 'removed'
  | 'drained'
  | 'paused'
  | 'resumed'
  | 'waiting-children'
  | 'rate-limit'
  | 'deduplicated'
  | 'duplicated';

/**
 * An event published through the store's pub/sub, so that other workers and processes learn
 * of changes. Stores publish the events of their own transitions; the engine publishes the
 * rest (`progress`, `drained`) with `publish`.
 *
 * `data` by type: `completed` → `{ returnvalue }` (when it fits the transport), `failed` and
 * `retrying` → `{ failedReason, attemptsMade }`, `delayed` → `{ delayUntil }`, `progress` →
 * `{ progress }`, `paused`/`resumed` → `{ jobName }`, `stalled` → `{ stalledCount }`, `rate-limit` →
 * `{ ttl }` (the manual rate limit was set for `ttl` ms, or ended with `ttl: 0`).
 *
 * `deduplicated` and `duplicated` come from the save (`saveJob`, `saveBulk`, a scheduler's
 * job) that answered a job with an existing one and saved nothing for it, in the same atomic
 * step; `jobId` is the existing job's id and `jobName` is left out. `deduplicated` (the job's
 * deduplication key is held by a live job, which may be an earlier job of the same batch) →
 * `{ deduplicationId, deduplicatedJobId }`: the key, and the `opts.jobId` the refused job asked
 * for, or null when it had none (ids are given only to saved jobs, so such a job never had
 * one). `duplicated` (a job with its `opts.jobId` exists) has no data. A flow that meets either
 * is refused whole (`DuplicateJobError`) and publishes neither.
 *
 * @example
 * ```ts
 * import type { StoreEvent } from '@conveyor/shared';
 * const e: StoreEvent = { type: 'waiting', queueName: 'q', jobId: '1', timestamp: Date.now() };
 * ```
 */
export interface StoreEvent {
  /** What happened. */
  type: StoreEventType;
  /** The queue it happened in. */
  queueName: string;
  /** The job concerned, if any. */
  jobId?: string;
  /** The job's name, if known. */
  jobName?: string;
  /** Details by type (see above). */
  data?: Record<string, unknown>;
  /** When it happened (ms since epoch). */
  timestamp: number;
}

/**
 * Options every store accepts.
 *
 * @example
 * ```ts
 * import type { StoreOptions } from '@conveyor/shared';
 * const opts: StoreOptions = { autoMigrate: false };
 * ```
 */
export interface StoreOptions {
  /** Run migrations on `connect()`. Default true. */
  autoMigrate?: boolean;
  /** Called with errors that happen outside a caller's request (e.g. a dropped listener). */
  onError?: (error: Error) => void;
}

/**
 * One completion in `completeJobs`.
 *
 * @example
 * ```ts
 * import type { JobCompletion } from '@conveyor/shared';
 * const c: JobCompletion = { jobId: '1', token: 'tok', returnvalue: 42 };
 * ```
 */
export interface JobCompletion {
  /** The job. */
  jobId: string;
  /** The fencing token of the claim. */
  token: string;
  /** The processor's return value. */
  returnvalue: unknown;
}

/**
 * One lock to renew in `extendLocks`: an active job and the token of its claim.
 *
 * @example
 * ```ts
 * import type { JobLock } from '@conveyor/shared';
 * const lock: JobLock = { jobId: '1', token: 'tok' };
 * ```
 */
export interface JobLock {
  /** The job. */
  jobId: string;
  /** The fencing token of the claim. */
  token: string;
}

/**
 * One failure in `failJobs`. With `retryAt` the job is retried (`delayed` until then, or
 * `waiting` when `retryAt <= now`); without it the job fails for good.
 *
 * @example
 * ```ts
 * import type { JobFailure } from '@conveyor/shared';
 * const f: JobFailure = { jobId: '1', token: 'tok', reason: 'boom', retryAt: Date.now() + 1000 };
 * ```
 */
export interface JobFailure {
  /** The job. */
  jobId: string;
  /** The fencing token of the claim. */
  token: string;
  /** The error message, saved as `failedReason`. */
  reason: string;
  /** The stack trace, appended to `stacktrace`. */
  stack?: string;
  /** Retry at this time (ms since epoch). Omit (or null) to fail for good. */
  retryAt?: number | null;
}

/**
 * The optional last argument of `completeJobs`: the Worker's `removeOnComplete`, a default for
 * every job of the batch. It applies, in the same atomic step that completes a job, only to a job
 * without an `opts.removeOnComplete` of its own (absent: an explicit `false` is the job's own and
 * wins): `true` removes the job at once, a count or {@linkcode KeepJobs} is recorded with the job
 * and applied by `pruneFinished` as if it were the job's own. Absent: each job's own option only.
 *
 * @example
 * ```ts
 * import type { CompleteJobsOptions } from '@conveyor/shared';
 * const opts: CompleteJobsOptions = { removeOnComplete: { count: 1000 } };
 * ```
 */
export interface CompleteJobsOptions {
  /** The default for jobs without `opts.removeOnComplete`. */
  removeOnComplete?: RemoveOnFinish;
}

/**
 * The optional last argument of `failJobs`: the Worker's `removeOnFail`, a default for every job
 * of the batch that fails for good (a retried job is not finished). As in
 * {@linkcode CompleteJobsOptions}, it applies in the failing step only to a job without an
 * `opts.removeOnFail` of its own. Jobs failed otherwise (a parent failed by its child, a stalled
 * job failed by `requeueStalledJobs`) follow their own option only.
 *
 * @example
 * ```ts
 * import type { FailJobsOptions } from '@conveyor/shared';
 * const opts: FailJobsOptions = { removeOnFail: true };
 * ```
 */
export interface FailJobsOptions {
  /** The default for jobs without `opts.removeOnFail`. */
  removeOnFail?: RemoveOnFinish;
}

/**
 * The rule that applies to a finished job: its own `removeOnComplete` / `removeOnFail` when it
 * has one (including `false`), else the default (the Worker's), else undefined (kept).
 *
 * @example
 * ```ts
 * import { effectiveRemoveOn } from '@conveyor/shared';
 * effectiveRemoveOn(undefined, true); // true
 * effectiveRemoveOn(false, true); // false: the job's own wins
 * ```
 */
export function effectiveRemoveOn(
  own: RemoveOnFinish | undefined,
  fallback: RemoveOnFinish | undefined,
): RemoveOnFinish | undefined {
  return own !== undefined ? own : fallback;
}

/**
 * Checks a `removeOnComplete` / `removeOnFail` value: undefined, a boolean, a whole number >= 0,
 * or `{ age, count }` with `age` a finite number of seconds >= 0 and `count` a whole number >= 0.
 * Throws `InvalidArgumentError` naming `option` (or `option.age`, `option.count`). The engine
 * checks job and worker options with it, the stores the defaults of `completeJobs` / `failJobs`.
 *
 * @example
 * ```ts
 * import { checkRemoveOnFinish } from '@conveyor/shared';
 * checkRemoveOnFinish('opts.removeOnComplete', { age: 3600, count: 100 }); // fine
 * ```
 */
export function checkRemoveOnFinish(
  option: string,
  value: unknown,
): asserts value is RemoveOnFinish | undefined {
  if (value === undefined || typeof value === 'boolean') return;
  if (typeof value === 'number') return checkInteger(option, value, 0);
  if (typeof value === 'object' && value !== null) {
    const keep = value as { age?: unknown; count?: unknown };
    const age = keep.age;
    if (age !== undefined && (typeof age !== 'number' || !Number.isFinite(age) || age < 0)) {
      throw new InvalidArgumentError(`${option}.age`, age, 'a finite number >= 0');
    }
    if (keep.count !== undefined) checkInteger(`${option}.count`, keep.count, 0);
    return;
  }
  throw new InvalidArgumentError(option, value, 'a boolean, a count, or { age, count }');
}

/**
 * Options of `saveJob`, `saveBulk` and `saveFlow` (an optional last argument, added for
 * transactional enqueue). A store that supports transactional enqueue (the PostgreSQL store:
 * `tx` is a postgres.js transaction, the `sql` argument of `sql.begin`) saves within this
 * transaction, so the jobs exist if and only if it commits, and their events are published on
 * commit. Other stores throw `InvalidArgumentError` naming `tx` when it is given.
 *
 * @example
 * ```ts
 * import type { SaveOptions } from '@conveyor/shared';
 * const opts: SaveOptions = {}; // or { tx } inside sql.begin(async (tx) => ...)
 * ```
 */
export interface SaveOptions {
  /** The caller's database transaction. */
  tx?: unknown;
}

/**
 * A guard for `updateJob`: the update applies only when it holds.
 *
 * @example
 * ```ts
 * import type { UpdateGuard } from '@conveyor/shared';
 * const onlyWhenDelayed: UpdateGuard = { state: 'delayed' };
 * ```
 */
export interface UpdateGuard {
  /** The job must be in this state (or one of these). */
  state?: JobState | JobState[];
  /** The job must be active with this fencing token. */
  token?: string;
}

/**
 * Options of `removeJob`.
 *
 * @example
 * ```ts
 * import type { RemoveOptions } from '@conveyor/shared';
 * const notWhileRunning: RemoveOptions = { unlessActive: true };
 * ```
 */
export interface RemoveOptions {
  /**
   * Refuse, with a {@linkcode JobStateError} and nothing removed, when the job or one of its
   * descendants is `active` (a worker holds its lock). Checked and applied atomically, so a
   * claim racing the removal either runs the job (and the removal is refused) or finds nothing.
   */
  unlessActive?: boolean;
}

/** The states a job can be removed from with `removeJob(…, { unlessActive: true })`. */
const REMOVABLE_STATES: readonly JobState[] = [
  'waiting',
  'waiting-children',
  'delayed',
  'completed',
  'failed',
];

/**
 * The error of a `removeJob(…, { unlessActive: true })` that found `jobId` (the job or one of
 * its descendants) active: every store refuses with this one.
 *
 * @example
 * ```ts
 * import { activeRemovalError } from '@conveyor/shared';
 * console.log(activeRemovalError('q', '7').actual); // "active"
 * ```
 */
export function activeRemovalError(queueName: string, jobId: string): JobStateError {
  return new JobStateError(queueName, jobId, 'remove', REMOVABLE_STATES, 'active');
}

/**
 * The error of an `obliterate` without `force` that found a job active: one of the queue's own
 * jobs or a descendant of one of them in another queue (`activeQueue` / `activeId` name it).
 * Code `QUEUE_ACTIVE`; every store refuses with this one, and removes nothing.
 *
 * @example
 * ```ts
 * import { queueActiveError } from '@conveyor/shared';
 * const e = queueActiveError('parents', 'children', '7');
 * console.log(e.code, e.message);
 * // QUEUE_ACTIVE cannot obliterate queue parents: job children/7 is active (use force: true)
 * ```
 */
export function queueActiveError(
  queueName: string,
  activeQueue: string,
  activeId: string,
): ConveyorError {
  return new ConveyorError(
    'QUEUE_ACTIVE',
    `cannot obliterate queue ${queueName}: job ${activeQueue}/${activeId} is active (use force: true)`,
  );
}

/**
 * How long a flow parent waits, in ms, once its last child finished: its `opts.delay` when that
 * is a positive number of ms (the engine keeps a duration like `'1m'` in ms), else 0 — then the
 * parent goes straight to `waiting`. Every store moves a parent on with it (as BullMQ counts a
 * parent's delay from its children's end). A bigint, as a SQLite driver may read it, counts as
 * its number.
 *
 * @example
 * ```ts
 * import { flowParentDelay } from '@conveyor/shared';
 * console.log(flowParentDelay(60_000), flowParentDelay(undefined)); // 60000 0
 * ```
 */
export function flowParentDelay(delay: unknown): number {
  const ms = typeof delay === 'bigint' ? Number(delay) : delay;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/**
 * Refuses a lock token that is not a string (the fenced moves take the token of a claim).
 *
 * @example
 * ```ts
 * import { checkToken } from '@conveyor/shared';
 * checkToken('a-token'); // ok
 * ```
 */
export function checkToken(token: unknown): void {
  if (typeof token !== 'string') throw new InvalidArgumentError('token', token, 'a string');
}

/**
 * Checks the arguments of `extendLocks` as every store does: an array of `{ jobId, token }`
 * with string ids and tokens, and a `duration` of at least 1 ms. Throws an
 * `InvalidArgumentError` that names the first bad value (`locks[2].token`, `duration`).
 *
 * @example
 * ```ts
 * import { checkJobLocks } from '@conveyor/shared';
 * checkJobLocks([{ jobId: '1', token: 'tok' }], 30_000); // ok
 * ```
 */
export function checkJobLocks(locks: unknown, duration: unknown): void {
  if (!Array.isArray(locks)) throw new InvalidArgumentError('locks', locks, 'an array');
  locks.forEach((lock: unknown, i) => {
    if (typeof lock !== 'object' || lock === null) {
      throw new InvalidArgumentError(`locks[${i}]`, lock, 'an object { jobId, token }');
    }
    const { jobId, token } = lock as Record<string, unknown>;
    if (typeof jobId !== 'string') {
      throw new InvalidArgumentError(`locks[${i}].jobId`, jobId, 'a string');
    }
    if (typeof token !== 'string') {
      throw new InvalidArgumentError(`locks[${i}].token`, token, 'a string');
    }
  });
  if (typeof duration !== 'number' || !Number.isFinite(duration) || duration < 1) {
    throw new InvalidArgumentError('duration', duration, 'a finite number >= 1 (ms)');
  }
}

/**
 * Checks the arguments of `moveToDelayed` that every store checks the same way: a string
 * `token` and a finite `delayUntil` (ms since the epoch).
 *
 * @example
 * ```ts
 * import { checkMoveToDelayed } from '@conveyor/shared';
 * checkMoveToDelayed('a-token', Date.now() + 1000); // ok
 * ```
 */
export function checkMoveToDelayed(token: unknown, delayUntil: unknown): void {
  checkToken(token);
  if (typeof delayUntil !== 'number' || !Number.isFinite(delayUntil)) {
    throw new InvalidArgumentError(
      'delayUntil',
      delayUntil,
      'a finite number of ms since the epoch',
    );
  }
}

/**
 * Checks that `value` is a whole number `>= min` (and `<= max`), else throws an
 * `InvalidArgumentError` naming `option`. The engine and the stores check counts with it.
 *
 * @example
 * ```ts
 * import { checkInteger } from '@conveyor/shared';
 * checkInteger('keep', 2, 0); // fine
 * ```
 */
export function checkInteger(
  option: string,
  value: unknown,
  min: number,
  max = Infinity,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `between ${min} and ${max}`;
    throw new InvalidArgumentError(option, value, `a whole number ${range}`);
  }
}

/**
 * Checks the `ttl` of `StoreInterface.setRateLimit`: a finite number of ms >= 0, else an
 * `InvalidArgumentError` naming `ttl`. Every store checks it the same way.
 *
 * @example
 * ```ts
 * import { checkRateLimitTtl } from '@conveyor/shared';
 * checkRateLimitTtl(5000); // fine
 * ```
 */
export function checkRateLimitTtl(ttl: unknown): void {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
    throw new InvalidArgumentError('ttl', ttl, 'a finite number >= 0 (ms)');
  }
}

/** The states of a job that can take a new child: every unfinished one. */
const PARENT_STATES: readonly JobState[] = ['waiting', 'delayed', 'active', 'waiting-children'];

/**
 * Why a new job cannot become a child of `parentQueueName`/`parentId`, whose state is `state`
 * (null when it does not exist): a `JobNotFoundError` or a `JobStateError` (a finished parent),
 * or null when it can. Every store refuses with the same error.
 *
 * @example
 * ```ts
 * import { parentRefusal } from '@conveyor/shared';
 * console.log(parentRefusal('q', 'p', 'active')); // null
 * console.log(parentRefusal('q', 'p', 'completed')?.name); // JobStateError
 * ```
 */
export function parentRefusal(
  parentQueueName: string,
  parentId: string,
  state: string | null,
): JobNotFoundError | JobStateError | null {
  if (state === null) return new JobNotFoundError(parentQueueName, parentId);
  if (PARENT_STATES.includes(state as JobState)) return null;
  return new JobStateError(parentQueueName, parentId, 'add a child to', PARENT_STATES, state);
}

/** The states a job can be saved in. */
const SAVE_STATES: readonly JobState[] = ['waiting', 'delayed', 'waiting-children'];
const CHILD_FAILURE_POLICIES: readonly ChildFailurePolicy[] = ['fail', 'ignore', 'remove'];

/**
 * Checks a job a store is asked to save (`saveJob`, `saveBulk`, `saveFlow`), the same way in
 * every store: an object with a string `name`, a state it can be saved in, a finite `priority`
 * and `delayUntil`, an `opts` object (a non-empty string `jobId` if any, a known
 * `failParentOnChildFailure`, a whole `group.maxSize` >= 1, a `deduplication.ttl` >= 0), and
 * `parentId` with `parentQueueName` both set (non-empty strings) or neither. Throws
 * `InvalidArgumentError` naming the field under `path`; nothing is saved then.
 *
 * @example
 * ```ts
 * import { checkNewJob, newJob } from '@conveyor/shared';
 * checkNewJob(newJob('q', 'n', {}), 'job'); // fine
 * try {
 *   checkNewJob({ ...newJob('q', 'n', {}), parentId: 'p' }, 'job');
 * } catch (e) {
 *   console.log((e as Error).message.startsWith('job.parentQueueName')); // true
 * }
 * ```
 */
export function checkNewJob(job: NewJob, path: string): void {
  if (typeof job !== 'object' || job === null) {
    throw new InvalidArgumentError(path, job, 'a job object');
  }
  if (typeof job.name !== 'string') {
    throw new InvalidArgumentError(`${path}.name`, job.name, 'a string');
  }
  if (!SAVE_STATES.includes(job.state)) {
    throw new InvalidArgumentError(`${path}.state`, job.state, SAVE_STATES.join(', ') + ' or');
  }
  for (const key of ['priority', 'delayUntil'] as const) {
    if (typeof job[key] !== 'number' || !Number.isFinite(job[key])) {
      throw new InvalidArgumentError(`${path}.${key}`, job[key], 'a finite number');
    }
  }
  const opts = job.opts;
  if (typeof opts !== 'object' || opts === null) {
    throw new InvalidArgumentError(`${path}.opts`, opts, 'an object');
  }
  if (opts.jobId !== undefined && (typeof opts.jobId !== 'string' || opts.jobId === '')) {
    throw new InvalidArgumentError(`${path}.opts.jobId`, opts.jobId, 'a non-empty string');
  }
  const policy = opts.failParentOnChildFailure;
  if (policy !== undefined && !CHILD_FAILURE_POLICIES.includes(policy)) {
    throw new InvalidArgumentError(
      `${path}.opts.failParentOnChildFailure`,
      policy,
      CHILD_FAILURE_POLICIES.join(', ') + ' or',
    );
  }
  const max = opts.group?.maxSize;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw new InvalidArgumentError(`${path}.opts.group.maxSize`, max, 'a whole number >= 1');
  }
  const ttl = opts.deduplication?.ttl;
  if (ttl !== undefined && !(typeof ttl === 'number' && Number.isFinite(ttl) && ttl >= 0)) {
    throw new InvalidArgumentError(`${path}.opts.deduplication.ttl`, ttl, 'a number of ms >= 0');
  }
  const { parentId, parentQueueName } = job;
  for (const [key, value] of [['parentId', parentId], ['parentQueueName', parentQueueName]]) {
    if (value != null && (typeof value !== 'string' || value === '')) {
      throw new InvalidArgumentError(`${path}.${key}`, value, 'a non-empty string or null');
    }
  }
  if ((parentId == null) !== (parentQueueName == null)) {
    const [missing, other] = parentId == null
      ? ['parentId', 'parentQueueName']
      : ['parentQueueName', 'parentId'];
    throw new InvalidArgumentError(
      `${path}.${missing}`,
      job[missing as 'parentId'],
      `set together with ${other} (a child names its parent by queue and id)`,
    );
  }
}

/**
 * Refuses `options.tx` for a store that has no transactional enqueue (`store` names it in the
 * message): an `InvalidArgumentError` naming `options.tx` when it is given, so a caller who
 * counts on the job being saved only with their transaction learns it at once.
 *
 * @example
 * ```ts
 * import { refuseTx } from '@conveyor/shared';
 * refuseTx({}, 'the memory store'); // fine
 * try {
 *   refuseTx({ tx: {} }, 'the memory store');
 * } catch (e) {
 *   console.log((e as Error).name); // InvalidArgumentError
 * }
 * ```
 */
export function refuseTx(options: SaveOptions | undefined, store: string): void {
  if (options?.tx !== undefined) {
    throw new InvalidArgumentError(
      'options.tx',
      options.tx,
      `omitted: ${store} has no transactions`,
    );
  }
}

/**
 * Checks `removeJob`'s options: an object (or undefined) whose `unlessActive` is a boolean.
 * Returns whether the removal must refuse active jobs.
 *
 * @example
 * ```ts
 * import { checkRemoveOptions } from '@conveyor/shared';
 * console.log(checkRemoveOptions({ unlessActive: true })); // true
 * ```
 */
export function checkRemoveOptions(options: RemoveOptions | undefined): boolean {
  if (options === undefined) return false;
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', options, 'an object like { unlessActive: true }');
  }
  const { unlessActive } = options;
  if (unlessActive !== undefined && typeof unlessActive !== 'boolean') {
    throw new InvalidArgumentError('options.unlessActive', unlessActive, 'a boolean');
  }
  return unlessActive === true;
}

/**
 * What `StoreInterface.moveToWaitingChildren` did: `moved` (the job now waits for its
 * children), `none` (no unfinished child: the job stays active) or `lost` (the job was not
 * active with that token).
 *
 * @example
 * ```ts
 * import type { WaitForChildren } from '@conveyor/shared';
 * const outcome: WaitForChildren = 'none';
 * ```
 */
export type WaitForChildren = 'moved' | 'none' | 'lost';

/**
 * The result of `requeueStalledJobs`.
 *
 * @example
 * ```ts
 * import type { StalledResult } from '@conveyor/shared';
 * const r: StalledResult = { requeued: ['1'], failed: [], failedJobs: [] };
 * ```
 */
export interface StalledResult {
  /** Jobs moved back to `waiting`. */
  requeued: string[];
  /** Jobs failed for stalling more than allowed. */
  failed: string[];
  /**
   * The jobs of `failed`, in the same order, each as its failure left it (`failed`,
   * `failedReason`, `attemptsMade`, `finishedAt` set, lock cleared), read in the same atomic
   * step that failed it: before its parent policy and `removeOnFail` ran, so a job that
   * `removeOnFail: true` removed at once is still here.
   */
  failedJobs: JobData[];
}

/**
 * A stored job scheduler (repeatable job). The engine computes run times; the store keeps the
 * record and advances it atomically.
 *
 * @example
 * ```ts
 * import type { SchedulerData } from '@conveyor/shared';
 * const s: SchedulerData = {
 *   id: 'report', queueName: 'q', name: 'report', data: {}, opts: {},
 *   repeat: { every: 60_000 }, nextRunAt: Date.now() + 60_000, runCount: 0, createdAt: Date.now(),
 * };
 * ```
 */
export interface SchedulerData {
  /** The scheduler id (the upsert key), unique per queue. */
  id: string;
  /** The queue its jobs go to. */
  queueName: string;
  /** The job name. */
  name: string;
  /** The job data. */
  data: unknown;
  /** Job options for every run (without `repeat`). */
  opts: JobOptions;
  /** When and how often. */
  repeat: RepeatOptions;
  /** The next run time (ms since epoch), or null when the series has ended. */
  nextRunAt: number | null;
  /** Runs created so far. */
  runCount: number;
  /** When the scheduler was first created. */
  createdAt: number;
}

/**
 * Build a {@linkcode NewJob} with defaults, in state `waiting` (or `delayed` when
 * `delayUntil` is in the future).
 *
 * @example
 * ```ts
 * import { newJob } from '@conveyor/shared';
 * const job = newJob('mail', 'welcome', { userId: 7 }, { attempts: 3 });
 * console.log(job.state); // "waiting"
 * ```
 */
export function newJob(
  queueName: string,
  name: string,
  data: unknown,
  opts: JobOptions = {},
  fields: Partial<NewJob> = {},
): NewJob {
  const now = Date.now();
  const delayUntil = fields.delayUntil ?? 0;
  return {
    queueName,
    name,
    data,
    opts,
    state: delayUntil > now ? 'delayed' : 'waiting',
    priority: opts.priority ?? 0,
    attemptsMade: 0,
    attemptsStarted: 0,
    progress: 0,
    returnvalue: null,
    failedReason: null,
    stacktrace: [],
    logs: [],
    createdAt: now,
    delayUntil,
    processedAt: null,
    finishedAt: null,
    lockedBy: null,
    lockUntil: null,
    lockToken: null,
    stalledCount: 0,
    parentId: null,
    parentQueueName: null,
    pendingChildrenCount: 0,
    deduplicationKey: opts.deduplication?.key ?? null,
    deduplicationExpiresAt: opts.deduplication?.ttl !== undefined
      ? now + opts.deduplication.ttl
      : null,
    groupId: opts.group?.id ?? null,
    ...fields,
  };
}
