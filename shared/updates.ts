/**
 * Validation of `updateJob`'s `updates`, shared by every store, so that a bad field is refused
 * the same way everywhere, before anything is written.
 *
 * @module
 */

import { InvalidArgumentError } from './errors.ts';
import { JOB_STATES, type JobData, type JobState } from './types.ts';

type Rule = (value: unknown) => string | null;

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const finite: Rule = (v) => isNumber(v) ? null : 'a finite number';
const time: Rule = (v) => v === null || isNumber(v) ? null : 'a time in ms or null';
const count: Rule = (v) =>
  isNumber(v) && Number.isInteger(v) && v >= 0 ? null : 'a whole number >= 0';
const text: Rule = (v) => typeof v === 'string' ? null : 'a string';
const textOrNull: Rule = (v) => v === null || typeof v === 'string' ? null : 'a string or null';
const lines: Rule = (v) =>
  v === null || (Array.isArray(v) && v.every((l) => typeof l === 'string'))
    ? null
    : 'an array of strings or null';
const json: Rule = (v) => {
  try {
    return JSON.stringify(v) === undefined ? 'a JSON-serialisable value' : null;
  } catch {
    return 'a JSON-serialisable value';
  }
};

const RULES: Readonly<Record<string, Rule>> = {
  name: text,
  data: json,
  opts: (v) => typeof v === 'object' && v !== null && !Array.isArray(v) ? json(v) : 'an object',
  state: (v) => JOB_STATES.includes(v as JobState) ? null : JOB_STATES.join(', '),
  priority: finite,
  attemptsMade: count,
  attemptsStarted: count,
  progress: json,
  returnvalue: json,
  failedReason: textOrNull,
  stacktrace: lines,
  logs: lines,
  createdAt: finite,
  delayUntil: time,
  processedAt: time,
  finishedAt: time,
  lockedBy: textOrNull,
  lockUntil: time,
  lockToken: textOrNull,
  stalledCount: count,
  parentId: textOrNull,
  parentQueueName: textOrNull,
  pendingChildrenCount: count,
  deduplicationKey: textOrNull,
  deduplicationExpiresAt: time,
  groupId: textOrNull,
};

/**
 * Checks the fields of an `updateJob` call and throws {@linkcode InvalidArgumentError} naming
 * the first bad one (`updates.priority`, …). Fields left `undefined` are skipped; fields that
 * are not job fields are ignored, as the stores ignore them.
 *
 * @example
 * ```ts
 * import { checkUpdates } from '@conveyor/shared';
 * checkUpdates({ priority: 5, data: { a: 1 } }); // fine
 * try {
 *   checkUpdates({ priority: NaN });
 * } catch (e) {
 *   console.log((e as Error).message.includes('updates.priority')); // true
 * }
 * ```
 */
export function checkUpdates(updates: Partial<JobData>): void {
  if (typeof updates !== 'object' || updates === null || Array.isArray(updates)) {
    throw new InvalidArgumentError('updates', updates, 'an object of job fields');
  }
  for (const [field, value] of Object.entries(updates)) {
    const rule = RULES[field];
    if (value === undefined || !rule) continue;
    const expected = rule(value);
    if (expected !== null) throw new InvalidArgumentError(`updates.${field}`, value, expected);
  }
}
