/**
 * Versioned schema migrations (tables, indexes, sequences). Each entry is one SQL script, run
 * once per schema in a transaction that holds an advisory lock, so processes connecting at once
 * migrate exactly once. The functions live in `functions.ts`.
 *
 * @module
 */

import type { SchemaNames } from './names.ts';

/** One migration: a version number and its SQL for a schema. */
export interface Migration {
  /** Strictly increasing, starting at 1. */
  version: number;
  /** The SQL, for the schema's quoted names. */
  sql: (n: SchemaNames) => string;
}

const v1 = ({ s }: SchemaNames): string => `
CREATE SEQUENCE ${s}.job_seq;
CREATE SEQUENCE ${s}.serve_seq;

CREATE TABLE ${s}.jobs (
  queue text NOT NULL,
  id text NOT NULL,
  seq bigint NOT NULL,
  order_key bigint NOT NULL,
  name text NOT NULL,
  data text NOT NULL DEFAULT 'null',
  opts text NOT NULL DEFAULT '{}',
  state text NOT NULL,
  priority float8 NOT NULL DEFAULT 0,
  attempts_made integer NOT NULL DEFAULT 0,
  attempts_started integer NOT NULL DEFAULT 0,
  progress text NOT NULL DEFAULT '0',
  returnvalue text NOT NULL DEFAULT 'null',
  failed_reason text,
  stacktrace jsonb NOT NULL DEFAULT '[]',
  logs jsonb NOT NULL DEFAULT '[]',
  created_at float8 NOT NULL,
  delay_until float8 NOT NULL DEFAULT 0,
  processed_at float8,
  finished_at float8,
  locked_by text,
  lock_until float8,
  lock_token text,
  stalled_count integer NOT NULL DEFAULT 0,
  parent_id text,
  parent_queue text,
  pending_children integer NOT NULL DEFAULT 0,
  dedup_key text,
  dedup_expires_at float8,
  group_id text,
  scheduler_id text,
  fail_policy text NOT NULL DEFAULT 'fail',
  rc_now boolean NOT NULL DEFAULT false,
  rc_count integer,
  rc_age float8,
  rf_now boolean NOT NULL DEFAULT false,
  rf_count integer,
  rf_age float8,
  PRIMARY KEY (queue, id)
) WITH (
  fillfactor = 85,
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 500,
  autovacuum_vacuum_insert_scale_factor = 0.05,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 0
);

CREATE INDEX jobs_waiting ON ${s}.jobs (queue, priority, order_key) WHERE state = 'waiting';
CREATE INDEX jobs_delayed ON ${s}.jobs (queue, delay_until) WHERE state = 'delayed';
CREATE INDEX jobs_active ON ${s}.jobs (queue, lock_until) WHERE state = 'active';
CREATE INDEX jobs_finished ON ${s}.jobs (queue, state, finished_at)
  WHERE state IN ('completed', 'failed');
CREATE INDEX jobs_group ON ${s}.jobs (queue, group_id, state) WHERE group_id IS NOT NULL;
CREATE INDEX jobs_parent ON ${s}.jobs (parent_queue, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_scheduler ON ${s}.jobs (queue, scheduler_id) WHERE scheduler_id IS NOT NULL;

CREATE TABLE ${s}.dedup (
  queue text NOT NULL,
  key text NOT NULL,
  job_id text NOT NULL,
  expires_at float8,
  PRIMARY KEY (queue, key)
) WITH (autovacuum_vacuum_scale_factor = 0.02);

CREATE TABLE ${s}.paused (queue text NOT NULL, name text NOT NULL, PRIMARY KEY (queue, name));

CREATE TABLE ${s}.groups (
  queue text NOT NULL,
  group_id text NOT NULL,
  last_served bigint NOT NULL,
  PRIMARY KEY (queue, group_id)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02);

CREATE TABLE ${s}.rates (
  queue text NOT NULL,
  key text NOT NULL,
  win float8 NOT NULL,
  n integer NOT NULL,
  PRIMARY KEY (queue, key)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02);

CREATE TABLE ${s}.schedulers (
  queue text NOT NULL,
  id text NOT NULL,
  name text NOT NULL,
  data text NOT NULL,
  opts text NOT NULL,
  repeat text NOT NULL,
  next_run_at float8,
  run_count integer NOT NULL DEFAULT 0,
  created_at float8 NOT NULL,
  PRIMARY KEY (queue, id)
);

-- Events for poll-only subscribers (no LISTEN, e.g. behind PgBouncer in transaction mode).
-- Written only while some poll-only store has announced itself in settings.
CREATE TABLE ${s}.events (
  id bigserial PRIMARY KEY,
  channel text NOT NULL,
  payload text NOT NULL,
  at float8 NOT NULL
);
CREATE TABLE ${s}.settings (k text PRIMARY KEY, v float8 NOT NULL);
`;

