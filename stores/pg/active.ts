/**
 * The condition "this job is active" for statements that find jobs by id.
 *
 * @module
 */

/**
 * `state = 'active'` for a statement that finds its jobs by id: compared under a collation of
 * its own, so the planner cannot match it to the predicate of the partial index `jobs_active`
 * and goes through the primary key whatever the statistics say. (Equality is the same under
 * any deterministic collation, and a database's default collation is deterministic.) With
 * statistics taken while few jobs were active, the planner chose `jobs_active` for these
 * lookups, and every completion, failure or lock renewal read every active job of the queue.
 *
 * @example
 * ```ts
 * import { activeById } from './active.ts';
 * console.log(activeById('j.')); // j.state COLLATE "C" = 'active'
 * ```
 */
export const activeById = (alias = ''): string => `${alias}state COLLATE "C" = 'active'`;
