/**
 * {@linkcode MemoryStore}: the in-memory implementation of the store contract.
 *
 * @module
 */
import {
  activeRemovalError,
  checkInteger,
  checkJobLocks,
  checkMoveToDelayed,
  checkNewJob,
  checkRateLimitTtl,
  checkRemoveOnFinish,
  checkRemoveOptions,
  checkToken,
  checkUpdates,
  type CompleteJobsOptions,
  DuplicateJobError,
  effectiveRemoveOn,
  type FailJobsOptions,
  type FetchOptions,
  flowParentDelay,
  GroupFullError,
  InvalidArgumentError,
  type JobCompletion,
  type JobData,
  type JobFailure,
  type JobLock,
  JobNotFoundError,
  type JobState,
  type NewJob,
  parentRefusal,
  queueActiveError,
  refuseTx,
  type RemoveOnFinish,
  type RemoveOptions,
  type SaveOptions,
  type SchedulerData,
  type StalledResult,
  StoreError,
  type StoreEvent,
  type StoreEventType,
  type StoreInterface,
  type StoreOptions,
  type UpdateGuard,
  type WaitForChildren,
} from '@conveyor/shared';
import { Emitter, type Listener } from './emitter.ts';
import { NO_GROUP, QueueState, type StoredJob } from './queue_state.ts';
import { selectNext } from './select.ts';
import { copyJob, copyValue, EMPTY_LIST, groupOf, toStored } from './copy.ts';
import { checkFetchOptions, checkMs, checkState } from './validate.ts';

const STALLED_REASON = 'job stalled more than allowable limit';

/** A job to save: its queue, and the argument path that names it in errors. */
type PlanItem = { qs: QueueState; job: NewJob; path: string };
/**
 * What saving a job does: insert `job` under `id`, or (`job` null) answer with job `id`, which
 * `event` then announces (`duplicated` or `deduplicated`, with its data).
 */
type Planned = {
  qs: QueueState;
  id: string;
  job: NewJob | null;
  event?: { type: 'duplicated' | 'deduplicated'; data?: Record<string, unknown> };
};

/**
 * A store that keeps everything in this process's memory: fast, no setup, gone on exit. Ideal
 * for tests and single-process apps. Each instance is independent.
 *
 * Every method runs its whole state change synchronously (no `await` inside a transition), so
 * each call is atomic. Claims walk per-queue ordered indexes (O(log n) for the common
 * unfiltered claim). Jobs go in and out as copies (see `copy.ts`), so callers cannot change
 * stored state through objects they passed or received; each event is copied once when
 * published, and each further subscriber of the queue gets its own copy. Events are delivered synchronously, in
 * order, right after the change that caused them is complete.
 *
 * Removal: `removeJob`, `drain` and `clean` remove a job with its descendants, and `obliterate`
 * every job of the queue with their descendants in other queues; `removeOnComplete` /
 * `removeOnFail` and `pruneFinished` remove only the finished job itself.
 *
 * @example
 * ```ts
 * import { MemoryStore } from '@conveyor/store-memory';
 * import { newJob } from '@conveyor/shared';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * const id = await store.saveJob('emails', newJob('emails', 'welcome', { to: 'a@b.c' }));
 * const job = await store.fetchNextJob('emails', 'worker-1', 30_000);
 * await store.completeJobs('emails', [{ jobId: id, token: job!.lockToken!, returnvalue: 'sent' }]);
 * await store.disconnect();
 * ```
 */
export class MemoryStore implements StoreInterface {
  #queues = new Map<string, QueueState>();
  #children = new Map<string, Set<string>>();
  #emitter: Emitter;
  #connected = false;
  #seq = 0;
  #nextId = 0;

  /**
   * Creates an empty store (call {@linkcode MemoryStore.connect} before use).
   *
   * @param options `onError` receives errors thrown by event subscribers.
   */
  constructor(options: StoreOptions = {}) {
    this.#emitter = new Emitter(options.onError ?? (() => {}));
  }

  // ───────────────────────────── Connection lifecycle ─────────────────────────────

  /** Opens the store (nothing to migrate). Must be called before anything else. */
  connect(): Promise<void> {
    this.#connected = true;
    return Promise.resolve();
  }

  /** Closes the store and drops its subscribers. The data stays in the instance. */
  disconnect(): Promise<void> {
    this.#connected = false;
    this.#emitter.clear();
    return Promise.resolve();
  }

  // ───────────────────────────────── Job CRUD ─────────────────────────────────