// Version 2: the hot-path events (active, completed) are published only while some process
// watches the queue for them; functions: columnar save input, compact event payloads.
const v2 = ({ s }: SchemaNames): string => `
CREATE TABLE ${s}.watchers (
  queue text PRIMARY KEY,
  until float8 NOT NULL
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02);
`;

// Version 3: queue names, job ids and the other keys compare bytewise (COLLATE "C"): every
// index probe and insert on them skips the database locale's string comparison, and keys that
// are compared with each other share one collation. Functions: completions are one statement,
// which calls the new complete_after only when a completed job has a follow-up (complete_jobs is
// no longer used). The table child_values keeps the return values of completed children with
// their parent (getChildrenValues), so they outlive the children.
const KEYS: Record<string, string[]> = {
  jobs: [
    'queue',
    'id',
    'name',
    'parent_id',
    'parent_queue',
    'dedup_key',
    'group_id',
    'scheduler_id',
  ],
  dedup: ['queue', 'key', 'job_id'],
  paused: ['queue', 'name'],
  groups: ['queue', 'group_id'],
  rates: ['queue', 'key'],
  schedulers: ['queue', 'id', 'name'],
  watchers: ['queue'],
};
const v3 = ({ s }: SchemaNames): string =>
  Object.entries(KEYS).map(([table, columns]) =>
    `ALTER TABLE ${s}.${table} ${
      columns.map((c) => `ALTER COLUMN ${c} TYPE text COLLATE "C"`).join(', ')
    };`
  ).join('\n') + `
-- remove_set gains a defaulted argument: the two-argument version would make calls ambiguous.
DROP FUNCTION IF EXISTS ${s}.remove_set(text[], text[]);
CREATE TABLE ${s}.child_values (
  parent_queue text COLLATE "C" NOT NULL,
  parent_id text COLLATE "C" NOT NULL,
  child_queue text COLLATE "C" NOT NULL,
  child_id text COLLATE "C" NOT NULL,
  value text NOT NULL,
  PRIMARY KEY (parent_queue, parent_id, child_queue, child_id)
) WITH (autovacuum_vacuum_scale_factor = 0.02);`;

// Version 4: a child counts once for its parent (\`counted\`), also when it is retried after it
// finished and finishes again, or is removed after that. Functions: remove_set locks the jobs
// it removes before it reads their states, descendants first, keeps only roots still in the
// given states, and removes just the job for removeOnComplete/removeOnFail (two new defaulted
// arguments); fail_jobs and requeue_stalled lock parents in key order; child_done delays a
// parent by its opts.delay.
const v4 = ({ s }: SchemaNames): string => `
ALTER TABLE ${s}.jobs ADD COLUMN counted boolean NOT NULL DEFAULT false;
UPDATE ${s}.jobs SET counted = true
  WHERE parent_id IS NOT NULL AND state IN ('completed', 'failed');
DROP FUNCTION IF EXISTS ${s}.remove_set(text[], text[], boolean);`;

// Version 5: functions only (and a new one, family: jobs and their descendants). remove_set
// reads a job's descendants again once it holds their locks, and starts over when a child was
// added meanwhile, so a removal never leaves a child behind without its parent.
const v5 = (): string => `SELECT 1;`;

// Version 6: the manual rate limit (setRateLimit) is a row of the rates table keyed 'manual',
// its end in win; no table changes. Functions: claim_limited claims nothing under a limiter
// while that limit is in force.
const v6 = (): string => `SELECT 1;`;

// Version 7: functions only. requeue_stalled also returns, for each job it fails for good, the
// job's row as the failure left it (a new result column, so the old function is dropped first).
const v7 = ({ s }: SchemaNames): string =>
  `DROP FUNCTION IF EXISTS ${s}.requeue_stalled(text, integer);`;

// Version 8: a rate-limit window's row (keys '' and 'g:<group>') keeps the window's end in win
// (was its start), so the time a full window has left is known (getRateLimitTtl with maxJobs);
// the 'manual' row kept its end there already. Windows in progress restart their count.
// Functions: claim_limited keys windows by their end.
const v8 = ({ s }: SchemaNames): string => `DELETE FROM ${s}.rates WHERE key <> 'manual';`;

