/**
 * Option validation. Bad input throws {@linkcode InvalidArgumentError} naming the option and
 * the value, before anything is saved.
 *
 * @module
 */
import {
  checkInteger as sharedCheckInteger,
  checkRemoveOnFinish,
  type ChildFailurePolicy,
  InvalidArgumentError,
  type JobOptions,
  type RateLimit,
} from '@conveyor/shared';
import { parseDuration } from './duration.ts';

/**
 * Checks a value is a whole number within bounds (from `@conveyor/shared`, where the stores use
 * it too).
 *
 * @example
 * ```ts
 * import { checkInteger } from '@conveyor/core';
 * checkInteger('concurrency', 4, 1); // ok
 * ```
 */
export const checkInteger: typeof sharedCheckInteger = sharedCheckInteger;

/**
 * Checks a value is a finite number `>= min`.
 *
 * @example
 * ```ts
 * import { checkNumber } from '@conveyor/core';
 * checkNumber('lockDuration', 30_000, 1); // ok
 * ```
 */
export function checkNumber(option: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(option, value, `a finite number >= ${min}`);
  }
}

/**
 * Checks a value is a non-empty string.
 *
 * @example
 * ```ts
 * import { checkName } from '@conveyor/core';
 * checkName('queueName', 'emails'); // ok
 * ```
 */
export function checkName(option: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(option, value, 'a non-empty string');
  }
}

/**
 * Checks the options of a Queue, Worker, QueueEvents or FlowProducer carry a store.
 *
 * @example
 * ```ts
 * import { checkStore } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 * checkStore({ store: new MemoryStore() }); // ok
 * ```
 */
export function checkStore(opts: { store?: unknown } | null | undefined): void {
  if (typeof opts?.store !== 'object' || opts.store === null) {
    throw new InvalidArgumentError('opts.store', opts?.store, 'a store instance');
  }
}

/**
 * BullMQ options that have another form here, and what to use instead (the message of
 * {@linkcode checkKeys} for them).
 */
const BULLMQ_HINTS: Record<string, string> = {
  connection: 'absent: Conveyor takes a store (opts.store), not a Redis connection',
  prefix: "absent: a store keeps its own queues (PostgreSQL: the store's schema option; " +
    'SQLite: another file)',
  settings: 'absent: a custom backoff is opts.backoffStrategy',
  drainDelay: 'absent: an idle worker waits for new jobs, polling every opts.pollInterval',
  groupKey: "absent: rate limit per group with the worker's group.limiter and the jobs' group.id",
  extend: "absent: a deduplication key's ttl runs from the add that saved the job",
  replace: 'absent: a deduplicated add leaves the existing job as it is (remove it and add ' +
    'again to replace it)',
  keepLastIfActive: 'absent: a deduplicated add leaves the existing job as it is',
  continueParentOnFailure: 'absent (a parent runs once every child finished; ' +
    'failParentOnChildFailure says what a failed child does to it)',
  debounce: 'absent (use deduplication: { key, ttl })',
};

/**
 * Refuses a key of `value` that is not in `known` with {@linkcode InvalidArgumentError} naming
 * `<option>.<key>`, so a misspelt or unsupported option (such as one of BullMQ's that has
 * another form here) is not ignored. `value` must be an object.
 *
 * @example
 * ```ts
 * import { checkKeys } from '@conveyor/core';
 * checkKeys('opts', { concurrency: 2 }, new Set(['concurrency'])); // ok
 * ```
 */
export function checkKeys(option: string, value: object, known: ReadonlySet<string>): void {
  for (const key in value) {
    if (known.has(key)) continue;
    throw new InvalidArgumentError(
      `${option}.${key}`,
      (value as Record<string, unknown>)[key],
      BULLMQ_HINTS[key] ?? `absent (not an option; the options are ${[...known].join(', ')})`,
    );
  }
}

/** The keys of {@linkcode JobOptions}. */
const JOB_OPTION_KEYS: ReadonlySet<string> = new Set([
  'jobId',
  'attempts',
  'backoff',
  'delay',
  'priority',
  'lifo',
  'timeout',
  'removeOnComplete',
  'removeOnFail',
  'failParentOnChildFailure',
  'failParentOnFailure',
  'ignoreDependencyOnFailure',
  'removeDependencyOnFailure',
  'parent',
  'deduplication',
  'group',
  'repeat',
  'keepLogs',
]);

/** The keys of `deduplication` (`id` is BullMQ's name for `key`). */
const DEDUP_KEYS: ReadonlySet<string> = new Set(['key', 'id', 'hash', 'ttl']);

/** The keys of a rate limit (`{ max, duration }`). */
const RATE_LIMIT_KEYS: ReadonlySet<string> = new Set(['max', 'duration']);

/**
 * Checks an optional options argument is an object (`null` is refused, not taken as `{}`).
 *
 * @example
 * ```ts
 * import { checkOptions } from '@conveyor/core';
 * checkOptions('opts', { attempts: 3 }); // ok
 * ```
 */
