/**
 * Fast copies for the {@linkcode MemoryStore}: jobs and events go in and out as copies, so
 * callers cannot change stored state through objects they passed or received.
 *
 * `structuredClone` is general but slow for the small JSON values jobs carry. Here the known
 * scalar fields of a job are copied directly, and JSON-like values (plain objects, arrays,
 * primitives) by a small recursive copier. Anything else (a `Date`, `Map`, class instance,
 * typed array…) is handed to `structuredClone`, and so is a value nested deeper than
 * {@linkcode MAX_DEPTH} (which covers cycles), so the result matches `structuredClone` for
 * every value it accepts, and the same values are refused (a function throws
 * `DataCloneError`). One difference: a plain object or array reached twice is copied twice
 * (`structuredClone` keeps the sharing), which JSON-based stores do too.
 *
 * @module
 */
import type { JobData, JobOptions, NewJob } from '@conveyor/shared';

/** Nesting depth beyond which a value is copied by `structuredClone` (handles cycles). */
export const MAX_DEPTH = 100;

const TOO_DEEP: unique symbol = Symbol('too deep');
const objectProto = Object.prototype;
const arrayProto = Array.prototype;

/**
 * A deep copy of a value, as `structuredClone` would make it (see the module doc).
 *
 * @example
 * ```ts
 * import { copyValue } from './copy.ts';
 * const a = { list: [1, { b: 2 }] };
 * const b = copyValue(a);
 * console.log(b !== a && b.list !== a.list); // true
 * ```
 */
export function copyValue<T>(value: T): T {
  if (typeof value !== 'object' || value === null) {
    // Primitives are immutable; functions and symbols throw DataCloneError, as before.
    return typeof value === 'function' || typeof value === 'symbol'
      ? structuredClone(value)
      : value;
  }
  try {
    return copyObject(value, 0) as T;
  } catch (error) {
    if (error === TOO_DEEP) return structuredClone(value);
    throw error;
  }
}

function copyAny(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'function' || typeof value === 'symbol'
      ? structuredClone(value)
      : value;
  }
  return copyObject(value, depth);
}

function copyObject(value: object, depth: number): unknown {
  if (depth > MAX_DEPTH) throw TOO_DEEP;
  const proto = Object.getPrototypeOf(value);
  if (proto === arrayProto) {
    const array = value as unknown[];
    const n = array.length;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      const v = array[i];
      if (v !== undefined || i in array) out[i] = copyAny(v, depth + 1);
    }
    return out;
  }
  if (proto === objectProto || proto === null) {
    const source = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(source)) {
      const v = copyAny(source[key], depth + 1);
      if (key === '__proto__') {
        Object.defineProperty(out, key, {
          value: v,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      } else out[key] = v;
    }
    return out;
  }
  // Date, Map, Set, RegExp, Error, typed arrays, class instances…: the general algorithm.
  return structuredClone(value);
}

/**
 * A copy of a stored job (every field of {@linkcode JobData}; values copied with
 * {@linkcode copyValue}).
 *
 * @example
 * ```ts
 * import { newJob } from '@conveyor/shared';
 * import { copyJob } from './copy.ts';
 * const job = { ...newJob('q', 'n', { a: 1 }), id: '1' };
 * console.log(copyJob(job).data); // { a: 1 }
 * ```
 */
export function copyJob(job: JobData): JobData {
  return {
    id: job.id,
    queueName: job.queueName,
    name: job.name,
    data: copyValue(job.data),
    opts: copyValue(job.opts),
    state: job.state,
    priority: job.priority,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    progress: copyValue(job.progress),
    returnvalue: copyValue(job.returnvalue),
    failedReason: job.failedReason,
    stacktrace: copyValue(job.stacktrace),
    logs: copyValue(job.logs),
    createdAt: job.createdAt,
    delayUntil: job.delayUntil,
    processedAt: job.processedAt,
    finishedAt: job.finishedAt,
    lockedBy: job.lockedBy,
    lockUntil: job.lockUntil,
    lockToken: job.lockToken,
    stalledCount: job.stalledCount,
    parentId: job.parentId,
    parentQueueName: job.parentQueueName,
    pendingChildrenCount: job.pendingChildrenCount,
    deduplicationKey: job.deduplicationKey,
    deduplicationExpiresAt: job.deduplicationExpiresAt,
    groupId: job.groupId,
  };
}