// Version 9: functions only (and a new one, obliterate: a queue's jobs go with their
// descendants in other queues, through remove_set). remove_set gains a defaulted argument
// (silent), so the five-argument version is dropped: it would make calls ambiguous. Its check
// for a child added meanwhile looks one level down instead of reading the whole family again.
const v9 = ({ s }: SchemaNames): string =>
  `DROP FUNCTION IF EXISTS ${s}.remove_set(text[], text[], boolean, text[], boolean);`;

// Version 10: functions only. pruneFinished removes just the finished jobs past their limits
// (remove_set's finished mode, which now publishes removed unless silent), as removeOnComplete /
// removeOnFail: true does at finish time: their children stay. complete_after locks the parents
// before it records the children's values, so none is left for a parent removed meanwhile.
const v10 = (): string => `SELECT 1;`;

// Version 11: functions only. fail_jobs and requeue_stalled find their jobs by id through the
// primary key: their state check can no longer be matched to the partial index jobs_active,
// which stale statistics made the planner read whole (every active job of the queue).
const v11 = (): string => `SELECT 1;`;

// Version 12: functions only (and new ones: delete_top, drop_set, count_removed, refuse_active).
// obliterate reads only its queue's jobs with a parent or a child with their descendants, as
// remove_set reads a set; the queue's other jobs are deleted in one pass in key order.
// remove_set's check for a child added meanwhile counts instead of matching against the set, and
// parents count removed children after the delete, so no generic plan makes either quadratic.
// family walks without a duplicate check (UNION ALL).
const v12 = (): string => `SELECT 1;`;
// Version 13: the Worker's removeOnComplete / removeOnFail (a default for jobs without their
// own). dk_count / dk_age record, at a job's finish, the default count and age limits that
// apply to it (null when it has its own option or there is no default), for pruneFinished.
// Functions: complete_after takes the jobs to remove at once (a new argument), fail_jobs and
// after_final_fail take the default (new arguments), so their old versions are dropped.
const v13 = ({ s }: SchemaNames): string => `
ALTER TABLE ${s}.jobs ADD COLUMN dk_count integer, ADD COLUMN dk_age float8;
DROP FUNCTION IF EXISTS ${s}.complete_after(text, text[]);
DROP FUNCTION IF EXISTS ${s}.fail_jobs(text, json);
DROP FUNCTION IF EXISTS ${s}.after_final_fail(text, text);`;
// Version 14: functions only. save_checked publishes \`duplicated\` (a job whose custom id
// exists) and \`deduplicated\` (a job whose deduplication key is held) for the jobs it answers
// with an existing one.
const v14 = (): string => `SELECT 1;`;
// Version 15: functions only. fail_jobs publishes one notification per kind for its batch
// (failed, retrying, delayed, waiting), not one or two per job.
const v15 = (): string => `SELECT 1;`;
// Version 16: functions only. complete_after and fail_jobs find their batch of jobs by id one
// at a time and read them by address (`by-ids.ts`): statistics that did not know the queue made
// the planner read the whole queue for each batch. claim_limited makes its tokens as the plain
// claim does, from a prefix the client draws (a new argument), not gen_random_uuid().
const v16 = ({ s }: SchemaNames): string =>
  `DROP FUNCTION IF EXISTS ${s}.claim_limited(text, text, float8, integer, jsonb);`;
// Version 17: functions only. fail_jobs locks its batch in key order before it reads the jobs
// by address (`by-ids.ts`): in the table's order, it could deadlock with a removal.
const v17 = (): string => `SELECT 1;`;

/**
 * Every migration, in order. The schema's functions (`functions.ts`) are recreated after any of
 * them runs, so a change to a function needs a new version here.
 */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, sql: v1 },
  { version: 2, sql: v2 },
  { version: 3, sql: v3 },
  { version: 4, sql: v4 },
  { version: 5, sql: v5 },
  { version: 6, sql: v6 },
  { version: 7, sql: v7 },
  { version: 8, sql: v8 },
  { version: 9, sql: v9 },
  { version: 10, sql: v10 },
  { version: 11, sql: v11 },
  { version: 12, sql: v12 },
  { version: 13, sql: v13 },
  { version: 14, sql: v14 },
  { version: 15, sql: v15 },
  { version: 16, sql: v16 },
  { version: 17, sql: v17 },
];

/** The schema version this code expects. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1].version;
