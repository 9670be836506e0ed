/**
 * The Worker's `removeOnComplete` / `removeOnFail` (the default of `completeJobs` /
 * `failJobs` for jobs without their own): its SQL parameters, and the SQL that applies it at a
 * job's finish. The completing statement and `after_final_fail` share these fragments.
 *
 * @module
 */

import { checkRemoveOnFinish, type RemoveOnFinish } from '@conveyor/shared';

/**
 * A default as three scalar parameters: remove at once, keep count, keep age (s); all null
 * without a default (then the statements do nothing extra). Throws `InvalidArgumentError`
 * naming `option` for a bad value.
 *
 * @example
 * ```ts
 * import { keepParams } from './keep.ts';
 * console.log(keepParams({ count: 5 }, 'options.removeOnComplete')); // [null, 5, null]
 * ```
 */
export function keepParams(
  value: RemoveOnFinish | undefined,
  option: string,
): [now: boolean | null, count: number | null, age: number | null] {
  checkRemoveOnFinish(option, value);
  if (value === undefined || value === false) return [null, null, null];
  if (value === true) return [true, null, null];
  if (typeof value === 'number') return [null, value, null];
  return [null, value.count ?? null, value.age ?? null];
}

/**
 * Whether the job (columns under `alias`, e.g. `j.`) has its own option (`rc`:
 * `removeOnComplete`, `rf`: `removeOnFail`), an explicit `false` included: read from its
 * columns, and from its `opts` only when they say nothing (false, or `{}`).
 *
 * @example
 * ```ts
 * import { ownsKeep } from './keep.ts';
 * console.log(ownsKeep('j.', 'rc').startsWith('CASE')); // true
 * ```
 */
export const ownsKeep = (alias: string, kind: 'rc' | 'rf'): string =>
  `CASE WHEN ${alias}${kind}_now OR ${alias}${kind}_count IS NOT NULL
    OR ${alias}${kind}_age IS NOT NULL THEN true
    ELSE (${alias}opts::json -> '${kind === 'rc' ? 'removeOnComplete' : 'removeOnFail'}')
      IS NOT NULL END`;

/**
 * The value of `dk_count` / `dk_age` for a job that just finished: the default's limit
 * (`param`) when the job has no option of its own, else null. Without a default (`param`
 * null) it is null at once: the job's `opts` are not read.
 *
 * @example
 * ```ts
 * import { defaultKeep } from './keep.ts';
 * console.log(defaultKeep('$6::integer', 'j.', 'rc').startsWith('CASE WHEN $6')); // true
 * ```
 */
export const defaultKeep = (param: string, alias: string, kind: 'rc' | 'rf'): string =>
  `CASE WHEN ${param} IS NULL THEN NULL WHEN ${ownsKeep(alias, kind)} THEN NULL ELSE ${param} END`;
