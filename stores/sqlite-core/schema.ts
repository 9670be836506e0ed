/**
 * The schema, as numbered migrations. A migration never changes once released: add a new one.
 *
 * @module
 */

/**
 * The migrations, in order; migration `i` brings the schema to version `i + 1`.
 *
 * @example
 * ```ts
 * import { MIGRATIONS } from '@conveyor/store-sqlite-core';
 * console.log(MIGRATIONS.length >= 1); // true
 * ```
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE conveyor_jobs (
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    ord INTEGER NOT NULL,
    data TEXT,
    opts TEXT NOT NULL,
    progress TEXT,
    returnvalue TEXT,
    failed_reason TEXT,
    stacktrace TEXT NOT NULL,
    logs TEXT NOT NULL,
    attempts_made INTEGER NOT NULL,
    attempts_started INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    delay_until INTEGER NOT NULL,
    processed_at INTEGER,
    finished_at INTEGER,
    locked_by TEXT,
    lock_until INTEGER,
    lock_token TEXT,
    stalled_count INTEGER NOT NULL,
    parent_id TEXT,
    parent_queue TEXT,
    pending_children INTEGER NOT NULL,
    dedup_key TEXT,
    dedup_expires_at INTEGER,
    dedup_live INTEGER,
    group_id TEXT,
    keep_count INTEGER,
    keep_age INTEGER
  );
  CREATE UNIQUE INDEX conveyor_jobs_id ON conveyor_jobs (queue, id);
  CREATE UNIQUE INDEX conveyor_jobs_dedup ON conveyor_jobs (queue, dedup_key) WHERE dedup_live = 1;
  CREATE INDEX conveyor_jobs_claim ON conveyor_jobs (queue, state, priority, ord);
  CREATE INDEX conveyor_jobs_delayed ON conveyor_jobs (queue, delay_until) WHERE state = 'delayed';
  CREATE INDEX conveyor_jobs_finished ON conveyor_jobs (queue, state, finished_at)
    WHERE state IN ('completed', 'failed');
  CREATE INDEX conveyor_jobs_group ON conveyor_jobs (queue, group_id, state) WHERE group_id IS NOT NULL;
  CREATE INDEX conveyor_jobs_parent ON conveyor_jobs (parent_queue, parent_id) WHERE parent_id IS NOT NULL;
  CREATE TABLE conveyor_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO conveyor_meta (key, value) VALUES ('seq', 0);
  CREATE TABLE conveyor_paused (
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (queue, name)
  ) WITHOUT ROWID;
  CREATE TABLE conveyor_limits (
    queue TEXT NOT NULL,
    scope TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (queue, scope)
  ) WITHOUT ROWID;
  CREATE TABLE conveyor_rr (
    queue TEXT NOT NULL,
    group_key TEXT NOT NULL,
    served INTEGER NOT NULL,
    PRIMARY KEY (queue, group_key)
  ) WITHOUT ROWID;
  CREATE TABLE conveyor_schedulers (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    next_run_at INTEGER,
    body TEXT NOT NULL,
    PRIMARY KEY (queue, id)
  ) WITHOUT ROWID;
  CREATE TABLE conveyor_events (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    ts INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  CREATE INDEX conveyor_events_ts ON conveyor_events (ts);
  `,
  // 2: the return values of completed children, kept with their parent.
  `
  CREATE TABLE conveyor_child_values (
    parent_queue TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    child_queue TEXT NOT NULL,
    child_id TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (parent_queue, parent_id, child_queue, child_id)
  ) WITHOUT ROWID;
  `,
  // 3: a child counts once for its parent (`counted`), also when it is retried after it
  // finished and finishes again, or is removed after that. Finished children already counted.
  `
  ALTER TABLE conveyor_jobs ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;
  UPDATE conveyor_jobs SET counted = 1
    WHERE parent_id IS NOT NULL AND state IN ('completed', 'failed');
  `,
  // 4: a rate-limit window's row is keyed by the window's end (was its start), so the time a
  // full window has left is known (`getRateLimitTtl(maxJobs)`); the manual limit's row kept its
  // end there already. A window in progress restarts its count.
  `
  ALTER TABLE conveyor_limits RENAME COLUMN window_start TO window_end;
  DELETE FROM conveyor_limits WHERE scope <> 'manual';
  `,
];
