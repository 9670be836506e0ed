/**
 * {@linkcode Worker}: claims jobs and runs them.
 *
 * @module
 */
import {
  checkRemoveOnFinish,
  effectiveRemoveOn,
  type FetchOptions,
  InvalidArgumentError,
  isRateLimitError,
  isUnrecoverableError,
  type JobCompletion,
  type JobData,
  type JobFailure,
  JobTimeoutError,
  LockLostError,
  type RateLimit,
  RateLimitError,
  type RemoveOnFinish,
  type StalledResult,
  type StoreEvent,
  type StoreEventType,
  type StoreInterface,
} from '@conveyor/shared';
import { backoffDelay, type BackoffStrategy } from './backoff.ts';
import { Batcher } from './batcher.ts';
import { type Clock, systemClock } from './clock.ts';
import { Emitter } from './emitter.ts';
import { Job } from './job.ts';
import { PromoteDelayedService } from './services/promote-delayed.ts';
import { PruneFinishedService } from './services/prune-finished.ts';
import { RescueStalledService } from './services/rescue-stalled.ts';
import { advanceOnStart, RunSchedulersService } from './services/run-schedulers.ts';
import type { Service } from './services/service.ts';
import {
  checkInteger,
  checkKeys,
  checkName,
  checkNumber,
  checkRateLimit,
  checkReturnValue,
  checkStore,
} from './validate.ts';

/**
 * Runs one job. The `signal` aborts on timeout, on lock loss, on a forced close and on
 * `worker.cancelJob`.
 *
 * @example
 * ```ts
 * import type { Processor } from '@conveyor/core';
 * const processor: Processor<{ n: number }, number> = async (job) => job.data.n * 2;
 * ```
 */
export type Processor<D = unknown, R = unknown> = (
  job: Job<D, R>,
  signal: AbortSignal,
) => R | Promise<R>;

/**
 * Runs a batch of jobs (`batch: { size }`). Return one value per job (in order), or nothing.
 * A throw fails the whole batch (each job retried per its own options).
 *
 * @example
 * ```ts
 * import type { BatchProcessor } from '@conveyor/core';
 * const processor: BatchProcessor<number, number> = async (jobs) => jobs.map((j) => j.data + 1);
 * ```
 */
export type BatchProcessor<D = unknown, R = unknown> = (
  jobs: Job<D, R>[],
  signal: AbortSignal,
) => R[] | void | Promise<R[] | void>;

/**
 * Options of a {@linkcode Worker}.
 *
 * @example
 * ```ts
 * import type { WorkerOptions } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 * const opts: WorkerOptions = { store: new MemoryStore(), concurrency: 10, limiter: { max: 100, duration: 1000 } };
 * ```
 */
export interface WorkerOptions {
  /** A connected store. */
  store: StoreInterface;
  /** Jobs (or batches) run at once by this worker. Default 1. */
  concurrency?: number;
  /**
   * Jobs claimed ahead, beyond `concurrency`: they wait in this worker, locked (their locks are
   * renewed), and start as slots free, in claim order (graphile-worker's local queue). When
   * none is left, the worker claims enough to fill its slots and the prefetch again, so short
   * jobs are claimed in fewer, larger claims (jobs that finish within a few promise reactions
   * free their slots before a claim is sized). A prefetched job is `active` in the store from
   * its claim, but the worker emits `active` and starts its `timeout` when it starts. `pause`
   * and `close` give prefetched jobs back to `waiting` at once, in their place; a crashed
   * process's come back after their lock expires, as its running jobs do. A one-job processor
   * only (not with `batch`, nor without a processor).
   *
   * Default `'auto'`: the worker claims ahead only what its slots would start within one claim's
   * round trip, from the durations it measures (slots × claim time ÷ job time, at most
   * {@linkcode AUTO_PREFETCH_MOST} × `concurrency`): none until a job has finished, none for jobs
   * much longer than a claim, four times `concurrency` for jobs that finish at once. A job
   * claimed ahead that has not started within {@linkcode AUTO_PREFETCH_HOLD} ms (a job turned
   * long) goes back to `waiting`, in its place, for any worker. `'auto'` claims nothing ahead
   * under `maxGlobalConcurrency`, `group` or `limiter` (a job claimed ahead would hold a slot or
   * a token it does not use), nor with `batch` or without a processor. `0`: claim only for free
   * slots.
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const store = new MemoryStore();
   * await store.connect();
   * // 50 running, up to 50 more claimed ahead.
   * const worker = new Worker('thumbnails', async () => {}, { store, concurrency: 50, prefetch: 50 });
   * await worker.close();
   * ```
   */
  prefetch?: number | 'auto';
  /** At most this many active jobs in the queue across all workers (enforced in the claim). */
  maxGlobalConcurrency?: number;
  /** Queue-wide rate limit shared by every worker and process. */
  limiter?: RateLimit;
  /** Per-group limits; groups are served round-robin. */
  group?: {
    /** Active jobs per group, across workers. */
    concurrency?: number;
    /** Claims per group per window. */
    limiter?: RateLimit;
  };
  /** Lock duration in ms; renewed automatically every `lockRenewTime`. Default 30 000. */
  lockDuration?: number;
  /** How often locks are renewed, in ms; less than `lockDuration`. Default `lockDuration / 2`. */
  lockRenewTime?: number;
  /** How often the stalled-job sweep runs, in ms. Default 30 000. */
  stalledInterval?: number;
  /** Stalls allowed before a job fails for good. Default 1. */
  maxStalledCount?: number;
  /** Only claim jobs of this name. */
  jobName?: string;
  /** Claim the newest job first. */
  lifo?: boolean;
  /** Start at once (default true); else call `run()`. */
  autorun?: boolean;
  /**
   * Fallback poll interval in ms, for stores whose events can be missed; delivery is
   * event-driven. Default 5000.
   */
  pollInterval?: number;
  /** Claim and finish jobs in batches of up to `size` with a {@linkcode BatchProcessor}. */
  batch?: { size: number };
  /** The delay function for jobs whose backoff type is `custom`. */
  backoffStrategy?: BackoffStrategy;
  /**
   * What to do with the jobs this worker completes that have no `removeOnComplete` of their
   * own (as BullMQ's worker option; a job's own option wins, an explicit `false` included):
   * `true` removes each at once, a count keeps that many of the newest completed jobs, and
   * `{ age, count }` limits by age (seconds) and count, applied every `pruneInterval`. Applied
   * in the store step that completes the job. Default: each job's own option only.
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const store = new MemoryStore();
   * await store.connect();
   * const worker = new Worker('emails', async () => {}, {
   *   store,
   *   removeOnComplete: { count: 1000 },
   *   removeOnFail: { age: 24 * 3600 },
   * });
   * await worker.close();
   * ```
   */
  removeOnComplete?: RemoveOnFinish;
  /**
   * As `removeOnComplete`, for the jobs this worker fails for good (a retried job is not
   * finished) that have no `removeOnFail` of their own. Jobs failed by the stalled-job check,
   * and parents failed by a child, keep to their own option (as in BullMQ).
   */
  removeOnFail?: RemoveOnFinish;
  /** How often `removeOnComplete`/`removeOnFail` counts and ages are applied, in ms. Default 1000. */
  pruneInterval?: number;
  /** Run the maintenance services (promote, stalled, schedulers, prune) in this worker. Default true. */
  maintenance?: boolean;
  /** The worker id written to `lockedBy`. Default a random UUID. */
  name?: string;
  /** The clock (tests inject one). Default `Date.now`. */
  clock?: Clock;
}

/**
 * The events of a {@linkcode Worker}.
 *
 * @example
 * ```ts
 * import type { WorkerEvents } from '@conveyor/core';
 * type Failed = WorkerEvents['failed']; // [job, error]
 * ```
 */
