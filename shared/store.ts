/**
 * The store contract. The engine talks to storage only through {@linkcode StoreInterface}, so a
 * backend is swapped by changing one line.
 *
 * @module
 */

import type {
  CompleteJobsOptions,
  FailJobsOptions,
  FetchOptions,
  JobCompletion,
  JobData,
  JobFailure,
  JobLock,
  JobState,
  NewJob,
  RemoveOptions,
  SaveOptions,
  SchedulerData,
  StalledResult,
  StoreEvent,
  StoreEventType,
  UpdateGuard,
  WaitForChildren,
} from './types.ts';

/**
 * The contract every storage backend implements. Methods marked *seed* come from the user's
 * reference document and keep its meaning; the others are additions for atomicity, fencing and
 * batching. Every multi-row state change is one atomic operation.
 *
 * Ordering: within a queue, claimable jobs are ordered by `priority` (lower first), then by the
 * order the store saved them (FIFO), except that a job saved with `opts.lifo` goes in front of
 * the jobs of the same priority (newest LIFO job first). The order comes from the store (a
 * sequence), never from a per-process counter.
 *
 * Events: each transition publishes a {@linkcode StoreEvent} to the queue's subscribers, in this
 * process and (for shared stores) in other processes: `waiting` / `delayed` /
 * `waiting-children` on save, `active` on claim, `completed`, `failed` (final), `retrying` (a
 * failure that will be retried), `delayed` (a retry or update into `delayed`), `waiting`
 * (promotion, release, requeue of a stalled job, a parent released by its last child),
 * `stalled`, `removed`, `paused`, `resumed`, `rate-limit` (the manual rate limit was set or
 * ended).
 *
 * @example
 * ```ts
 * import type { StoreInterface } from '@conveyor/shared';
 * import { newJob } from '@conveyor/shared';
 *
 * async function roundTrip(store: StoreInterface) {
 *   await store.connect();
 *   const id = await store.saveJob('q', newJob('q', 'hello', { n: 1 }));
 *   const job = await store.fetchNextJob('q', 'worker-1', 30_000);
 *   if (job) await store.completeJobs('q', [{ jobId: id, token: job.lockToken!, returnvalue: 1 }]);
 *   await store.disconnect();
 * }
 * ```
 */
export interface StoreInterface {
  // ───────────────────────────── Connection lifecycle ─────────────────────────────

  /**
   * *Seed.* Opens the connection and, unless `autoMigrate: false`, brings the schema up to date
   * (versioned migrations). Must be called before anything else. Throws a `StoreError` when the
   * backend is unusable (unreachable, not a database, schema newer than this code, or too old
   * with `autoMigrate: false`).
   */
  connect(): Promise<void>;

  /** *Seed.* Closes the connection, stops listeners and timers, releases resources. */
  disconnect(): Promise<void>;

  // ───────────────────────────────── Job CRUD ─────────────────────────────────

  /**
   * *Seed.* Saves a job and returns its id (`job.opts.jobId` or a generated one).
   *
   * - If `opts.jobId` exists in the queue, nothing is saved and the existing id is returned.
   * - If `job.deduplicationKey` matches a live job (see `findByDeduplicationKey`), nothing is
   *   saved and that job's id is returned. Two racing producers get the same id.
   * - Either way, in the same atomic step, the answer is published: `duplicated` (existing id)
   *   or `deduplicated` (held key), as described on {@linkcode StoreEvent}.
   * - If `opts.group.maxSize` is set and the group already has that many `waiting` jobs, throws
   *   `GroupFullError` and saves nothing.
   * - The state is taken from `job.state` (`waiting`, `delayed` or `waiting-children`; any other
   *   state is refused with `InvalidArgumentError`).
   *
   * Additions: `options.tx` (see {@linkcode SaveOptions}) saves within the caller's database
   * transaction; stores without transactional enqueue throw `InvalidArgumentError` naming `tx`.
   * A job with `parentId` and `parentQueueName` becomes a child of that existing job (BullMQ's
   * `opts.parent`): with the insert, in the same atomic step, the parent's
   * `pendingChildrenCount` goes up by one. The parent must exist (else `JobNotFoundError`) and
   * be unfinished (else `JobStateError`), or nothing is saved. A job that is not inserted (an
   * existing id, a deduplicated job) adds nothing to the parent.
   */
  saveJob(queueName: string, job: NewJob, options?: SaveOptions): Promise<string>;

