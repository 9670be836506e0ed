/**
 * Typed errors. Every error Conveyor throws on purpose is a {@linkcode ConveyorError}, with a
 * stable `code` to branch on.
 *
 * @module
 */

/**
 * The base class of Conveyor's errors.
 *
 * @example
 * ```ts
 * import { ConveyorError } from '@conveyor/shared';
 * try {
 *   throw new ConveyorError('CONVEYOR', 'something went wrong');
 * } catch (e) {
 *   if (e instanceof ConveyorError) console.log(e.code);
 * }
 * ```
 */
export class ConveyorError extends Error {
  /** A stable machine-readable code. */
  readonly code: string;
  /**
   * @param code A stable machine-readable code.
   * @param message What went wrong.
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An option or argument has a value that makes no sense. Names the option and the value.
 * Nothing was saved.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from '@conveyor/shared';
 * const e = new InvalidArgumentError('attempts', -1, 'a whole number >= 1');
 * console.log(e.message); // attempts must be a whole number >= 1 (got -1)
 * ```
 */
export class InvalidArgumentError extends ConveyorError {
  /** The option or argument name, e.g. `opts.attempts`. */
  readonly option: string;
  /** The value that was refused. */
  readonly value: unknown;
  /**
   * @param option The option or argument name.
   * @param value The refused value.
   * @param expected What would have been accepted.
   */
  constructor(option: string, value: unknown, expected: string) {
    super('INVALID_ARGUMENT', `${option} must be ${expected} (got ${show(value)})`);
    this.option = option;
    this.value = value;
  }
}

/**
 * A job does not exist (or no longer exists).
 *
 * @example
 * ```ts
 * import { JobNotFoundError } from '@conveyor/shared';
 * const e = new JobNotFoundError('emails', '42');
 * console.log(e.message); // job 42 not found in queue emails
 * ```
 */
export class JobNotFoundError extends ConveyorError {
  /** The queue. */
  readonly queueName: string;
  /** The job id. */
  readonly jobId: string;
  /**
   * @param queueName The queue.
   * @param jobId The job id.
   */
  constructor(queueName: string, jobId: string) {
    super('JOB_NOT_FOUND', `job ${jobId} not found in queue ${queueName}`);
    this.queueName = queueName;
    this.jobId = jobId;
  }
}

/**
 * An operation needs the job in another state.
 *
 * @example
 * ```ts
 * import { JobStateError } from '@conveyor/shared';
 * const e = new JobStateError('q', '1', 'promote', ['delayed'], 'waiting');
 * console.log(e.message); // cannot promote job 1 in queue q: it is waiting, expected delayed
 * ```
 */
export class JobStateError extends ConveyorError {
  /** The job id. */
  readonly jobId: string;
  /** The states the operation accepts. */
  readonly expected: readonly string[];
  /** The state the job was in (null if it no longer exists). */
  readonly actual: string | null;
  /**
   * @param queueName The queue.
   * @param jobId The job id.
   * @param operation What was attempted.
   * @param expected The states it accepts.
   * @param actual The job's state.
   */
  constructor(
    queueName: string,
    jobId: string,
    operation: string,
    expected: readonly string[],
    actual: string | null,
  ) {
    super(
      'JOB_STATE',
      `cannot ${operation} job ${jobId} in queue ${queueName}: it is ${
        actual ?? 'gone'
      }, expected ${expected.join(' or ')}`,
    );
    this.jobId = jobId;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * A worker tried to act on a job whose lock it no longer holds (fencing): the lock expired and
 * the job was re-claimed, finished or removed.
 *
 * @example
 * ```ts
 * import { LockLostError } from '@conveyor/shared';
 * const e = new LockLostError('q', '1');
 * console.log(e.code); // LOCK_LOST
 * ```
 */
export class LockLostError extends ConveyorError {
  /** The job id. */
  readonly jobId: string;
  /**
   * @param queueName The queue.
   * @param jobId The job id.
   */
  constructor(queueName: string, jobId: string) {
    super('LOCK_LOST', `lock lost on job ${jobId} in queue ${queueName}`);
    this.jobId = jobId;
  }
}

/**
 * Adding a job to a group would exceed the group's `maxSize`. Nothing was saved.
 *
 * @example
 * ```ts
 * import { GroupFullError } from '@conveyor/shared';
 * const e = new GroupFullError('q', 'tenant-1', 10);
 * console.log(e.message); // group tenant-1 in queue q is full (maxSize 10)
 * ```
 */
export class GroupFullError extends ConveyorError {
  /** The group id. */
  readonly groupId: string;
  /** The group's limit. */
  readonly maxSize: number;
  /**
   * @param queueName The queue.
   * @param groupId The group.
   * @param maxSize The limit.
   */
  constructor(queueName: string, groupId: string, maxSize: number) {
    super('GROUP_FULL', `group ${groupId} in queue ${queueName} is full (maxSize ${maxSize})`);
    this.groupId = groupId;
    this.maxSize = maxSize;
  }
}

/**
 * A flow names a job id that already exists. Nothing of the flow was saved.
 *
 * @example
 * ```ts
 * import { DuplicateJobError } from '@conveyor/shared';
 * const e = new DuplicateJobError('q', 'a');
 * console.log(e.code); // DUPLICATE_JOB
 * ```
 */
export class DuplicateJobError extends ConveyorError {
  /** The job id. */
  readonly jobId: string;
  /**
   * @param queueName The queue.
   * @param jobId The id that exists.
   */
  constructor(queueName: string, jobId: string) {
    super('DUPLICATE_JOB', `job ${jobId} already exists in queue ${queueName}`);
    this.jobId = jobId;
  }
}

/**
 * A job attempt ran longer than its `timeout` option.
 *
 * @example
 * ```ts
 * import { JobTimeoutError } from '@conveyor/shared';
 * const e = new JobTimeoutError('1', 500);
 * console.log(e.message); // job 1 timed out after 500 ms
 * ```
 */
export class JobTimeoutError extends ConveyorError {
  /** The timeout in ms. */
  readonly timeout: number;
  /**
   * @param jobId The job id.
   * @param timeout The timeout in ms.
   */
  constructor(jobId: string, timeout: number) {
    super('JOB_TIMEOUT', `job ${jobId} timed out after ${timeout} ms`);
    this.timeout = timeout;
  }
}

/**
 * Thrown by a processor to fail the job for good at once, whatever `attempts` remain (no
 * retry, no backoff). The attempt still counts (`attemptsMade`) and the worker emits `failed`,
 * as in BullMQ. An error of another class whose `name` is `'UnrecoverableError'` (BullMQ's own
 * class) is honoured the same way; see {@linkcode isUnrecoverableError}.
 *
 * @example
 * ```ts
 * import { Worker } from '@conveyor/core';
 * import { UnrecoverableError } from '@conveyor/shared';
 * import { MemoryStore } from '@conveyor/store-memory';
 * const worker = new Worker('mail', async (job) => {
 *   if (!job.data.to) throw new UnrecoverableError('no recipient');
 * }, { store: new MemoryStore() });
 * ```
 */
export class UnrecoverableError extends ConveyorError {
  /**
   * @param message What went wrong (the job's `failedReason`).
   * @param options Standard error options (`cause`).
   */
  constructor(message = 'unrecoverable error', options?: ErrorOptions) {
    super('UNRECOVERABLE', message, options);
  }
}

/**
 * Whether an error thrown by a processor fails its job for good at once: an
 * {@linkcode UnrecoverableError}, or any error named `'UnrecoverableError'` (such as BullMQ's).
 *
 * @example
 * ```ts
 * import { isUnrecoverableError, UnrecoverableError } from '@conveyor/shared';
 * isUnrecoverableError(new UnrecoverableError('bad input')); // true
 * isUnrecoverableError(Object.assign(new Error('x'), { name: 'UnrecoverableError' })); // true
 * isUnrecoverableError(new Error('x')); // false
 * ```
 */
export function isUnrecoverableError(error: unknown): boolean {
  return error instanceof UnrecoverableError ||
    (error instanceof Error && error.name === 'UnrecoverableError');
}

/**
 * Thrown by a processor after it moved its job to `delayed` with `job.moveToDelayed`: the worker
 * then leaves the job alone (no completion, no failure, no attempt counted), as in BullMQ.
 * The worker leaves alone any job its processor moved on, whatever it throws or returns next;
 * thrown without the move, a `DelayedError` fails the job like any error.
 *
 * @example
 * ```ts
 * import { Worker } from '@conveyor/core';
 * import { DelayedError } from '@conveyor/shared';
 * import { MemoryStore } from '@conveyor/store-memory';
 * const worker = new Worker('mail', async (job) => {
 *   if (job.data.later) {
 *     await job.moveToDelayed(Date.now() + 60_000);
 *     throw new DelayedError();
 *   }
 * }, { store: new MemoryStore() });
 * ```
 */
export class DelayedError extends ConveyorError {
  /**
   * @param message Why the job was delayed.
   * @param options Standard error options (`cause`).
   */
  constructor(message = 'job delayed', options?: ErrorOptions) {
    super('DELAYED', message, options);
  }
}

/**
 * Thrown by a processor after `job.moveToWaitingChildren` parked its job: the worker then
 * leaves the job alone, and the job runs again once its children finish, as in BullMQ.
 *
 * @example
 * ```ts
 * import { Queue, Worker } from '@conveyor/core';
 * import { WaitingChildrenError } from '@conveyor/shared';
 * import { MemoryStore } from '@conveyor/store-memory';
 * const store = new MemoryStore();
 * const steps = new Queue('steps', { store });
 * const worker = new Worker('orders', async (job) => {
 *   if (!job.data.split) {
 *     await steps.add('part', {}, { parent: { id: job.id, queue: job.queueName } });
 *     await job.updateData({ split: true });
 *     if (await job.moveToWaitingChildren()) throw new WaitingChildrenError();
 *   }
 *   return 'all parts done';
 * }, { store });
 * ```
 */
export class WaitingChildrenError extends ConveyorError {
  /**
   * @param message Why the job waits.
   * @param options Standard error options (`cause`).
   */
  constructor(message = 'job waiting for children', options?: ErrorOptions) {
    super('WAITING_CHILDREN', message, options);
  }
}

/**
 * Thrown by a processor after `worker.rateLimit(ms)` (BullMQ's manual rate limit, for an API
 * that answered "too many requests"): the worker puts the job back to `waiting` (fenced by its
 * lock token), without counting an attempt (`attemptsMade` unchanged) and without a `failed`
 * event, and claims again once the limit ends. `Worker.RateLimitError()` returns one. An error
 * of another class whose `name` is `'RateLimitError'` (BullMQ's own class) is honoured the same
 * way. Thrown without a limit set, the job is simply claimed again.
 *
 * @example
 * ```ts
 * import { Worker } from '@conveyor/core';
 * import { RateLimitError } from '@conveyor/shared';
 * import { MemoryStore } from '@conveyor/store-memory';
 * declare function callApi(data: unknown): Promise<Response>;
 * const worker: Worker = new Worker('api', async (job) => {
 *   const res = await callApi(job.data);
 *   if (res.status === 429) {
 *     await worker.rateLimit(5000); // the whole queue waits 5 s
 *     throw new RateLimitError(); // this job goes back to waiting, no attempt counted
 *   }
 * }, { store: new MemoryStore(), limiter: { max: 10, duration: 1000 } });
 * ```
 */
export class RateLimitError extends ConveyorError {
  /**
   * @param message Why the job was put back.
   * @param options Standard error options (`cause`).
   */
  constructor(message = 'rate limit exceeded', options?: ErrorOptions) {
    super('RATE_LIMITED', message, options);
  }
}

/**
 * Whether an error thrown by a processor puts its job back to `waiting` as a
 * {@linkcode RateLimitError} does: one of that class, or any error named `'RateLimitError'`
 * (such as BullMQ's).
 *
 * @example
 * ```ts
 * import { isRateLimitError, RateLimitError } from '@conveyor/shared';
 * isRateLimitError(new RateLimitError()); // true
 * isRateLimitError(Object.assign(new Error('x'), { name: 'RateLimitError' })); // true
 * isRateLimitError(new Error('x')); // false
 * ```
 */
export function isRateLimitError(error: unknown): boolean {
  return error instanceof RateLimitError ||
    (error instanceof Error && error.name === 'RateLimitError');
}

/**
 * The store cannot be used: not connected, closed, a schema newer than this code, a file that
 * is not a database, an unreachable server. Its codes:
 *
 * - `NOT_CONNECTED`: a call before `connect()` or after `disconnect()`.
 * - `CONNECT_FAILED`, `CANNOT_OPEN`: `connect()` could not reach the server or open the file.
 * - `SCHEMA_MISSING`, `SCHEMA_OUTDATED`, `SCHEMA_TOO_NEW`, `MIGRATION_FAILED`: the schema
 *   does not fit this code (see the store's `autoMigrate`).
 * - `UNAVAILABLE` (PostgreSQL): a call after `connect()` could not reach the server, or its
 *   connection was lost (refused, reset, timed out, the backend terminated, the server shutting
 *   down or starting up). The message names the store method and queue; `cause` is the
 *   driver's error. The call may or may not have taken effect if the connection was lost after
 *   its statement was sent; the store reconnects by itself, so the same call can be retried
 *   once the server is back. Errors of the statement itself (a constraint, a refusal of the
 *   caller's transaction) are never turned into it.
 * - `POOL_RENEWED` (PostgreSQL, to `onError` only): the store replaced its connection pool.
 * - `ID_EXHAUSTED`: no free job id could be generated.
 *
 * @example
 * ```ts
 * import { StoreError } from '@conveyor/shared';
 * const e = new StoreError('NOT_CONNECTED', 'call connect() first');
 * console.log(e.code); // NOT_CONNECTED
 *
 * // Retrying an add while the database is unreachable:
 * function retryable(err: unknown): boolean {
 *   return err instanceof StoreError && err.code === 'UNAVAILABLE';
 * }
 * ```
 */
export class StoreError extends ConveyorError {}

/**
 * A refused value as an error message shows it: JSON where JSON is faithful, else what the
 * value is (`NaN`, `Infinity`, `10n`, `a function`, `Symbol(x)`, `undefined`).
 */
function show(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'function':
      return 'a function';
    case 'symbol':
      return value.toString();
  }
  try {
    return JSON.stringify(value, (_key, v) => showNested(v)) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Inside an object or array: the values JSON would hide or change, named as `show` does. */
function showNested(value: unknown): unknown {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
    case 'function':
    case 'symbol':
      return show(value);
  }
  return value;
}
