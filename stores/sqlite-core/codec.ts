/**
 * Converts between {@linkcode JobData} and `conveyor_jobs` rows.
 *
 * @module
 */
import { checkNewJob, InvalidArgumentError, type NewJob } from '@conveyor/shared';
import type { SqlValue } from './driver.ts';

/**
 * The insert statement of a job; its parameters come from {@linkcode jobParams}.
 *
 * @example
 * ```ts
 * import { INSERT_JOB } from '@conveyor/store-sqlite-core';
 * console.log(INSERT_JOB.startsWith('INSERT')); // true
 * ```
 */
export const INSERT_JOB: string = `INSERT INTO conveyor_jobs (seq, queue, id, name, state, priority,
  ord, data, opts, progress, returnvalue, failed_reason, stacktrace, logs, attempts_made,
  attempts_started, created_at, delay_until, processed_at, finished_at, locked_by, lock_until,
  lock_token, stalled_count, parent_id, parent_queue, pending_children, dedup_key,
  dedup_expires_at, dedup_live, group_id)
  VALUES (${Array(31).fill('?').join(', ')})
  ON CONFLICT (queue, id) DO NOTHING`;

/**
 * The insert statement of a new job whose other fields all have their defaults (no parent, no
 * deduplication key, no attempts, no lock…): far fewer parameters to bind, so `saveBulk` is
 * faster. Its parameters come from {@linkcode freshJobParams}; {@linkcode isFreshJob} says when
 * it applies.
 *
 * @example
 * ```ts
 * import { INSERT_FRESH_JOB } from '@conveyor/store-sqlite-core';
 * console.log(INSERT_FRESH_JOB.startsWith('INSERT')); // true
 * ```
 */
export const INSERT_FRESH_JOB: string = `INSERT INTO conveyor_jobs (seq, queue, id, name, state,
  priority, ord, data, opts, created_at, delay_until, group_id, progress, stacktrace, logs,
  attempts_made, attempts_started, stalled_count, pending_children)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '0', '[]', '[]', 0, 0, 0, 0)
  ON CONFLICT (queue, id) DO NOTHING`;

/**
 * A new job checked and serialised once, before any transaction starts, so bad input saves
 * nothing.
 *
 * @example
 * ```ts
 * import { encodeNewJob } from '@conveyor/store-sqlite-core';
 * import { newJob } from '@conveyor/shared';
 * const encoded = encodeNewJob(newJob('q', 'n', { a: 1 }), 'job');
 * console.log(encoded.data); // {"a":1}
 * ```
 */
export interface EncodedJob {
  /** The job as given. */
  job: NewJob;
  /** `data` as JSON. */
  data: string | null;
  /** `opts` as JSON. */
  opts: string;
  /** `progress` as JSON. */
  progress: string;
  /** `returnvalue` as JSON. */
  returnvalue: string | null;
}

/**
 * Checks a job to save and serialises its JSON fields. Throws {@linkcode InvalidArgumentError}
 * naming `label.field` when a field is unusable.
 *
 * @example
 * ```ts
 * import { encodeNewJob } from '@conveyor/store-sqlite-core';
 * import { newJob } from '@conveyor/shared';
 * encodeNewJob(newJob('q', 'n', null), 'job');
 * ```
 */
export function encodeNewJob(job: NewJob, label: string): EncodedJob {
  checkNewJob(job, label);
  return {
    job,
    data: toJson(job.data, `${label}.data`),
    opts: toJson(job.opts, `${label}.opts`) ?? '{}',
    progress: job.progress === 0 || job.progress === undefined
      ? '0'
      : toJson(job.progress, `${label}.progress`) ?? '0',
    returnvalue: job.returnvalue == null ? null : toJson(job.returnvalue, `${label}.returnvalue`),
  };
}

/**
 * The parameters of {@linkcode INSERT_JOB} for one job.
 *
 * @example
 * ```ts
 * import { encodeNewJob, jobParams } from '@conveyor/store-sqlite-core';
 * import { newJob } from '@conveyor/shared';
 * const params = jobParams(1, 'q', 'a', encodeNewJob(newJob('q', 'n', null), 'job'));
 * console.log(params.length); // 31
 * ```
 */