  /**
   * *Seed.* Saves many jobs in one round trip and one transaction; ids come back in input order.
   * Each job follows the `saveJob` rules (an existing jobId or live dedup key yields the
   * existing id, also between jobs of the same batch). A `GroupFullError` saves none of them.
   * `options.tx` as in `saveJob`.
   */
  saveBulk(queueName: string, jobs: NewJob[], options?: SaveOptions): Promise<string[]>;

  /** *Seed.* Returns a copy of the job, or null. */
  getJob(queueName: string, jobId: string): Promise<JobData | null>;

  /**
   * *Seed.* Updates fields of a job (`id` and `queueName` cannot change). Keeps every index
   * consistent, including when `state`, `priority` or `delayUntil` change, and publishes
   * `waiting` / `delayed` when the state becomes one of those.
   *
   * Addition: with a `guard`, the update applies only if the job is in the guarded state (and
   * holds the guarded token). Returns false when the job is missing or the guard failed.
   */
  updateJob(
    queueName: string,
    jobId: string,
    updates: Partial<JobData>,
    guard?: UpdateGuard,
  ): Promise<boolean>;

  /**
   * *Seed.* Removes a job and all its descendants (flow children, at every level, in any
   * queue). If the job was an unfinished child, its parent's pending count goes down, whatever
   * the parent's state (as BullMQ drops it from the parent's dependencies), and a parent in
   * `waiting-children` moves on at zero, as in `completeJobs`; all atomically.
   * Publishes `removed`. Removing a missing job is a no-op.
   *
   * Addition: with `options.unlessActive`, the removal is refused with a `JobStateError` (and
   * nothing is removed) when the job or one of its descendants is `active`; the check and the
   * removal are one atomic step.
   */
  removeJob(queueName: string, jobId: string, options?: RemoveOptions): Promise<void>;

  /**
   * Appends a log line to a job, keeping at most `keepLogs` newest lines when given. Returns
   * the number of lines after the append, or 0 if the job does not exist.
   */
  addLog(queueName: string, jobId: string, line: string, keepLogs?: number): Promise<number>;

  /**
   * Keeps the newest `keep` log lines of a job and drops the older ones (`0` clears them all),
   * in one atomic step, without adding a line: an `addLog` racing it lands wholly before the
   * trim (and counts in it) or after it (and is kept). Returns the number of lines kept. Throws
   * `JobNotFoundError` when the job does not exist, and `InvalidArgumentError` naming `keep`
   * when it is not a whole number >= 0; nothing changes then. `Job.clearLogs(keepLogs)` uses it.
   */
  trimLogs(queueName: string, jobId: string, keep: number): Promise<number>;

  // ──────────────────────────────── Deduplication ────────────────────────────────

  /**
   * *Seed.* Returns the live job holding a deduplication key, or null. A job holds its key while
   * it exists and either (a) it has no `deduplicationExpiresAt` and is not `completed` or
   * `failed`, or (b) its `deduplicationExpiresAt` is in the future (then whatever its state).
   */
  findByDeduplicationKey(queueName: string, key: string): Promise<JobData | null>;

  // ─────────────────────────────── Fetching and locking ───────────────────────────────