/**
 * The shared empty `logs` / `stacktrace` of stored jobs (frozen): most jobs never get a line,
 * so they share this one instead of holding two arrays each. Replace it before appending.
 *
 * @example
 * ```ts
 * import { EMPTY_LIST } from './copy.ts';
 * let logs = EMPTY_LIST;
 * if (logs === EMPTY_LIST) logs = [];
 * logs.push('line');
 * ```
 */
export const EMPTY_LIST: string[] = Object.freeze([]) as unknown as string[];

const EMPTY_OPTS: JobOptions = Object.freeze({});

/** A stored copy of a list: the shared {@linkcode EMPTY_LIST} when empty. */
function storedList(list: string[]): string[] {
  return Array.isArray(list) && list.length === 0 ? EMPTY_LIST : copyValue(list);
}

/** A stored copy of options: one shared frozen object for `{}` (stored opts are never changed in place). */
function storedOpts(opts: JobOptions): JobOptions {
  if (Object.getPrototypeOf(opts) !== objectProto) return copyValue(opts);
  for (const _ in opts) return copyValue(opts);
  return EMPTY_OPTS;
}

/**
 * The record the store keeps for a job to save: a copy of `job` (see {@linkcode copyJob}) with
 * the derived fields normalised (`queueName`, `groupId`, deduplication and parent fields). The
 * id is left empty for the caller to set. Empty `logs`, `stacktrace` and `opts` are shared
 * frozen objects (see {@linkcode EMPTY_LIST}); copies handed out are fresh. Throws (saving nothing) when a value cannot be
 * copied, so call it for every job of a save before inserting any.
 *
 * @example
 * ```ts
 * import { newJob } from '@conveyor/shared';
 * import { toStored } from './copy.ts';
 * console.log(toStored(newJob('q', 'n', {}, { group: { id: 'g' } }), 'q').groupId); // "g"
 * ```
 */
export function toStored(job: NewJob, queueName: string): JobData {
  const parentId = job.parentId ?? null;
  return {
    id: '',
    queueName,
    name: job.name,
    data: copyValue(job.data),
    opts: storedOpts(job.opts),
    state: job.state,
    priority: job.priority,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    progress: copyValue(job.progress),
    returnvalue: copyValue(job.returnvalue),
    failedReason: job.failedReason,
    stacktrace: storedList(job.stacktrace),
    logs: storedList(job.logs),
    createdAt: job.createdAt,
    delayUntil: job.delayUntil,
    processedAt: job.processedAt,
    finishedAt: job.finishedAt,
    lockedBy: job.lockedBy,
    lockUntil: job.lockUntil,
    lockToken: job.lockToken,
    stalledCount: job.stalledCount,
    parentId,
    parentQueueName: parentId ? job.parentQueueName ?? queueName : null,
    pendingChildrenCount: job.pendingChildrenCount,
    deduplicationKey: job.deduplicationKey ?? null,
    deduplicationExpiresAt: job.deduplicationExpiresAt ?? null,
    groupId: groupOf(job),
  };
}

/**
 * The group of a job to save: `groupId`, else `opts.group.id`, else null.
 *
 * @example
 * ```ts
 * import { newJob } from '@conveyor/shared';
 * import { groupOf } from './copy.ts';
 * console.log(groupOf(newJob('q', 'n', {}, { group: { id: 'g' } }))); // "g"
 * ```
 */
export function groupOf(job: NewJob): string | null {
  return job.groupId ?? job.opts.group?.id ?? null;
}
