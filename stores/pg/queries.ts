/**
 * Every SQL statement the store sends, built once per schema. Statements that change several
 * rows are single statements or calls of the schema's functions (see `migrations.ts`), so each
 * store operation is one atomic round trip.
 *
 * @module
 */

import {
  hasInput,
  INPUT_COLUMNS,
  inputColumn,
  inputRows,
  INSERT_COLUMNS,
  insertValues,
} from './columns.ts';
import type { SchemaNames } from './names.ts';
import { payloadSql, pollActive, watched } from './notify.ts';
import { claimColumns, jobColumns } from './rows.ts';
import { activeById } from './active.ts';
import { jobsWithIds } from './by-ids.ts';
import { defaultKeep, ownsKeep } from './keep.ts';

/** The SQL texts of one schema. */
export type Queries = ReturnType<typeof buildQueries>;

/**
 * A statement built for each input shape (see `packRows`), kept once built. A batch's shape
 * names which of thirty input keys it carries and how, so an application uses a handful; past
 * 256 a text is built anew each time rather than kept.
 */
function shaped(build: (shape: string) => string): (shape: string) => string {
  const built = new Map<string, string>();
  return (shape) => {
    let text = built.get(shape);
    if (text === undefined) {
      text = build(shape);
      if (built.size < 256) built.set(shape, text);
    }
    return text;
  };
}

const quoted = (states: string[]) => states.map((st) => `'${st}'`).join(', ');
/** The newest `keep` elements of the jsonb array `lines` (both SQL expressions), in order. */
const newest = (lines: string, keep: string) =>
  `(SELECT coalesce(jsonb_agg(e ORDER BY k), '[]'::jsonb)
    FROM jsonb_array_elements(${lines}) WITH ORDINALITY a(e, k)
    WHERE k > jsonb_array_length(${lines}) - ${keep})`;
const TERMINAL_LIST = quoted(['completed', 'failed']);
const TERMINAL = `(${TERMINAL_LIST})`;
/** The states `drain` and a scheduler's replacement remove: jobs that have not started. */
const PENDING_LIST = quoted(['waiting', 'delayed']);

/**
 * Builds the statements of a schema.
 *
 * @example
 * ```ts
 * import { schemaNames } from './names.ts';
 * import { buildQueries } from './queries.ts';
 * const q = buildQueries(schemaNames('conveyor'));
 * console.log(q.getJob.includes('"conveyor".jobs')); // true
 * ```
 */