  /**
   * *Seed.* Atomically claims the next job: the first `waiting` job in queue order (see above)
   * whose name is not paused (nor the queue paused with `__all__`) and that passes every fetch
   * option. The job becomes `active` with `lockedBy = workerId`, `lockUntil = now +
   * lockDuration`, a fresh `lockToken` unique to this claim, `processedAt = now`, and
   * `attemptsStarted + 1`. Returns a copy, or null when nothing can be claimed. A `lockDuration`
   * that is not a positive number is refused with `InvalidArgumentError`.
   */
  fetchNextJob(
    queueName: string,
    workerId: string,
    lockDuration: number,
    opts?: FetchOptions,
  ): Promise<JobData | null>;

  /**
   * Claims up to `count` jobs in one atomic operation, exactly as `count` calls of
   * `fetchNextJob` would (each claim counts toward group concurrency, the global concurrency
   * and the rate limits of the next). Each job gets its own token.
   */
  fetchNextJobs(
    queueName: string,
    workerId: string,
    lockDuration: number,
    count: number,
    opts?: FetchOptions,
  ): Promise<JobData[]>;

  /**
   * *Seed.* Extends the lock of an active job to `now + duration`. Addition: with `token`, only
   * if the job is still active with that token. Returns false when the job is not active (or
   * the token is stale).
   */
  extendLock(queueName: string, jobId: string, duration: number, token?: string): Promise<boolean>;

  /**
   * Addition (batching; BullMQ's `extendLocks`): extends the locks of several active jobs to
   * `now + duration` in one atomic step, each only if the job is still active with that
   * token, and returns one boolean per input (false: not active with that token, so nothing
   * changed for it). A repeated lock gets the same answer each time. Bad input (see
   * `checkJobLocks`) throws `InvalidArgumentError` and nothing changes.
   */
  extendLocks(queueName: string, locks: JobLock[], duration: number): Promise<boolean[]>;

  /**
   * *Seed.* Releases an active job: it goes back to `waiting` (same place in the order), lock
   * cleared, and `waiting` is published. Addition: with `token`, only if it is current. Returns
   * false when the job was not active (or the token stale).
   */
  releaseLock(queueName: string, jobId: string, token?: string): Promise<boolean>;

  /**
   * Parks an active job until its children finish, fenced by `token` (BullMQ's
   * `moveToWaitingChildren`): when it has unfinished children (`pendingChildrenCount > 0`), it
   * becomes `waiting-children`, lock cleared, and `waiting-children` is published (`moved`); its
   * last child to finish makes it `waiting` again, as for a flow parent. With no unfinished
   * child nothing changes and the job stays active (`none`); `lost` when the job is not active
   * with that token.
   */
  moveToWaitingChildren(queueName: string, jobId: string, token: string): Promise<WaitForChildren>;

  /**
   * Moves an active job to `delayed` until `delayUntil` (ms since the epoch), or to `waiting`
   * when that is not in the future, fenced by `token`: the lock is cleared and the run counts
   * as no failure (`attemptsMade` unchanged). Publishes `delayed` (with `delayUntil`) or
   * `waiting`. Returns false, with nothing changed, when the job is not active with that token.
   * A `delayUntil` that is not a finite number is refused with `InvalidArgumentError`.
   */
  moveToDelayed(
    queueName: string,
    jobId: string,
    token: string,
    delayUntil: number,
  ): Promise<boolean>;

  // ─────────────────────────────── Manual rate limit ───────────────────────────────

  /**
   * Rate limits the queue for `ttl` ms from now, by the store's clock (BullMQ's
   * `worker.rateLimit`): until then, a claim (`fetchNextJob`, `fetchNextJobs`) with
   * `opts.limiter` claims nothing, checked atomically in the claim, in every process sharing the
   * store. Claims without `opts.limiter` are not affected. Replaces any manual limit in force
   * (a shorter `ttl` shortens it; `0` ends it now) and leaves the limiter's window counters
   * alone. Publishes `rate-limit` with `{ ttl }`. A `ttl` that is not a finite number >= 0 is
   * refused with `InvalidArgumentError` naming it, and nothing changes.
   */
  setRateLimit(queueName: string, ttl: number): Promise<void>;

