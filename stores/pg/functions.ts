/**
 * The schema's SQL functions (claims, batch finish, events, flow bookkeeping). They are not
 * versioned one by one: `migrate` runs this whole script (`CREATE OR REPLACE`) in the same
 * transaction whenever it applies a migration, so a change to a function comes with a new
 * migration version (which may change nothing else).
 *
 * @module
 */

import type { SchemaNames } from './names.ts';
import { payloadSql, pollActive, watched, WATCHED_SQL } from './notify.ts';
import { inputRows, INSERT_COLUMNS, insertValues } from './columns.ts';
import { activeById } from './active.ts';
import { jobAddresses, jobsWithIds } from './by-ids.ts';
import { defaultKeep, ownsKeep } from './keep.ts';

/**
 * A subquery that locks the jobs of a set, held in the arrays dq, di and dd (queue, id, depth),
 * in the order of every removal: deepest first, then key order. `where` narrows it (on j and d).
 * It returns each job's queue, id, state and parent_id as locked, and its depth.
 */
const lockInOrder = (s: string, where = 'true'): string =>
  `SELECT j.queue, j.id, j.state, j.parent_id, d.depth FROM ${s}.jobs j
        JOIN unnest(dq, di, dd) AS d(queue, id, depth) ON j.queue = d.queue AND j.id = d.id
        WHERE ${where} ORDER BY d.depth DESC, j.queue, j.id FOR UPDATE OF j`;

/**
 * The condition of delete_top (on j, with its arguments q, d0 and force): queue q's jobs with no
 * parent or named in d0; without force, an active one raises conveyor:job_active.
 */
const topJobs = (s: string): string =>
  `j.queue = q AND (j.parent_id IS NULL OR j.id = ANY(d0))
        AND (force OR j.state <> 'active' OR ${s}.refuse_active(q, j.id))`;

/**
 * The SQL that (re)creates every function of a schema.
 *
 * @example
 * ```ts
 * import { functionsSql } from './functions.ts';
 * import { schemaNames } from './names.ts';
 * console.log(functionsSql(schemaNames('conveyor')).includes('"conveyor".emit')); // true
 * ```
 */