// deno-lint-ignore explicit-function-return-type
export function buildQueries(n: SchemaNames) {
  const { s, reg } = n;
  const J = jobColumns();
  /** A statement over CTE `u` (rows with `id` and `seq`) that also publishes `kind` for them. */
  const emitting = (cte: string, kind: string, select = 'u.id') =>
    `WITH u AS (${cte})
     SELECT ${select}, (SELECT ${s}.emit($1::text, '${kind}', array_agg(id ORDER BY seq)) FROM u) AS _e
     FROM u`;
  // $3 is the name every saved job shares (the client knows), or null: then the names are
  // gathered one per job. FILTER skips the work an unused aggregate would do.
  const emitSaved = `${s}.emit(queue, state, array_agg(id ORDER BY seq),
      array_agg(jsonb_build_object('delayUntil', delay_until) ORDER BY seq)
        FILTER (WHERE state = 'delayed'),
      coalesce(array_agg(name ORDER BY seq) FILTER (WHERE $3::text IS NULL), ARRAY[$3::text]))`;
  // Input rows come in array order, so seq (and FIFO order) follows the input.
  const numbered = (shape: string) =>
    `(SELECT x.*, nextval(${reg('job_seq')}) AS seq FROM ${inputRows('$1::text::json', shape)} x)`;
  /** Inserts the input rows ($1 of `shape`, queue $2 unless a row names its own). */
  const insertInput = (shape: string, columns: string) =>
    `INSERT INTO ${s}.jobs (${INSERT_COLUMNS})
     SELECT ${
      insertValues(
        'y',
        `coalesce(${inputColumn('y', 'id', shape)}, y.seq::text)`,
        'y.seq',
        '$2::text',
        shape,
      )
    }
     FROM ${numbered(shape)} y
     RETURNING ${columns}`;
  /**
   * Saves rows ($1, packed with `shape`) that cannot conflict (or must fail on a conflict): ids
   * come back in order.
   */
  const insertNew = shaped((shape) =>
    `WITH ins AS (${insertInput(shape, 'queue, id, seq, state, name, delay_until')})
     SELECT array_agg(id ORDER BY seq) AS ids,
       (SELECT count(*) FROM (SELECT ${emitSaved} FROM ins GROUP BY queue, state) e) AS _e
     FROM ins`
  );
  /**
   * Saves rows that cannot conflict, all waiting in queue $2 with the one name $3: the common
   * bulk add. Like `insertNew`, with one sort of the ids and no grouping by queue and state.
   */
  const insertWaiting = shaped((shape) =>
    `WITH ins AS (${insertInput(shape, 'id, seq')}),
     a AS (SELECT array_agg(id ORDER BY seq) AS ids FROM ins)
     SELECT a.ids, ${s}.emit($2::text, 'waiting', a.ids, NULL, ARRAY[$3::text]) AS _e FROM a`
  );
  /**
   * Saves rows (packed with the input index), skipping those whose id exists: one result row
   * per input row. Rows with a custom id that exists are announced (`duplicated`, with that
   * id); a shape without custom ids leaves that part out of the statement.
   */
  const insertOrExisting = shaped((shape) => {
    const id = `coalesce(${inputColumn('s', 'id', shape)}, s.seq::text)`;
    const queue = hasInput('q', shape) ? 'coalesce(s.q, $2::text)' : '$2::text';
    const custom = hasInput('id', shape);
    const duplicated = custom
      ? `,
     d AS (SELECT ${s}.emit(${queue}, 'duplicated', array_agg(s.id ORDER BY s.i)) AS n
       FROM s LEFT JOIN ins ON ins.seq = s.seq WHERE ins.seq IS NULL AND s.id IS NOT NULL
       GROUP BY ${queue})`
      : '';
    return `WITH s AS MATERIALIZED (SELECT * FROM ${numbered(shape)} y),
     ins AS (
       INSERT INTO ${s}.jobs (${INSERT_COLUMNS})
       SELECT ${insertValues('s', id, 's.seq', '$2::text', shape)}
       FROM s
       ON CONFLICT DO NOTHING
       RETURNING queue, id, seq, state, name, delay_until
     ),
     e AS (SELECT ${emitSaved} AS n FROM ins GROUP BY queue, state)${duplicated}
     SELECT s.i, ${id} AS id, (ins.seq IS NOT NULL) AS inserted,
       (SELECT count(*) FROM e) AS _e${custom ? ', (SELECT count(*) FROM d) AS _d' : ''}
     FROM s LEFT JOIN ins ON ins.seq = s.seq ORDER BY s.i`;
  });
  const lifoParam = INPUT_COLUMNS.length + 2;
  /**
   * Saves one job from typed parameters ($1 queue, then `INPUT_COLUMNS` in order, then lifo),
   * with its notification built inline: the light-load path, with no JSON input to unpack and
   * no function call. Same columns, defaults and payload as the batch path.
   */
  const insertOne = `WITH ins AS (
       INSERT INTO ${s}.jobs (${INSERT_COLUMNS})
       SELECT ${insertValues('x', 'n::text', 'n', '$1::text')}
       FROM (SELECT NULL::text AS q, $${lifoParam}::boolean AS lifo, ${
    INPUT_COLUMNS.map(([c, t], k) => `$${k + 2}::${t} AS ${c}`).join(', ')
  }) x, nextval(${reg('job_seq')}) n
       RETURNING id, state, name, delay_until
     ), p AS (
       SELECT id, ${s}.channel($1::text) AS ch, ${
    payloadSql(
      s,
      'state',
      'json_build_array(id)::text',
      `CASE WHEN state = 'delayed'
        THEN ',"d":' || json_build_array(json_build_object('delayUntil', delay_until))::text
        ELSE '' END || ',"N":' || to_json(name)::text`,
    )
  } AS payload FROM ins
     ), ev AS (
       INSERT INTO ${s}.events (channel, payload, at)
       SELECT ch, payload, ${s}.now_ms() FROM p WHERE ${pollActive(s)}
     )
     SELECT id, pg_notify(ch, payload) AS _n FROM p`;
  /**
   * Claims up to $4 waiting jobs ($1 queue, $2 worker, $3 lock duration, $5 job name or null,
   * $6 the claim's token prefix: see `tokenPrefix`). A plain UPDATE … RETURNING, with no outer
   * query: the rows come back in no set order (the store sorts them), in the compact shape of
   * `claimColumns`, and `_w` says whether the queue is watched, in which case the store
   * publishes `active` for them with `emitActive`.
   *
   * The paused names are read once per claim; a queue with none (the EXISTS, also read once)
   * skips the per-job check of the job's name against them, 6% of a claim's time.
   *
   * One plan serves every FIFO claim. The count is read through a subquery and the claimed
   * rows are taken by a TID scan of their `ctid`s, so a plan made for the parameters costs what
   * the generic plan costs, and PostgreSQL keeps the generic one. With `LIMIT $4` and a join,
   * every claim was planned afresh once the table had statistics (the generic plan, costed for a
   * tenth of the backlog, joined through a sequential scan of the whole table). LIFO claims sort
   * the backlog and are still planned for their parameters.
   */
  const claim = (lifo: boolean) =>
    `WITH c AS (
       SELECT j.ctid AS tid FROM ${s}.jobs j
       WHERE j.queue = $1::text AND j.state = 'waiting' AND ($5::text IS NULL OR j.name = $5::text)
         AND (NOT EXISTS (SELECT 1 FROM ${s}.paused p WHERE p.queue = $1::text)
           OR NOT (ARRAY[j.name, '__all__']
             && ARRAY(SELECT p.name FROM ${s}.paused p WHERE p.queue = $1::text)))
       ORDER BY j.priority, ${lifo ? 'j.seq DESC' : 'j.order_key'}
       LIMIT (SELECT $4::integer)
       FOR UPDATE OF j SKIP LOCKED
     ), t AS (SELECT ${s}.now_ms() AS now)
     UPDATE ${s}.jobs j SET state = 'active', locked_by = $2::text,
       lock_until = t.now + $3::float8, lock_token = $6::text || to_hex(j.seq),
       processed_at = t.now, attempts_started = j.attempts_started + 1
     FROM t WHERE j.ctid = ANY(ARRAY(SELECT c.tid FROM c)) AND j.state = 'waiting'
     RETURNING ${claimColumns('j')}${lifo ? ', j.seq::float8 AS sq' : ''}, ${
      watched(s, '$1::text')
    } AS _w`;
  /**
   * Completes active jobs, fenced by token: $2 ids, $3 a JSON object that maps each id to its
   * input index, token and return value (a JSON text), $4-$6 the worker's removeOnComplete for
   * jobs without their own (`keepParams`: remove at once, keep count, keep age; all null without
   * one, when a job's opts are never read). Returns one row: `done`, the 0-based input indexes of
   * the completed jobs. In the same statement, `completed` is published only while the queue is
   * watched, and the follow-ups (dedup key, parent, removal) run only when some completed job
   * needs them. Each job is found by primary key, one id at a time (`jobsWithIds`), and matched
   * to its input through the map, a binary search in a `jsonb` object: `array_position` in the
   * arrays of ids took time in the square of the batch size, and a join with the unnested input
   * let the planner rescan the input once per job. The map is read once (`MATERIALIZED`): left
   * inline, the drain fell to a tenth once the generic plan took over, as if the map were parsed
   * for every lookup.
   */
  const at = (k: number) => `(m.m -> j.id ->> ${k})`;
  const completeJobs = `WITH t AS (SELECT ${s}.now_ms() AS now),
     m AS MATERIALIZED (SELECT $3::text::jsonb AS m),
     u AS (
       UPDATE ${s}.jobs j SET state = 'completed', returnvalue = ${at(2)},
         finished_at = t.now, locked_by = NULL, lock_until = NULL, lock_token = NULL,
         dk_count = ${defaultKeep('$5::integer', 'j.', 'rc')},
         dk_age = ${defaultKeep('$6::float8', 'j.', 'rc')}
       FROM t, m
       WHERE ${jobsWithIds(s, 'j', '$1::text', '$2::text[]')} AND ${activeById('j.')}
         AND j.lock_token = ${at(1)}
       RETURNING ${at(0)}::integer AS i, j.id, j.seq, j.returnvalue AS rv,
         j.rc_now OR CASE WHEN $4::boolean THEN NOT ${ownsKeep('j.', 'rc')} ELSE false END
           AS gone,
         j.parent_id IS NOT NULL OR (j.dedup_key IS NOT NULL AND j.dedup_expires_at IS NULL)
           AS follow
     )
     SELECT (SELECT array_agg(i) FROM u) AS done,
       (SELECT CASE WHEN ${watched(s, '$1::text')} THEN (SELECT ${s}.emit($1::text, 'completed',
         array_agg(id ORDER BY seq), array_agg(CASE WHEN octet_length(rv) <= 1000
           THEN jsonb_build_object('returnvalue', rv::jsonb) END ORDER BY seq)) FROM u) END) AS _e,
       (SELECT ${s}.complete_after($1::text, array_agg(id ORDER BY seq),
         array_agg(id ORDER BY seq) FILTER (WHERE gone)) FROM u WHERE follow OR gone
         HAVING count(*) > 0) AS _f`;
  const listOrder: Record<string, string> = {
    waiting: 'priority, order_key',
    delayed: 'delay_until, seq',
    completed: 'finished_at DESC, seq DESC',
    failed: 'finished_at DESC, seq DESC',
  };
  const keepRule = (st: string, p: string) =>
    `(state = '${st}' AND ((coalesce(${p}_count, dk_count) IS NOT NULL
        AND newer >= coalesce(${p}_count, dk_count))
      OR (coalesce(${p}_age, dk_age) IS NOT NULL
        AND finished_at <= t.now - coalesce(${p}_age, dk_age) * 1000)))`;
  return {
    insertOrExisting,
    insertNew,
    insertWaiting,
    insertOne,
    saveChecked: `SELECT idx, job_id, inserted FROM ${s}.save_checked($1::text, $2::text::json)`,
    existingIds: `SELECT x.q, x.id FROM json_to_recordset($1::text::json) AS x(q text, id text)
      WHERE EXISTS (SELECT 1 FROM ${s}.jobs j WHERE j.queue = x.q AND j.id = x.id)`,
    getJob: `SELECT ${J} FROM ${s}.jobs WHERE queue = $1::text AND id = $2::text`,
    removeJob: `SELECT ${s}.remove_set(ARRAY[$1::text], ARRAY[$2::text], $3::boolean) AS n`,
    addLog: `UPDATE ${s}.jobs SET logs = CASE WHEN $4::integer IS NULL
        THEN logs || jsonb_build_array($3::text)
        ELSE ${newest('logs || jsonb_build_array($3::text)', '$4::integer')} END
      WHERE queue = $1::text AND id = $2::text RETURNING jsonb_array_length(logs) AS n`,
    // One UPDATE: a racing addLog waits for the row and appends to the trimmed lines, or the
    // trim waits and re-reads the lines with the new one.
    trimLogs: `UPDATE ${s}.jobs SET logs = ${newest('logs', '$3::integer')}
      WHERE queue = $1::text AND id = $2::text RETURNING jsonb_array_length(logs) AS n`,
    findByDedup: `SELECT ${jobColumns('j')} FROM ${s}.dedup d
      JOIN ${s}.jobs j ON j.queue = d.queue AND j.id = d.job_id
      WHERE d.queue = $1::text AND d.key = $2::text AND CASE WHEN d.expires_at IS NULL
        THEN j.state NOT IN ${TERMINAL} ELSE d.expires_at > ${s}.now_ms() END`,
    claim: claim(false),
    claimLifo: claim(true),
    claimLimited: `SELECT ${J} FROM ${s}.claim_limited($1::text, $2::text, $3::float8,
      $4::integer, $5::text::jsonb, $6::text)`,
    extendLock: `UPDATE ${s}.jobs SET lock_until = ${s}.now_ms() + $3::float8
      WHERE queue = $1::text AND id = $2::text AND ${activeById()}
        AND ($4::text IS NULL OR lock_token = $4::text) RETURNING 1 AS ok`,
    /**
     * Extends the locks of jobs of queue $1 (ids $2) to now + $4 ms, each fenced by its token:
     * $3 maps each id to the tokens given for it. Returns the id and token of each job renewed.
     */
    extendLocks: `WITH m AS MATERIALIZED (SELECT $3::text::jsonb AS m)
      UPDATE ${s}.jobs j SET lock_until = ${s}.now_ms() + $4::float8 FROM m
      WHERE ${jobsWithIds(s, 'j', '$1::text', '$2::text[]')} AND ${activeById('j.')}
        AND (m.m -> j.id) ? j.lock_token
      RETURNING j.id, j.lock_token`,
    releaseLock: emitting(
      `UPDATE ${s}.jobs SET state = 'waiting', locked_by = NULL, lock_until = NULL,
         lock_token = NULL
       WHERE queue = $1::text AND id = $2::text AND ${activeById()}
         AND ($3::text IS NULL OR lock_token = $3::text) RETURNING id, seq`,
      'waiting',
    ),
    /**
     * Moves an active job ($2, token $3) to delayed until $4, or to waiting when that is not
     * in the future (the database clock, read once), and publishes the state it entered.
     */
    moveToDelayed: `WITH t AS (SELECT $4::float8 > ${s}.now_ms() AS later),
      u AS (
        UPDATE ${s}.jobs SET state = CASE WHEN t.later THEN 'delayed' ELSE 'waiting' END,
          delay_until = CASE WHEN t.later THEN $4::float8 ELSE 0 END,
          locked_by = NULL, lock_until = NULL, lock_token = NULL
        FROM t
        WHERE queue = $1::text AND id = $2::text AND ${activeById()}
          AND lock_token = $3::text
        RETURNING id, name, state, delay_until)
      SELECT ${s}.emit($1::text, u.state, ARRAY[u.id], CASE WHEN u.state = 'delayed'
        THEN ARRAY[jsonb_build_object('delayUntil', u.delay_until)] END, ARRAY[u.name]) AS _e
      FROM u`,
    /** Locks the parents ($1 queues, $2 ids) that new children are added to, in key order. */
    lockParents: `SELECT j.queue, j.id, j.state FROM ${s}.jobs j
      JOIN unnest($1::text[], $2::text[]) AS p(q, id) ON j.queue = p.q AND j.id = p.id
      ORDER BY j.queue, j.id FOR UPDATE OF j`,
    /** Counts new children ($1 parent queues, $2 parent ids, one entry per child). */
    addChildren: `UPDATE ${s}.jobs j SET pending_children = j.pending_children + p.n
      FROM (SELECT q, id, count(*)::integer AS n FROM unnest($1::text[], $2::text[]) AS x(q, id)
        GROUP BY q, id) p
      WHERE j.queue = p.q AND j.id = p.id`,
    /**
     * Parks an active job ($2, token $3) in waiting-children when it has unfinished children:
     * one row, `outcome` 'moved' or 'none'; no row when the token does not hold the job.
     */
    moveToWaitingChildren: `WITH j AS (
        SELECT id, name, pending_children FROM ${s}.jobs
        WHERE queue = $1::text AND id = $2::text AND ${activeById()}
          AND lock_token = $3::text
        FOR UPDATE),
      u AS (
        UPDATE ${s}.jobs SET state = 'waiting-children', locked_by = NULL, lock_until = NULL,
          lock_token = NULL
        FROM j WHERE ${s}.jobs.queue = $1::text AND ${s}.jobs.id = j.id AND j.pending_children > 0
        RETURNING ${s}.jobs.id, ${s}.jobs.name)
      SELECT CASE WHEN EXISTS (SELECT 1 FROM u) THEN 'moved' ELSE 'none' END AS outcome,
        (SELECT ${s}.emit($1::text, 'waiting-children', ARRAY[u.id], NULL, ARRAY[u.name]) FROM u)
          AS _e
      FROM j`,
    emitActive: `SELECT ${s}.emit($1::text, 'active', $2::text[], NULL, $3::text[]) AS n`,
    completeJobs,
    failJobs: `SELECT ${s}.fail_jobs($1::text, $2::text::json, $3::boolean, $4::integer,
      $5::float8) AS i`,
    countState: `SELECT count(*)::integer AS n FROM ${s}.jobs WHERE queue = $1::text
      AND state = $2::text`,
    list: (state: string) =>
      `SELECT ${J} FROM ${s}.jobs WHERE queue = $1::text AND state = $2::text
       ORDER BY ${listOrder[state] ?? 'seq'} OFFSET $3::bigint LIMIT $4::bigint`,
    nextDelayed: `SELECT min(delay_until) AS t FROM ${s}.jobs WHERE queue = $1::text
      AND state = 'delayed'`,
    // The due jobs are locked in key order, as a removal locks a batch of jobs (see
    // `remove_set`), not in the order they fall due: locking them as the scan met them, a
    // promotion could hold one that a removal wants while it waits for one the removal holds.
    promote: emitting(
      `WITH due AS (
         SELECT id FROM ${s}.jobs
         WHERE queue = $1::text AND state = 'delayed' AND delay_until <= $2::float8
         ORDER BY queue, id FOR UPDATE
       )
       UPDATE ${s}.jobs j SET state = 'waiting', delay_until = 0 FROM due
       WHERE j.queue = $1::text AND j.id = due.id AND j.state = 'delayed'
       RETURNING j.id, j.seq`,
      'waiting',
    ),
    pause: `WITH i AS (INSERT INTO ${s}.paused (queue, name) VALUES ($1::text, $2::text)
        ON CONFLICT DO NOTHING)
      SELECT ${s}.emit($1::text, 'paused', ARRAY[NULL::text],
        ARRAY[jsonb_build_object('jobName', $2::text)]) AS n`,
    resume: `WITH d AS (DELETE FROM ${s}.paused WHERE queue = $1::text AND name = $2::text)
      SELECT ${s}.emit($1::text, 'resumed', ARRAY[NULL::text],
        ARRAY[jsonb_build_object('jobName', $2::text)]) AS n`,
    // The manual rate limit is the rates row keyed 'manual', its end (database clock) in win.
    // Set under the lock of limited claims (claim_limited's): a claim reads the limit once,
    // then jobs statement by statement, so a limit set while it ran could let it take a job put
    // back after the limit. Now the limit waits for the claim in flight and holds every later one.
    setRateLimit: `WITH l AS (SELECT pg_advisory_xact_lock(
        hashtextextended(${n.lit} || '/claim/' || $1::text, 0))),
      i AS (INSERT INTO ${s}.rates (queue, key, win, n)
        SELECT $1::text, 'manual', ${s}.now_ms() + $2::float8, 0 FROM l
        ON CONFLICT (queue, key) DO UPDATE SET win = EXCLUDED.win, n = 0)
      SELECT ${s}.emit($1::text, 'rate-limit', ARRAY[NULL::text],
        ARRAY[jsonb_build_object('ttl', $2::float8)]) AS n`,
    // With $2 (maxJobs), else the queue's window ('', its end in win) when it counted $2 claims.
    rateLimitTtl: `WITH t AS (SELECT ${s}.now_ms() AS now)
      SELECT greatest(0, ceil(coalesce(
        (SELECT win FROM ${s}.rates WHERE queue = $1::text AND key = 'manual' AND win > t.now),
        (SELECT win FROM ${s}.rates
          WHERE queue = $1::text AND key = '' AND n >= $2::integer AND win > t.now),
        t.now) - t.now))::float8 AS ttl FROM t`,
    removeRateLimit: `WITH d AS (DELETE FROM ${s}.rates
        WHERE queue = $1::text AND key IN ('', 'manual') RETURNING key, win)
      SELECT coalesce((SELECT bool_or(key = 'manual' AND win > ${s}.now_ms()) FROM d), false)
        AS was, ${s}.emit($1::text, 'rate-limit', ARRAY[NULL::text],
        ARRAY[jsonb_build_object('ttl', 0)]) AS n`,
    pausedNames: `SELECT name FROM ${s}.paused WHERE queue = $1::text ORDER BY name`,
    stalled: `SELECT ${J} FROM ${s}.jobs WHERE queue = $1::text AND state = 'active'
      AND lock_until + $2::float8 < ${s}.now_ms() ORDER BY lock_until`,
    requeueStalled: `SELECT job_id, outcome, job FROM ${s}.requeue_stalled($1::text, $2::integer)`,
    clean: `WITH t AS (SELECT ${s}.now_ms() AS now),
      x AS (SELECT queue, id FROM ${s}.jobs, t WHERE queue = $1::text AND state = $2::text
        AND (CASE WHEN state IN ${TERMINAL} THEN finished_at ELSE created_at END)
          < t.now - $3::float8
        ORDER BY CASE WHEN state IN ${TERMINAL} THEN finished_at ELSE created_at END, seq
        LIMIT $4::bigint)
      SELECT ${s}.remove_set(array_agg(queue), array_agg(id), false, ARRAY[$2::text]) AS n
      FROM x`,
    prune: `WITH t AS (SELECT ${s}.now_ms() AS now),
      r AS (SELECT queue, id, state, finished_at, rc_count, rc_age, rf_count, rf_age, dk_count,
          dk_age,
          row_number() OVER (PARTITION BY state ORDER BY finished_at DESC, seq DESC) - 1 AS newer
        FROM ${s}.jobs WHERE queue = $1::text AND state IN ${TERMINAL}),
      x AS (SELECT queue, id FROM r, t WHERE ${keepRule('completed', 'rc')}
        OR ${keepRule('failed', 'rf')})
      SELECT ${s}.remove_set(array_agg(queue), array_agg(id), false, ARRAY[${TERMINAL_LIST}],
        finished => true) AS n
      FROM x`,
    drain: `SELECT ${s}.remove_set(array_agg(queue), array_agg(id), false, ARRAY[${PENDING_LIST}])
      AS n FROM ${s}.jobs
      WHERE queue = $1::text AND state IN (${PENDING_LIST})`,
    obliterate: `SELECT ${s}.obliterate($1::text, $2::boolean) AS _o`,
    /**
     * The queues with jobs or schedulers. The jobs' queues are read by skipping from one queue to
     * the next through the primary key (a recursive query: one index probe a queue), not by
     * reading every job: 350,000 jobs in one queue took 44-55 ms with DISTINCT.
     */
    listQueues: `WITH RECURSIVE n AS (
        SELECT (SELECT min(queue) FROM ${s}.jobs) AS queue
        UNION ALL
        SELECT (SELECT min(j.queue) FROM ${s}.jobs j WHERE j.queue > n.queue) FROM n
        WHERE n.queue IS NOT NULL
      )
      SELECT queue FROM (SELECT queue FROM n WHERE queue IS NOT NULL
        UNION SELECT queue FROM ${s}.schedulers) x ORDER BY queue`,
    childDone: `SELECT ${s}.child_done($1::text, $2::text, 1) AS state`,
    failParent: `SELECT ${s}.fail_parent($1::text, $2::text, $3::text) AS ok`,
    children: `SELECT ${J} FROM ${s}.jobs WHERE parent_queue = $1::text AND parent_id = $2::text
      ORDER BY seq`,
    childrenValues: `SELECT child_queue, child_id, value FROM ${s}.child_values
      WHERE parent_queue = $1::text AND parent_id = $2::text ORDER BY child_queue, child_id`,
    groupCount: `SELECT count(*)::integer AS n FROM ${s}.jobs WHERE queue = $1::text
      AND group_id = $2::text AND state = $3::text`,
    lockScheduler:
      `SELECT pg_advisory_xact_lock(hashtextextended(${n.lit} || '/scheduler/' || $1::text
      || '/' || $2::text, 0)) AS l`,
    schedulerForUpdate: `SELECT run_count, created_at FROM ${s}.schedulers
      WHERE queue = $1::text AND id = $2::text FOR UPDATE`,
    /** Locks a scheduler's pending jobs (claims skip them) and counts those never started. */
    /**
     * Removes a scheduler's pending jobs, locked first (claims skip them), and counts those that
     * never started (`unstarted`).
     */
    removeSchedulerJobs: `WITH x AS (SELECT queue, id, attempts_started FROM ${s}.jobs
        WHERE queue = $1::text AND scheduler_id = $2::text AND state IN (${PENDING_LIST})
        FOR UPDATE)
      SELECT ${s}.remove_set(array_agg(queue), array_agg(id), false, ARRAY[${PENDING_LIST}]) AS n,
        count(*) FILTER (WHERE attempts_started = 0)::integer AS unstarted
      FROM x`,
    upsertScheduler: `INSERT INTO ${s}.schedulers (queue, id, name, data, opts, repeat,
        next_run_at, run_count, created_at)
      VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::float8,
        $8::integer, $9::float8)
      ON CONFLICT (queue, id) DO UPDATE SET name = EXCLUDED.name, data = EXCLUDED.data,
        opts = EXCLUDED.opts, repeat = EXCLUDED.repeat, next_run_at = EXCLUDED.next_run_at,
        run_count = EXCLUDED.run_count`,
    getScheduler: `SELECT * FROM ${s}.schedulers WHERE queue = $1::text AND id = $2::text`,
    listSchedulers: `SELECT * FROM ${s}.schedulers WHERE queue = $1::text
      ORDER BY next_run_at NULLS LAST, id`,
    deleteScheduler: `DELETE FROM ${s}.schedulers WHERE queue = $1::text AND id = $2::text
      RETURNING 1 AS ok`,
    advanceScheduler: `UPDATE ${s}.schedulers SET next_run_at = $4::float8,
        run_count = run_count + $5::integer
      WHERE queue = $1::text AND id = $2::text AND next_run_at IS NOT DISTINCT FROM $3::float8
      RETURNING 1 AS ok`,
  };
}