  /**
   * The ms until the queue's manual rate limit ends, by the store's clock, rounded up to a whole
   * ms (so a positive value always means limited); 0 when no manual limit is in force (never
   * set, expired, ended, or the queue obliterated). The limiter's window counters do not count.
   *
   * Addition: with `maxJobs` (BullMQ's `getRateLimitTtl(maxJobs)`), when no manual limit is in
   * force, the ms until the queue-wide limiter window in force ends if at least `maxJobs` claims
   * were counted in it (the window is full for a limiter of that `max`), else 0; the manual
   * limit and the window are read in one atomic step. A `maxJobs` that is not a whole number
   * >= 1 is refused with `InvalidArgumentError` naming it.
   */
  getRateLimitTtl(queueName: string, maxJobs?: number): Promise<number>;

  /**
   * Ends the queue's manual rate limit and resets its queue-wide limiter window counter (as
   * BullMQ's `removeRateLimitKey` deletes the limiter key), so limited claims may take jobs at
   * once; per-group windows are kept. Publishes `rate-limit` with `{ ttl: 0 }`. Returns true
   * when a manual limit was in force.
   */
  removeRateLimit(queueName: string): Promise<boolean>;

  // ─────────────────────────────── Finishing (fenced) ───────────────────────────────

  /**
   * Completes active jobs, each in its own atomic step, and returns one boolean per input
   * (false: the job was not active with that token, so nothing changed). For each job:
   * `completed`, `returnvalue`, `finishedAt`, lock cleared; removed at once when
   * `opts.removeOnComplete === true`; and if it has a parent, the parent's pending count goes
   * down (once per child, also when the child is retried and finishes again) and, at 0, the
   * parent becomes `waiting`, or `delayed` until now + `opts.delay` when it has a numeric one.
   * Publishes `completed` (and `waiting` or `delayed` for a released parent).
   *
   * Addition: `options.removeOnComplete` (the Worker's option, see
   * {@linkcode CompleteJobsOptions}) is the rule for each job of the batch that has no
   * `opts.removeOnComplete` of its own (absent; an explicit `false` wins), applied in the job's
   * same atomic step: `true` removes it at once, a count or `{ age, count }` is recorded with it
   * for `pruneFinished`. Without it, nothing extra is done. A bad value is refused with
   * `InvalidArgumentError` naming `options.removeOnComplete` and nothing changes.
   */
  completeJobs(
    queueName: string,
    completions: JobCompletion[],
    options?: CompleteJobsOptions,
  ): Promise<boolean[]>;

  /**
   * Fails active jobs, each in its own atomic step, one boolean per input (false: stale token,
   * nothing changed). `attemptsMade + 1`, `failedReason`, stack appended, lock cleared. Then:
   * - with `retryAt`: `delayed` until `retryAt` (or `waiting` if it is not in the future);
   *   publishes `retrying`, then `delayed` or `waiting`;
   * - without: `failed`, `finishedAt`; removed at once when `opts.removeOnFail === true`;
   *   publishes `failed`; and the parent (if any) is handled per the job's
   *   `opts.failParentOnChildFailure` (default `fail`): `fail` fails the parent (reason
   *   `child <queue>/<id> failed: <reason>`) and applies the parent's own policy to its parent,
   *   up the tree; `ignore` counts the child as finished; `remove` detaches the child and counts
   *   it as finished.
   *
   * Addition: `options.removeOnFail` (the Worker's option, see {@linkcode FailJobsOptions}) is
   * the rule for each job of the batch that fails for good without an `opts.removeOnFail` of
   * its own, applied in its failing step as `options.removeOnComplete` in `completeJobs` (a
   * parent failed by the child keeps to its own option). A bad value is refused with
   * `InvalidArgumentError` naming `options.removeOnFail` and nothing changes.
   */
  failJobs(
    queueName: string,
    failures: JobFailure[],
    options?: FailJobsOptions,
  ): Promise<boolean[]>;