export const functionsSql = ({ s, lit, reg }: SchemaNames): string => `
-- The database clock, in ms since the epoch: every lock and timestamp the store sets uses it.
CREATE OR REPLACE FUNCTION ${s}.now_ms() RETURNS float8 LANGUAGE sql VOLATILE AS
$$ SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 $$;

-- The NOTIFY channel of a queue: always 35 bytes, whatever the queue name's length.
CREATE OR REPLACE FUNCTION ${s}.channel(q text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT 'cv_' || md5(${lit} || '/' || q) $$;

CREATE OR REPLACE FUNCTION ${s}.send(ch text, payload text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(ch, payload);
  IF ${pollActive(s)} THEN
    INSERT INTO ${s}.events (channel, payload, at) VALUES (ch, payload, ${s}.now_ms());
  END IF;
END $$;

-- Publishes events of one kind for many jobs of a queue, coalesced into as few notifications
-- as fit NOTIFY's 8000-byte limit. The payload holds parallel arrays: ids (i), and optionally
-- data (d) and job names (n); one name shared by every job (repeated, or given as a one-element
-- array) is sent once (N), and data that is
-- null for every job is left out. A batch too big for one notification is sent in slices; a
-- single job whose data or name does not fit is sent without them. \`active\` and \`completed\`
-- (the events of every claim and completion) are sent only while the queue is watched.
CREATE OR REPLACE FUNCTION ${s}.emit(q text, kind text, ids text[], datas jsonb[] DEFAULT NULL,
  names text[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer := coalesce(cardinality(ids), 0);
  -- One name for every job: given once (a one-element array) or repeated.
  shared boolean := names[1] IS NOT NULL
    AND (cardinality(names) = 1 OR names = array_fill(names[1], ARRAY[n]));
  payload text;
  size integer;
  sent integer := 0;
BEGIN
  IF n = 0 THEN RETURN 0; END IF;
  -- Claims and completions are announced only while a process watches the queue for them.
  IF kind = ANY(${WATCHED_SQL}) AND NOT ${watched(s, 'q')} THEN RETURN 0; END IF;
  IF datas IS NOT NULL AND cardinality(array_remove(datas, NULL)) = 0 THEN datas := NULL; END IF;
  payload := ${
  payloadSql(
    s,
    'kind',
    'array_to_json(ids)::text',
    `CASE WHEN datas IS NULL THEN '' ELSE ',"d":' || array_to_json(datas)::text END
    || CASE WHEN names IS NULL THEN ''
      WHEN shared THEN ',"N":' || to_json(names[1])::text
      ELSE ',"n":' || array_to_json(names)::text END`,
  )
};
  IF octet_length(payload) <= 7900 THEN
    PERFORM ${s}.send(${s}.channel(q), payload);
    RETURN 1;
  END IF;
  IF n = 1 THEN
    IF datas IS NOT NULL THEN RETURN ${s}.emit(q, kind, ids, NULL, names); END IF;
    IF names IS NOT NULL THEN RETURN ${s}.emit(q, kind, ids, NULL, NULL); END IF;
    RAISE WARNING 'conveyor: job id too long for a notification';
    RETURN 0;
  END IF;
  size := greatest(1, n / (octet_length(payload) / 6000 + 1));
  FOR k IN 0 .. (n - 1) / size LOOP
    sent := sent + ${s}.emit(q, kind, ids[k * size + 1 : (k + 1) * size],
      datas[k * size + 1 : (k + 1) * size],
      CASE WHEN shared THEN names[1:1] ELSE names[k * size + 1 : (k + 1) * size] END);
  END LOOP;
  RETURN sent;
END $$;

-- A child of (pq, pid) finished (n of them): the pending count goes down, and a parent in
-- waiting-children moves on at zero: to waiting, or, with a numeric opts.delay, to delayed until
-- now + delay (BullMQ counts a flow parent's delay from its children's end). Returns the
-- parent's state (null if missing).
CREATE OR REPLACE FUNCTION ${s}.child_done(pq text, pid text, n integer) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  p record;
  delay float8;
  until float8;
  new_state text;
BEGIN
  SELECT state, pending_children, opts::jsonb -> 'delay' AS delay INTO p FROM ${s}.jobs
  WHERE queue = pq AND id = pid FOR UPDATE;
  IF NOT FOUND THEN RETURN NULL; END IF;
  IF p.state <> 'waiting-children' OR p.pending_children - n > 0 THEN
    UPDATE ${s}.jobs SET pending_children = greatest(pending_children - n, 0)
    WHERE queue = pq AND id = pid;
    RETURN p.state;
  END IF;
  delay := CASE WHEN jsonb_typeof(p.delay) = 'number' THEN p.delay::text::float8 END;
  until := CASE WHEN delay > 0 THEN ${s}.now_ms() + delay ELSE 0 END;
  new_state := CASE WHEN until > 0 THEN 'delayed' ELSE 'waiting' END;
  UPDATE ${s}.jobs SET pending_children = 0, state = new_state, delay_until = until
  WHERE queue = pq AND id = pid;
  IF new_state = 'delayed' THEN
    PERFORM ${s}.emit(pq, 'delayed', ARRAY[pid],
      ARRAY[jsonb_build_object('delayUntil', until)]);
  ELSE
    PERFORM ${s}.emit(pq, 'waiting', ARRAY[pid]);
  END IF;
  RETURN new_state;
END $$;

-- Jobs (roots) and, when deep, all their descendants in any queue: each once, with whether it
-- is one of the roots and its greatest depth below them. The walk has no duplicate check (UNION
-- ALL): a job has one parent, so the walk reaches a job once from each root above it, each time
-- at another depth, and a check at every step would remove nothing.
CREATE OR REPLACE FUNCTION ${s}.family(qs text[], ids text[], deep boolean)
RETURNS TABLE (queue text, id text, root boolean, depth integer) LANGUAGE sql STABLE AS $$
  WITH RECURSIVE t(queue, id, root, depth) AS (
    SELECT x.q COLLATE "C", x.i COLLATE "C", true, 0 FROM unnest(qs, ids) AS x(q, i)
    UNION ALL
    SELECT j.queue, j.id, false, t.depth + 1 FROM ${s}.jobs j JOIN t ON j.parent_queue = t.queue
      AND j.parent_id = t.id
    WHERE deep
  )
  SELECT queue, id, bool_or(root), max(depth) FROM t GROUP BY 1, 2
$$;

-- Raises conveyor:job_active, naming the job (queue aq, id ai), when ai is not null; else
-- returns false (so that a statement can call it for a row it finds active).
CREATE OR REPLACE FUNCTION ${s}.refuse_active(aq text, ai text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF ai IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'conveyor:job_active',
      DETAIL = json_build_object('queue', aq, 'id', ai)::text;
  END IF;
  RETURN false;
END $$;

-- Parents count removed unfinished children as finished (pqs, pids: a parent's queue and id,
-- once per child; child_done locks each parent), in key order.
CREATE OR REPLACE FUNCTION ${s}.count_removed(pqs text[], pids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT x.pq, x.pid, count(*)::integer AS n
    FROM unnest(pqs, pids) AS x(pq, pid)
    GROUP BY 1, 2 ORDER BY x.pq COLLATE "C", x.pid COLLATE "C"
  LOOP
    PERFORM ${s}.child_done(r.pq, r.pid, r.n);
  END LOOP;
END $$;

-- Deletes a set of jobs its caller has locked (dq, di; dr: which of them are roots), releases
-- their dedup keys, drops the child values kept for them and publishes removed (except in the
-- queue silent); then an unfinished root counts as finished for its parent when the parent
-- stays (count_removed, after the set's locks). Returns how many roots it deleted.
CREATE OR REPLACE FUNCTION ${s}.drop_set(dq text[], di text[], dr boolean[], silent text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  r record;
  pqs text[];
  pids text[];
  total integer := 0;
BEGIN
  SELECT array_agg(j.parent_queue), array_agg(j.parent_id) INTO pqs, pids
  FROM unnest(dq, di, dr) AS d(queue, id, root)
  JOIN ${s}.jobs j ON j.queue = d.queue AND j.id = d.id
  WHERE d.root AND j.parent_id IS NOT NULL AND j.state NOT IN ('completed', 'failed')
    AND NOT j.counted;
  FOR r IN
    WITH del AS (
      DELETE FROM ${s}.jobs j USING unnest(dq, di, dr) AS d(queue, id, root)
      WHERE j.queue = d.queue AND j.id = d.id
      RETURNING j.queue, j.id, j.dedup_key, j.seq, d.root
    ), dk AS (
      DELETE FROM ${s}.dedup x USING del WHERE x.queue = del.queue AND x.key = del.dedup_key
        AND x.job_id = del.id
    ), cv AS (
      DELETE FROM ${s}.child_values v USING del WHERE v.parent_queue = del.queue
        AND v.parent_id = del.id
    )
    SELECT queue, array_agg(id ORDER BY seq) AS ids, count(*) FILTER (WHERE root) AS roots
    FROM del GROUP BY queue
  LOOP
    IF r.queue IS DISTINCT FROM silent THEN
      PERFORM ${s}.emit(r.queue, 'removed', r.ids);
    END IF;
    total := total + r.roots;
  END LOOP;
  -- A parent in the set is gone by now: child_done finds nothing to count.
  PERFORM ${s}.count_removed(pqs, pids);
  RETURN total;
END $$;

-- Removes jobs and all their descendants (any queue). Unfinished roots count as finished for
-- their parent (unless the parent goes too). Releases dedup keys, publishes removed. Returns how
-- many of the given jobs (roots) were removed.
-- The jobs are locked first, descendants before ancestors and then in key order: the order in
-- which a completion or failure locks a child and then its parent, so a removal waits for them
-- (or they for it) and never deadlocks with them; a claim skips what is locked here. States are
-- read after the lock, so two removals (or a removal and a completion) of one child count it
-- once for its parent. A child added while the descendants were being read (its save held the
-- parent's lock, which this waited for) is found by looking for children of the set outside it
-- once every job of the set is locked (one level down: a job added under that new child has the
-- child as its parent, so the child is found): then
-- the locks are given back (the block's subtransaction rolls back) and taken again in order,
-- with the new child, so a child is never left behind without its parent. Once every job of
-- the set is locked, no child can be added to any of them until this commits.
-- With states: only roots still in one of these states are removed (a job claimed since it was
-- picked stays). With unless_active (removeJob's option): raises conveyor:job_active, with the
-- active job's queue and id, when one of the jobs is active. With finished (finished jobs going
-- by removeOnComplete / removeOnFail: at finish time, or by their limits in pruneFinished):
-- just the given jobs go, as BullMQ drops just the finished job; their children stay (a running
-- one finishes normally, without a parent step). The jobs of pruneFinished (given states) are
-- locked descendants first, as by any removal (so as not to deadlock with one); at finish time
-- the caller holds their locks already. With silent (a queue name: finish time's), the jobs of
-- that queue go without a removed event.
CREATE OR REPLACE FUNCTION ${s}.remove_set(qs text[], ids text[],
  unless_active boolean DEFAULT false, states text[] DEFAULT NULL,
  finished boolean DEFAULT false, silent text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  r record;
  dq text[];
  di text[];
  dr boolean[];
  dd integer[];
  kq text[];
  ki text[];
  inside bigint;
  outside bigint;
BEGIN
  LOOP
    -- With finished, just the given jobs, each at its greatest depth below the others (read
    -- only for pruneFinished: the lock order).
    SELECT array_agg(f.queue), array_agg(f.id), array_agg(f.root), array_agg(f.depth)
    INTO dq, di, dr, dd FROM ${s}.family(qs, ids, NOT finished OR states IS NOT NULL) f
    WHERE f.root OR NOT finished;
    IF finished THEN
      -- No descendant goes: none to read again.
      PERFORM 1 FROM (${lockInOrder(s)}) x;
      EXIT;
    END IF;
    BEGIN
      -- The jobs locked that the walk found under a parent of the set (a parent is never
      -- changed but to null): children of the set, in it.
      SELECT count(*) FILTER (WHERE x.depth > 0 AND x.parent_id IS NOT NULL) INTO inside
      FROM (${lockInOrder(s)}) x;
      -- A child of the set outside it: one level down is enough (a job added under a new child
      -- has that child as its parent, and the child is found here). Counted, the set's children
      -- less those in it, not matched against the set: a match let a generic plan (a session's
      -- sixth call) scan the whole set again for each child, quadratic on a large set.
      SELECT count(*) - inside INTO outside FROM unnest(dq, di) AS d(queue, id)
      JOIN ${s}.jobs j ON j.parent_queue = d.queue AND j.parent_id = d.id;
      IF outside > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CVR01', MESSAGE = 'conveyor:descendants_changed';
      END IF;
      EXIT;
    EXCEPTION WHEN SQLSTATE 'CVR01' THEN
      NULL; -- read the descendants again and lock them all in order
    END;
  END LOOP;
  IF states IS NOT NULL THEN
    -- Keep the roots still in those states, and their descendants (unless finished).
    SELECT array_agg(j.queue), array_agg(j.id) INTO kq, ki
    FROM ${s}.jobs j JOIN unnest(dq, di, dr) AS d(queue, id, root)
      ON j.queue = d.queue AND j.id = d.id
    WHERE d.root AND j.state = ANY(states);
    SELECT array_agg(f.queue), array_agg(f.id), array_agg(f.root) INTO dq, di, dr
    FROM ${s}.family(kq, ki, NOT finished) f;
  END IF;
  IF dq IS NULL THEN RETURN 0; END IF;
  IF unless_active THEN
    SELECT j.queue, j.id INTO r FROM ${s}.jobs j JOIN unnest(dq, di) AS d(queue, id)
      ON j.queue = d.queue AND j.id = d.id
    WHERE ${activeById('j.')} LIMIT 1;
    IF FOUND THEN PERFORM ${s}.refuse_active(r.queue, r.id); END IF;
  END IF;
  RETURN ${s}.drop_set(dq, di, dr, silent);
END $$;

-- For obliterate: deletes, in key order, the top of its set in queue q: the jobs with no parent,
-- and those of d0 (jobs of q whose parent is outside the set). An index scan deletes, and so
-- locks, rows in its index's order; with sequential and bitmap scans off for this function, the
-- primary key's index (the only index that holds every job of q) is the planner's only way to
-- them. Without force, a job found active (after any wait for its lock: the condition is tested
-- again on the row as locked) raises conveyor:job_active through refuse_active. Returns the
-- parent of each unfinished job of d0 that had not counted yet (pqs, pids, for count_removed).
-- Rows are read back only with d0: RETURNING fetches each deleted row again, which on a large
-- queue doubles the time.
CREATE OR REPLACE FUNCTION ${s}.delete_top(q text, d0 text[], force boolean,
  OUT pqs text[], OUT pids text[])
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off SET plan_cache_mode = force_custom_plan
SET jit = off AS $$
BEGIN
  IF cardinality(d0) = 0 THEN
    DELETE FROM ${s}.jobs j WHERE ${topJobs(s)};
  ELSE
    WITH d AS (
      DELETE FROM ${s}.jobs j WHERE ${topJobs(s)}
      RETURNING j.parent_queue, j.parent_id, j.state, j.counted
    )
    SELECT array_agg(d.parent_queue), array_agg(d.parent_id) INTO pqs, pids FROM d
    WHERE d.parent_id IS NOT NULL AND d.state NOT IN ('completed', 'failed') AND NOT d.counted;
  END IF;
END $$;

-- Removes everything of queue q: its jobs with their descendants in other queues, as removeJob
-- removes a job (an unfinished job counts as finished for a parent that stays; removed is
-- published in the other queues, not in q), then q's pauses, groups, rate-limit rows and
-- schedulers, and dedup keys and child values no job holds. Without force, raises
-- conveyor:job_active (naming the job) when one of those jobs is active, and removes nothing. A
-- job saved into q while this runs (not yet committed when q's jobs are deleted) stays, as if
-- saved after it.
-- Only q's jobs with a link (a parent, or a child in any queue) are read, with all their
-- descendants (their family), as remove_set reads a set. q's other jobs, most of a large queue,
-- have neither parent nor child: they sit at the top of the set (depth 0), with the family's
-- roots whose parent is outside it, and delete_top deletes that whole top in one pass.
-- Lock order: the family below the top, deepest first and then in key order; then the top, in
-- key order (delete_top); then the parents outside the set that count a removed child
-- (count_removed, in key order); drop_set then deletes the family below the top, which this
-- holds already. It is the order remove_set takes over the same set, and no transaction that
-- locks a child before its parent can deadlock with it:
-- - a completion or failure locks its jobs (of one queue) in key order, through the primary
--   key, then their parents in key order, then further up. Here every child is locked before
--   its parent (a child sits deeper in the set, or its parent is outside it and locked last),
--   and the top in key order;
-- - another removal locks its set in the same order;
-- - a save locks the parent of a new child before it inserts the child, so no child can be
--   added to a job this holds. A child saved before that (after the set was read) is never
--   locked here ahead of its parent: it is found after the deletes (a child of the family left,
--   or a child of q whose parent is gone and was not gone at the read), and the block is undone
--   (its subtransaction rolls back, giving the locks back) and run again, with it;
-- - claims skip what is locked here.
-- One case is left, as in remove_set: a worker's batch that mixes depths (say a child of a job
-- of q with a job of no parent, both active) locks them in key order, not deepest first.
-- Without force, an active job of q seen before any lock refuses at once; with force, the
-- server may end one of the two with a deadlock error.
CREATE OR REPLACE FUNCTION ${s}.obliterate(q text, force boolean) RETURNS void
LANGUAGE plpgsql
-- Sets of many thousand jobs sorted and hashed in memory; no JIT compilation (on these one-off
-- statements over many rows it costs more than it saves). No statement here matches rows against
-- a whole set, which a generic plan (a session's sixth call) could do once per row.
SET work_mem = '64MB' SET jit = off AS $$
DECLARE
  dq text[];
  di text[];
  dr boolean[];
  dd integer[];
  d0 text[];
  kq text[];
  ki text[];
  lq text[];
  li text[];
  pqs text[];
  pids text[];
  aq text;
  ai text;
  left_behind bigint;
BEGIN
  IF NOT force THEN
    PERFORM ${s}.refuse_active(q,
      (SELECT j.id FROM ${s}.jobs j WHERE j.queue = q AND j.state = 'active' LIMIT 1));
  END IF;
  LOOP
    -- q's jobs with a parent, and those with a child (in any queue), with their descendants.
    di := ARRAY(SELECT j.id FROM ${s}.jobs j WHERE j.queue = q AND j.parent_id IS NOT NULL)
      || ARRAY(
        SELECT DISTINCT p.id FROM ${s}.jobs c
        JOIN ${s}.jobs p ON p.queue = c.parent_queue AND p.id = c.parent_id
        WHERE c.parent_queue = q AND p.parent_id IS NULL
      );
    SELECT array_agg(f.queue), array_agg(f.id), array_agg(f.root), array_agg(f.depth)
    INTO dq, di, dr, dd FROM ${s}.family(array_fill(q, ARRAY[cardinality(di)]), di, true) f;
    -- Its top jobs with a parent (outside the set, or gone); read apart from the family, as a
    -- parent is never changed but to null.
    d0 := ARRAY(
      SELECT d.id FROM unnest(di, dd) AS d(id, depth)
      JOIN ${s}.jobs j ON j.queue = q AND j.id = d.id
      WHERE d.depth = 0 AND j.parent_id IS NOT NULL
    );
    -- Children of q's jobs whose parent is gone already: they stay.
    SELECT array_agg(c.queue), array_agg(c.id) INTO lq, li FROM ${s}.jobs c
    WHERE c.parent_queue = q AND c.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM ${s}.jobs p WHERE p.queue = q AND p.id = c.parent_id);
    BEGIN
      SELECT array_agg(x.queue), array_agg(x.id),
        (array_agg(x.queue) FILTER (WHERE x.state = 'active'))[1],
        (array_agg(x.id) FILTER (WHERE x.state = 'active'))[1]
      INTO kq, ki, aq, ai FROM (${lockInOrder(s, 'd.depth > 0')}) x;
      IF NOT force THEN PERFORM ${s}.refuse_active(aq, ai); END IF;
      SELECT t.pqs, t.pids INTO pqs, pids FROM ${s}.delete_top(q, d0, force) t;
      PERFORM ${s}.count_removed(pqs, pids);
      -- The family below the top: each has its parent in the set, so none counts for it.
      PERFORM ${s}.drop_set(kq, ki, array_fill(false, ARRAY[coalesce(cardinality(ki), 0)]), q);
      -- A child added meanwhile: of the family (a child of it left), or of q's other jobs (a
      -- child of q without its parent, beyond those that were so before). Counted, not matched
      -- against a set.
      SELECT count(*) INTO left_behind FROM unnest(dq, di) AS d(queue, id)
      JOIN ${s}.jobs c ON c.parent_queue = d.queue AND c.parent_id = d.id;
      SELECT left_behind + count(*) INTO left_behind FROM ${s}.jobs c
      WHERE c.parent_queue = q AND c.parent_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM ${s}.jobs p WHERE p.queue = q AND p.id = c.parent_id);
      SELECT left_behind - count(*) INTO left_behind FROM unnest(lq, li) AS e(queue, id)
      JOIN ${s}.jobs c ON c.queue = e.queue AND c.id = e.id
      WHERE c.parent_queue = q
        AND NOT EXISTS (SELECT 1 FROM ${s}.jobs p WHERE p.queue = q AND p.id = c.parent_id);
      IF left_behind > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CVR01', MESSAGE = 'conveyor:descendants_changed';
      END IF;
      EXIT;
    EXCEPTION WHEN SQLSTATE 'CVR01' THEN
      NULL; -- read the set again and start over
    END;
  END LOOP;
  DELETE FROM ${s}.dedup d WHERE d.queue = q
    AND NOT EXISTS (SELECT 1 FROM ${s}.jobs j WHERE j.queue = q AND j.id = d.job_id);
  DELETE FROM ${s}.child_values v WHERE v.parent_queue = q
    AND NOT EXISTS (SELECT 1 FROM ${s}.jobs j WHERE j.queue = q AND j.id = v.parent_id);
  DELETE FROM ${s}.paused WHERE queue = q;
  DELETE FROM ${s}.groups WHERE queue = q;
  DELETE FROM ${s}.rates WHERE queue = q;
  DELETE FROM ${s}.schedulers WHERE queue = q;
END $$;

-- What happens after a job failed for good: its parent's policy, removeOnFail, the dedup key.
-- keep_*: the worker's removeOnFail (fail_jobs), for a job without its own: keep_now removes
-- it, keep_count / keep_age are recorded (dk_*) for pruneFinished, in place of any an earlier
-- finish recorded. All null (other failures): only the job's own option.
CREATE OR REPLACE FUNCTION ${s}.after_final_fail(q text, jid text,
  keep_now boolean DEFAULT NULL, keep_count integer DEFAULT NULL, keep_age float8 DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  j ${s}.jobs;
  dc integer;
  da float8;
BEGIN
  SELECT * INTO j FROM ${s}.jobs WHERE queue = q AND id = jid;
  IF NOT FOUND THEN RETURN; END IF;
  DELETE FROM ${s}.dedup WHERE queue = q AND key = j.dedup_key AND job_id = jid
    AND expires_at IS NULL;
  IF j.parent_id IS NOT NULL THEN
    IF j.fail_policy IN ('ignore', 'remove') THEN
      UPDATE ${s}.jobs SET counted = true,
        parent_id = CASE WHEN j.fail_policy = 'remove' THEN NULL ELSE parent_id END,
        parent_queue = CASE WHEN j.fail_policy = 'remove' THEN NULL ELSE parent_queue END
      WHERE queue = q AND id = jid;
      IF NOT j.counted THEN PERFORM ${s}.child_done(j.parent_queue, j.parent_id, 1); END IF;
    ELSE
      PERFORM ${s}.fail_parent(j.parent_queue, j.parent_id,
        'child ' || q || '/' || jid || ' failed: ' || coalesce(j.failed_reason, ''));
    END IF;
  END IF;
  dc := ${defaultKeep('keep_count', 'j.', 'rf')};
  da := ${defaultKeep('keep_age', 'j.', 'rf')};
  IF j.dk_count IS DISTINCT FROM dc OR j.dk_age IS DISTINCT FROM da THEN
    UPDATE ${s}.jobs SET dk_count = dc, dk_age = da WHERE queue = q AND id = jid;
  END IF;
  -- (Parenthesized: an IF condition ends at its first THEN outside parentheses.)
  IF j.rf_now OR (CASE WHEN keep_now THEN NOT ${ownsKeep('j.', 'rf')} ELSE false END) THEN
    PERFORM ${s}.remove_set(ARRAY[q], ARRAY[jid], finished => true, silent => q);
  END IF;
END $$;

-- Fails an unfinished parent, then applies its own policy up the tree. False when the parent
-- is missing or already finished.
CREATE OR REPLACE FUNCTION ${s}.fail_parent(pq text, pid text, reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  made integer;
BEGIN
  UPDATE ${s}.jobs SET state = 'failed', failed_reason = reason, finished_at = ${s}.now_ms(),
    locked_by = NULL, lock_until = NULL, lock_token = NULL
  WHERE queue = pq AND id = pid AND state NOT IN ('completed', 'failed')
  RETURNING attempts_made INTO made;
  IF NOT FOUND THEN RETURN false; END IF;
  PERFORM ${s}.emit(pq, 'failed', ARRAY[pid],
    ARRAY[jsonb_build_object('failedReason', reason, 'attemptsMade', made)]);
  PERFORM ${s}.after_final_fail(pq, pid);
  RETURN true;
END $$;

-- The follow-ups of jobs just completed (the completing statement calls it only when one of them
-- needs it): a dedup key held without TTL is released, each parent records the child's return
-- value and counts its finished children (each child once: counted), and the jobs in gone
-- (removeOnComplete: true, the job's own or the worker's) are removed. The parents are locked
-- (in key order) before the values are recorded: a parent removed meanwhile alone (removeOnFail
-- at its finish, pruneFinished), whose removal did not lock this child, is then seen gone, so no
-- value is left behind for it.
CREATE OR REPLACE FUNCTION ${s}.complete_after(q text, ids text[], gone text[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  r record;
  -- The jobs' addresses, looked up once: this transaction holds their locks, and no statement
  -- below moves them before the last that reads them (counted).
  at tid[] := ${jobAddresses(s, 'q', 'ids')};
BEGIN
  DELETE FROM ${s}.dedup x USING ${s}.jobs j
  WHERE j.ctid = ANY(at) AND j.dedup_key IS NOT NULL AND j.dedup_expires_at IS NULL
    AND x.queue = q AND x.key = j.dedup_key AND x.job_id = j.id AND x.expires_at IS NULL;
  PERFORM 1 FROM ${s}.jobs p JOIN ${s}.jobs j ON p.queue = j.parent_queue AND p.id = j.parent_id
  WHERE j.ctid = ANY(at)
  ORDER BY p.queue, p.id FOR UPDATE OF p;
  INSERT INTO ${s}.child_values AS v (parent_queue, parent_id, child_queue, child_id, value)
  SELECT j.parent_queue, j.parent_id, j.queue, j.id, j.returnvalue FROM ${s}.jobs j
  WHERE j.ctid = ANY(at) AND j.parent_id IS NOT NULL
    AND EXISTS (SELECT 1 FROM ${s}.jobs p WHERE p.queue = j.parent_queue AND p.id = j.parent_id)
  ON CONFLICT (parent_queue, parent_id, child_queue, child_id)
  DO UPDATE SET value = EXCLUDED.value;
  FOR r IN
    WITH c AS (
      UPDATE ${s}.jobs j SET counted = true
      WHERE j.ctid = ANY(at) AND j.parent_id IS NOT NULL AND NOT j.counted
      RETURNING parent_queue, parent_id
    )
    SELECT parent_queue AS pq, parent_id AS pid, count(*)::integer AS n FROM c
    GROUP BY 1, 2 ORDER BY 1, 2
  LOOP
    PERFORM ${s}.child_done(r.pq, r.pid, r.n);
  END LOOP;
  IF gone IS NOT NULL THEN
    PERFORM ${s}.remove_set(array_fill(q, ARRAY[cardinality(gone)]), gone, finished => true,
      silent => q);
  END IF;
  RETURN cardinality(ids);
END $$;

-- Fails a batch of active jobs (fenced by token): retry (delayed or waiting) or fail for good
-- with the parent policy, and keep_* (the worker's removeOnFail, see after_final_fail) for the
-- jobs failed for good. Returns the input indexes that succeeded.
CREATE OR REPLACE FUNCTION ${s}.fail_jobs(q text, input json, keep_now boolean,
  keep_count integer, keep_age float8) RETURNS SETOF integer
LANGUAGE plpgsql AS $$
DECLARE
  t float8 := ${s}.now_ms();
  r record;
  idxs integer[] := '{}';
  -- One notification per kind for the whole batch, not one per job.
  why jsonb;
  failed text[] := '{}';
  failed_d jsonb[] := '{}';
  retried text[] := '{}';
  retried_d jsonb[] := '{}';
  delayed text[] := '{}';
  delayed_d jsonb[] := '{}';
  waiting text[] := '{}';
BEGIN
  FOR r IN
    WITH inp AS (
      SELECT * FROM json_to_recordset(input)
        AS x(i integer, id text, token text, reason text, stack text, retry_at float8)
    ), u AS (
      UPDATE ${s}.jobs j SET
        attempts_made = j.attempts_made + 1,
        failed_reason = inp.reason,
        stacktrace = CASE WHEN inp.stack IS NULL THEN j.stacktrace
          ELSE j.stacktrace || jsonb_build_array(inp.stack) END,
        locked_by = NULL, lock_until = NULL, lock_token = NULL,
        state = CASE WHEN inp.retry_at IS NULL THEN 'failed'
          WHEN inp.retry_at > t THEN 'delayed' ELSE 'waiting' END,
        delay_until = CASE WHEN inp.retry_at > t THEN inp.retry_at ELSE 0 END,
        finished_at = CASE WHEN inp.retry_at IS NULL THEN t ELSE j.finished_at END
      FROM inp WHERE ${jobsWithIds(s, 'j', 'q', 'ARRAY(SELECT inp.id FROM inp)')}
        AND j.id = inp.id AND ${activeById('j.')}
        AND j.lock_token = inp.token
      RETURNING inp.i, j.id, j.state, j.attempts_made, j.failed_reason, j.delay_until, j.seq,
        j.parent_queue, j.parent_id
    )
    -- Parents are locked in key order (by the follow-ups), as completions lock them: two
    -- batches failing children of the same parents cannot deadlock.
    SELECT * FROM u ORDER BY parent_queue NULLS FIRST, parent_id NULLS FIRST, seq
  LOOP
    idxs := idxs || r.i;
    why := jsonb_build_object('failedReason', r.failed_reason, 'attemptsMade', r.attempts_made);
    IF r.state = 'failed' THEN
      failed := failed || r.id;
      failed_d := failed_d || why;
    ELSE
      retried := retried || r.id;
      retried_d := retried_d || why;
      IF r.state = 'delayed' THEN
        delayed := delayed || r.id;
        delayed_d := delayed_d || jsonb_build_object('delayUntil', r.delay_until);
      ELSE
        waiting := waiting || r.id;
      END IF;
    END IF;
  END LOOP;
  -- A job's failed comes before what its failure does to its parent or to itself (removal).
  PERFORM ${s}.emit(q, 'failed', failed, failed_d);
  FOR k IN 1 .. cardinality(failed) LOOP
    PERFORM ${s}.after_final_fail(q, failed[k], keep_now, keep_count, keep_age);
  END LOOP;
  PERFORM ${s}.emit(q, 'retrying', retried, retried_d);
  PERFORM ${s}.emit(q, 'delayed', delayed, delayed_d);
  PERFORM ${s}.emit(q, 'waiting', waiting);
  RETURN QUERY SELECT unnest(idxs);
END $$;

-- Rescues active jobs whose lock expired (database clock): back to waiting, or failed for good
-- past max_stalled. Returns (id, outcome, job): job is, for a job failed for good, its row as
-- JSON text as the failure left it (before the parent policy and removeOnFail), else null.
CREATE OR REPLACE FUNCTION ${s}.requeue_stalled(q text, max_stalled integer)
RETURNS TABLE (job_id text, outcome text, job text) LANGUAGE plpgsql AS $$
DECLARE
  t float8 := ${s}.now_ms();
  r record;
BEGIN
  FOR r IN
    WITH c AS (
      SELECT j.queue, j.id FROM ${s}.jobs j
      WHERE j.queue = q AND j.state = 'active' AND j.lock_until < t
      ORDER BY j.lock_until FOR UPDATE SKIP LOCKED
    ), u AS (
      UPDATE ${s}.jobs j SET
        stalled_count = j.stalled_count + 1,
        state = CASE WHEN j.stalled_count + 1 > max_stalled THEN 'failed' ELSE 'waiting' END,
        -- Failing for good ends an attempt, as any final failure does.
        attempts_made = j.attempts_made
          + CASE WHEN j.stalled_count + 1 > max_stalled THEN 1 ELSE 0 END,
        failed_reason = CASE WHEN j.stalled_count + 1 > max_stalled
          THEN 'job stalled more than allowable limit' ELSE j.failed_reason END,
        finished_at = CASE WHEN j.stalled_count + 1 > max_stalled THEN t ELSE j.finished_at END,
        locked_by = NULL, lock_until = NULL, lock_token = NULL
      FROM c WHERE j.queue = c.queue AND j.id = c.id AND ${activeById('j.')}
      RETURNING j.id, j.state, j.stalled_count, j.attempts_made, j.failed_reason, j.seq,
        j.parent_queue, j.parent_id,
        CASE WHEN j.state = 'failed' THEN to_jsonb(j)::text END AS failed_row
    )
    SELECT * FROM u ORDER BY parent_queue NULLS FIRST, parent_id NULLS FIRST, seq
  LOOP
    PERFORM ${s}.emit(q, 'stalled', ARRAY[r.id],
      ARRAY[jsonb_build_object('stalledCount', r.stalled_count)]);
    IF r.state = 'failed' THEN
      PERFORM ${s}.emit(q, 'failed', ARRAY[r.id],
        ARRAY[jsonb_build_object('failedReason', r.failed_reason, 'attemptsMade', r.attempts_made)]);
      PERFORM ${s}.after_final_fail(q, r.id);
    ELSE
      PERFORM ${s}.emit(q, 'waiting', ARRAY[r.id]);
    END IF;
    job_id := r.id;
    outcome := r.state;
    job := r.failed_row;
    RETURN NEXT;
  END LOOP;
END $$;

-- Claims with group, global-concurrency or rate-limit options. Claims of a queue through this
-- path are serialized by an advisory lock, so every limit is exact across processes. With a
-- limiter, nothing is claimed while the queue's manual rate limit is in force.
CREATE OR REPLACE FUNCTION ${s}.claim_limited(q text, worker text, dur float8, cnt integer, o jsonb,
  prefix text)
RETURNS SETOF ${s}.jobs LANGUAGE plpgsql AS $$
DECLARE
  t float8;
  gc integer := (o->>'groupConcurrency')::integer;
  excl text[] := CASE WHEN o ? 'excludeGroups'
    THEN ARRAY(SELECT jsonb_array_elements_text(o->'excludeGroups')) END;
  rr boolean := coalesce((o->>'groupRoundRobin')::boolean, false);
  glob integer := (o->>'globalConcurrency')::integer;
  lmax integer := (o->'limiter'->>'max')::integer;
  ldur float8 := (o->'limiter'->>'duration')::float8;
  gmax integer := (o->'groupLimiter'->>'max')::integer;
  gdur float8 := (o->'groupLimiter'->>'duration')::float8;
  jname text := o->>'jobName';
  lifo boolean := coalesce((o->>'lifo')::boolean, false);
  active integer := 0;
  used integer := 0;
  lwin float8;
  gwin float8;
  gactive jsonb := '{}';
  gused jsonb := '{}';
  v ${s}.jobs;
  claimed text[] := '{}';
  claimed_names text[] := '{}';
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(${lit} || '/claim/' || q, 0));
  t := ${s}.now_ms();
  IF EXISTS (SELECT 1 FROM ${s}.paused WHERE queue = q AND name = '__all__') THEN RETURN; END IF;
  IF glob IS NOT NULL THEN
    SELECT count(*) INTO active FROM ${s}.jobs WHERE queue = q AND state = 'active';
  END IF;
  IF lmax IS NOT NULL THEN
    -- The manual rate limit (setRateLimit): its end in win of the row keyed 'manual'.
    IF EXISTS (SELECT 1 FROM ${s}.rates WHERE queue = q AND key = 'manual' AND win > t) THEN
      RETURN;
    END IF;
    -- A window's row keeps its end in win (getRateLimitTtl(maxJobs) reads its time left).
    lwin := floor(t / ldur) * ldur + ldur;
    SELECT coalesce((SELECT n FROM ${s}.rates WHERE queue = q AND key = '' AND win = lwin), 0)
      INTO used;
  END IF;
  IF gc IS NOT NULL THEN
    SELECT coalesce(jsonb_object_agg(group_id, c), '{}') INTO gactive FROM (
      SELECT group_id, count(*) AS c FROM ${s}.jobs
      WHERE queue = q AND state = 'active' AND group_id IS NOT NULL GROUP BY group_id) x;
  END IF;
  IF gmax IS NOT NULL THEN
    gwin := floor(t / gdur) * gdur + gdur;
    SELECT coalesce(jsonb_object_agg(substr(key, 3), n), '{}') INTO gused FROM ${s}.rates
    WHERE queue = q AND key LIKE 'g:%' AND win = gwin;
  END IF;
  FOR k IN 1 .. cnt LOOP
    EXIT WHEN glob IS NOT NULL AND active >= glob;
    EXIT WHEN lmax IS NOT NULL AND used >= lmax;
    SELECT j.* INTO v FROM ${s}.jobs j
      LEFT JOIN ${s}.groups g ON rr AND g.queue = q AND g.group_id = coalesce(j.group_id, '')
    WHERE j.queue = q AND j.state = 'waiting' AND (jname IS NULL OR j.name = jname)
      AND NOT EXISTS (SELECT 1 FROM ${s}.paused p WHERE p.queue = q AND p.name = j.name)
      AND (excl IS NULL OR j.group_id IS NULL OR NOT (j.group_id = ANY(excl)))
      AND (gc IS NULL OR j.group_id IS NULL OR coalesce((gactive->>j.group_id)::integer, 0) < gc)
      AND (gmax IS NULL OR j.group_id IS NULL OR coalesce((gused->>j.group_id)::integer, 0) < gmax)
    ORDER BY j.priority, CASE WHEN rr THEN coalesce(g.last_served, 0) END,
      CASE WHEN lifo THEN -j.seq ELSE j.order_key END
    LIMIT 1 FOR UPDATE OF j SKIP LOCKED;
    EXIT WHEN NOT FOUND;
    UPDATE ${s}.jobs SET state = 'active', locked_by = worker, lock_until = t + dur,
      lock_token = prefix || to_hex(seq), processed_at = t,
      attempts_started = attempts_started + 1
    WHERE queue = q AND id = v.id RETURNING * INTO v;
    claimed := claimed || v.id;
    claimed_names := claimed_names || v.name;
    active := active + 1;
    IF rr THEN
      INSERT INTO ${s}.groups (queue, group_id, last_served)
      VALUES (q, coalesce(v.group_id, ''), nextval(${reg('serve_seq')}))
      ON CONFLICT (queue, group_id) DO UPDATE SET last_served = EXCLUDED.last_served;
    END IF;
    IF v.group_id IS NOT NULL AND gc IS NOT NULL THEN
      gactive := jsonb_set(gactive, ARRAY[v.group_id],
        to_jsonb(coalesce((gactive->>v.group_id)::integer, 0) + 1));
    END IF;
    IF lmax IS NOT NULL THEN
      used := used + 1;
      INSERT INTO ${s}.rates (queue, key, win, n) VALUES (q, '', lwin, 1)
      ON CONFLICT (queue, key) DO UPDATE SET win = EXCLUDED.win,
        n = CASE WHEN ${s}.rates.win = EXCLUDED.win THEN ${s}.rates.n + 1 ELSE 1 END;
    END IF;
    IF gmax IS NOT NULL AND v.group_id IS NOT NULL THEN
      gused := jsonb_set(gused, ARRAY[v.group_id],
        to_jsonb(coalesce((gused->>v.group_id)::integer, 0) + 1));
      INSERT INTO ${s}.rates (queue, key, win, n) VALUES (q, 'g:' || v.group_id, gwin, 1)
      ON CONFLICT (queue, key) DO UPDATE SET win = EXCLUDED.win,
        n = CASE WHEN ${s}.rates.win = EXCLUDED.win THEN ${s}.rates.n + 1 ELSE 1 END;
    END IF;
    RETURN NEXT v;
  END LOOP;
  PERFORM ${s}.emit(q, 'active', claimed, NULL, claimed_names);
END $$;

-- Saves jobs one by one with deduplication keys and group size limits (the general path; the
-- store uses a single INSERT when a batch has neither). Input rows carry i, the input index.
-- Returns (i, id, inserted). A job answered by an existing one is announced: \`duplicated\` (its
-- custom id exists) or \`deduplicated\` (its key is held; data: the key and its custom id).
CREATE OR REPLACE FUNCTION ${s}.save_checked(q text, input json)
RETURNS TABLE (idx integer, job_id text, inserted boolean) LANGUAGE plpgsql AS $$
DECLARE
  t float8 := ${s}.now_ms();
  r record;
  v_seq bigint;
  v_id text;
  got text;
  waiting integer;
  saved text[] := '{}';
  saved_states text[] := '{}';
  saved_names text[] := '{}';
  saved_data jsonb[] := '{}';
  dup_ids text[] := '{}';
  ded_ids text[] := '{}';
  ded_data jsonb[] := '{}';
BEGIN
  FOR r IN SELECT * FROM ${inputRows('input')} x ORDER BY x.i
  LOOP
    IF r.group_max IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(hashtextextended(${lit} || '/group/' || q || '/' || r.group_id, 0));
      SELECT count(*) INTO waiting FROM ${s}.jobs
      WHERE queue = q AND group_id = r.group_id AND state = 'waiting';
      IF waiting >= r.group_max THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'conveyor:group_full',
          DETAIL = json_build_object('group', r.group_id, 'max', r.group_max)::text;
      END IF;
    END IF;
    -- A TTL runs from the save, by the database clock.
    IF r.dedup_ttl IS NOT NULL THEN r.dedup_expires_at := t + r.dedup_ttl; END IF;
    LOOP
      v_seq := nextval(${reg('job_seq')});
      v_id := coalesce(r.id, v_seq::text);
      INSERT INTO ${s}.jobs (${INSERT_COLUMNS})
      VALUES (${insertValues('r', 'v_id', 'v_seq', 'q')})
      ON CONFLICT DO NOTHING RETURNING id INTO got;
      EXIT WHEN got IS NOT NULL OR r.id IS NOT NULL;
    END LOOP;
    IF got IS NULL THEN
      dup_ids := dup_ids || r.id;
      idx := r.i; job_id := r.id; inserted := false; RETURN NEXT; CONTINUE;
    END IF;
    IF r.dedup_key IS NOT NULL THEN
      got := NULL;
      INSERT INTO ${s}.dedup AS d (queue, key, job_id, expires_at)
      VALUES (q, r.dedup_key, v_id, r.dedup_expires_at)
      ON CONFLICT (queue, key) DO UPDATE SET job_id = EXCLUDED.job_id,
        expires_at = EXCLUDED.expires_at
      WHERE d.expires_at IS NOT NULL AND d.expires_at <= t
      RETURNING d.job_id INTO got;
      IF got IS NULL THEN
        DELETE FROM ${s}.jobs WHERE queue = q AND id = v_id;
        SELECT d.job_id INTO got FROM ${s}.dedup d WHERE d.queue = q AND d.key = r.dedup_key;
        ded_ids := ded_ids || got;
        ded_data := ded_data || jsonb_build_object('deduplicationId', r.dedup_key,
          'deduplicatedJobId', r.id);
        idx := r.i; job_id := got; inserted := false; RETURN NEXT; CONTINUE;
      END IF;
    END IF;
    saved := saved || v_id;
    saved_states := saved_states || coalesce(r.state, 'waiting');
    saved_names := saved_names || r.name;
    saved_data := saved_data || CASE WHEN r.state = 'delayed'
      THEN jsonb_build_object('delayUntil', r.delay_until) END;
    idx := r.i; job_id := v_id; inserted := true; RETURN NEXT;
  END LOOP;
  FOR r IN SELECT st, array_agg(i ORDER BY k) AS ids, array_agg(d ORDER BY k) AS ds,
      array_agg(nm ORDER BY k) AS nms
    FROM unnest(saved, saved_states, saved_data, saved_names) WITH ORDINALITY AS x(i, st, d, nm, k)
    GROUP BY st
  LOOP
    PERFORM ${s}.emit(q, r.st, r.ids, r.ds, r.nms);
  END LOOP;
  PERFORM ${s}.emit(q, 'duplicated', dup_ids);
  PERFORM ${s}.emit(q, 'deduplicated', ded_ids, ded_data);
END $$;
`;