export interface WorkerEvents<D = unknown, R = unknown> {
  [event: string]: unknown[];
  /** The worker started a job. */
  active: [job: Job<D, R>];
  /** A job completed (its completion was stored). */
  completed: [job: Job<D, R>, result: R];
  /**
   * An attempt failed (`job.attemptsMade` counts it; it may be retried), or this worker's
   * stalled sweep failed the job for good.
   */
  failed: [job: Job<D, R>, error: Error];
  /** A running job reported progress. */
  progress: [job: Job<D, R>, progress: number | Record<string, unknown>];
  /** This worker's sweep found a stalled job (requeued or failed). */
  stalled: [jobId: string];
  /** A claim found nothing more to do (no job, or fewer than it asked for). */
  drained: [];
  /** Something went wrong outside a job (store error, lost lock). */
  error: [error: Error];
  /** `close` finished. */
  closed: [];
}

interface Run<D, R> {
  jobs: Job<D, R>[];
  /** When it started (`performance.now()`), for `prefetch: 'auto'`. */
  started: number;
  controller: AbortController;
  timer?: ReturnType<typeof setTimeout>;
  settled: boolean;
  lost: boolean;
}

const RELEASE_ALL = Symbol('release');

/**
 * How many claims' worth of finished jobs may wait for their completion to be stored after
 * their slots were freed. One claim's worth kept a claim from going out while a completion was
 * stored and the next waited; four let claims run ahead (PostgreSQL Worker drain 0.56× to 0.63×
 * raw SQL at concurrency 50, medians of 5 alternated rounds in one run; eight gained nothing
 * more). Each is a job run again if the process dies before its completion is stored.
 */
const EARLY_RELEASES = 4;
/** Promise reactions `#letQuickJobsFinish` waits for a job to finish in before it claims. */
const SETTLE_TURNS = 8;
/**
 * Under `prefetch: 'auto'`, the most jobs a claim takes ahead, in units of `concurrency`. For
 * jobs that finish at once, a claim's fixed cost is then shared by five times as many jobs as a
 * worker runs at once: the PostgreSQL Worker's drain at concurrency 50 went from 0.80× (a cap of
 * 1, `concurrency` ahead) to 0.98× the raw 50-batch SQL loop (two scratch runs on 2026-11-30,
 * medians of 3 rounds each). Jobs ahead are what the slots run within one claim's time, so a larger
 * cap holds jobs for no longer, and {@linkcode AUTO_PREFETCH_HOLD} still bounds it.
 *
 * @example
 * ```ts
 * import { AUTO_PREFETCH_MOST } from '@conveyor/core';
 * console.log(AUTO_PREFETCH_MOST); // 4
 * ```
 */
export const AUTO_PREFETCH_MOST = 4;
/**
 * Under `prefetch: 'auto'`, how long (ms) a job claimed ahead may wait in the worker before it
 * goes back to `waiting`. Auto claims ahead what should start within one claim's round trip
 * (about a millisecond on a local PostgreSQL), so only a job stuck behind jobs that turned long
 * waits this long; a claim slower than a tenth of it sets the bound instead (10 claims' time).
 *
 * @example
 * ```ts
 * import { AUTO_PREFETCH_HOLD } from '@conveyor/core';
 * console.log(AUTO_PREFETCH_HOLD); // 100
 * ```
 */
export const AUTO_PREFETCH_HOLD = 100;
/** Weight of the newest sample in the moving averages of claim and job times. */
const AVERAGE_WEIGHT = 0.2;

/** The keys of {@linkcode WorkerOptions}. */
const WORKER_OPTION_KEYS: ReadonlySet<string> = new Set([
  'store',
  'concurrency',
  'prefetch',
  'maxGlobalConcurrency',
  'limiter',
  'group',
  'lockDuration',
  'lockRenewTime',
  'stalledInterval',
  'maxStalledCount',
  'jobName',
  'lifo',
  'autorun',
  'pollInterval',
  'batch',
  'backoffStrategy',
  'pruneInterval',
  'maintenance',
  'name',
  'clock',
  'removeOnComplete',
  'removeOnFail',
]);

/** The keys of `WorkerOptions.group`. */
const GROUP_OPTION_KEYS: ReadonlySet<string> = new Set(['concurrency', 'limiter']);

/** The error of a job failed for stalling too often, when the store gives no reason (BullMQ's). */
const STALLED_REASON = 'job stalled more than allowable limit';

/**
 * Claims jobs from a queue and runs them. Delivery is event-driven: a new job wakes the worker
 * through the store's events, a delayed job through a timer armed for its due time.
 *
 * @example
 * ```ts
 * import { Queue, Worker } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * const queue = new Queue('math', { store });
 * const worker = new Worker('math', async (job) => job.data.a + job.data.b, { store, concurrency: 5 });
 * worker.on('completed', (job, sum) => console.log(job.id, sum));
 * await queue.add('add', { a: 1, b: 2 });
 * // ...
 * await worker.close();
 * ```
 */