  // ──────────────────────────────────── Queries ────────────────────────────────────

  /** *Seed.* Counts `active` jobs. */
  getActiveCount(queueName: string): Promise<number>;

  /**
   * *Seed.* Lists jobs in a state, paginated by inclusive indexes like BullMQ (`start` default
   * 0, `end` default -1 meaning "to the last"). Order: `waiting` in claim order, `delayed` by
   * `delayUntil`, `completed`/`failed` newest `finishedAt` first, others oldest first.
   */
  listJobs(queueName: string, state: JobState, start?: number, end?: number): Promise<JobData[]>;

  /** *Seed.* Counts jobs in a state. */
  countJobs(queueName: string, state: JobState): Promise<number>;

  /** *Seed.* The earliest `delayUntil` among `delayed` jobs, or null. */
  getNextDelayedTimestamp(queueName: string): Promise<number | null>;

  // ─────────────────────────────── Delayed promotion ───────────────────────────────

  /**
   * *Seed.* Moves every `delayed` job with `delayUntil <= timestamp` to `waiting` (keeping its
   * priority and original FIFO place) and returns how many moved. Publishes `waiting` for each.
   */
  promoteDelayedJobs(queueName: string, timestamp: number): Promise<number>;

  // ────────────────────────────────── Pause / resume ──────────────────────────────────

  /** *Seed.* Stops claims of a job name, or of the whole queue with `__all__`. Publishes `paused`. */
  pauseJobName(queueName: string, jobName: string): Promise<void>;

  /** *Seed.* Undoes `pauseJobName`. Publishes `resumed`. */
  resumeJobName(queueName: string, jobName: string): Promise<void>;

  /** *Seed.* The paused job names (may include `__all__`). */
  getPausedJobNames(queueName: string): Promise<string[]>;

  // ─────────────────────────────── Stalled detection ───────────────────────────────

  /**
   * *Seed.* Lists `active` jobs whose lock expired at least `stalledThreshold` ms ago (0: any
   * expired lock), by the store's clock.
   */
  getStalledJobs(queueName: string, stalledThreshold: number): Promise<JobData[]>;

  /**
   * Atomically rescues every `active` job whose lock has expired: `stalledCount + 1`, then back
   * to `waiting` (token cleared, so the old holder can no longer finish it), or, when the new
   * `stalledCount` exceeds `maxStalledCount`, failed for good as by `failJobs` (reason `job
   * stalled more than allowable limit`, with the parent policy). Publishes `stalled`, then
   * `waiting` or `failed`. Returns the ids of both, and, in `failedJobs`, each failed job as its
   * failure left it, read in the same atomic step (before its parent policy and `removeOnFail`:
   * a job removed at once is still returned), so no second read can miss it.
   */
  requeueStalledJobs(queueName: string, maxStalledCount: number): Promise<StalledResult>;

  // ──────────────────────────────────── Cleanup ────────────────────────────────────

  /**
   * *Seed.* Removes jobs in `state` older than `grace` ms (by `finishedAt` for terminal states,
   * `createdAt` otherwise), at most `limit` of them when given (oldest first; `0` means no
   * limit, as in BullMQ). Returns the count removed. `active` jobs are never removed.
   */
  clean(queueName: string, state: JobState, grace: number, limit?: number): Promise<number>;

  /**
   * Applies each finished job's own `removeOnComplete` / `removeOnFail` count and age limits
   * (`true` is applied at finish time), or, for a job that had none, the default count and age
   * limits `completeJobs` / `failJobs` recorded with it when it finished. A job with keep-count `k` is removed when at least `k`
   * newer jobs finished in the same state; a job with keep-age `a` when it finished `a` seconds
   * ago or earlier (as BullMQ: age 0 removes it at the next prune). Returns the count removed.
   *
   * Each such job is removed as `true` removes it at finish time: just the job, with the
   * children values kept for it and its deduplication key; its children stay, in any state (a
   * running one finishes normally with its token, a waiting one can be claimed), and finish
   * without a parent step. Publishes `removed` for each removed job.
   *
   * @example
   * ```ts
   * // A parent failed by one child, with removeOnFail: { count: 0 }: it goes, its other
   * // children stay and run.
   * const removed = await store.pruneFinished('emails');
   * ```
   */
  pruneFinished(queueName: string): Promise<number>;