  /**
   * Saves a job; see {@linkcode StoreInterface.saveJob}. The memory store has no transactions:
   * `options.tx` is refused with `InvalidArgumentError`.
   */
  saveJob(queueName: string, job: NewJob, options?: SaveOptions): Promise<string> {
    return this.#run(() => {
      refuseTx(options, 'the memory store');
      return this.#saveMany(queueName, [job], 'job')[0];
    });
  }

  /** Saves many jobs atomically; see {@linkcode StoreInterface.saveBulk}. No `options.tx`. */
  saveBulk(queueName: string, jobs: NewJob[], options?: SaveOptions): Promise<string[]> {
    return this.#run(() => {
      refuseTx(options, 'the memory store');
      if (!Array.isArray(jobs)) throw new InvalidArgumentError('jobs', jobs, 'an array of jobs');
      return this.#saveMany(queueName, jobs, 'jobs');
    });
  }

  /** Returns a copy of a job, or null. */
  getJob(queueName: string, jobId: string): Promise<JobData | null> {
    return this.#run(() => {
      const rec = this.#find(queueName, jobId);
      return rec ? copyJob(rec.job) : null;
    });
  }

  /** Updates a job, optionally guarded; see {@linkcode StoreInterface.updateJob}. */
  updateJob(
    queueName: string,
    jobId: string,
    updates: Partial<JobData>,
    guard?: UpdateGuard,
  ): Promise<boolean> {
    return this.#run(() => {
      checkUpdates(updates);
      const copy = copyValue(updates);
      const qs = this.#queues.get(queueName);
      const rec = qs?.jobs.get(jobId);
      if (!qs || !rec || !guardHolds(rec.job, guard)) return false;
      const oldKey = rec.job.deduplicationKey;
      qs.unindex(rec);
      this.#detach(rec, false);
      const { id: _id, queueName: _queue, ...fields } = copy;
      Object.assign(rec.job, fields);
      this.#attach(rec);
      qs.index(rec);
      if (rec.job.deduplicationKey !== oldKey) {
        if (oldKey !== null && qs.dedup.get(oldKey) === jobId) qs.dedup.delete(oldKey);
        if (rec.job.deduplicationKey !== null) qs.dedup.set(rec.job.deduplicationKey, jobId);
      }
      if (publishesState(updates, rec.job.state)) this.#emitState(rec.job, Date.now());
      return true;
    });
  }

  /** Removes a job and its descendants; see {@linkcode StoreInterface.removeJob}. */
  removeJob(queueName: string, jobId: string, options?: RemoveOptions): Promise<void> {
    return this.#run(() => {
      const unlessActive = checkRemoveOptions(options);
      const rec = this.#find(queueName, jobId);
      if (rec) this.#removeTree(rec, Date.now(), unlessActive);
    });
  }

  /** Appends a log line; see {@linkcode StoreInterface.addLog}. */
  addLog(queueName: string, jobId: string, line: string, keepLogs?: number): Promise<number> {
    return this.#run(() => {
      if (keepLogs !== undefined) checkInteger('keepLogs', keepLogs, 0);
      const rec = this.#find(queueName, jobId);
      if (!rec) return 0;
      let logs = rec.job.logs;
      if (logs === EMPTY_LIST) rec.job.logs = logs = [];
      logs.push(String(line));
      if (keepLogs !== undefined) keepNewest(logs, keepLogs);
      return logs.length;
    });
  }

  /** Keeps the newest log lines; see {@linkcode StoreInterface.trimLogs}. */
  trimLogs(queueName: string, jobId: string, keep: number): Promise<number> {
    return this.#run(() => {
      checkInteger('keep', keep, 0);
      const rec = this.#find(queueName, jobId);
      if (!rec) throw new JobNotFoundError(queueName, jobId);
      keepNewest(rec.job.logs, keep);
      return rec.job.logs.length;
    });
  }

  // ──────────────────────────────── Deduplication ────────────────────────────────

  /** Returns the live holder of a deduplication key, or null. */
  findByDeduplicationKey(queueName: string, key: string): Promise<JobData | null> {
    return this.#run(() => {
      const qs = this.#queues.get(queueName);
      const rec = qs && this.#liveHolder(qs, key, Date.now());
      return rec ? copyJob(rec.job) : null;
    });
  }

  // ─────────────────────────────── Fetching and locking ───────────────────────────────

  /** Claims the next job; see {@linkcode StoreInterface.fetchNextJob}. */
  fetchNextJob(
    queueName: string,
    workerId: string,
    lockDuration: number,
    opts: FetchOptions = {},
  ): Promise<JobData | null> {
    return this.#run(() => {
      checkMs('lockDuration', lockDuration, 1);
      checkFetchOptions(opts);
      const qs = this.#queues.get(queueName);
      const rec = qs ? this.#claim(qs, workerId, lockDuration, opts, Date.now()) : null;
      return rec ? copyJob(rec.job) : null;
    });
  }

  /** Claims up to `count` jobs at once; see {@linkcode StoreInterface.fetchNextJobs}. */
  fetchNextJobs(
    queueName: string,
    workerId: string,
    lockDuration: number,
    count: number,
    opts: FetchOptions = {},
  ): Promise<JobData[]> {
    return this.#run(() => {
      checkMs('lockDuration', lockDuration, 1);
      checkInteger('count', count, 1);
      checkFetchOptions(opts);
      const qs = this.#queues.get(queueName);
      const out: JobData[] = [];
      const now = Date.now();
      while (qs && out.length < count) {
        const rec = this.#claim(qs, workerId, lockDuration, opts, now);
        if (!rec) break;
        out.push(copyJob(rec.job));
      }
      return out;
    });
  }

  /** Extends an active job's lock; see {@linkcode StoreInterface.extendLock}. */
  extendLock(queueName: string, jobId: string, duration: number, token?: string): Promise<boolean> {
    return this.#run(() => {
      checkMs('duration', duration, 1);
      const rec = this.#holding(queueName, jobId, token);
      if (!rec) return false;
      rec.job.lockUntil = Date.now() + duration;
      return true;
    });
  }

  /** Extends several active jobs' locks; see {@linkcode StoreInterface.extendLocks}. */
  extendLocks(queueName: string, locks: JobLock[], duration: number): Promise<boolean[]> {
    return this.#run(() => {
      checkJobLocks(locks, duration);
      const until = Date.now() + duration;
      return locks.map(({ jobId, token }) => {
        const rec = this.#holding(queueName, jobId, token, true);
        if (rec) rec.job.lockUntil = until;
        return rec !== null;
      });
    });
  }

  /** Puts an active job back to `waiting`; see {@linkcode StoreInterface.releaseLock}. */
  releaseLock(queueName: string, jobId: string, token?: string): Promise<boolean> {
    return this.#run(() => {
      const rec = this.#holding(queueName, jobId, token);
      if (!rec) return false;
      this.#move(rec, 'waiting', Date.now());
      return true;
    });
  }

  /** Parks an active job until its children finish; see the contract. */
  moveToWaitingChildren(
    queueName: string,
    jobId: string,
    token: string,
  ): Promise<WaitForChildren> {
    return this.#run(() => {
      checkToken(token);
      const rec = this.#holding(queueName, jobId, token, true);
      if (!rec) return 'lost';
      if (rec.job.pendingChildrenCount <= 0) return 'none';
      this.#move(rec, 'waiting-children', Date.now());
      return 'moved';
    });
  }

  /** Moves an active job to `delayed`; see {@linkcode StoreInterface.moveToDelayed}. */
  moveToDelayed(
    queueName: string,
    jobId: string,
    token: string,
    delayUntil: number,
  ): Promise<boolean> {
    return this.#run(() => {
      checkMoveToDelayed(token, delayUntil);
      const rec = this.#holding(queueName, jobId, token, true);
      if (!rec) return false;
      const now = Date.now();
      const delayed = delayUntil > now;
      this.#move(rec, delayed ? 'delayed' : 'waiting', now, () => {
        if (delayed) rec.job.delayUntil = delayUntil;
      });
      return true;
    });
  }

  // ─────────────────────────────── Finishing (fenced) ───────────────────────────────

  /** Completes active jobs; see {@linkcode StoreInterface.completeJobs}. */
  completeJobs(
    queueName: string,
    completions: JobCompletion[],
    options?: CompleteJobsOptions,
  ): Promise<boolean[]> {
    return this.#run(() => {
      const fallback = options?.removeOnComplete;
      checkRemoveOnFinish('options.removeOnComplete', fallback);
      const now = Date.now();
      const done = new Array<boolean>(completions.length);
      // Every value is copied before any job changes: a value that cannot be stored fails the
      // whole call, and nothing of it is applied.
      const values = completions.map((c) => copyValue(c.returnvalue));
      for (let i = 0; i < completions.length; i++) {
        const { jobId, token } = completions[i];
        const rec = this.#holding(queueName, jobId, token, true);
        done[i] = rec !== null;
        if (!rec) continue;
        const job = rec.job;
        const value = values[i];
        // Set before the move: the completed index orders by finishedAt (unindex uses rec.entry).
        job.returnvalue = value;
        job.finishedAt = now;
        this.#move(rec, 'completed', now, undefined, { returnvalue: copyValue(value) });
        if (job.parentId !== null && job.parentQueueName !== null) {
          const parent = this.#find(job.parentQueueName, job.parentId);
          if (parent) (parent.childValues ??= new Map()).set(`${queueName}:${jobId}`, value);
          this.#releaseParent(rec, now);
        }
        if (this.#keep(rec, job.opts.removeOnComplete, fallback)) this.#drop(rec, false);
      }
      return done;
    });
  }

  /** Fails active jobs (retry or final); see {@linkcode StoreInterface.failJobs}. */
  failJobs(
    queueName: string,
    failures: JobFailure[],
    options?: FailJobsOptions,
  ): Promise<boolean[]> {
    return this.#run(() => {
      const fallback = options?.removeOnFail;
      checkRemoveOnFinish('options.removeOnFail', fallback);
      const now = Date.now();
      return failures.map(({ jobId, token, reason, stack, retryAt }) => {
        const rec = this.#holding(queueName, jobId, token, true);
        if (!rec) return false;
        const job = rec.job;
        const failedReason = String(reason);
        const update = () => {
          job.attemptsMade++;
          job.failedReason = failedReason;
          if (stack !== undefined) {
            if (job.stacktrace === EMPTY_LIST) job.stacktrace = [];
            job.stacktrace.push(stack);
          }
        };
        if (retryAt === undefined || retryAt === null) {
          this.#failFinal(rec, now, update, false, fallback);
          return true;
        }
        const delayed = retryAt > now;
        this.#move(rec, delayed ? 'delayed' : 'waiting', now, () => {
          update();
          this.#emit(job, 'retrying', now, {
            failedReason: job.failedReason,
            attemptsMade: job.attemptsMade,
          });
          if (delayed) job.delayUntil = retryAt;
        });
        return true;
      });
    });
  }

  // ──────────────────────────────────── Queries ────────────────────────────────────

  /** Counts active jobs. */
  getActiveCount(queueName: string): Promise<number> {
    return this.countJobs(queueName, 'active');
  }

  /** Lists jobs of a state, paginated; see {@linkcode StoreInterface.listJobs}. */
  listJobs(queueName: string, state: JobState, start = 0, end = -1): Promise<JobData[]> {
    return this.#run(() => {
      checkState('state', state);
      checkInteger('start', start, -Infinity);
      checkInteger('end', end, -Infinity);
      const qs = this.#queues.get(queueName);
      if (!qs) return [];
      const list = qs.lists[state];
      const size = list.size;
      const from = start < 0 ? Math.max(0, size + start) : start;
      const to = end < 0 ? size + end : Math.min(end, size - 1);
      if (from > to) return [];
      return list.slice(from, to).map((e) => copyJob(qs.jobs.get(e.id)!.job));
    });
  }

  /** Counts jobs in a state. */
  countJobs(queueName: string, state: JobState): Promise<number> {
    return this.#run(() => {
      checkState('state', state);
      return this.#queues.get(queueName)?.lists[state].size ?? 0;
    });
  }

  /** The earliest `delayUntil` among delayed jobs, or null. */
  getNextDelayedTimestamp(queueName: string): Promise<number | null> {
    return this.#run(() => this.#queues.get(queueName)?.lists.delayed.first()?.a ?? null);
  }

  // ─────────────────────────────── Delayed promotion ───────────────────────────────

  /** Promotes due delayed jobs; see {@linkcode StoreInterface.promoteDelayedJobs}. */
  promoteDelayedJobs(queueName: string, timestamp: number): Promise<number> {
    return this.#run(() => {
      checkMs('timestamp', timestamp, -Infinity);
      const qs = this.#queues.get(queueName);
      if (!qs) return 0;
      const due: StoredJob[] = [];
      for (const rec of qs.inState('delayed')) {
        if (rec.job.delayUntil > timestamp) break;
        due.push(rec);
      }
      const now = Date.now();
      for (const rec of due) this.#move(rec, 'waiting', now);
      return due.length;
    });
  }

  // ─────────────────────────────── Manual rate limit ───────────────────────────────

  /** Rate limits limited claims for `ttl` ms; see {@linkcode StoreInterface.setRateLimit}. */
  setRateLimit(queueName: string, ttl: number): Promise<void> {
    return this.#run(() => {
      checkRateLimitTtl(ttl);
      const now = Date.now();
      this.#queue(queueName).limitedUntil = now + ttl;
      this.#emitter.queue({ type: 'rate-limit', queueName, data: { ttl }, timestamp: now });
    });
  }

  /**
   * Ms until the manual rate limit ends (or, with `maxJobs`, a window that counted that many
   * claims), 0 when none; see {@linkcode StoreInterface.getRateLimitTtl}.
   */
  getRateLimitTtl(queueName: string, maxJobs?: number): Promise<number> {
    return this.#run(() => {
      if (maxJobs !== undefined) checkInteger('maxJobs', maxJobs, 1);
      const qs = this.#queues.get(queueName);
      const now = Date.now();
      const manual = Math.max(0, Math.ceil((qs?.limitedUntil ?? 0) - now));
      const window = qs?.limiter;
      if (manual > 0 || maxJobs === undefined || !window || window.count < maxJobs) return manual;
      return Math.max(0, Math.ceil(window.end - now));
    });
  }

  /** Ends the manual rate limit; see {@linkcode StoreInterface.removeRateLimit}. */
  removeRateLimit(queueName: string): Promise<boolean> {
    return this.#run(() => {
      const now = Date.now();
      const qs = this.#queues.get(queueName);
      const was = qs !== undefined && qs.limitedUntil > now;
      if (qs) {
        qs.limitedUntil = 0;
        qs.limiter = null;
      }
      this.#emitter.queue({ type: 'rate-limit', queueName, data: { ttl: 0 }, timestamp: now });
      return was;
    });
  }

  // ────────────────────────────────── Pause / resume ──────────────────────────────────

  /** Pauses a job name (or `__all__`). Publishes `paused`. */
  pauseJobName(queueName: string, jobName: string): Promise<void> {
    return this.#run(() => {
      this.#queue(queueName).paused.add(jobName);
      this.#emitter.queue({ type: 'paused', queueName, data: { jobName }, timestamp: Date.now() });
    });
  }

  /** Resumes a job name (or `__all__`). Publishes `resumed`. */
  resumeJobName(queueName: string, jobName: string): Promise<void> {
    return this.#run(() => {
      this.#queues.get(queueName)?.paused.delete(jobName);
      this.#emitter.queue({ type: 'resumed', queueName, data: { jobName }, timestamp: Date.now() });
    });
  }

  /** The paused job names. */
  getPausedJobNames(queueName: string): Promise<string[]> {
    return this.#run(() => [...(this.#queues.get(queueName)?.paused ?? [])]);
  }

  // ─────────────────────────────── Stalled detection ───────────────────────────────

  /** Active jobs whose lock expired at least `stalledThreshold` ms ago. */
  getStalledJobs(queueName: string, stalledThreshold: number): Promise<JobData[]> {
    return this.#run(() => {
      checkMs('stalledThreshold', stalledThreshold);
      const qs = this.#queues.get(queueName);
      if (!qs) return [];
      const cutoff = Date.now() - stalledThreshold;
      return [...qs.inState('active')]
        .filter((rec) => (rec.job.lockUntil ?? 0) <= cutoff)
        .map((rec) => copyJob(rec.job));
    });
  }

  /** Requeues (or fails) jobs whose lock expired; see {@linkcode StoreInterface.requeueStalledJobs}. */
  requeueStalledJobs(queueName: string, maxStalledCount: number): Promise<StalledResult> {
    return this.#run(() => {
      checkInteger('maxStalledCount', maxStalledCount, 0);
      const result: StalledResult = { requeued: [], failed: [], failedJobs: [] };
      const qs = this.#queues.get(queueName);
      if (!qs) return result;
      const now = Date.now();
      const stalled = [...qs.inState('active')].filter((r) => (r.job.lockUntil ?? 0) <= now);
      for (const rec of stalled) {
        const job = rec.job;
        job.stalledCount++;
        this.#emit(job, 'stalled', now, { stalledCount: job.stalledCount });
        if (job.stalledCount > maxStalledCount) {
          const failed = this.#failFinal(rec, now, () => {
            job.attemptsMade++;
            job.failedReason = STALLED_REASON;
          }, true);
          result.failed.push(job.id);
          result.failedJobs.push(failed!);
        } else {
          this.#move(rec, 'waiting', now);
          result.requeued.push(job.id);
        }
      }
      return result;
    });
  }

  // ──────────────────────────────────── Cleanup ────────────────────────────────────

  /** Removes old jobs of a state; see {@linkcode StoreInterface.clean}. */
  clean(queueName: string, state: JobState, grace: number, limit?: number): Promise<number> {
    return this.#run(() => {
      checkState('state', state);
      checkMs('grace', grace);
      if (limit !== undefined) checkInteger('limit', limit, 0);
      const qs = this.#queues.get(queueName);
      if (!qs || state === 'active') return 0;
      const now = Date.now();
      const cutoff = now - grace;
      const terminal = state === 'completed' || state === 'failed';
      const age = (rec: StoredJob) => (terminal ? rec.job.finishedAt ?? 0 : rec.job.createdAt);
      const old = [...qs.inState(state)].filter((rec) => age(rec) <= cutoff);
      old.sort((x, y) => age(x) - age(y) || x.seq - y.seq);
      const max = limit ? limit : Infinity;
      let removed = 0;
      for (const rec of old) {
        if (removed >= max) break;
        if (qs.jobs.get(rec.job.id) !== rec || rec.job.state !== state) continue;
        this.#removeTree(rec, now);
        removed++;
      }
      return removed;
    });
  }

  /** Applies keep-count / keep-age limits; see {@linkcode StoreInterface.pruneFinished}. */
  pruneFinished(queueName: string): Promise<number> {
    return this.#run(() => {
      const qs = this.#queues.get(queueName);
      if (!qs) return 0;
      const now = Date.now();
      const doomed: StoredJob[] = [];
      for (const state of ['completed', 'failed'] as const) {
        let newer = 0;
        for (const rec of qs.inState(state)) {
          const keep = effectiveRemoveOn(
            state === 'completed' ? rec.job.opts.removeOnComplete : rec.job.opts.removeOnFail,
            rec.keep,
          );
          const count = typeof keep === 'number'
            ? keep
            : typeof keep === 'object'
            ? keep.count
            : undefined;
          const age = typeof keep === 'object' ? keep.age : undefined;
          if (
            (count !== undefined && newer >= count) ||
            (age !== undefined && now - (rec.job.finishedAt ?? 0) >= age * 1000)
          ) doomed.push(rec);
          newer++;
        }
      }
      for (const rec of doomed) this.#drop(rec, true);
      return doomed.length;
    });
  }

  /** Removes every waiting and delayed job (with descendants). */
  drain(queueName: string): Promise<void> {
    return this.#run(() => {
      const qs = this.#queues.get(queueName);
      if (!qs) return;
      const now = Date.now();
      const doomed = [...qs.inState('waiting'), ...qs.inState('delayed')];
      for (const rec of doomed) {
        if (qs.jobs.get(rec.job.id) === rec) this.#removeTree(rec, now);
      }
    });
  }

  /** Removes everything of a queue; see {@linkcode StoreInterface.obliterate}. */
  obliterate(queueName: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.#run(() => {
      const qs = this.#queues.get(queueName);
      if (!qs) return;
      const records = [...qs.jobs.values()];
      const doomed = this.#family(records);
      const busy = opts.force ? undefined : doomed.find((r) => r.job.state === 'active');
      if (busy) throw queueActiveError(queueName, busy.job.queueName, busy.job.id);
      const now = Date.now();
      // Their descendants in other queues go as with removeJob (announced there).
      for (const rec of doomed) if (rec.job.queueName !== queueName) this.#drop(rec, true);
      for (const rec of records) this.#unlink(rec);
      this.#queues.delete(queueName);
      // As removal does: an unfinished job counts as finished for a parent it leaves behind.
      for (const rec of records) this.#releaseParent(rec, now, true);
    });
  }

  /** The queues that have jobs or schedulers, sorted by name. */
  listQueues(): Promise<string[]> {
    return this.#run(() =>
      [...this.#queues.values()]
        .filter((qs) => qs.jobs.size > 0 || qs.schedulers.size > 0)
        .map((qs) => qs.name)
        .sort()
    );
  }

  // ──────────────────────────────────── Pub/Sub ────────────────────────────────────

  /** Calls `callback` for every event of the queue, in order. */
  subscribe(queueName: string, callback: (event: StoreEvent) => void): void {
    this.#emitter.on(queueName, callback as Listener);
  }

  /** Removes one callback, or all of the queue's. */
  unsubscribe(queueName: string, callback?: (event: StoreEvent) => void): void {
    this.#emitter.off(queueName, callback as Listener | undefined);
  }

  /** Publishes an event to the queue's subscribers. */
  publish(event: StoreEvent): Promise<void> {
    return this.#run(() => {
      this.#emitter.queue(copyValue(event));
    });
  }

  // ──────────────────────────────────── Flows ────────────────────────────────────

  /** Saves a flow atomically; see {@linkcode StoreInterface.saveFlow}. No `options.tx`. */
  saveFlow(
    jobs: Array<{ queueName: string; job: NewJob }>,
    options?: SaveOptions,
  ): Promise<string[]> {
    return this.#run(() => {
      refuseTx(options, 'the memory store');
      if (!Array.isArray(jobs)) throw new InvalidArgumentError('jobs', jobs, 'an array');
      const items = jobs.map(({ queueName, job }, i) => ({
        qs: this.#queue(queueName, `jobs[${i}].queueName`),
        job,
        path: `jobs[${i}].job`,
      }));
      const now = Date.now();
      for (const { job, path } of items) {
        checkNewJob(job, path);
        if (job.opts.jobId === undefined) {
          throw new InvalidArgumentError(`${path}.opts.jobId`, undefined, 'set (flows carry ids)');
        }
      }
      // Parents outside the flow (a root's opts.parent) first, as the other stores lock them.
      const inFlow = new Set(items.map(({ qs, job }) => jobKey(qs.name, String(job.opts.jobId))));
      const outside = items.filter(({ job }) =>
        job.parentId != null && job.parentQueueName != null &&
        !inFlow.has(jobKey(job.parentQueueName, job.parentId))
      );
      const parents = this.#parentsOf(outside.map(({ job }) => job));
      // The same checks as saveJob (ids, deduplication keys, group sizes), refusing instead
      // of answering with an existing job.
      const ids = this.#apply(this.#plan(items, now, true), now);
      for (const parent of parents) parent!.job.pendingChildrenCount++;
      return ids;
    });
  }

  /** Counts a child as finished; see {@linkcode StoreInterface.notifyChildCompleted}. */
  notifyChildCompleted(parentQueueName: string, parentId: string): Promise<JobState> {
    return this.#run(() => {
      if (!this.#find(parentQueueName, parentId)) {
        throw new JobNotFoundError(parentQueueName, parentId);
      }
      return this.#childFinished(parentQueueName, parentId, Date.now())!;
    });
  }

  /** Fails a parent and applies its policy upward; see {@linkcode StoreInterface.failParentOnChildFailure}. */
  failParentOnChildFailure(
    parentQueueName: string,
    parentId: string,
    reason: string,
  ): Promise<boolean> {
    return this.#run(() => this.#failParent(parentQueueName, parentId, reason, Date.now()));
  }

  /** The recorded values of completed children; see {@linkcode StoreInterface.getChildrenValues}. */
  getChildrenValues(parentQueueName: string, parentId: string): Promise<Record<string, unknown>> {
    return this.#run(() => {
      const values: Record<string, unknown> = {};
      const rec = this.#find(parentQueueName, parentId);
      for (const [key, value] of rec?.childValues ?? []) values[key] = copyValue(value);
      return values;
    });
  }

  /** All children of a job, in any queue (in save order). */
  getChildrenJobs(parentQueueName: string, parentId: string): Promise<JobData[]> {
    return this.#run(() => {
      const keys = this.#children.get(jobKey(parentQueueName, parentId)) ?? [];
      return [...keys]
        .map((key) => this.#findKey(key))
        .filter((rec): rec is StoredJob => rec !== null)
        .sort((x, y) => x.seq - y.seq)
        .map((rec) => copyJob(rec.job));
    });
  }

  // ──────────────────────────────────── Groups ────────────────────────────────────

  /** Counts a group's active jobs. */
  getGroupActiveCount(queueName: string, groupId: string): Promise<number> {
    return this.#run(() => this.#queues.get(queueName)?.groupActive.get(groupId) ?? 0);
  }

  /** Counts a group's waiting jobs. */
  getWaitingGroupCount(queueName: string, groupId: string): Promise<number> {
    return this.#run(() => this.#queues.get(queueName)?.groupWaiting.get(groupId) ?? 0);
  }

  // ──────────────────────────────── Job schedulers ────────────────────────────────

  /** Creates or replaces a scheduler with its first job; see {@linkcode StoreInterface.upsertScheduler}. */
  upsertScheduler(scheduler: SchedulerData, firstJob: NewJob | null): Promise<string | null> {
    return this.#run(() => {
      if (typeof scheduler?.id !== 'string' || scheduler.id === '') {
        throw new InvalidArgumentError('scheduler.id', scheduler?.id, 'a non-empty string');
      }
      const qs = this.#queue(scheduler.queueName);
      if (firstJob) this.#plan([{ qs, job: firstJob, path: 'firstJob' }], Date.now());
      const old = qs.schedulers.get(scheduler.id);
      const record = copyValue(scheduler);
      if (old) {
        // A removed job that never started was counted as a run it will not make.
        record.runCount = Math.max(0, old.runCount - this.#removeSchedulerJobs(qs, scheduler.id));
        record.createdAt = old.createdAt;
      }
      const id = firstJob ? this.#saveMany(qs.name, [firstJob], 'firstJob')[0] : null;
      if (firstJob) record.runCount++;
      qs.schedulers.set(record.id, record);
      return id;
    });
  }

  /** Returns a copy of a scheduler, or null. */
  getScheduler(queueName: string, schedulerId: string): Promise<SchedulerData | null> {
    return this.#run(() => {
      const s = this.#queues.get(queueName)?.schedulers.get(schedulerId);
      return s ? copyValue(s) : null;
    });
  }

  /** A queue's schedulers by next run time (ended ones last), then id. */
  listSchedulers(queueName: string): Promise<SchedulerData[]> {
    return this.#run(() =>
      [...(this.#queues.get(queueName)?.schedulers.values() ?? [])]
        .sort((x, y) =>
          (x.nextRunAt ?? Infinity) - (y.nextRunAt ?? Infinity) || (x.id < y.id ? -1 : 1)
        )
        .map((s) => copyValue(s))
    );
  }

  /** Removes a scheduler and its pending job. */
  removeScheduler(queueName: string, schedulerId: string): Promise<boolean> {
    return this.#run(() => {
      const qs = this.#queues.get(queueName);
      if (!qs?.schedulers.delete(schedulerId)) return false;
      this.#removeSchedulerJobs(qs, schedulerId);
      return true;
    });
  }

  /** Compare-and-set advance of a scheduler; see {@linkcode StoreInterface.advanceScheduler}. */
  advanceScheduler(
    queueName: string,
    schedulerId: string,
    expectedRunAt: number,
    nextRunAt: number | null,
    job: NewJob | null,
  ): Promise<string | null | false> {
    return this.#run(() => {
      const qs = this.#queues.get(queueName);
      const s = qs?.schedulers.get(schedulerId);
      if (!qs || !s || s.nextRunAt !== expectedRunAt) return false;
      const id = job ? this.#saveMany(queueName, [job], 'job')[0] : null;
      s.nextRunAt = nextRunAt;
      if (job) s.runCount++;
      return id;
    });
  }

  // ──────────────────────────────────── Internals ────────────────────────────────────

  /** Runs one operation atomically, then delivers its events; errors become rejections. */
  #run<T>(operation: () => T): Promise<T> {
    try {
      if (!this.#connected) throw new StoreError('NOT_CONNECTED', 'call connect() first');
      const result = operation();
      this.#emitter.flush();
      return Promise.resolve(result);
    } catch (error) {
      this.#emitter.discard();
      return Promise.reject(error);
    }
  }

  #queue(queueName: string, option = 'queueName'): QueueState {
    if (typeof queueName !== 'string' || queueName === '') {
      throw new InvalidArgumentError(option, queueName, 'a non-empty string');
    }
    let qs = this.#queues.get(queueName);
    if (!qs) this.#queues.set(queueName, qs = new QueueState(queueName));
    return qs;
  }

  #find(queueName: string, jobId: string): StoredJob | null {
    return this.#queues.get(queueName)?.jobs.get(jobId) ?? null;
  }

  #findKey(key: string): StoredJob | null {
    const [queueName, jobId] = splitKey(key);
    return this.#find(queueName, jobId);
  }

  /** The active job, if held with `token` (any token when not given and not `required`). */
  #holding(queueName: string, jobId: string, token?: string, required = false): StoredJob | null {
    const rec = this.#find(queueName, jobId);
    if (!rec || rec.job.state !== 'active') return null;
    if ((required || token !== undefined) && rec.job.lockToken !== token) return null;
    return rec;
  }

  /** The live holder of a deduplication key (see the contract), or null. */
  #liveHolder(qs: QueueState, key: string, now: number): StoredJob | null {
    const id = qs.dedup.get(key);
    const rec = id === undefined ? undefined : qs.jobs.get(id);
    if (!rec) return null;
    const { deduplicationExpiresAt: expires, state } = rec.job;
    const live = expires === null ? state !== 'completed' && state !== 'failed' : expires > now;
    return live ? rec : null;
  }

  /**
   * Decides, without changing anything, what saving `items` does (the jobs may be in several
   * queues): each entry is the id and either the job to insert or null (an existing job with
   * its id, or the live holder of its deduplication key, answers). Throws
   * `InvalidArgumentError` and `GroupFullError`. With `flow`, every job needs an id and an
   * answering job is a `DuplicateJobError` instead: a flow saves all of its jobs or none.
   */
  #plan(items: PlanItem[], now: number, flow = false): Planned[] {
    const ids = new Set<string>();
    const keys = new Map<string, string>();
    const groupAdds = new Map<string, number>();
    return items.map(({ qs, job, path }) => {
      checkNewJob(job, path);
      const custom = job.opts.jobId;
      if (flow && custom === undefined) {
        throw new InvalidArgumentError(`${path}.opts.jobId`, custom, 'set (flows carry ids)');
      }
      let existing: string | undefined;
      let event: Planned['event'] = { type: 'duplicated' };
      if (custom !== undefined && (qs.jobs.has(custom) || ids.has(jobKey(qs.name, custom)))) {
        existing = custom;
      }
      const key = job.deduplicationKey;
      if (existing === undefined && key !== null && key !== undefined) {
        existing = this.#liveHolder(qs, key, now)?.job.id ?? keys.get(jobKey(qs.name, key));
        event = {
          type: 'deduplicated',
          data: { deduplicationId: key, deduplicatedJobId: custom ?? null },
        };
      }
      if (existing !== undefined) {
        if (flow) throw new DuplicateJobError(qs.name, existing);
        return { qs, id: existing, job: null, event };
      }
      const group = groupOf(job);
      const groupKey = group === null ? '' : jobKey(qs.name, group);
      const maxSize = job.opts.group?.maxSize;
      if (group !== null && maxSize !== undefined) {
        const waiting = (qs.groupWaiting.get(group) ?? 0) + (groupAdds.get(groupKey) ?? 0);
        if (waiting >= maxSize) throw new GroupFullError(qs.name, group, maxSize);
      }
      const id = custom ?? this.#generateId(qs, ids);
      ids.add(jobKey(qs.name, id));
      if (key !== null && key !== undefined) keys.set(jobKey(qs.name, key), id);
      if (group !== null && job.state === 'waiting') {
        groupAdds.set(groupKey, (groupAdds.get(groupKey) ?? 0) + 1);
      }
      return { qs, id, job };
    });
  }

  /**
   * Inserts what a plan decided (copying every job first), and announces each job answered by
   * an existing one; returns the ids in plan order.
   */
  #apply(plan: Planned[], now: number): string[] {
    const records = plan.map(({ qs, job }) => job && toStored(job, qs.name));
    return plan.map(({ qs, id, event }, i) => {
      const record = records[i];
      if (record) this.#insert(qs, id, record, now);
      else if (event) {
        const e: StoreEvent = { type: event.type, queueName: qs.name, jobId: id, timestamp: now };
        if (event.data) e.data = { ...event.data };
        this.#emitter.queue(e);
      }
      return id;
    });
  }

  #saveMany(queueName: string, jobs: NewJob[], path: string): string[] {
    const qs = this.#queue(queueName);
    const now = Date.now();
    const items = jobs.map((job, i) => ({
      qs,
      job,
      path: jobs.length === 1 ? path : `${path}[${i}]`,
    }));
    const plan = this.#plan(items, now);
    // Every named parent must be there, unfinished, also for a job answered with an existing
    // one (as the shared stores, which lock the parents first); only inserted ones count.
    const parents = this.#parentsOf(jobs);
    const ids = this.#apply(plan, now);
    plan.forEach(({ job }, i) => {
      if (job !== null && parents[i]) parents[i].job.pendingChildrenCount++;
    });
    return ids;
  }

  /**
   * The existing parent each job names (opts.parent), null for a job without one: each must be
   * there, unfinished, else its refusal is thrown.
   */
  #parentsOf(jobs: NewJob[]): Array<StoredJob | null> {
    return jobs.map((job) => {
      if (job.parentId == null || job.parentQueueName == null) return null;
      const parent = this.#find(job.parentQueueName, job.parentId);
      const refusal = parentRefusal(job.parentQueueName, job.parentId, parent?.job.state ?? null);
      if (refusal) throw refusal;
      return parent!;
    });
  }

  /** A fresh generated id: unused in the queue and not `taken` (keys made by `jobKey`). */
  #generateId(qs: QueueState, taken: Set<string>): string {
    let id: string;
    do id = String(++this.#nextId); while (qs.jobs.has(id) || taken.has(jobKey(qs.name, id)));
    return id;
  }

  /** Stores a new job record (made by `toStored`) under `id` and indexes it. */
  #insert(qs: QueueState, id: string, data: JobData, now: number): void {
    data.id = id;
    const rec: StoredJob = { job: data, seq: ++this.#seq, entry: null, recent: null };
    qs.jobs.set(id, rec);
    qs.index(rec);
    if (data.deduplicationKey !== null) qs.dedup.set(data.deduplicationKey, id);
    this.#attach(rec);
    this.#emitState(data, now);
  }

  /** Claims the best eligible waiting job of a queue (see `select.ts`), or returns null. */
  #claim(
    qs: QueueState,
    workerId: string,
    lockDuration: number,
    opts: FetchOptions,
    now: number,
  ): StoredJob | null {
    const pick = selectNext(qs, opts, now);
    if (!pick) return null;
    const job = pick.job;
    this.#move(pick, 'active', now);
    // Lock fields are not indexed, so they can be set after the move.
    job.lockedBy = workerId;
    job.lockUntil = now + lockDuration;
    job.lockToken = crypto.randomUUID();
    job.processedAt = now;
    job.attemptsStarted++;
    if (opts.limiter) qs.limiter = QueueState.take(qs.limiter, opts.limiter, now);
    if (job.groupId !== null && opts.groupLimiter) {
      const g = job.groupId;
      qs.groupWindows.set(g, QueueState.take(qs.groupWindows.get(g), opts.groupLimiter, now));
    }
    qs.served.set(job.groupId ?? NO_GROUP, qs.claims++);
    return pick;
  }

  /**
   * Moves a job to another state: unindex, clear the lock when leaving `active`, apply
   * `change`, index, publish the state's event. The one place state changes happen.
   */
  #move(
    rec: StoredJob,
    state: JobState,
    now: number,
    change?: () => void,
    data?: Record<string, unknown>,
  ): void {
    const qs = this.#queues.get(rec.job.queueName)!;
    const job = rec.job;
    qs.unindex(rec);
    if (job.state === 'active' && state !== 'active') {
      job.lockedBy = job.lockUntil = job.lockToken = null;
    }
    job.state = state;
    if (state === 'waiting' || state === 'active') job.delayUntil = 0;
    change?.();
    qs.index(rec);
    this.#emitState(job, now, data);
  }

  /**
   * Fails a job for good: `failed`, parent policy, `removeOnFail` (or `fallback`, the
   * worker's, when the job has none). With `snapshot`, returns a copy of the job as its failure
   * left it (before the parent policy and the removal).
   */
  #failFinal(
    rec: StoredJob,
    now: number,
    change: () => void,
    snapshot = false,
    fallback?: RemoveOnFinish,
  ): JobData | null {
    const job = rec.job;
    this.#move(rec, 'failed', now, () => {
      change();
      job.finishedAt = now;
    });
    const failed = snapshot ? copyJob(job) : null;
    if (job.parentId !== null && job.parentQueueName !== null) {
      const policy = job.opts.failParentOnChildFailure ?? 'fail';
      if (policy === 'fail') {
        const reason = `child ${job.queueName}/${job.id} failed: ${job.failedReason}`;
        this.#failParent(job.parentQueueName, job.parentId, reason, now);
      } else {
        this.#releaseParent(rec, now);
        if (policy === 'remove') this.#detach(rec);
      }
    }
    if (this.#keep(rec, job.opts.removeOnFail, fallback)) this.#drop(rec, false);
    return failed;
  }

  /**
   * Records, on a job that just finished, the default rule (`fallback`, the worker's) when the
   * job has no option of its own (`own` undefined), for `pruneFinished`; a rule recorded at an
   * earlier finish goes. Returns whether the rule in force removes the job at once.
   */
  #keep(rec: StoredJob, own: RemoveOnFinish | undefined, fallback?: RemoveOnFinish): boolean {
    rec.keep = own === undefined ? fallback : undefined;
    return effectiveRemoveOn(own, fallback) === true;
  }

  /** Fails an unfinished parent and applies its own policy upward. */
  #failParent(queueName: string, jobId: string, reason: string, now: number): boolean {
    const rec = this.#find(queueName, jobId);
    if (!rec || rec.job.state === 'completed' || rec.job.state === 'failed') return false;
    this.#failFinal(rec, now, () => {
      rec.job.failedReason = reason;
    });
    return true;
  }

  /**
   * A child finished: the parent's pending count goes down; at 0 it becomes `waiting`, or, with
   * `opts.delay`, `delayed` for that long from now (as BullMQ).
   */
  #childFinished(queueName: string, jobId: string, now: number): JobState | null {
    const rec = this.#find(queueName, jobId);
    if (!rec) return null;
    const job = rec.job;
    if (job.pendingChildrenCount > 0) job.pendingChildrenCount--;
    if (job.pendingChildrenCount === 0 && job.state === 'waiting-children') {
      const delay = flowParentDelay(job.opts.delay);
      if (delay > 0) {
        this.#move(rec, 'delayed', now, () => {
          job.delayUntil = now + delay;
        });
      } else this.#move(rec, 'waiting', now);
    }
    return job.state;
  }

  /** Removes a job with its descendants, releasing its parent if it was a pending child. */
  #removeTree(rec: StoredJob, now: number, unlessActive = false): void {
    const doomed = this.#family([rec]);
    const busy = unlessActive ? doomed.find((r) => r.job.state === 'active') : undefined;
    if (busy) throw activeRemovalError(busy.job.queueName, busy.job.id);
    for (const r of doomed) this.#drop(r, true);
    this.#releaseParent(rec, now, true);
  }

  /** Jobs and all their descendants, in any queue, each once (the given jobs first). */
  #family(roots: StoredJob[]): StoredJob[] {
    const seen = new Set(roots);
    const all = [...seen];
    for (let i = 0; i < all.length; i++) {
      const r = all[i];
      for (const key of this.#children.get(jobKey(r.job.queueName, r.job.id)) ?? []) {
        const child = this.#findKey(key);
        if (child && !seen.has(child)) {
          seen.add(child);
          all.push(child);
        }
      }
    }
    return all;
  }

  /**
   * The one place a child counts as finished for its parent, at most once: when it completes,
   * fails for good under `ignore` / `remove`, or (`removed`) is removed while unfinished, in
   * whatever state the parent is (as BullMQ drops it from the parent's dependencies). A child that already counted (it
   * finished, was retried, and finishes or is removed again) does not count again, as in
   * BullMQ, whose parents keep their pending children in a set.
   */
  #releaseParent(rec: StoredJob, now: number, removed = false): void {
    const { parentId, parentQueueName, state } = rec.job;
    if (rec.counted || parentId === null || parentQueueName === null) return;
    // A finished child that did not count (it failed its parent) is not counted on removal.
    if (removed && (state === 'completed' || state === 'failed')) return;
    rec.counted = true;
    this.#childFinished(parentQueueName, parentId, now);
  }

  /** Removes one job from every structure; publishes `removed` when `announce`. */
  #drop(rec: StoredJob, announce: boolean): void {
    const qs = this.#queues.get(rec.job.queueName);
    if (!qs || qs.jobs.get(rec.job.id) !== rec) return;
    this.#unlink(rec);
    qs.unindex(rec);
    qs.jobs.delete(rec.job.id);
    const key = rec.job.deduplicationKey;
    if (key !== null && qs.dedup.get(key) === rec.job.id) qs.dedup.delete(key);
    if (announce) this.#emit(rec.job, 'removed', Date.now());
  }

  /** Drops a job's links in the children index (as a child and as a parent). */
  #unlink(rec: StoredJob): void {
    this.#detach(rec, false);
    this.#children.delete(jobKey(rec.job.queueName, rec.job.id));
  }

  /** Registers a job as a child of its parent in the children index (when it has one). */
  #attach(rec: StoredJob): void {
    const { parentId, parentQueueName } = rec.job;
    if (parentId === null || parentQueueName === null) return;
    const parent = jobKey(parentQueueName, parentId);
    let set = this.#children.get(parent);
    if (!set) this.#children.set(parent, set = new Set());
    set.add(jobKey(rec.job.queueName, rec.job.id));
  }

  /** Detaches a child from its parent (`clear`: also clear its parent fields). */
  #detach(rec: StoredJob, clear = true): void {
    const { parentId, parentQueueName } = rec.job;
    if (parentId === null || parentQueueName === null) return;
    const key = jobKey(parentQueueName, parentId);
    const set = this.#children.get(key);
    set?.delete(jobKey(rec.job.queueName, rec.job.id));
    if (set?.size === 0) this.#children.delete(key);
    if (clear) rec.job.parentId = rec.job.parentQueueName = null;
  }

  /**
   * Removes a scheduler's pending (`waiting` / `delayed`) jobs; returns how many of them never
   * started (a job retried or requeued after a start made its run).
   */
  #removeSchedulerJobs(qs: QueueState, schedulerId: string): number {
    const pending = [...qs.inState('waiting'), ...qs.inState('delayed')]
      .filter((rec) => rec.job.opts.repeat?.schedulerId === schedulerId);
    const now = Date.now();
    for (const rec of pending) this.#removeTree(rec, now);
    return pending.filter((rec) => rec.job.attemptsStarted === 0).length;
  }

  /** Publishes the event of the state a job just entered (if that state has one). */
  #emitState(job: JobData, now: number, data?: Record<string, unknown>): void {
    switch (job.state) {
      case 'waiting':
      case 'waiting-children':
      case 'active':
        return this.#emit(job, job.state, now, data);
      case 'delayed':
        return this.#emit(job, 'delayed', now, { delayUntil: job.delayUntil });
      case 'completed':
        return this.#emit(job, 'completed', now, data);
      case 'failed':
        return this.#emit(job, 'failed', now, {
          failedReason: job.failedReason,
          attemptsMade: job.attemptsMade,
        });
    }
  }

  /** Queues a job's event. `data` becomes the event's: pass a fresh object holding no stored values. */
  #emit(job: JobData, type: StoreEventType, now: number, data?: Record<string, unknown>): void {
    const event: StoreEvent = {
      type,
      queueName: job.queueName,
      jobId: job.id,
      jobName: job.name,
      timestamp: now,
    };
    if (data) event.data = data;
    this.#emitter.queue(event);
  }
}

/**
 * Whether an update publishes the state the job is in after it: `waiting` or `delayed` when
 * the update names that state, and `delayed` also when it sets a delayed job's `delayUntil`
 * (so the promoter re-arms for an earlier time). The same rule as the SQLite store.
 */
function publishesState(updates: Partial<JobData>, state: JobState): boolean {
  if (state === 'waiting') return updates.state === 'waiting';
  return state === 'delayed' && (updates.state === 'delayed' || updates.delayUntil !== undefined);
}

function guardHolds(job: JobData, guard: UpdateGuard | undefined): boolean {
  if (!guard) return true;
  if (guard.state !== undefined) {
    const states = Array.isArray(guard.state) ? guard.state : [guard.state];
    if (!states.includes(job.state)) return false;
  }
  if (guard.token !== undefined) {
    return job.state === 'active' && job.lockToken === guard.token;
  }
  return true;
}

function jobKey(queueName: string, jobId: string): string {
  return `${queueName}\u0000${jobId}`;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** Drops all but the newest `keep` lines of `logs`, in place (an empty list is left alone). */
function keepNewest(logs: string[], keep: number): void {
  if (logs.length > keep) logs.splice(0, logs.length - keep);
}