export function checkOptions(option: string, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(option, value, 'an object');
  }
}

/**
 * Checks a rate limit `{ max, duration }`.
 *
 * @example
 * ```ts
 * import { checkRateLimit } from '@conveyor/core';
 * checkRateLimit('limiter', { max: 10, duration: 1000 }); // ok
 * ```
 */
export function checkRateLimit(option: string, value: RateLimit | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(option, value, 'an object { max, duration }');
  }
  checkKeys(option, value, RATE_LIMIT_KEYS);
  checkInteger(`${option}.max`, value.max, 1);
  checkNumber(`${option}.duration`, value.duration, 1);
}

/**
 * Validates job options, throwing {@linkcode InvalidArgumentError} on the first bad one.
 * `prefix` names the options in the message (`opts.attempts`).
 *
 * @example
 * ```ts
 * import { validateJobOptions } from '@conveyor/core';
 * validateJobOptions({ attempts: 3, delay: '10m' }); // ok
 * ```
 */
export function validateJobOptions(opts: JobOptions, prefix = 'opts'): void {
  if (typeof opts !== 'object' || opts === null) {
    throw new InvalidArgumentError(prefix, opts, 'an object');
  }
  checkKeys(prefix, opts, JOB_OPTION_KEYS);
  const p = (name: string): string => `${prefix}.${name}`;
  if (opts.jobId !== undefined) checkName(p('jobId'), opts.jobId);
  if (opts.attempts !== undefined) checkInteger(p('attempts'), opts.attempts, 1);
  if (opts.delay !== undefined) parseDuration(opts.delay, p('delay'));
  if (opts.priority !== undefined) checkInteger(p('priority'), opts.priority, -(2 ** 31), 2 ** 31);
  if (opts.lifo !== undefined && typeof opts.lifo !== 'boolean') {
    throw new InvalidArgumentError(p('lifo'), opts.lifo, 'a boolean');
  }
  if (opts.timeout !== undefined) checkNumber(p('timeout'), opts.timeout, 1);
  if (opts.keepLogs !== undefined) checkInteger(p('keepLogs'), opts.keepLogs, 0);
  checkRemoveOnFinish(p('removeOnComplete'), opts.removeOnComplete);
  checkRemoveOnFinish(p('removeOnFail'), opts.removeOnFail);
  const policy = opts.failParentOnChildFailure;
  if (policy !== undefined && policy !== 'fail' && policy !== 'ignore' && policy !== 'remove') {
    throw new InvalidArgumentError(
      p('failParentOnChildFailure'),
      policy,
      'one of "fail", "ignore", "remove"',
    );
  }
  childFailurePolicy(opts, prefix);
  const backoff = opts.backoff;
  if (backoff !== undefined) {
    if (typeof backoff === 'number') checkNumber(p('backoff'), backoff, 0);
    else if (typeof backoff !== 'object' || backoff === null) {
      throw new InvalidArgumentError(p('backoff'), backoff, 'a number of ms or { type, delay }');
    } else {
      if (!['fixed', 'exponential', 'custom'].includes(backoff.type)) {
        throw new InvalidArgumentError(
          p('backoff.type'),
          backoff.type,
          'one of "fixed", "exponential", "custom"',
        );
      }
      if (backoff.delay !== undefined) checkNumber(p('backoff.delay'), backoff.delay, 0);
      if (backoff.jitter !== undefined) {
        if (typeof backoff.jitter !== 'number' || !(backoff.jitter >= 0 && backoff.jitter <= 1)) {
          throw new InvalidArgumentError(p('backoff.jitter'), backoff.jitter, 'a number in 0..1');
        }
      }
    }
  }
  const dedup = opts.deduplication;
  if (dedup !== undefined) {
    if (typeof dedup !== 'object' || dedup === null) {
      throw new InvalidArgumentError(p('deduplication'), dedup, 'an object { key | hash, ttl }');
    }
    checkKeys(p('deduplication'), dedup, DEDUP_KEYS);
    if (dedup.key !== undefined) checkName(p('deduplication.key'), dedup.key);
    if (dedup.id !== undefined) {
      checkName(p('deduplication.id'), dedup.id);
      if (dedup.key !== undefined && dedup.key !== dedup.id) {
        throw new InvalidArgumentError(
          p('deduplication.id'),
          dedup.id,
          `absent or the same as deduplication.key (${JSON.stringify(dedup.key)})`,
        );
      }
    }
    if (dedup.key === undefined && dedup.id === undefined && dedup.hash !== true) {
      throw new InvalidArgumentError(
        p('deduplication'),
        dedup,
        'an object with a key or hash: true',
      );
    }
    if (dedup.ttl !== undefined) checkNumber(p('deduplication.ttl'), dedup.ttl, 1);
  }
  const parent = opts.parent;
  if (parent !== undefined) {
    if (typeof parent !== 'object' || parent === null) {
      throw new InvalidArgumentError(p('parent'), parent, 'an object { id, queue }');
    }
    checkName(p('parent.id'), parent.id);
    checkName(p('parent.queue'), parent.queue);
  }
  const group = opts.group;
  if (group !== undefined) {
    if (typeof group !== 'object' || group === null) {
      throw new InvalidArgumentError(p('group'), group, 'an object { id, maxSize }');
    }
    checkName(p('group.id'), group.id);
    if (group.maxSize !== undefined) checkInteger(p('group.maxSize'), group.maxSize, 1);
  }
}