// deno-lint-ignore no-explicit-any
export class Worker<D = any, R = any> extends Emitter<WorkerEvents<D, R>> {
  /** The queue name. */
  readonly name: string;
  /** The worker id (`lockedBy`). */
  readonly id: string;
  /** The store. */
  readonly store: StoreInterface;
  /** null: jobs are processed by hand (`getNextJob`). */
  readonly #processor: Processor<D, R> | BatchProcessor<D, R> | null;
  readonly #concurrency: number;
  /** `prefetch: 'auto'` in force: the jobs claimed ahead follow the measured times. */
  readonly #auto: boolean;
  /**
   * The most jobs a claim takes ahead: the fixed `prefetch` (every claim takes it), or
   * `AUTO_PREFETCH_MOST` × `concurrency` under `'auto'` (0 where `'auto'` is off).
   */
  readonly #mostAhead: number;
  /** Moving averages (ms) of a claim that took jobs and of a job's run; -1 before the first. */
  #claimMs = -1;
  #runMs = -1;
  /** Under `'auto'`: gives back the jobs claimed ahead that did not start in time. */
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  /** Jobs claimed ahead (`prefetch`), oldest claim first, waiting for a slot. */
  #ahead: JobData[] = [];
  readonly #lockDuration: number;
  readonly #lockRenewTime: number;
  readonly #pollInterval: number;
  readonly #batchSize: number;
  readonly #fetchOpts: FetchOptions;
  readonly #windows: number[];
  readonly #backoffStrategy?: BackoffStrategy;
  readonly #clock: Clock;
  readonly #services: Service[] = [];
  readonly #runs: Set<Run<D, R>> = new Set();
  readonly #completions: Batcher<JobCompletion, boolean>;
  readonly #failures: Batcher<JobFailure, boolean>;
  readonly #listener = (e: StoreEvent): void => this.#onStoreEvent(e);
  /** Set on every job this worker runs (one object, not a closure per job). */
  readonly #hooks: Job['hooks'] = {
    onProgress: (job, progress) => this.emit('progress', job as Job<D, R>, progress),
  };
  /** The worker's `removeOnComplete` / `removeOnFail` (copies), defaults for its jobs. */
  readonly #removeOnComplete: RemoveOnFinish | undefined;
  readonly #removeOnFail: RemoveOnFinish | undefined;
  /** The hooks of the jobs `getNextJob` takes, when the worker has such defaults. */
  readonly #manualHooks: Job['hooks'] | undefined;
  readonly #wakeOnFinish: boolean;
  /**
   * Finishing a job can let another be claimed (global or group concurrency, rate limits): a
   * job then keeps its slot until its completion is stored, and a freed slot is a wake-up.
   */
  readonly #limited: boolean;
  readonly #eventTypes: readonly StoreEventType[];
  #promoter: PromoteDelayedService | undefined;
  /**
   * Store calls not waited for where they are made (a lock renewal, the `drained` event, a
   * scheduler's next run), each with its error handled: `close` waits for them before `closed`.
   */
  readonly #background: Set<Promise<void>> = new Set();
  #busy = 0;
  /** Runs whose slot was freed before their completion was stored (see `#complete`). */
  #acking = 0;
  #startingAhead = false;
  #pruneDue = true;
  #dirty = true;
  /** The last claim took all there was (fewer jobs than asked, no wake-up during it). */
  #exhausted = false;
  /** When an exhausted worker polls again (`pollInterval` after that claim). */
  #pollAt = 0;
  #wake: (() => void) | undefined;
  #idleWaiters: Array<() => void> = [];
  #running: Promise<void> | undefined;
  /** Subscribed to the store's events and maintenance started (`run` or `getNextJob`). */
  #started = false;
  /** `getNextJob` calls waiting for a job to arrive (woken by the same events as the loop). */
  readonly #handWaiters = new Set<() => void>();
  #closing: Promise<void> | undefined;
  #stopping = false;
  #paused = false;
  #drained = false;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * The manual rate limit (`rateLimit`, or another worker's, learnt from the store's events or
   * from an empty claim): no claim before this local time. 0: none known.
   */
  #limitedUntil = 0;
  /** Counts `rate-limit` events and local limits, so a TTL read that raced one is dropped. */
  #limitEpoch = 0;
  /**
   * A processor threw a `RateLimitError` with no manual limit in force: no claim before this
   * local time (see `#backOff`). 0: none. Events do not shorten it.
   */
  #backOffUntil = 0;

  /**
   * Creates a worker; it starts at once unless `autorun: false`.
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const worker = new Worker('q', async () => 'ok', { store: new MemoryStore(), autorun: false });
   * ```
   */
  constructor(
    queueName: string,
    processor: BatchProcessor<D, R>,
    opts: WorkerOptions & { batch: { size: number } },
  );
  /**
   * Creates a worker that runs one job per processor call.
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const worker = new Worker('q', async (job) => job.name, { store: new MemoryStore() });
   * ```
   */
  constructor(
    queueName: string,
    processor: Processor<D, R>,
    opts: WorkerOptions & { batch?: undefined },
  );
  /**
   * Creates a worker without a processor, whose jobs are processed by hand, as BullMQ's manual
   * processing: {@linkcode Worker.getNextJob} claims a job, and the code that took it finishes it
   * with `job.moveToCompleted` or `job.moveToFailed` (or moves it on with `moveToDelayed`),
   * renewing the lock with `job.extendLock` while it works. Such a worker never runs a loop
   * (`autorun` does not apply, `run()` rejects); from its first `getNextJob` until `close()`, it
   * runs the queue's maintenance (stalled jobs, delayed jobs, schedulers, pruning).
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const worker = new Worker('q', null, { store: new MemoryStore() });
   * ```
   */
  constructor(queueName: string, processor: null, opts: WorkerOptions & { batch?: undefined });
  constructor(
    queueName: string,
    processor: Processor<D, R> | BatchProcessor<D, R> | null,
    opts: WorkerOptions,
  ) {
    super();
    checkName('queueName', queueName);
    if (processor !== null && typeof processor !== 'function') {
      throw new InvalidArgumentError(
        'processor',
        processor,
        'a function, or null to process jobs by hand (getNextJob)',
      );
    }
    checkStore(opts);
    checkKeys('opts', opts, WORKER_OPTION_KEYS);
    const concurrency = opts.concurrency ?? 1;
    checkInteger('opts.concurrency', concurrency, 1);
    const prefetch = opts.prefetch === undefined ? 'auto' : opts.prefetch;
    if (prefetch !== 'auto' && !(Number.isSafeInteger(prefetch) && prefetch >= 0)) {
      throw new InvalidArgumentError('opts.prefetch', prefetch, "a whole number >= 0, or 'auto'");
    }
    if (prefetch !== 'auto' && prefetch > 0 && (processor === null || opts.batch !== undefined)) {
      throw new InvalidArgumentError(
        'opts.prefetch',
        prefetch,
        processor === null
          ? '0 on a worker without a processor (getNextJob claims one job when called)'
          : '0 with opts.batch (a batch worker claims its batches as it runs them)',
      );
    }
    const lockDuration = opts.lockDuration ?? 30_000;
    checkNumber('opts.lockDuration', lockDuration, 1);
    const lockRenewTime = opts.lockRenewTime ?? lockDuration / 2;
    checkNumber('opts.lockRenewTime', lockRenewTime, 1);
    if (lockRenewTime >= lockDuration) {
      // Renewing no sooner than the lock expires lets a running job be taken as stalled.
      throw new InvalidArgumentError(
        'opts.lockRenewTime',
        lockRenewTime,
        `less than opts.lockDuration (${lockDuration})`,
      );
    }
    const stalledInterval = opts.stalledInterval ?? 30_000;
    checkNumber('opts.stalledInterval', stalledInterval, 1);
    const maxStalledCount = opts.maxStalledCount ?? 1;
    checkInteger('opts.maxStalledCount', maxStalledCount, 0);
    const pollInterval = opts.pollInterval ?? 5000;
    checkNumber('opts.pollInterval', pollInterval, 1);
    const pruneInterval = opts.pruneInterval ?? 1000;
    checkNumber('opts.pruneInterval', pruneInterval, 1);
    if (opts.maxGlobalConcurrency !== undefined) {
      checkInteger('opts.maxGlobalConcurrency', opts.maxGlobalConcurrency, 1);
    }
    checkRateLimit('opts.limiter', opts.limiter);
    if (opts.group !== undefined) {
      if (typeof opts.group !== 'object' || opts.group === null) {
        throw new InvalidArgumentError(
          'opts.group',
          opts.group,
          'an object { concurrency, limiter }',
        );
      }
      if (opts.group.concurrency !== undefined) {
        checkInteger('opts.group.concurrency', opts.group.concurrency, 1);
      }
      checkKeys('opts.group', opts.group, GROUP_OPTION_KEYS);
      checkRateLimit('opts.group.limiter', opts.group.limiter);
    }
    if (opts.jobName !== undefined) checkName('opts.jobName', opts.jobName);
    if (opts.batch !== undefined) checkInteger('opts.batch.size', opts.batch?.size, 1);
    if (opts.batch !== undefined && processor === null) {
      throw new InvalidArgumentError(
        'opts.batch',
        opts.batch,
        'absent on a worker without a processor (getNextJob claims one job)',
      );
    }
    if (opts.backoffStrategy !== undefined && typeof opts.backoffStrategy !== 'function') {
      throw new InvalidArgumentError('opts.backoffStrategy', opts.backoffStrategy, 'a function');
    }
    if (opts.name !== undefined) checkName('opts.name', opts.name);
    checkRemoveOnFinish('opts.removeOnComplete', opts.removeOnComplete);
    checkRemoveOnFinish('opts.removeOnFail', opts.removeOnFail);

    this.name = queueName;
    this.store = opts.store;
    this.id = opts.name ?? crypto.randomUUID();
    this.#processor = processor;
    this.#concurrency = concurrency;
    this.#lockDuration = lockDuration;
    this.#lockRenewTime = lockRenewTime;
    this.#pollInterval = pollInterval;
    this.#batchSize = opts.batch?.size ?? 0;
    this.#backoffStrategy = opts.backoffStrategy;
    this.#clock = opts.clock ?? systemClock;
    const fetch: FetchOptions = {};
    if (opts.lifo) fetch.lifo = true;
    if (opts.jobName !== undefined) fetch.jobName = opts.jobName;
    if (opts.maxGlobalConcurrency !== undefined) {
      fetch.globalConcurrency = opts.maxGlobalConcurrency;
    }
    if (opts.limiter) fetch.limiter = { ...opts.limiter };
    if (opts.group) {
      fetch.groupRoundRobin = true;
      if (opts.group.concurrency !== undefined) fetch.groupConcurrency = opts.group.concurrency;
      if (opts.group.limiter) fetch.groupLimiter = { ...opts.group.limiter };
    }
    this.#fetchOpts = fetch;
    this.#windows = [opts.limiter?.duration, opts.group?.limiter?.duration].filter(
      (d): d is number => d !== undefined,
    );
    this.#wakeOnFinish = opts.maxGlobalConcurrency !== undefined ||
      opts.group?.concurrency !== undefined;
    this.#limited = this.#wakeOnFinish || this.#windows.length > 0;
    this.#auto = prefetch === 'auto' && processor !== null &&
      opts.batch === undefined && !this.#limited;
    this.#mostAhead = this.#auto
      ? AUTO_PREFETCH_MOST * concurrency
      : prefetch === 'auto'
      ? 0
      : prefetch;
    // Only what #onStoreEvent acts on: a shared store can then skip publishing the events of
    // every claim and completion (`active`, `completed`) when no one else wants them.
    const eventTypes: StoreEventType[] = this.#wakeOnFinish
      ? ['waiting', 'resumed', 'delayed', 'completed', 'failed', 'retrying']
      : ['waiting', 'resumed', 'delayed'];
    // The manual rate limit holds only claims under a limiter: only those workers follow it.
    if (opts.limiter) eventTypes.push('rate-limit');
    this.#eventTypes = eventTypes;
    const removeOnComplete = copyRemoveOn(opts.removeOnComplete);
    const removeOnFail = copyRemoveOn(opts.removeOnFail);
    this.#removeOnComplete = removeOnComplete;
    this.#removeOnFail = removeOnFail;
    if (removeOnComplete !== undefined || removeOnFail !== undefined) {
      this.#manualHooks = Object.freeze({ removeOnComplete, removeOnFail });
    }
    // The worker's defaults go with every batch (none: the stores' calls without options).
    this.#completions = new Batcher(
      removeOnComplete === undefined
        ? (items) => this.store.completeJobs(this.name, items)
        : (items) => this.store.completeJobs(this.name, items, { removeOnComplete }),
    );
    this.#failures = new Batcher(
      removeOnFail === undefined
        ? (items) => this.store.failJobs(this.name, items)
        : (items) => this.store.failJobs(this.name, items, { removeOnFail }),
    );

    if (opts.maintenance !== false) {
      const onError = (e: unknown): void => this.#error(e);
      this.#promoter = new PromoteDelayedService(
        this.store,
        queueName,
        pollInterval,
        onError,
        false,
      );
      this.#services.push(
        this.#promoter,
        new RescueStalledService(
          this.store,
          queueName,
          stalledInterval,
          maxStalledCount,
          (r) => this.#onStalled(r),
          onError,
        ),
        new RunSchedulersService(this.store, queueName, pollInterval, this.#clock, onError),
        new PruneFinishedService(this.store, queueName, pruneInterval, onError, () => {
          // Jobs processed by hand finish out of the worker's sight: prune at every interval.
          const due = this.#pruneDue || processor === null;
          this.#pruneDue = false;
          return due;
        }),
      );
    }
    if (opts.autorun !== false && processor !== null) this.run().catch((e) => this.#error(e));
  }

  /**
   * Starts claiming jobs (when created with `autorun: false`). Resolves when the worker closes.
   *
   * @example
   * ```ts
   * import type { Worker } from '@conveyor/core';
   * declare const worker: Worker;
   * worker.run();
   * ```
   */
  run(): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('worker is closed'));
    if (this.#processor === null) {
      return Promise.reject(
        new InvalidArgumentError(
          'processor',
          null,
          'a function to run (this worker has none: use getNextJob)',
        ),
      );
    }
    if (this.#running) return Promise.reject(new Error('worker is already running'));
    this.#startServices();
    this.#renewTimer = setInterval(() => this.#renewLocks(), this.#lockRenewTime);
    this.#running = this.#loop();
    return this.#running;
  }

  /**
   * Starts the queue's maintenance now (stalled jobs, delayed jobs, schedulers, pruning), as
   * BullMQ's `startStalledCheckTimer` for a worker that processes jobs by hand. `run()` and the
   * first `getNextJob()` start it too; calling it again does nothing. Rejects on a closed worker.
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const worker = new Worker('q', null, { store: new MemoryStore() });
   * await worker.startStalledCheckTimer();
   * ```
   */
  startStalledCheckTimer(): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('worker is closed'));
    this.#startServices();
    return Promise.resolve();
  }

  /** Listens to the queue's events and starts the maintenance services (once). */
  #startServices(): void {
    if (this.#started) return;
    this.#started = true;
    this.store.subscribe(this.name, this.#listener, this.#eventTypes);
    for (const s of this.#services) s.start();
  }

  /**
   * Claims the next job for a worker created without a processor (`null`), as BullMQ's manual
   * processing. The job is active and locked for `lockDuration` under `job.token`: finish it with
   * `job.moveToCompleted(value, job.token)` or `job.moveToFailed(error, job.token)`, and renew the
   * lock with `job.extendLock(job.token, ms)` when the work takes longer (nothing renews it for
   * you; a job whose lock lapses is taken back by the stalled-job check). The claim follows the
   * worker's options (`limiter`, `group`, `maxGlobalConcurrency`, `lifo`, `jobName`). With nothing
   * to claim, it waits (`block`, the default) for a job to arrive, up to `pollInterval`, and
   * resolves `undefined` when none did; `{ block: false }` resolves `undefined` at once.
   *
   * Unlike BullMQ's, it takes no token: the store issues each claim its own token (read it from
   * `job.token`), so a job taken back and claimed again cannot be finished with the old one.
   *
   * @example
   * ```ts
   * import { Queue, Worker } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const store = new MemoryStore();
   * await store.connect();
   * await new Queue('q', { store }).add('resize', { w: 100 });
   * const worker = new Worker('q', null, { store });
   * const job = await worker.getNextJob();
   * if (job) await job.moveToCompleted('done', job.token!);
   * await worker.close();
   * ```
   */
  async getNextJob(opts: { block?: boolean } = {}): Promise<Job<D, R> | undefined> {
    if (typeof opts !== 'object' || opts === null) {
      throw new InvalidArgumentError(
        'opts',
        opts,
        'options { block }: getNextJob takes no token (the store issues one per claim: job.token)',
      );
    }
    const block = opts.block ?? true;
    if (typeof block !== 'boolean') {
      throw new InvalidArgumentError('opts.block', block, 'a boolean');
    }
    if (this.#processor !== null) {
      throw new InvalidArgumentError(
        'processor',
        this.#processor,
        'null for getNextJob (this worker runs its processor)',
      );
    }
    if (this.#closing) throw new Error('worker is closed');
    this.#startServices();
    for (let waited = false;; waited = true) {
      this.#dirty = false;
      const [row] = await this.store.fetchNextJobs(
        this.name,
        this.id,
        this.#lockDuration,
        1,
        this.#fetchOpts,
      );
      if (row && this.#stopping) {
        // Claimed while closing: give it back, as the loop does.
        await this.store.releaseLock(this.name, row.id, row.lockToken ?? undefined);
        return undefined;
      }
      if (row) {
        const job = new Job<D, R>(this.store, row);
        // Finished by hand: moveToCompleted / moveToFailed apply this worker's defaults.
        if (this.#manualHooks) job.hooks = this.#manualHooks;
        this.#advanceScheduler(job);
        return job;
      }
      if (!block || waited || this.#stopping) return undefined;
      // One more claim: at once when a job was announced during this one, else after a wait.
      if (this.#dirty) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.#pollInterval);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#handWaiters.add(done);
      });
    }
  }

  /** Whether the worker is running (started and not closed). */
  isRunning(): boolean {
    return this.#running !== undefined && !this.#stopping;
  }

  /** Whether this worker is paused. */
  isPaused(): boolean {
    return this.#paused;
  }

  /** The jobs (or batches) running now. */
  get activeCount(): number {
    return this.#busy;
  }

  /**
   * Stops this worker from claiming (other workers go on). Waits for its running jobs unless
   * `doNotWaitActive`.
   *
   * @example
   * ```ts
   * import type { Worker } from '@conveyor/core';
   * declare const worker: Worker;
   * await worker.pause();
   * worker.resume();
   * ```
   */
  async pause(doNotWaitActive = false): Promise<void> {
    this.#paused = true;
    await this.#giveBack();
    if (!doNotWaitActive) await this.#idle();
  }

  /**
   * Resumes claiming after `pause`.
   *
   * @example
   * ```ts
   * import type { Worker } from '@conveyor/core';
   * declare const worker: Worker;
   * worker.resume();
   * ```
   */
  resume(): void {
    this.#paused = false;
    this.#poke();
  }

  /**
   * Rate limits the whole queue for `ms` (BullMQ's manual rate limit, for an API that answered
   * "too many requests"): until then no worker of the queue that has a `limiter`, in any process
   * sharing the store, claims a job (the store checks it in the claim). A later call replaces
   * the limit (`0` ends it); `queue.removeRateLimitKey()` ends it early. In a processor, throw
   * {@linkcode Worker.RateLimitError} next to put the job back to `waiting` without counting an
   * attempt. As in BullMQ it needs the `limiter` option: without it, `InvalidArgumentError`
   * naming `opts.limiter`. A bad `ms` (negative, NaN, not a number) throws
   * `InvalidArgumentError` naming `ms`; nothing changes.
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * declare function callApi(data: unknown): Promise<Response>;
   * const worker: Worker = new Worker('api', async (job) => {
   *   const res = await callApi(job.data);
   *   if (res.status === 429) {
   *     await worker.rateLimit(5000);
   *     throw Worker.RateLimitError();
   *   }
   * }, { store: new MemoryStore(), limiter: { max: 10, duration: 1000 } });
   * ```
   */
  async rateLimit(ms: number): Promise<void> {
    checkNumber('ms', ms, 0);
    if (!this.#fetchOpts.limiter) {
      throw new InvalidArgumentError(
        'opts.limiter',
        undefined,
        'set ({ max, duration }) on a worker that calls rateLimit: the manual rate limit holds ' +
          'the claims of workers with a limiter (as in BullMQ)',
      );
    }
    await this.store.setRateLimit(this.name, ms);
    this.#followLimit(ms);
  }

  /** Follows a manual limit set (ttl ms left) or ended (0), here or in another worker. */
  #followLimit(ttl: number): void {
    this.#limitEpoch++;
    this.#limitedUntil = ttl > 0 ? Date.now() + ttl : 0;
  }

  /**
   * The error a processor throws after {@linkcode Worker.rateLimit} (BullMQ's
   * `Worker.RateLimitError()`): the job goes back to `waiting`, no attempt counted, no `failed`.
   * The worker claims again when the limit ends; thrown with no limit in force, after its
   * `limiter.duration` (`pollInterval` without a limiter), so that it does not take the same
   * job back at once, again and again.
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * const err = Worker.RateLimitError();
   * console.log(err.code); // RATE_LIMITED
   * ```
   */
  static RateLimitError(): RateLimitError {
    return new RateLimitError();
  }

  /**
   * Cancels a job running on this worker, as BullMQ's `cancelJob`: aborts the `signal` its
   * processor got, with `reason` as `signal.reason` (none: the standard `AbortError`). Nothing
   * else: the processor decides the job's fate, as for any run. A throw fails the attempt with
   * that error (a string `reason` rethrown becomes the `failedReason`), retried per `attempts`;
   * an `UnrecoverableError` fails it for good; a processor that ignores the signal and returns
   * completes its job. Returns true when the job is running here (from its `active` event until
   * its processor ends: cancelled inside `active`, the processor starts with the signal
   * aborted), false otherwise (an unknown id, a job waiting, delayed, finished or on another
   * worker, or claimed ahead by `prefetch` and not started yet, whose state is left alone). A
   * job of a batch shares the batch's one signal: this aborts the whole batch. A `jobId` that is
   * not a non-empty string, or a `reason` that is not a string, throws `InvalidArgumentError`
   * naming it.
   *
   * @example
   * ```ts
   * import { Worker } from '@conveyor/core';
   * import { UnrecoverableError } from '@conveyor/shared';
   * import { MemoryStore } from '@conveyor/store-memory';
   * declare function render(data: unknown, signal: AbortSignal): Promise<string>;
   * const worker = new Worker('exports', async (job, signal) => {
   *   try {
   *     return await render(job.data, signal);
   *   } catch (err) {
   *     if (signal.aborted) throw new UnrecoverableError(`cancelled: ${signal.reason}`);
   *     throw err;
   *   }
   * }, { store: new MemoryStore() });
   * worker.cancelJob('42', 'user asked'); // true while job 42 runs here
   * ```
   */
  cancelJob(jobId: string, reason?: string): boolean {
    checkName('jobId', jobId);
    checkReason(reason);
    for (const run of this.#runs) {
      if (!run.settled && run.jobs.some((job) => job.id === jobId)) {
        run.controller.abort(reason);
        return true;
      }
    }
    return false;
  }

  /**
   * Cancels every job running on this worker (BullMQ's `cancelAllJobs`): as
   * {@linkcode Worker.cancelJob} for each. The worker goes on claiming; to stop it, `close()`.
   *
   * @example
   * ```ts
   * import type { Worker } from '@conveyor/core';
   * declare const worker: Worker;
   * worker.cancelAllJobs('deploy');
   * await worker.close();
   * ```
   */
  cancelAllJobs(reason?: string): void {
    checkReason(reason);
    for (const run of this.#runs) if (!run.settled) run.controller.abort(reason);
  }

  /**
   * Stops claiming, waits for running jobs and for the store calls still in flight (a lock
   * renewal, the `drained` event), and closes: as in BullMQ, no `error` comes after `closed`.
   * With `forceTimeout` (ms; `true` = 0), jobs still running after it have their signal aborted
   * and are released back to `waiting` at once (they run again elsewhere).
   *
   * @example
   * ```ts
   * import type { Worker } from '@conveyor/core';
   * declare const worker: Worker;
   * await worker.close(5000);
   * ```
   */
  close(forceTimeout?: number | boolean): Promise<void> {
    if (this.#closing) return this.#closing;
    const timeout = forceTimeout === true ? 0 : forceTimeout === false ? undefined : forceTimeout;
    if (timeout !== undefined) checkNumber('forceTimeout', timeout, 0);
    this.#stopping = true;
    this.#closing = this.#close(timeout);
    return this.#closing;
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(timeout: number | undefined): Promise<void> {
    this.#poke();
    await this.#running?.catch(() => {});
    await this.#giveBack();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = this.#idle();
    const forced = timeout === undefined
      ? new Promise<never>(() => {})
      : new Promise<typeof RELEASE_ALL>(
        (resolve) => (timer = setTimeout(() => resolve(RELEASE_ALL), timeout)),
      );
    const outcome = await Promise.race([idle, forced]);
    if (timer !== undefined) clearTimeout(timer);
    if (outcome === RELEASE_ALL) {
      const releases: Promise<boolean>[] = [];
      for (const run of [...this.#runs]) {
        if (run.settled) continue;
        this.#settle(run);
        run.controller.abort(new Error(`worker ${this.id} closed`));
        for (const job of run.jobs) {
          releases.push(this.store.releaseLock(this.name, job.id, job.token ?? undefined));
        }
        this.#release(run);
      }
      await Promise.allSettled(releases);
    }
    await this.#completions.idle();
    await this.#failures.idle();
    if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
    await Promise.all(this.#services.map((s) => s.stop()));
    this.store.unsubscribe(this.name, this.#listener);
    // No `error` after `closed` (as in BullMQ): a call still in flight reports first.
    while (this.#background.size > 0) await Promise.all(this.#background);
    this.emit('closed');
  }

  // ─────────────────────────────── claiming ───────────────────────────────

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      const prefetch = this.#aheadWanted();
      if (
        this.#paused || this.#ahead.length > 0 ||
        this.#busy >= this.#concurrency + prefetch
      ) {
        // Wait for a freed slot or resume (both wake us), not for queue events. With `prefetch`,
        // the jobs claimed ahead go first: the next claim waits until none is left.
        await this.#sleep(Infinity, true);
        continue;
      }
      if (this.#limitedUntil > 0 || this.#backOffUntil > 0) {
        // The queue is rate limited by hand (or this worker backs off after a RateLimitError):
        // no claim could take anything before the end. Only a `rate-limit` event (the limit
        // changed or ended) or closing cuts a manual limit short; nothing but closing a back-off.
        const left = Math.max(this.#limitedUntil, this.#backOffUntil) - Date.now();
        if (left > 0) {
          await this.#sleep(left, true);
          continue;
        }
        this.#limitedUntil = 0;
        this.#backOffUntil = 0;
      }
      if (this.#exhausted && !this.#dirty) {
        // Nothing was left at the last claim and no wake-up came since: claiming now would come
        // back empty. Every job saved later announces itself (a store event pokes us); the poll
        // is the fallback. A freed slot only wakes us to sleep on.
        const left = this.#pollAt - Date.now();
        if (left > 0) {
          await this.#sleep(left);
          continue;
        }
      }
      this.#exhausted = false;
      this.#dirty = false;
      // With `prefetch`, jobs started from the ones claimed ahead may be done in all but name:
      // let them free their slots first, so that the claim is not cut short by them.
      if (prefetch > 0) {
        await this.#letQuickJobsFinish();
        if (this.#stopping || this.#paused) continue;
      }
      const count = this.#batchSize > 0
        ? this.#batchSize
        : this.#concurrency + prefetch - this.#busy;
      let jobs: JobData[];
      const claimed = performance.now();
      try {
        jobs = await this.store.fetchNextJobs(
          this.name,
          this.id,
          this.#lockDuration,
          count,
          this.#fetchOpts,
        );
      } catch (e) {
        this.#error(e);
        await this.#sleep(Math.min(this.#pollInterval, 1000), true);
        continue;
      }
      if (this.#stopping) {
        // Claimed while closing: give them back at once.
        await Promise.allSettled(
          jobs.map((j) => this.store.releaseLock(this.name, j.id, j.lockToken ?? undefined)),
        );
        break;
      }
      if (jobs.length > 0) {
        this.#drained = false;
        if (this.#auto) this.#claimMs = average(this.#claimMs, performance.now() - claimed);
        if (this.#batchSize > 0) this.#start(jobs);
        else {
          for (const job of jobs) {
            if (this.#busy < this.#concurrency) this.#start([job]);
            else this.#ahead.push(job);
          }
          // Paused during the claim: what would wait for a slot goes back at once.
          if (this.#paused) await this.#giveBack();
          else if (this.#auto && this.#ahead.length > 0) this.#holdAhead();
        }
        if (jobs.length === count) continue;
      }
      // Fewer jobs than asked: the claim took all it could.
      if (
        this.#windows.length > 0 && (jobs.length > 0 || this.#dirty || await this.#hasWaiting())
      ) {
        // Rate limited: claim again in the next window (or on a wake-up). An empty claim on a
        // queue with nothing waiting is not a limit: that worker sleeps as below, event-driven.
        if (jobs.length === 0) this.#drain();
        // Under a manual limit (of any worker), wait for its end instead (see the loop's top).
        if (jobs.length === 0 && this.#fetchOpts.limiter && await this.#manualLimit()) continue;
        await this.#sleep(this.#untilNextWindow());
      } else if (!this.#dirty) {
        // No wake-up during the claim: the queue had nothing more for us at its snapshot.
        this.#drain();
        this.#exhausted = true;
        this.#pollAt = Date.now() + this.#pollInterval;
      } else if (jobs.length === 0) {
        // Something arrived during an empty claim: claim again at once.
        this.#drain();
      }
    }
  }

  /**
   * How many jobs the next claim may take beyond the free slots: the fixed `prefetch`, or under
   * `'auto'` what the slots would start within one claim's time (slots × claim time ÷ job time,
   * at most `AUTO_PREFETCH_MOST` × `concurrency`). The job time is the larger of the average run
   * and the age of the oldest running job, so a job that turns long stops the claims ahead at
   * once.
   */
  #aheadWanted(): number {
    if (!this.#auto) return this.#mostAhead;
    if (this.#runMs < 0 || this.#claimMs < 0) return 0;
    let runMs = this.#runMs;
    for (const run of this.#runs) {
      if (run.settled) continue;
      runMs = Math.max(runMs, performance.now() - run.started);
      break;
    }
    if (runMs <= 0) return this.#mostAhead;
    return Math.min(this.#mostAhead, Math.floor(this.#concurrency * this.#claimMs / runMs));
  }

  /**
   * Under `'auto'`: the jobs just claimed ahead that have not started within the hold (see
   * {@linkcode AUTO_PREFETCH_HOLD}) go back to `waiting`, in their place. The loop claims again
   * only when none is left ahead, and `#giveBack` (pause, close) clears the timer, so the jobs
   * still ahead when it fires all come from the claim that set it.
   */
  #holdAhead(): void {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = undefined;
      if (this.#ahead.length === 0) return;
      this.#track(this.#giveBack());
      // Room to claim again (the give-back empties the list at once): the loop waits while
      // jobs are ahead.
      this.#wake?.();
    }, Math.max(AUTO_PREFETCH_HOLD, 10 * this.#claimMs));
  }

  /**
   * Waits while jobs keep finishing within a few promise reactions (processors that wait on no
   * I/O), so that their slots are free before a claim is sized.
   */
  async #letQuickJobsFinish(): Promise<void> {
    for (let before = -1; this.#busy > 0 && this.#busy !== before;) {
      before = this.#busy;
      for (let i = 0; i < SETTLE_TURNS; i++) await null;
    }
  }

  /**
   * Whether the queue has a waiting job: reads the first one only, so a long backlog costs no
   * more than an empty queue (on a store error: assume so, and report it).
   */
  async #hasWaiting(): Promise<boolean> {
    try {
      return (await this.store.listJobs(this.name, 'waiting', 0, 0)).length > 0;
    } catch (e) {
      this.#error(e);
      return true;
    }
  }

  /**
   * After an empty limited claim: reads the queue's manual rate limit and, when one is in
   * force, records its end. Returns whether the loop should look again (a limit, or a
   * `rate-limit` event during the read, which makes the read stale).
   */
  async #manualLimit(): Promise<boolean> {
    const epoch = this.#limitEpoch;
    const ttl = await this.#storedLimitTtl();
    if (ttl === null) return false;
    if (epoch !== this.#limitEpoch) return true;
    if (ttl <= 0) return false;
    this.#limitedUntil = Date.now() + ttl;
    return true;
  }

  /** The queue's manual rate limit TTL as the store reads it; null (reported) on an error. */
  async #storedLimitTtl(): Promise<number | null> {
    try {
      return await this.store.getRateLimitTtl(this.name);
    } catch (e) {
      this.#error(e);
      return null;
    }
  }

  /** Emits `drained` (locally and through the store), once until a claim finds jobs again. */
  #drain(): void {
    if (this.#drained) return;
    this.#drained = true;
    this.emit('drained');
    this.#track(
      this.store.publish({ type: 'drained', queueName: this.name, timestamp: Date.now() })
        .catch((e) => this.#error(e)),
    );
  }

  #untilNextWindow(): number {
    const now = Date.now();
    let wait = this.#pollInterval;
    for (const d of this.#windows) wait = Math.min(wait, Math.floor(now / d) * d + d - now);
    return Math.max(1, wait);
  }

  /** Waits for a wake-up (store event, freed slot) or `ms`. Returns at once if one is pending. */
  #sleep(ms: number, force = false): Promise<void> {
    if ((this.#dirty && !force) || this.#stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#wake = () => {
        this.#wake = undefined;
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      if (ms !== Infinity) timer = setTimeout(() => this.#wake?.(), ms);
    });
  }

  #poke(): void {
    this.#dirty = true;
    this.#wake?.();
    for (const done of this.#handWaiters) done();
    this.#handWaiters.clear();
  }

  #onStoreEvent(e: StoreEvent): void {
    switch (e.type) {
      case 'delayed':
        this.#promoter?.notify(e);
        break;
      case 'waiting':
      case 'resumed':
        this.#poke();
        break;
      case 'rate-limit': {
        if (!this.#fetchOpts.limiter) break;
        // Set (ttl > 0) or ended (0) anywhere: follow it, and let the loop look again.
        this.#followLimit(Number(e.data?.ttl ?? 0));
        this.#poke();
        break;
      }
      case 'completed':
      case 'failed':
      case 'retrying':
        if (this.#wakeOnFinish) this.#poke();
        break;
    }
  }

  // ─────────────────────────────── running ───────────────────────────────

  #start(rows: JobData[]): void {
    const jobs = rows.length === 1
      ? [new Job<D, R>(this.store, rows[0])]
      : rows.map((r) => new Job<D, R>(this.store, r));
    const run: Run<D, R> = {
      jobs,
      started: this.#auto ? performance.now() : 0,
      controller: new AbortController(),
      settled: false,
      lost: false,
    };
    this.#busy++;
    this.#runs.add(run);
    for (const job of jobs) {
      job.hooks = this.#hooks;
      this.emit('active', job);
      this.#advanceScheduler(job);
    }
    let timeout = Infinity;
    for (const job of jobs) if (job.opts.timeout) timeout = Math.min(timeout, job.opts.timeout);
    if (timeout !== Infinity) {
      run.timer = setTimeout(() => {
        if (run.settled) return;
        const err = new JobTimeoutError(
          jobs.length === 1 ? jobs[0].id : jobs.map((j) => j.id).join(','),
          timeout,
        );
        run.controller.abort(err);
        this.#fail(run, err);
      }, timeout);
    }
    let result: unknown;
    try {
      result = this.#batchSize > 0
        ? (this.#processor as BatchProcessor<D, R>)(jobs, run.controller.signal)
        : (this.#processor as Processor<D, R>)(jobs[0], run.controller.signal);
    } catch (e) {
      this.#fail(run, e);
      return;
    }
    if (result instanceof Promise) {
      result.then((v) => this.#complete(run, v), (e) => this.#fail(run, e));
    } else this.#complete(run, result);
  }

  #settle(run: Run<D, R>): boolean {
    if (run.settled) return false;
    run.settled = true;
    if (run.timer !== undefined) clearTimeout(run.timer);
    if (this.#auto) this.#runMs = average(this.#runMs, performance.now() - run.started);
    return true;
  }

  #release(run: Run<D, R>): void {
    if (!this.#runs.delete(run)) return;
    this.#busy--;
    this.#startAhead();
    this.#wakeIdle();
    // A freed slot adds no job to the queue: wake the loop (it may be waiting for this slot) but
    // do not mark a wake-up, so a claim in flight that comes back short is not repeated, and an
    // exhausted worker sleeps on until a store event or the poll. Finishing a job can unblock
    // others under global or group concurrency, and limits are claimed again: those poke.
    if (this.#limited) this.#poke();
    else this.#wake?.();
  }

  /**
   * Starts prefetched jobs while slots are free. Not re-entered: a job that finishes at once
   * (a synchronous processor) frees its slot inside `#start`, and the loop here takes the next.
   */
  #startAhead(): void {
    if (this.#startingAhead) return;
    this.#startingAhead = true;
    while (
      this.#ahead.length > 0 && this.#busy < this.#concurrency && !this.#paused && !this.#stopping
    ) {
      this.#start([this.#ahead.shift()!]);
    }
    this.#startingAhead = false;
  }

  /**
   * Gives the prefetched jobs back to `waiting`, in their place (`pause`, `close`, the hold of
   * `'auto'`); the list is emptied before the first await.
   */
  async #giveBack(): Promise<void> {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    const rows = this.#ahead.splice(0);
    await Promise.all(
      rows.map((row) =>
        this.store.releaseLock(this.name, row.id, row.lockToken ?? undefined).then(
          () => {},
          (e) => this.#error(e),
        )
      ),
    );
  }

  #wakeIdle(): void {
    if (this.#busy === 0 && this.#acking === 0 && this.#idleWaiters.length > 0) {
      for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  #idle(): Promise<void> {
    if (this.#busy === 0 && this.#acking === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #complete(run: Run<D, R>, value: unknown): void {
    if (!this.#settle(run)) return;
    const { jobs } = run;
    if (this.#batchSize === 0) {
      // The hot path: one job, one promise reaction (no Promise.all/catch/finally chain).
      const job = jobs[0];
      // The processor moved its job on itself (moveToDelayed, moveToWaitingChildren,
      // moveToFailed): nothing is left to store.
      if (job.token === null) return this.#release(run);
      // The processor is done, so its slot is free: the next claim can go out while this
      // completion is being stored. At most EARLY_RELEASES claims' worth of them wait so, which
      // lets claims run a few batches ahead of completions. Without limits only: under global
      // or group concurrency and rate limits, a job counts until it is stored.
      const early = !this.#limited &&
        this.#acking < EARLY_RELEASES * (this.#concurrency + this.#mostAhead);
      if (early) {
        this.#acking++;
        this.#release(run);
      }
      this.#completeJob(run, job, value).then(() => {
        if (!early) return this.#release(run);
        this.#acking--;
        this.#wakeIdle();
      });
      return;
    }
    const values = Array.isArray(value) ? value : [];
    Promise.all(
      jobs.map((job, i) => job.token === null ? undefined : this.#completeJob(run, job, values[i])),
    ).finally(() => this.#release(run));
  }

  /**
   * Stores one job's completion and emits `completed`. A return value that cannot be stored
   * fails the job instead (checked here, so the other jobs of the same store batch complete).
   * A completion the store does not take (an error: a dropped connection, the database down)
   * is sent once more; if that fails too, the error is reported and the job stays active: its
   * lock lapses and the stalled-job check takes it back, to run again (at-least-once). It is
   * never failed for the store's error, which says nothing about the job. Never rejects.
   */
  #completeJob(run: Run<D, R>, job: Job<D, R>, value: unknown): Promise<void> {
    const result = value === undefined ? null : value;
    const unstorable = checkReturnValue(job.id, result);
    if (unstorable) return this.#failJob(run, job, unstorable);
    const completion = { jobId: job.id, token: job.token!, returnvalue: result };
    return this.#completions.add(completion).catch(() => this.#completions.add(completion)).then(
      (ok) => {
        try {
          this.#completed(run, job, result, ok);
        } catch (e) {
          this.#error(e);
        }
      },
      (e) => this.#error(e),
    );
  }

  /** Records a stored completion on the job and emits `completed` (or reports a lost lock). */
  #completed(run: Run<D, R>, job: Job<D, R>, result: unknown, ok: boolean): void {
    if (!ok) return this.#lockLost(run, job);
    if (keeps(effectiveRemoveOn(job.opts.removeOnComplete, this.#removeOnComplete))) {
      this.#pruneDue = true;
    }
    job.state = 'completed';
    job.returnvalue = (result ?? null) as R;
    job.token = null;
    this.emit('completed', job, job.returnvalue as R);
  }

  #fail(run: Run<D, R>, reason: unknown): void {
    if (!this.#settle(run)) return;
    if (isRateLimitError(reason)) {
      // Back off first: the put-back announces the job, which wakes the loop.
      this.#backOff().then(() => this.#putBack(run)).finally(() => this.#release(run));
      return;
    }
    // A job the processor moved on itself (moveToDelayed or moveToWaitingChildren, then a
    // DelayedError or WaitingChildrenError) is left alone; such an error without the move
    // fails the job like any error.
    Promise.all(
      run.jobs.map((job) => job.token === null ? undefined : this.#failJob(run, job, reason)),
    )
      .finally(() => this.#release(run));
  }

  /**
   * A processor threw a `RateLimitError`: the loop waits for the queue's manual limit when one
   * is in force (read from the store, or learnt from a `rate-limit` event meanwhile). With none
   * (never set, ended, expired; or a worker without a limiter, which no manual limit holds),
   * claiming at once would take the job straight back, again and again: the worker backs off
   * for its limiter's `duration`, as if the limiter's window were used up (`pollInterval`
   * without a limiter). Never rejects.
   */
  async #backOff(): Promise<void> {
    const limiter = this.#fetchOpts.limiter;
    if (limiter) {
      // The store's answer alone decides. A limit this worker learnt earlier may outlast the
      // store's by a few ms (it started counting later), and a `rate-limit` event that arrives
      // during the read may be a late echo of a limit already over (poll-only stores deliver
      // events late): neither may skip the back-off.
      const ttl = await this.#storedLimitTtl() ?? 0;
      if (ttl > 0) {
        this.#limitedUntil = Math.max(this.#limitedUntil, Date.now() + ttl);
        return;
      }
    }
    this.#backOffUntil = Date.now() + (limiter?.duration ?? this.#pollInterval);
  }

  /**
   * A processor threw a `RateLimitError`: its jobs (those it did not move on itself) go back to
   * `waiting`, fenced by their tokens, with no attempt counted and no `failed` event (the loop
   * waits as `#backOff` set). Never rejects.
   */
  async #putBack(run: Run<D, R>): Promise<void> {
    await Promise.all(run.jobs.map(async (job) => {
      if (job.token === null) return;
      try {
        if (!(await this.store.releaseLock(this.name, job.id, job.token))) {
          return this.#lockLost(run, job);
        }
        job.state = 'waiting';
        job.token = null;
      } catch (e) {
        this.#error(e);
      }
    }));
  }

  /**
   * Stores one failed attempt (retried per `attempts` and backoff) and emits `failed`. A
   * backoff that cannot be computed fails the job for good and emits `error`. Never rejects:
   * a failure the store does not take is reported, and the job stays active until the stalled
   * sweep takes it back.
   */
  async #failJob(run: Run<D, R>, job: Job<D, R>, reason: unknown): Promise<void> {
    const error = reason instanceof Error ? reason : new Error(String(reason));
    try {
      const attemptsMade = job.attemptsMade + 1;
      let retryAt: number | null = null;
      let failedReason = error.message;
      // An UnrecoverableError fails the job for good, whatever attempts remain (BullMQ).
      if (attemptsMade < (job.opts.attempts ?? 1) && !isUnrecoverableError(error)) {
        try {
          const delay = await backoffDelay(
            job.toData(),
            attemptsMade,
            error,
            this.#backoffStrategy,
          );
          if (delay !== null) retryAt = this.#clock.now() + delay;
        } catch (e) {
          this.#error(e);
          failedReason += ` (not retried: ${e instanceof Error ? e.message : String(e)})`;
        }
      }
      const ok = await this.#failures.add({
        jobId: job.id,
        token: job.token!,
        reason: failedReason,
        stack: error.stack,
        retryAt,
      });
      if (!ok) return this.#lockLost(run, job);
      if (retryAt === null && keeps(effectiveRemoveOn(job.opts.removeOnFail, this.#removeOnFail))) {
        this.#pruneDue = true;
      }
      job.attemptsMade = attemptsMade;
      job.failedReason = failedReason;
      job.state = retryAt === null ? 'failed' : 'delayed';
      job.token = null;
      this.emit('failed', job, error);
    } catch (e) {
      this.#error(e);
    }
  }

  /**
   * Reports a stalled sweep: `stalled` for every job it found, and, as in BullMQ, `failed` for
   * each job it failed for good (stalled more than `maxStalledCount` times), with the job as
   * the sweep failed it (`result.failedJobs`, read in the same atomic step, so a job that
   * `removeOnFail: true` removed is reported too) and the store's reason as the error. Such a
   * failure makes a `removeOnFail` count or age due for pruning.
   */
  #onStalled(result: StalledResult): void {
    for (const id of result.requeued) this.emit('stalled', id);
    for (const id of result.failed) this.emit('stalled', id);
    for (const row of result.failedJobs) {
      if (keeps(row.opts.removeOnFail)) this.#pruneDue = true;
      const job = new Job<D, R>(this.store, row);
      this.emit('failed', job, new Error(row.failedReason ?? STALLED_REASON));
    }
  }

  #lockLost(run: Run<D, R>, job: Job<D, R>): void {
    if (run.lost) return;
    run.lost = true;
    const err = new LockLostError(this.name, job.id);
    if (!run.controller.signal.aborted) run.controller.abort(err);
    this.#error(err);
  }

  /**
   * Renews, in one store call, the locks of the jobs claimed ahead and of the running jobs (not
   * those their processors moved on). A lock the store refuses is lost: a job claimed ahead is
   * dropped with a `LockLostError`, a running job's processor is aborted with one.
   */
  #renewLocks(): void {
    const ahead = this.#ahead.slice();
    const running: Array<[Run<D, R>, Job<D, R>]> = [];
    for (const run of this.#runs) {
      if (run.settled || run.lost) continue;
      for (const job of run.jobs) if (job.token !== null) running.push([run, job]);
    }
    const locks = [
      ...ahead.map((row) => ({ jobId: row.id, token: row.lockToken ?? '' })),
      ...running.map(([, job]) => ({ jobId: job.id, token: job.token! })),
    ];
    if (locks.length === 0) return;
    this.#track(
      this.store.extendLocks(this.name, locks, this.#lockDuration).then((held) => {
        let dropped = false;
        ahead.forEach((row, i) => {
          const at = this.#ahead.indexOf(row);
          // Lost while waiting here (taken back as stalled): not ours to start.
          if (held[i] || at < 0) return;
          this.#ahead.splice(at, 1);
          dropped = true;
          this.#error(new LockLostError(this.name, row.id));
        });
        // Room to claim ahead again: the loop may be waiting for it, not for a job's end.
        if (dropped) this.#wake?.();
        running.forEach(([run, job], i) => {
          // A job that settled meanwhile was finished (or given back) with its token.
          if (!held[ahead.length + i] && !run.settled && job.token !== null) {
            this.#lockLost(run, job);
          }
        });
      }, (e) => this.#error(e)),
    );
  }

  /** A scheduler's job just started: its next run is scheduled (in the background). */
  #advanceScheduler(job: Job<D, R>): void {
    if (job.opts.repeat?.schedulerId === undefined) return;
    this.#track(
      advanceOnStart(this.store, job.toData(), this.#clock).then(() => {}, (e) => this.#error(e)),
    );
  }

  /** Keeps `p` (which never rejects) in `#background` until it settles. */
  #track(p: Promise<void>): void {
    this.#background.add(p);
    p.then(() => this.#background.delete(p));
  }

  #error(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else console.error(err);
  }
}

/** Checks the optional `reason` of a cancel is a string. */
function checkReason(reason: unknown): void {
  if (reason !== undefined && typeof reason !== 'string') {
    throw new InvalidArgumentError('reason', reason, 'a string or undefined');
  }
}

/** A copy of a worker's removeOn* option (a later change by the caller does not apply). */
function copyRemoveOn(option: RemoveOnFinish | undefined): RemoveOnFinish | undefined {
  return typeof option === 'object' && option !== null ? { ...option } : option;
}

/** Whether a removeOn* option keeps a count or an age (pruned later, not at finish time). */
function keeps(option: unknown): boolean {
  return typeof option === 'number' || (typeof option === 'object' && option !== null);
}

/** A moving average with `sample` weighted `AVERAGE_WEIGHT`; the first sample when none yet. */
function average(current: number, sample: number): number {
  return current < 0 ? sample : current + AVERAGE_WEIGHT * (sample - current);
}