  /**
   * *Seed.* Removes every `waiting` and `delayed` job of the queue (with their descendants).
   * Jobs in `waiting-children`, `active` and terminal states stay.
   */
  drain(queueName: string): Promise<void>;

  /**
   * Removes everything the store keeps for a queue: jobs in every state, pauses, schedulers,
   * rate-limit windows, in one atomic step. Flows that cross queues are left whole, as
   * `removeJob` leaves them:
   * - the descendants of the queue's jobs in other queues are removed too, whatever their state
   *   (`removed` is published in their queues; the obliterated queue's own jobs go without it);
   * - a job of the queue whose parent is in another queue (and stays) counts as removed for that
   *   parent, as with `removeJob`: when the job was unfinished and had not counted yet, the
   *   parent's pending count goes down, and a `waiting-children` parent left with none moves on
   *   to `waiting` (or `delayed`, as in `completeJobs`).
   *
   * Without `force`, when one of these jobs is active (in the queue, or a descendant elsewhere)
   * it throws a `ConveyorError` with code `QUEUE_ACTIVE` naming that job (`queueActiveError`),
   * and removes nothing. With `force`, active jobs go too: their workers can no longer finish
   * them.
   */
  obliterate(queueName: string, opts?: { force?: boolean }): Promise<void>;

  /** The names of the queues that have jobs or schedulers. */
  listQueues(): Promise<string[]>;

  // ──────────────────────────────────── Pub/Sub ────────────────────────────────────

  /**
   * *Seed.* Calls `callback` for every event of the queue, from this process and, for shared
   * stores, from other processes. Events of one queue arrive in order.
   *
   * Addition: `types` names the event types the callback needs (default: all). The callback
   * may still get others, but a shared store can skip publishing what no subscriber wants: the
   * PostgreSQL store sends `active` and `completed`, the events of every claim and completion,
   * and `drained`, only while some subscriber of the queue wants them.
   */
  subscribe(
    queueName: string,
    callback: (event: StoreEvent) => void,
    types?: readonly StoreEventType[],
  ): void;

  /**
   * Addition, optional: resolves once every subscription made so far gets events from other
   * processes (for PostgreSQL: its LISTEN is acknowledged and its watch is recorded). Stores
   * whose subscriptions are live at once leave it out.
   */
  subscriptionsReady?(): Promise<void>;

  /** *Seed.* Removes one callback, or every callback of the queue when none is given. */
  unsubscribe(queueName: string, callback?: (event: StoreEvent) => void): void;

  /** *Seed.* Publishes an event to the queue's subscribers everywhere. */
  publish(event: StoreEvent): Promise<void>;

  // ──────────────────────────────────── Flows ────────────────────────────────────

  /**
   * *Seed.* Saves a flow atomically and returns the ids in input order. Every job carries its id
   * in `opts.jobId` (the engine assigns them), and children name their parent with `parentId`
   * and `parentQueueName`. Parents come before their children in the input, in state
   * `waiting-children` with `pendingChildrenCount` set. If any id already exists, throws
   * `DuplicateJobError` and saves nothing. `options.tx` as in `saveJob`.
   *
   * Addition: a job whose `parentId` / `parentQueueName` name no job of the input (a flow's
   * root with BullMQ's `opts.parent`) becomes a child of that existing job, as in `saveJob`: in
   * the same atomic step, the parent's `pendingChildrenCount` goes up by one for each such job
   * of the input. Such parents are checked first (before the flow's own ids, deduplication keys
   * and groups), and each must be there and unfinished: a missing one throws
   * `JobNotFoundError`, a finished one (`completed`, `failed`) `JobStateError` (see
   * `parentRefusal`), and nothing of the flow is saved. Any unfinished parent (`waiting`,
   * `delayed`, `active`, `waiting-children`) takes the child and keeps its state. The child's
   * end counts for that parent as any child's does (`completeJobs`, `failJobs` with the child's
   * policy, `removeJob`).
   */
  saveFlow(
    jobs: Array<{ queueName: string; job: NewJob }>,
    options?: SaveOptions,
  ): Promise<string[]>;