/**
 * Why a job's return value cannot be stored, or undefined when it can: every store keeps JSON
 * (BigInts and cycles throw, a function or symbol has no JSON), so a value is checked before it
 * is stored, where it fails its own job, not in the store batch it would sink.
 *
 * @example
 * ```ts
 * import { checkReturnValue } from '@conveyor/core';
 * console.log(checkReturnValue('1', { ok: true })); // undefined
 * console.log(checkReturnValue('1', 10n)?.code); // INVALID_ARGUMENT
 * ```
 */
export function checkReturnValue(jobId: string, value: unknown): InvalidArgumentError | undefined {
  const type = typeof value;
  if (value === null || type === 'string' || type === 'number' || type === 'boolean') {
    return undefined;
  }
  try {
    JSON.stringify(value, noFunctions);
    return undefined;
  } catch (e) {
    return new InvalidArgumentError(
      `the return value of job ${jobId}`,
      value,
      `JSON-serialisable (${e instanceof Error ? e.message : String(e)})`,
    );
  }
}

/** A JSON replacer that refuses what JSON would drop silently (and a memory store refuses). */
function noFunctions(_key: string, value: unknown): unknown {
  const type = typeof value;
  if (type === 'function' || type === 'symbol') throw new TypeError(`a ${type} is not JSON`);
  return value;
}

/** BullMQ's boolean names for what a child's final failure does to its parent, with ours. */
const CHILD_FAILURE_ALIASES = [
  ['failParentOnFailure', 'fail'],
  ['ignoreDependencyOnFailure', 'ignore'],
  ['removeDependencyOnFailure', 'remove'],
] as const;

/**
 * The child-failure policy `opts` asks for, from `failParentOnChildFailure` or one of BullMQ's
 * names for it (`failParentOnFailure`, `ignoreDependencyOnFailure`, `removeDependencyOnFailure`;
 * `false` means not set), or undefined. Names that disagree, and a BullMQ name that is not a
 * boolean, throw {@linkcode InvalidArgumentError} naming the option under `prefix`. (BullMQ
 * options with no counterpart here, such as `continueParentOnFailure`, are refused by
 * {@linkcode validateJobOptions} as unknown keys, with what to use instead.)
 *
 * @example
 * ```ts
 * import { childFailurePolicy } from '@conveyor/core';
 * console.log(childFailurePolicy({ ignoreDependencyOnFailure: true })); // "ignore"
 * ```
 */
export function childFailurePolicy(
  opts: JobOptions,
  prefix = 'opts',
): ChildFailurePolicy | undefined {
  let policy = opts.failParentOnChildFailure;
  let from = 'failParentOnChildFailure';
  for (const [alias, meaning] of CHILD_FAILURE_ALIASES) {
    const value = opts[alias];
    if (value === undefined || value === false) continue;
    if (value !== true) throw new InvalidArgumentError(`${prefix}.${alias}`, value, 'a boolean');
    if (policy !== undefined && policy !== meaning) {
      throw new InvalidArgumentError(
        `${prefix}.${alias}`,
        value,
        `absent or false, as ${prefix}.${from} asks for "${policy}"`,
      );
    }
    policy = meaning;
    from = alias;
  }
  return policy;
}

/**
 * `opts` with BullMQ's child-failure names turned into `failParentOnChildFailure` (the one the
 * stores read), or `opts` itself when it uses none. Validate first (`validateJobOptions`).
 *
 * @example
 * ```ts
 * import { withChildFailurePolicy } from '@conveyor/core';
 * console.log(withChildFailurePolicy({ removeDependencyOnFailure: true }));
 * // { failParentOnChildFailure: "remove" }
 * ```
 */
export function withChildFailurePolicy(opts: JobOptions): JobOptions {
  if (!usesBullMqChildFailure(opts)) return opts;
  const policy = childFailurePolicy(opts);
  const normal: JobOptions = { ...opts };
  for (const [alias] of CHILD_FAILURE_ALIASES) delete normal[alias];
  if (policy !== undefined) normal.failParentOnChildFailure = policy;
  return normal;
}

/**
 * Whether `opts` says what a child's failure does to its parent in one of BullMQ's names (set to
 * `true`).
 *
 * @example
 * ```ts
 * import { usesBullMqChildFailure } from '@conveyor/core';
 * console.log(usesBullMqChildFailure({ failParentOnFailure: true })); // true
 * ```
 */
export function usesBullMqChildFailure(opts: JobOptions): boolean {
  return opts.failParentOnFailure === true || opts.ignoreDependencyOnFailure === true ||
    opts.removeDependencyOnFailure === true;
}
