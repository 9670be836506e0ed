/**
 * Turning `add` arguments into a validated {@linkcode NewJob}, shared by `Queue` and
 * `FlowProducer`.
 *
 * @module
 */
import { InvalidArgumentError, type JobOptions, type NewJob, newJob } from '@conveyor/shared';
import { parseDuration } from './duration.ts';
import { hashJob } from './hash.ts';
import { checkName, validateJobOptions, withChildFailurePolicy } from './validate.ts';

/**
 * Validates a job's name and options and builds the job to save: `delayed` when `opts.delay`
 * is set, with its deduplication key (from `key` or BullMQ's `id`, or a hash of name and data)
 * and expiry.
 * `label` names the options in errors (`opts`, `jobs[2].opts`). `fields` overrides stored
 * fields (flow links).
 *
 * @example
 * ```ts
 * import { buildJob } from '@conveyor/core';
 * const job = buildJob('q', 'email', { to: 'a' }, { delay: '10m' }, 'opts', Date.now());
 * console.log(job.state); // "delayed"
 * ```
 */
export function buildJob(
  queueName: string,
  name: unknown,
  data: unknown,
  opts: JobOptions,
  label: string,
  now: number,
  fields?: Partial<NewJob>,
): NewJob {
  // The name's label is only needed for the error (no string work per job on the bulk path).
  if (typeof name !== 'string' || name.length === 0) checkName(nameLabel(label), name);
  validateJobOptions(opts, label);
  if (opts.repeat !== undefined && !opts.repeat.schedulerId) {
    throw new InvalidArgumentError(
      `${label}.repeat`,
      opts.repeat,
      'absent (use every() or cron())',
    );
  }
  const delay = opts.delay === undefined ? 0 : parseDuration(opts.delay, `${label}.delay`);
  // The defaults are set after newJob, not merged into a fields object per job.
  // A delay given as a duration ('10m') is kept in ms, as BullMQ keeps it: the stores read it
  // (a flow parent is delayed by it when its children are done).
  const normal = withChildFailurePolicy(opts);
  const kept = typeof normal.delay === 'string' ? { ...normal, delay } : normal;
  const job = newJob(queueName, name as string, data, kept, fields);
  job.createdAt = fields?.createdAt ?? now;
  job.delayUntil = fields?.delayUntil ?? (delay > 0 ? now + delay : 0);
  job.state = fields?.state ?? (delay > 0 ? 'delayed' : 'waiting');
  if (opts.parent) {
    job.parentId = opts.parent.id;
    job.parentQueueName = opts.parent.queue;
  }
  const dedup = opts.deduplication;
  if (dedup) {
    job.deduplicationKey = dedup.key ?? dedup.id ?? hashJob(name as string, data);
    job.deduplicationExpiresAt = dedup.ttl !== undefined ? now + dedup.ttl : null;
  }
  return job;
}

/** The label of a job's name, next to its options' label (`jobs[2].opts` → `jobs[2].name`). */
function nameLabel(label: string): string {
  return label === 'opts' ? 'name' : label.replace(/opts$/, 'name');
}