  /**
   * *Seed.* Decrements the parent's pending count; at 0 a `waiting-children` parent becomes
   * `waiting` (or `delayed`, as in `completeJobs`). Returns the parent's state afterwards.
   * (`completeJobs` does this itself.)
   * Throws `JobNotFoundError` when the parent does not exist.
   */
  notifyChildCompleted(parentQueueName: string, parentId: string): Promise<JobState>;

  /**
   * *Seed.* Fails a parent that is not finished (`failed`, `failedReason = reason`), then applies
   * the parent's own `failParentOnChildFailure` policy to its parent, up the tree. Returns false
   * if the parent was missing or already finished. (`failJobs` does this itself.)
   */
  failParentOnChildFailure(
    parentQueueName: string,
    parentId: string,
    reason: string,
  ): Promise<boolean>;

  /** *Seed.* All jobs whose parent is this job, in any queue. */
  getChildrenJobs(parentQueueName: string, parentId: string): Promise<JobData[]>;

  /**
   * Addition: the return values of this job's completed children, keyed `<queue>:<id>`. A
   * child's value is recorded with the parent, in the same atomic step as its completion, so it
   * stays when the child is removed later (`removeOnComplete`, `clean`, `removeJob`). The values
   * go with the parent when the parent is removed. `{}` for a missing job.
   */
  getChildrenValues(parentQueueName: string, parentId: string): Promise<Record<string, unknown>>;

  // ──────────────────────────────────── Groups ────────────────────────────────────

  /** *Seed.* Counts active jobs of a group. */
  getGroupActiveCount(queueName: string, groupId: string): Promise<number>;

  /** *Seed.* Counts waiting jobs of a group. */
  getWaitingGroupCount(queueName: string, groupId: string): Promise<number>;

  // ──────────────────────────────── Job schedulers ────────────────────────────────

  /**
   * Creates or replaces a scheduler by id, atomically with its first job. On replace, the old
   * scheduler's pending `delayed`/`waiting` jobs are removed, and those that never started no
   * longer count in `runCount` (re-upserting must not use up a `limit`). `firstJob`
   * (if not null) is saved like `saveJob` (its `opts.jobId` makes it idempotent) and counts as
   * a run. Returns the first job's id, or null.
   */
  upsertScheduler(scheduler: SchedulerData, firstJob: NewJob | null): Promise<string | null>;

  /** Returns a scheduler, or null. */
  getScheduler(queueName: string, schedulerId: string): Promise<SchedulerData | null>;

  /** Lists a queue's schedulers, by next run time. */
  listSchedulers(queueName: string): Promise<SchedulerData[]>;

  /** Removes a scheduler and its pending `delayed`/`waiting` job. Returns false if missing. */
  removeScheduler(queueName: string, schedulerId: string): Promise<boolean>;

  /**
   * Advances a scheduler atomically, compare-and-set on `nextRunAt`: only if the stored
   * `nextRunAt` equals `expectedRunAt`, sets it to `nextRunAt`, increments `runCount` when
   * `job` is given, and saves `job` (idempotent by its `opts.jobId`). Returns the saved job's
   * id, `null` when nothing was saved, and false when the compare failed.
   */
  advanceScheduler(
    queueName: string,
    schedulerId: string,
    expectedRunAt: number,
    nextRunAt: number | null,
    job: NewJob | null,
  ): Promise<string | null | false>;
}
