/**
 * A batch of jobs found by id, whatever the table's statistics say.
 *
 * @module
 */

/**
 * The condition "`alias` is a job of queue `queue` whose id is in `ids`" (a `text[]`
 * expression), for statements that take a batch of jobs by id. Each id is looked up on its own
 * through the primary key; the rows at those addresses (`ctid`) are locked in key order, and the
 * statement then reads them at their addresses (a TID scan).
 *
 * The lock comes first because a TID scan takes its rows in the table's order, which updates
 * shuffle: a completion that locked its jobs so could deadlock with a removal (`obliterate`,
 * `remove_set`), which locks them in key order, when both waited for a job the other held.
 *
 * Written as `queue = … AND id = ANY(…)`, the lookup was the planner's to choose, and statistics
 * that did not know the queue (one that is new since the table was last analyzed) made it cost
 * the queue at one row: it read the queue's every primary-key entry and filtered the ids, so
 * each completion of a batch read the whole queue. The Worker's drain fell to half.
 *
 * A statement that reaches a row by address skips it when another transaction updated the row
 * after the statement's snapshot: PostgreSQL rechecks the address on the row's newest version,
 * which the update moved. So `PgStore` runs such a statement again, with a new snapshot, for the
 * ids it did not take (`#byIds`). Callers keep their state and token conditions.
 *
 * @example
 * ```ts
 * import { jobsWithIds } from './by-ids.ts';
 * console.log(jobsWithIds('"conveyor"', 'j', 'q', 'ids').startsWith('j.ctid = ANY')); // true
 * ```
 */
export const jobsWithIds = (s: string, alias: string, queue: string, ids: string): string =>
  `${alias}.ctid = ANY(ARRAY(SELECT l.ctid FROM ${s}.jobs l
    WHERE l.ctid = ANY(${jobAddresses(s, queue, ids)}) ORDER BY l.id FOR UPDATE OF l))`;

/**
 * The addresses (`tid[]`) of the jobs of queue `queue` whose ids are in `ids`, each looked up on
 * its own through the primary key (see {@linkcode jobsWithIds}). A function that reads the same
 * locked jobs in several statements looks them up once with it.
 *
 * @example
 * ```ts
 * import { jobAddresses } from './by-ids.ts';
 * console.log(jobAddresses('"conveyor"', 'q', 'ids').startsWith('ARRAY(')); // true
 * ```
 */
export const jobAddresses = (s: string, queue: string, ids: string): string =>
  `ARRAY(SELECT (SELECT k.ctid FROM ${s}.jobs k
    WHERE k.queue = ${queue} AND k.id = w.id) FROM unnest(${ids}) AS w(id))`;