export function jobParams(seq: number, queue: string, id: string, e: EncodedJob): SqlValue[] {
  const j = e.job;
  return [
    seq,
    queue,
    id,
    j.name,
    j.state,
    j.priority,
    j.opts.lifo ? -seq : seq,
    e.data,
    e.opts,
    e.progress,
    e.returnvalue,
    j.failedReason ?? null,
    list(j.stacktrace),
    list(j.logs),
    j.attemptsMade ?? 0,
    j.attemptsStarted ?? 0,
    j.createdAt ?? Date.now(),
    j.delayUntil ?? 0,
    j.processedAt ?? null,
    j.finishedAt ?? null,
    j.lockedBy ?? null,
    j.lockUntil ?? null,
    j.lockToken ?? null,
    j.stalledCount ?? 0,
    j.parentId ?? null,
    j.parentQueueName ?? null,
    j.pendingChildrenCount ?? 0,
    j.deduplicationKey ?? null,
    j.deduplicationExpiresAt ?? null,
    j.deduplicationKey == null ? null : 1,
    j.groupId ?? null,
  ];
}

/**
 * Whether {@linkcode INSERT_FRESH_JOB} can save this job: every field it leaves out has its
 * default value.
 *
 * @example
 * ```ts
 * import { isFreshJob } from '@conveyor/store-sqlite-core';
 * import { newJob } from '@conveyor/shared';
 * console.log(isFreshJob(newJob('q', 'n', null))); // true
 * ```
 */
export function isFreshJob(j: NewJob): boolean {
  return (j.progress === 0 || j.progress === undefined) && j.returnvalue == null &&
    j.failedReason == null && !j.stacktrace?.length && !j.logs?.length && !j.attemptsMade &&
    !j.attemptsStarted && j.processedAt == null && j.finishedAt == null && j.lockedBy == null &&
    j.lockUntil == null && j.lockToken == null && !j.stalledCount && j.parentId == null &&
    j.parentQueueName == null && !j.pendingChildrenCount && j.deduplicationKey == null &&
    j.deduplicationExpiresAt == null;
}

/**
 * The parameters of {@linkcode INSERT_FRESH_JOB}.
 *
 * @example
 * ```ts
 * import { encodeNewJob, freshJobParams } from '@conveyor/store-sqlite-core';
 * import { newJob } from '@conveyor/shared';
 * const params = freshJobParams(1, 'q', 'a', encodeNewJob(newJob('q', 'n', null), 'job'));
 * console.log(params.length); // 12
 * ```
 */
export function freshJobParams(seq: number, queue: string, id: string, e: EncodedJob): SqlValue[] {
  const j = e.job;
  return [
    seq,
    queue,
    id,
    j.name,
    j.state,
    j.priority,
    j.opts.lifo ? -seq : seq,
    e.data,
    e.opts,
    j.createdAt ?? Date.now(),
    j.delayUntil ?? 0,
    j.groupId ?? null,
  ];
}

/**
 * `JSON.stringify` that names the field when a value cannot be stored (`undefined` → null).
 *
 * @example
 * ```ts
 * import { toJson } from '@conveyor/store-sqlite-core';
 * console.log(toJson({ a: 1 }, 'data')); // {"a":1}
 * ```
 */
export function toJson(value: unknown, label: string): string | null {
  if (value === undefined) return null;
  try {
    return JSON.stringify(value) ?? null;
  } catch (error) {
    throw new InvalidArgumentError(label, String(error), 'JSON-serialisable');
  }
}

/**
 * Parses a JSON column (SQL NULL → null).
 *
 * @example
 * ```ts
 * import { fromJson } from '@conveyor/store-sqlite-core';
 * console.log(fromJson('[1]')); // [1]
 * ```
 */
export function fromJson(value: SqlValue | undefined): unknown {
  return value === null || value === undefined ? null : JSON.parse(String(value));
}

function list(value: string[] | undefined): string {
  return value === undefined || value.length === 0 ? '[]' : JSON.stringify(value);
}
