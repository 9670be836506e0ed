/**
 * {@linkcode PgStore}: the PostgreSQL store.
 *
 * @module
 */

import postgres from 'postgres';
import type {
  CompleteJobsOptions,
  FailJobsOptions,
  FetchOptions,
  JobCompletion,
  JobData,
  JobFailure,
  JobLock,
  JobState,
  NewJob,
  RemoveOptions,
  SaveOptions,
  SchedulerData,
  StalledResult,
  StoreEvent,
  StoreEventType,
  StoreInterface,
  UpdateGuard,
  WaitForChildren,
} from '@conveyor/shared';
import {
  activeRemovalError,
  checkInteger,
  checkJobLocks,
  checkMoveToDelayed,
  checkRateLimitTtl,
  checkRemoveOptions,
  checkToken,
  checkUpdates,
  jobFromRow,
  parentRefusal,
  queueActiveError,
} from '@conveyor/shared';
import {
  DuplicateJobError,
  GroupFullError,
  InvalidArgumentError,
  JOB_STATES,
  JobNotFoundError,
  StoreError,
} from '@conveyor/shared';
import { activeById } from './active.ts';
import { INPUT_COLUMNS } from './columns.ts';
import { keepParams } from './keep.ts';
import { EventHub } from './events.ts';
import { migrate } from './migrate.ts';
import { type SchemaNames, schemaNames } from './names.ts';
import {
  type PgStoreOptions,
  reconnectDelay,
  type ResolvedOptions,
  resolveOptions,
} from './options.ts';
import { buildQueries, type Queries } from './queries.ts';
import { unavailable } from './unavailable.ts';
import {
  claimedRow,
  COLUMN_TYPES,
  jobToRow,
  packRows,
  type Row,
  serializeRows,
  UPDATABLE,
} from './rows.ts';

type Exec = postgres.Sql | postgres.TransactionSql;
type Params = unknown[];

/** The state shared by a store and its transaction views. */
interface Core {
  o: ResolvedOptions;
  names: SchemaNames;
  q: Queries;
  sql: postgres.Sql | null;
  ownsSql: boolean;
  events: EventHub | null;
  /** Whether the pool's array types are read, so that its new connections skip reading them. */
  typesRead: boolean;
  /** Pools replaced after a CONNECT_TIMEOUT (`#onQueryError`), until they have ended. */
  retired: Set<Promise<void>>;
}

const LIMITED_FETCH: ReadonlyArray<keyof FetchOptions> = [
  'groupConcurrency',
  'excludeGroups',
  'groupRoundRobin',
  'globalConcurrency',
  'limiter',
  'groupLimiter',
];

/**
 * A {@linkcode StoreInterface} on PostgreSQL (postgres.js), for many workers in many processes
 * sharing one database: `FOR UPDATE SKIP LOCKED` claims, LISTEN/NOTIFY events, fencing tokens,
 * and transactional enqueue (a job saved with the caller's transaction exists iff it commits).
 *
 * @example
 * ```ts
 * import { PgStore } from '@conveyor/store-pg';
 * import { newJob } from '@conveyor/shared';
 *
 * const store = new PgStore({ connection: 'postgres://postgres@127.0.0.1:5432/test' });
 * await store.connect();
 * await store.saveJob('emails', newJob('emails', 'welcome', { to: 'a@b.c' }));
 * await store.disconnect();
 * ```
 */
export class PgStore implements StoreInterface {
  #core: Core;
  #tx: Exec | null = null;

  /** @param options A connection string, or {@linkcode PgStoreOptions}. */
  constructor(options: PgStoreOptions | string) {
    const o = resolveOptions(options);
    const names = schemaNames(o.schema);
    this.#core = {
      o,
      names,
      q: buildQueries(names),
      sql: null,
      ownsSql: !o.sql,
      events: null,
      typesRead: false,
      retired: new Set(),
    };
  }

  /** The schema the store uses. */
  get schema(): string {
    return this.#core.names.name;
  }

  /**
   * A view of this store bound to a postgres.js transaction (the `sql` argument of
   * `sql.begin`): every call runs inside it, so jobs saved through the view exist if and only if
   * the transaction commits, and their notifications are sent on commit. The view shares the
   * store's connection state; don't connect or disconnect it.
   *
   * @example
   * ```ts
   * import { PgStore } from '@conveyor/store-pg';
   * import { newJob } from '@conveyor/shared';
   * import postgres from 'postgres';
   *
   * const sql = postgres('postgres://postgres@127.0.0.1:5432/test');
   * const store = new PgStore({ sql });
   * await store.connect();
   * await sql.begin(async (tx) => {
   *   await tx`INSERT INTO users (email) VALUES ('a@b.c')`;
   *   await store.withTransaction(tx).saveJob('emails', newJob('emails', 'welcome', {}));
   * });
   * ```
   */
  withTransaction(tx: unknown): PgStore {
    const view = new PgStore({ ...this.#core.o, connection: 'postgres://view' });
    view.#core = this.#core;
    view.#tx = checkTx(tx);
    return view;
  }

  // ───────────────────────────── Connection lifecycle ─────────────────────────────

  /** Connects, then migrates (or checks the schema version with `autoMigrate: false`). */
  async connect(): Promise<void> {
    const c = this.#core;
    if (c.sql) return;
    const sql = c.o.sql ?? createPool(c.o.connection!, c.o.prepare);
    try {
      await sql.unsafe('SELECT 1');
    } catch (e) {
      if (c.ownsSql) await sql.end({ timeout: 0 }).catch(() => {});
      throw new StoreError('CONNECT_FAILED', `cannot connect to PostgreSQL: ${msg(e)}`, {
        cause: e,
      });
    }
    if (c.ownsSql) stopTypeReads(sql);
    c.typesRead = true;
    try {
      await migrate(sql, c.names, c.o.autoMigrate);
    } catch (e) {
      if (c.ownsSql) await sql.end({ timeout: 0 }).catch(() => {});
      throw e instanceof StoreError
        ? e
        : new StoreError('MIGRATION_FAILED', `migration failed: ${msg(e)}`, { cause: e });
    }
    const events = new EventHub({
      sql,
      names: c.names,
      listen: c.o.listen,
      pollInterval: c.o.pollInterval,
      prepare: c.o.prepare,
      // Connection failures of LISTEN and of polling come typed, as the methods' do.
      onError: (e) => c.o.onError(unavailable(e, c.o.listen ? 'LISTEN' : 'event polling') as Error),
    });
    try {
      await events.open();
    } catch (e) {
      await events.close();
      if (c.ownsSql) await sql.end({ timeout: 0 }).catch(() => {});
      throw new StoreError('CONNECT_FAILED', `cannot open the LISTEN connection: ${msg(e)}`, {
        cause: e,
      });
    }
    c.sql = sql;
    c.events = events;
  }

  /** Stops listening and, unless the pool was passed in, ends it. */
  async disconnect(): Promise<void> {
    const c = this.#core;
    const sql = c.sql;
    c.sql = null;
    await c.events?.close();
    c.events = null;
    if (sql && c.ownsSql) await sql.end({ timeout: 2 });
    await Promise.all(c.retired);
  }

  // ───────────────────────────────── Job CRUD ─────────────────────────────────

  /**
   * Saves a job (see `StoreInterface.saveJob`). With `options.tx` (a postgres.js
   * transaction), saves within it.
   */
  async saveJob(queueName: string, job: NewJob, options?: SaveOptions): Promise<string> {
    return (await this.#save(queueName, [job], options))[0];
  }

  /** Saves many jobs in one statement (see `StoreInterface.saveBulk`). */
  saveBulk(queueName: string, jobs: NewJob[], options?: SaveOptions): Promise<string[]> {
    if (!Array.isArray(jobs)) throw new InvalidArgumentError('jobs', jobs, 'an array of jobs');
    return this.#save(queueName, jobs, options);
  }

  async #save(queueName: string, jobs: NewJob[], options?: SaveOptions): Promise<string[]> {
    checkQueue(queueName);
    if (jobs.length === 0) return [];
    const x = this.#x(options);
    const rows = jobs.map((job, i) => jobToRow(queueName, job, i));
    if (rows.some((r) => r.parent_id !== null)) return await this.#saveChildren(x, queueName, rows);
    return await this.#insertRows(x, queueName, rows);
  }

  /**
   * Saves jobs of which some are children of existing jobs (opts.parent), in one transaction:
   * locks the parents (key order), refuses a missing or finished one, inserts, and counts each
   * inserted child for its parent.
   */
  async #saveChildren(x: Exec, queueName: string, rows: Row[]): Promise<string[]> {
    return await this.#atomic(async (t) => {
      await this.#lockParents(t, rows.filter((r) => r.parent_id !== null));
      const inserted: boolean[] = [];
      const ids = await this.#insertRows(t, queueName, rows, inserted);
      await this.#countChildren(t, rows.filter((r, i) => r.parent_id !== null && inserted[i]));
      return ids;
    }, x);
  }

  /**
   * Within a transaction, locks the existing parents that `children` (rows) name, in key
   * order (`FOR UPDATE`), and throws `parentRefusal`'s error for a missing or finished one.
   */
  async #lockParents(t: Exec, children: Row[]): Promise<void> {
    if (children.length === 0) return;
    const refs = [...new Map(
      children.map((r) => [
        `${r.parent_queue}\0${r.parent_id}`,
        [r.parent_queue as string, r.parent_id as string] as const,
      ]),
    ).values()];
    const found = await this.#run(t, this.#core.q.lockParents, [
      refs.map(([q]) => q),
      refs.map(([, id]) => id),
    ]);
    const states = new Map(found.map((r) => [`${r.queue}\0${r.id}`, r.state as string]));
    for (const [q, id] of refs) {
      const refusal = parentRefusal(q, id, states.get(`${q}\0${id}`) ?? null);
      if (refusal) throw refusal;
    }
  }

  /** Counts new children (rows, one per inserted child) for their existing parents. */
  async #countChildren(t: Exec, children: Row[]): Promise<void> {
    if (children.length === 0) return;
    await this.#run(t, this.#core.q.addChildren, [
      children.map((r) => r.parent_queue),
      children.map((r) => r.parent_id),
    ]);
  }

  /**
   * Inserts rows and returns their ids in input order; `inserted`, when given, gets whether each
   * row was inserted (false: an existing id or a deduplicated job answered).
   */
  async #insertRows(
    x: Exec,
    queueName: string,
    rows: Row[],
    inserted?: boolean[],
  ): Promise<string[]> {
    const ids: string[] = new Array(rows.length);
    if (rows.some((r) => r.dedup_key !== null || r.group_max !== null)) {
      const out = await this.#run(x, this.#core.q.saveChecked, [
        queueName,
        serializeRows(rows, queueName),
      ])
        .catch(mapSaveError(queueName));
      for (const r of out) {
        ids[r.idx as number] = r.job_id as string;
        if (inserted) inserted[r.idx as number] = r.inserted === true;
      }
      return ids;
    }
    // Without custom ids outside a caller's transaction, a plain INSERT is cheaper; a generated
    // id that a numeric custom jobId already took fails it, and the conflict-aware one retries.
    let plain = x === this.#core.sql && rows.every((r) => r.id === null) && !inserted;
    let todo = rows;
    for (let round = 0; todo.length > 0; round++) {
      if (plain) {
        try {
          if (todo.length === 1 && fitsOne(todo[0], queueName)) {
            const [row] = await this.#run(x, this.#core.q.insertOne, oneParams(todo[0], queueName));
            return [row.id as string];
          }
          const [params, shape] = batchParams(todo, queueName, false);
          const waiting = params[2] !== null &&
            todo.every((r) => r.q === queueName && r.state === 'waiting');
          const q = this.#core.q;
          const text = waiting ? q.insertWaiting(shape) : q.insertNew(shape);
          const [row] = await this.#run(x, text, params);
          return row.ids as string[];
        } catch (e) {
          if ((e as { code?: string }).code !== '23505') throw e;
          plain = false;
          continue;
        }
      }
      const [params, shape] = batchParams(todo, queueName, true);
      const out = await this.#run(x, this.#core.q.insertOrExisting(shape), params);
      const retry: Row[] = [];
      for (const r of out) {
        const row = rows[r.i as number];
        // A generated id that a custom jobId already took: generate another one.
        if (!r.inserted && row.id === null) retry.push(row);
        else {
          ids[r.i as number] = r.id as string;
          if (inserted) inserted[r.i as number] = r.inserted === true;
        }
      }
      if (round > 20) throw new StoreError('ID_EXHAUSTED', 'could not generate a free job id');
      todo = retry;
    }
    return ids;
  }

  /** Returns a copy of the job, or null. */
  async getJob(queueName: string, jobId: string): Promise<JobData | null> {
    const [row] = await this.#run(this.#x(), this.#core.q.getJob, [queueName, jobId]);
    return row ? jobFromRow(row) : null;
  }

  /** Updates fields of a job, optionally guarded (see `StoreInterface.updateJob`). */
  async updateJob(
    queueName: string,
    jobId: string,
    updates: Partial<JobData>,
    guard?: UpdateGuard,
  ): Promise<boolean> {
    checkUpdates(updates);
    const sets: string[] = [];
    const params: Params = [queueName, jobId];
    for (const [field, value] of Object.entries(updates)) {
      const map = UPDATABLE[field];
      if (!map || value === undefined) continue;
      for (const [col, v] of map(value)) {
        params.push(v);
        // JSON columns take the JSON text through a text parameter: a jsonb parameter would
        // have the driver encode the text again, storing a JSON string.
        const type = COLUMN_TYPES[col] ?? 'text';
        sets.push(`${col} = $${params.length}::${type === 'jsonb' ? 'text::jsonb' : type}`);
      }
    }
    const { s } = this.#core.names;
    const where = [`queue = $1::text`, `id = $2::text`];
    if (guard?.state !== undefined) {
      params.push(JSON.stringify([guard.state].flat()));
      where.push(`state IN (SELECT json_array_elements_text($${params.length}::text::json))`);
    }
    if (guard?.token !== undefined) {
      params.push(guard.token);
      where.push(`${activeById()} AND lock_token = $${params.length}::text`);
    }
    if (sets.length === 0) sets.push('queue = queue');
    const state = updates.state;
    // A job moved to waiting or delayed is announced, and so is a delayed job's new time (the
    // promoter re-arms on it).
    const kind = state === 'waiting' || state === 'delayed'
      ? state
      : state === undefined && updates.delayUntil !== undefined
      ? 'delayed'
      : null;
    const text = `WITH u AS (UPDATE ${s}.jobs SET ${sets.join(', ')} WHERE ${where.join(' AND ')}
        RETURNING id, state, delay_until, dedup_key, dedup_expires_at)
      ${state === undefined ? '' : dedupFollowUp(s, state)}
      SELECT u.id${
      kind
        ? `, (SELECT ${s}.emit($1::text, '${kind}', array_agg(id), array_agg(${
          kind === 'delayed' ? `jsonb_build_object('delayUntil', delay_until)` : 'NULL::jsonb'
        })) FROM u WHERE u.state = '${kind}') AS _e`
        : ''
    } FROM u`;
    const rows = await this.#run(this.#x(), text, params);
    return rows.length > 0;
  }

  /** Removes a job and its descendants (see `StoreInterface.removeJob`). */
  async removeJob(queueName: string, jobId: string, options?: RemoveOptions): Promise<void> {
    const unlessActive = checkRemoveOptions(options);
    await this.#run(this.#x(), this.#core.q.removeJob, [queueName, jobId, unlessActive])
      .catch((e) => {
        const busy = activeJob(e);
        throw busy ? activeRemovalError(busy.queue, busy.id) : e;
      });
  }

  /** Appends a log line; returns the line count (0 when the job is missing). */
  async addLog(
    queueName: string,
    jobId: string,
    line: string,
    keepLogs?: number,
  ): Promise<number> {
    if (keepLogs !== undefined && (!Number.isInteger(keepLogs) || keepLogs < 0)) {
      throw new InvalidArgumentError('keepLogs', keepLogs, 'a whole number >= 0');
    }
    const [row] = await this.#run(this.#x(), this.#core.q.addLog, [
      queueName,
      jobId,
      String(line),
      keepLogs ?? null,
    ]);
    return row ? Number(row.n) : 0;
  }

  /** Keeps the newest `keep` log lines, in one UPDATE (see `StoreInterface.trimLogs`). */
  async trimLogs(queueName: string, jobId: string, keep: number): Promise<number> {
    checkInteger('keep', keep, 0);
    const [row] = await this.#run(this.#x(), this.#core.q.trimLogs, [queueName, jobId, keep]);
    if (!row) throw new JobNotFoundError(queueName, jobId);
    return Number(row.n);
  }

  // ──────────────────────────────── Deduplication ────────────────────────────────

  /** The live job holding a deduplication key, or null. */
  async findByDeduplicationKey(queueName: string, key: string): Promise<JobData | null> {
    const [row] = await this.#run(this.#x(), this.#core.q.findByDedup, [queueName, key]);
    return row ? jobFromRow(row) : null;
  }

  // ─────────────────────────────── Fetching and locking ───────────────────────────────

  /** Claims the next job (see `StoreInterface.fetchNextJob`). */
  async fetchNextJob(
    queueName: string,
    workerId: string,
    lockDuration: number,
    opts?: FetchOptions,
  ): Promise<JobData | null> {
    return (await this.fetchNextJobs(queueName, workerId, lockDuration, 1, opts))[0] ?? null;
  }

  /** Claims up to `count` jobs in one statement (see `StoreInterface.fetchNextJobs`). */
  async fetchNextJobs(
    queueName: string,
    workerId: string,
    lockDuration: number,
    count: number,
    opts: FetchOptions = {},
  ): Promise<JobData[]> {
    checkQueue(queueName);
    if (typeof workerId !== 'string') {
      throw new InvalidArgumentError('workerId', workerId, 'a string');
    }
    if (!(Number.isFinite(lockDuration) && lockDuration > 0)) {
      throw new InvalidArgumentError('lockDuration', lockDuration, 'a number of ms > 0');
    }
    if (!Number.isInteger(count) || count < 1) {
      throw new InvalidArgumentError('count', count, 'a whole number >= 1');
    }
    checkFetchOptions(opts);
    const q = this.#core.q;
    const limited = LIMITED_FETCH.some((k) => opts[k] !== undefined);
    if (limited) {
      const rows = await this.#run(this.#x(), q.claimLimited, [
        queueName,
        workerId,
        lockDuration,
        count,
        JSON.stringify(opts),
        tokenPrefix(),
      ]);
      return rows.map(jobFromRow);
    }
    const rows = await this.#run(this.#x(), opts.lifo ? q.claimLifo : q.claim, [
      queueName,
      workerId,
      lockDuration,
      count,
      opts.jobName ?? null,
      tokenPrefix(),
    ]);
    // The plain claim returns its rows unordered: priority first, then FIFO (or LIFO) order.
    if (rows.length > 1) rows.sort(opts.lifo ? byPriorityThenNewest : byPriorityThenOrder);
    if (rows.length > 0 && rows[0]._w === true) {
      await this.#run(this.#x(), q.emitActive, [
        queueName,
        rows.map((r) => r.id),
        rows.map((r) => r.name),
      ]);
    }
    return rows.map((r) => jobFromRow(claimedRow(r, queueName, workerId, lockDuration)));
  }

  /** Extends a lock to now + duration (database clock), fenced by `token` when given. */
  async extendLock(
    queueName: string,
    jobId: string,
    duration: number,
    token?: string,
  ): Promise<boolean> {
    if (!(Number.isFinite(duration) && duration > 0)) {
      throw new InvalidArgumentError('duration', duration, 'a number of ms > 0');
    }
    const rows = await this.#run(this.#x(), this.#core.q.extendLock, [
      queueName,
      jobId,
      duration,
      token ?? null,
    ]);
    return rows.length > 0;
  }

  /** Extends several locks in one statement (database clock), each fenced by its token. */
  async extendLocks(queueName: string, locks: JobLock[], duration: number): Promise<boolean[]> {
    checkJobLocks(locks, duration);
    if (locks.length === 0) return [];
    const tokens: Record<string, string[]> = Object.create(null);
    for (const { jobId, token } of locks) (tokens[jobId] ??= []).push(token);
    const input = JSON.stringify(tokens);
    const held = await this.#byIds(Object.keys(tokens), async (ids) => {
      const rows = await this.#run(this.#x(), this.#core.q.extendLocks, [
        queueName,
        ids,
        input,
        duration,
      ]);
      return new Map(rows.map((r) => [r.id as string, r.lock_token as string]));
    });
    return locks.map(({ jobId, token }) => held.get(jobId) === token);
  }

  /** Puts an active job back in `waiting`, fenced by `token` when given. */
  async releaseLock(queueName: string, jobId: string, token?: string): Promise<boolean> {
    const rows = await this.#run(this.#x(), this.#core.q.releaseLock, [
      queueName,
      jobId,
      token ?? null,
    ]);
    return rows.length > 0;
  }

  /** Parks an active job until its children finish, fenced by its token; one statement. */
  async moveToWaitingChildren(
    queueName: string,
    jobId: string,
    token: string,
  ): Promise<WaitForChildren> {
    checkToken(token);
    const [row] = await this.#run(this.#x(), this.#core.q.moveToWaitingChildren, [
      queueName,
      jobId,
      token,
    ]);
    return row ? row.outcome as WaitForChildren : 'lost';
  }

  /** Moves an active job to `delayed` (or `waiting`), fenced by its token; one statement. */
  async moveToDelayed(
    queueName: string,
    jobId: string,
    token: string,
    delayUntil: number,
  ): Promise<boolean> {
    checkMoveToDelayed(token, delayUntil);
    const rows = await this.#run(this.#x(), this.#core.q.moveToDelayed, [
      queueName,
      jobId,
      token,
      delayUntil,
    ]);
    return rows.length > 0;
  }

  // ─────────────────────────────── Finishing (fenced) ───────────────────────────────

  /** Completes active jobs in one round trip (see `StoreInterface.completeJobs`). */
  async completeJobs(
    queueName: string,
    completions: JobCompletion[],
    options?: CompleteJobsOptions,
  ): Promise<boolean[]> {
    if (!Array.isArray(completions)) {
      throw new InvalidArgumentError('completions', completions, 'an array');
    }
    const keep = keepParams(options?.removeOnComplete, 'options.removeOnComplete');
    if (completions.length === 0) return [];
    // Each id's input index, token and return value; a repeated id keeps its first.
    const map: Record<string, [number, string | null, string]> = Object.create(null);
    completions.forEach((c, i) => {
      if (typeof c.jobId === 'string' && !Object.hasOwn(map, c.jobId)) {
        map[c.jobId] = [i, c.token ?? null, JSON.stringify(c.returnvalue) ?? 'null'];
      }
    });
    const input = JSON.stringify(map);
    const done = await this.#byIds(Object.keys(map), async (ids) => {
      const rows = await this.#run(this.#x(), this.#core.q.completeJobs, [
        queueName,
        ids,
        input,
        ...keep,
      ]);
      const indexes = (rows[0].done as number[] | null) ?? [];
      return new Map(indexes.map((i) => [completions[i].jobId, [i]]));
    });
    return flags(completions.length, [...done.values()].flat());
  }

  /** Fails active jobs in one round trip (see `StoreInterface.failJobs`). */
  async failJobs(
    queueName: string,
    failures: JobFailure[],
    options?: FailJobsOptions,
  ): Promise<boolean[]> {
    if (!Array.isArray(failures)) throw new InvalidArgumentError('failures', failures, 'an array');
    const keep = keepParams(options?.removeOnFail, 'options.removeOnFail');
    if (failures.length === 0) return [];
    const input = failures.map((f, i) => {
      if (f.retryAt !== undefined && f.retryAt !== null && !Number.isFinite(f.retryAt)) {
        throw new InvalidArgumentError(`failures[${i}].retryAt`, f.retryAt, 'a time in ms or null');
      }
      return {
        i,
        id: f.jobId,
        token: f.token,
        reason: String(f.reason),
        stack: f.stack ?? null,
        retry_at: f.retryAt ?? null,
      };
    });
    const ids = [...new Set(input.map((f) => f.id).filter((id) => typeof id === 'string'))];
    const failed = await this.#byIds(ids, async (some) => {
      const wanted = new Set(some);
      const rows = await this.#run(this.#x(), this.#core.q.failJobs, [
        queueName,
        JSON.stringify(input.filter((f) => wanted.has(f.id))),
        ...keep,
      ]);
      const taken = new Map<string, number[]>();
      for (const { i } of rows as Array<{ i: number }>) {
        const same = taken.get(failures[i].jobId);
        if (same) same.push(i);
        else taken.set(failures[i].jobId, [i]);
      }
      return taken;
    });
    return flags(failures.length, [...failed.values()].flat());
  }

  // ──────────────────────────────────── Queries ────────────────────────────────────

  /** Counts active jobs. */
  getActiveCount(queueName: string): Promise<number> {
    return this.countJobs(queueName, 'active');
  }

  /** Lists jobs in a state, paginated with inclusive indexes (`end` -1: to the last). */
  async listJobs(queueName: string, state: JobState, start = 0, end = -1): Promise<JobData[]> {
    checkState(state);
    if (!Number.isInteger(start) || start < 0) {
      throw new InvalidArgumentError('start', start, 'a whole number >= 0');
    }
    if (!Number.isInteger(end) || end < -1) {
      throw new InvalidArgumentError('end', end, 'a whole number >= -1');
    }
    if (end !== -1 && end < start) return [];
    const limit = end === -1 ? null : end - start + 1;
    const rows = await this.#run(this.#x(), this.#core.q.list(state), [
      queueName,
      state,
      start,
      limit,
    ]);
    return rows.map(jobFromRow);
  }

  /** Counts jobs in a state. */
  async countJobs(queueName: string, state: JobState): Promise<number> {
    checkState(state);
    const [row] = await this.#run(this.#x(), this.#core.q.countState, [queueName, state]);
    return Number(row.n);
  }

  /** The earliest `delayUntil` of the queue's delayed jobs, or null. */
  async getNextDelayedTimestamp(queueName: string): Promise<number | null> {
    const [row] = await this.#run(this.#x(), this.#core.q.nextDelayed, [queueName]);
    return row.t === null ? null : Number(row.t);
  }

  // ─────────────────────────────── Delayed promotion ───────────────────────────────

  /** Moves due delayed jobs to `waiting`; returns how many moved. */
  async promoteDelayedJobs(queueName: string, timestamp: number): Promise<number> {
    if (!Number.isFinite(timestamp)) {
      throw new InvalidArgumentError('timestamp', timestamp, 'a time in ms');
    }
    const rows = await this.#run(this.#x(), this.#core.q.promote, [queueName, timestamp]);
    return rows.length;
  }

  // ────────────────────────────────── Pause / resume ──────────────────────────────────

  /** Pauses a job name, or the queue with `__all__`. */
  async pauseJobName(queueName: string, jobName: string): Promise<void> {
    await this.#run(this.#x(), this.#core.q.pause, [queueName, jobName]);
  }

  /** Rate limits limited claims for `ttl` ms (see `StoreInterface.setRateLimit`). */
  async setRateLimit(queueName: string, ttl: number): Promise<void> {
    checkQueue(queueName);
    checkRateLimitTtl(ttl);
    await this.#run(this.#x(), this.#core.q.setRateLimit, [queueName, ttl]);
  }

  /**
   * Ms until the manual rate limit ends (or, with `maxJobs`, a window that counted that many
   * claims), 0 when none (see `StoreInterface.getRateLimitTtl`).
   */
  async getRateLimitTtl(queueName: string, maxJobs?: number): Promise<number> {
    if (maxJobs !== undefined) checkInteger('maxJobs', maxJobs, 1);
    const rows = await this.#run(this.#x(), this.#core.q.rateLimitTtl, [
      queueName,
      maxJobs ?? null,
    ]);
    return Number(rows[0].ttl);
  }

  /** Ends the manual rate limit and the queue's window (see `StoreInterface.removeRateLimit`). */
  async removeRateLimit(queueName: string): Promise<boolean> {
    const rows = await this.#run(this.#x(), this.#core.q.removeRateLimit, [queueName]);
    return rows[0]?.was === true;
  }

  /** Resumes a job name. */
  async resumeJobName(queueName: string, jobName: string): Promise<void> {
    await this.#run(this.#x(), this.#core.q.resume, [queueName, jobName]);
  }

  /** The paused job names. */
  async getPausedJobNames(queueName: string): Promise<string[]> {
    const rows = await this.#run(this.#x(), this.#core.q.pausedNames, [queueName]);
    return rows.map((r) => r.name as string);
  }

  // ─────────────────────────────── Stalled detection ───────────────────────────────

  /** Active jobs whose lock expired at least `stalledThreshold` ms ago (database clock). */
  async getStalledJobs(queueName: string, stalledThreshold: number): Promise<JobData[]> {
    if (!(Number.isFinite(stalledThreshold) && stalledThreshold >= 0)) {
      throw new InvalidArgumentError('stalledThreshold', stalledThreshold, 'a number of ms >= 0');
    }
    const rows = await this.#run(this.#x(), this.#core.q.stalled, [queueName, stalledThreshold]);
    return rows.map(jobFromRow);
  }

  /** Rescues expired locks in one statement (see `StoreInterface.requeueStalledJobs`). */
  async requeueStalledJobs(queueName: string, maxStalledCount: number): Promise<StalledResult> {
    if (!Number.isInteger(maxStalledCount) || maxStalledCount < 0) {
      throw new InvalidArgumentError('maxStalledCount', maxStalledCount, 'a whole number >= 0');
    }
    const rows = await this.#run(this.#x(), this.#core.q.requeueStalled, [
      queueName,
      maxStalledCount,
    ]);
    const result: StalledResult = { requeued: [], failed: [], failedJobs: [] };
    for (const r of rows) {
      if (r.outcome !== 'failed') {
        result.requeued.push(r.job_id as string);
        continue;
      }
      result.failed.push(r.job_id as string);
      result.failedJobs.push(jobFromRow(JSON.parse(r.job as string)));
    }
    return result;
  }

  // ──────────────────────────────────── Cleanup ────────────────────────────────────

  /** Removes old jobs of a state (never `active`); returns how many. */
  async clean(queueName: string, state: JobState, grace: number, limit?: number): Promise<number> {
    checkState(state);
    if (!(Number.isFinite(grace) && grace >= 0)) {
      throw new InvalidArgumentError('grace', grace, 'a number of ms >= 0');
    }
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw new InvalidArgumentError('limit', limit, 'a whole number >= 0');
    }
    if (state === 'active') return 0;
    const [row] = await this.#run(this.#x(), this.#core.q.clean, [
      queueName,
      state,
      grace,
      limit ? limit : null, // 0 or undefined: no limit
    ]);
    return Number(row.n);
  }

  /**
   * Applies `removeOnComplete` / `removeOnFail` count and age limits; returns how many. Each
   * job past them goes alone (its children stay), as at finish time; see
   * {@linkcode StoreInterface.pruneFinished}.
   */
  async pruneFinished(queueName: string): Promise<number> {
    const [row] = await this.#run(this.#x(), this.#core.q.prune, [queueName]);
    return Number(row.n);
  }

  /** Removes every waiting and delayed job (with descendants). */
  async drain(queueName: string): Promise<void> {
    await this.#run(this.#x(), this.#core.q.drain, [queueName]);
  }

  /** Removes everything of a queue; refuses with active jobs unless `force`. */
  async obliterate(queueName: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.#run(this.#x(), this.#core.q.obliterate, [queueName, opts.force === true])
      .catch((e) => {
        const busy = activeJob(e);
        throw busy ? queueActiveError(queueName, busy.queue, busy.id) : e;
      });
  }

  /** Names of the queues with jobs or schedulers. */
  async listQueues(): Promise<string[]> {
    const rows = await this.#run(this.#x(), this.#core.q.listQueues, []);
    return rows.map((r) => r.queue as string);
  }

  // ──────────────────────────────────── Pub/Sub ────────────────────────────────────

  /**
   * Receives the queue's events from every process (LISTEN, or polling in poll-only mode).
   * `active` and `completed` are published only while some subscriber, in any process, wants
   * them (`types` missing or naming them).
   */
  subscribe(
    queueName: string,
    callback: (event: StoreEvent) => void,
    types?: readonly StoreEventType[],
  ): void {
    this.#events().subscribe(queueName, callback, types);
  }

  /** Removes one callback, or all of the queue's. */
  unsubscribe(queueName: string, callback?: (event: StoreEvent) => void): void {
    this.#core.events?.unsubscribe(queueName, callback);
  }

  /** Publishes an event to every process (NOTIFY; data dropped when over 8000 bytes). */
  async publish(event: StoreEvent): Promise<void> {
    const events = this.#events();
    if (events.unsettled > 0) await events.ready();
    const x = this.#x();
    try {
      await events.publish(event, x);
    } catch (e) {
      // As for any query: a connection that timed out connecting renews the pool.
      this.#onQueryError(x, e);
      throw e;
    }
  }

  /** Resolves when every subscription made so far is active (LISTEN acknowledged). */
  async subscriptionsReady(): Promise<void> {
    await this.#core.events?.ready();
  }

  // ──────────────────────────────────── Flows ────────────────────────────────────

  /** Saves a flow atomically (see `StoreInterface.saveFlow`). */
  async saveFlow(
    jobs: Array<{ queueName: string; job: NewJob }>,
    options?: SaveOptions,
  ): Promise<string[]> {
    if (!Array.isArray(jobs)) throw new InvalidArgumentError('jobs', jobs, 'an array');
    const rows = jobs.map(({ queueName, job }, i) => {
      checkQueue(queueName);
      if (!job?.opts?.jobId) {
        throw new InvalidArgumentError(`jobs[${i}].job.opts.jobId`, job?.opts?.jobId, 'an id');
      }
      return jobToRow(queueName, job, i);
    });
    if (rows.length === 0) return [];
    const x = this.#x(options);
    // Parents that are no job of the flow (a root's opts.parent) are existing jobs.
    const inFlow = new Set(rows.map((r) => `${r.q}\0${r.id}`));
    const outside = rows.filter((r) =>
      r.parent_id !== null && r.parent_queue !== null &&
      !inFlow.has(`${r.parent_queue}\0${r.parent_id}`)
    );
    try {
      await this.#atomic(async (t) => {
        await this.#lockParents(t, outside);
        if (!rows.some((r) => r.dedup_key !== null || r.group_max !== null)) {
          const { json, shape } = packRows(rows, null, false);
          await this.#run(t, this.#core.q.insertNew(shape), [json, null, null]);
          await this.#countChildren(t, outside);
          return;
        }
        // Deduplication keys and group limits: the checked save, one queue at a time. A key
        // held by a live job refuses the whole flow, as a custom id that exists does.
        for (const queue of new Set(rows.map((r) => r.q as string))) {
          const own = rows.filter((r) => r.q === queue);
          const out = await this.#run(t, this.#core.q.saveChecked, [
            queue,
            serializeRows(own, queue),
          ]).catch(mapSaveError(queue));
          const held = out.find((r) => r.inserted !== true);
          if (held) throw new DuplicateJobError(queue, held.job_id as string);
        }
        await this.#countChildren(t, outside);
      }, x);
    } catch (e) {
      if ((e as { code?: string }).code !== '23505') throw e;
      const pairs = rows.map((r) => ({ q: r.q, id: r.id }));
      const [dup] = await this.#run(x, this.#core.q.existingIds, [JSON.stringify(pairs)]);
      const seen = new Set<string>();
      const inner = pairs.find((p) => seen.size === seen.add(`${p.q}\0${p.id}`).size);
      const q = (dup?.q ?? inner?.q ?? rows[0].q) as string;
      throw new DuplicateJobError(q, (dup?.id ?? inner?.id ?? rows[0].id) as string);
    }
    return rows.map((r) => r.id as string);
  }

  /** Decrements a parent's pending count; returns its state. */
  async notifyChildCompleted(parentQueueName: string, parentId: string): Promise<JobState> {
    const [row] = await this.#run(this.#x(), this.#core.q.childDone, [parentQueueName, parentId]);
    if (!row || row.state === null) throw new JobNotFoundError(parentQueueName, parentId);
    return row.state as JobState;
  }

  /** Fails an unfinished parent and applies its policy up the tree. */
  async failParentOnChildFailure(
    parentQueueName: string,
    parentId: string,
    reason: string,
  ): Promise<boolean> {
    const [row] = await this.#run(this.#x(), this.#core.q.failParent, [
      parentQueueName,
      parentId,
      String(reason),
    ]);
    return row.ok === true;
  }

  /** The children of a job, in any queue. */
  async getChildrenJobs(parentQueueName: string, parentId: string): Promise<JobData[]> {
    const rows = await this.#run(this.#x(), this.#core.q.children, [parentQueueName, parentId]);
    return rows.map(jobFromRow);
  }

  /** The recorded return values of a job's completed children, by `<queue>:<id>`. */
  async getChildrenValues(
    parentQueueName: string,
    parentId: string,
  ): Promise<Record<string, unknown>> {
    const rows = await this.#run(this.#x(), this.#core.q.childrenValues, [
      parentQueueName,
      parentId,
    ]);
    const values: Record<string, unknown> = {};
    for (const r of rows) values[`${r.child_queue}:${r.child_id}`] = JSON.parse(r.value as string);
    return values;
  }

  // ──────────────────────────────────── Groups ────────────────────────────────────

  /** Counts active jobs of a group. */
  async getGroupActiveCount(queueName: string, groupId: string): Promise<number> {
    const [row] = await this.#run(this.#x(), this.#core.q.groupCount, [
      queueName,
      groupId,
      'active',
    ]);
    return Number(row.n);
  }

  /** Counts waiting jobs of a group. */
  async getWaitingGroupCount(queueName: string, groupId: string): Promise<number> {
    const [row] = await this.#run(this.#x(), this.#core.q.groupCount, [
      queueName,
      groupId,
      'waiting',
    ]);
    return Number(row.n);
  }

  // ──────────────────────────────── Job schedulers ────────────────────────────────

  /** Creates or replaces a scheduler, atomically with its first job. */
  upsertScheduler(scheduler: SchedulerData, firstJob: NewJob | null): Promise<string | null> {
    if (typeof scheduler !== 'object' || scheduler === null) {
      throw new InvalidArgumentError('scheduler', scheduler, 'a scheduler object');
    }
    checkQueue(scheduler.queueName);
    const q = this.#core.q;
    const key = [scheduler.queueName, scheduler.id];
    return this.#atomic(async (x) => {
      // The row lock of schedulerForUpdate holds nothing while the scheduler is new: two first
      // upserts would each add a first job.
      await this.#run(x, q.lockScheduler, key);
      const [old] = await this.#run(x, q.schedulerForUpdate, key);
      // A replaced run that never started does not count (re-upserting must not use up `limit`).
      const unstarted = old
        ? Number((await this.#run(x, q.removeSchedulerJobs, key))[0].unstarted)
        : 0;
      const id = firstJob
        ? (await this.#insertRows(x, scheduler.queueName, [
          jobToRow(scheduler.queueName, firstJob, 0),
        ]))[0]
        : null;
      const runs =
        (old ? Math.max(0, Number(old.run_count) - unstarted) : scheduler.runCount ?? 0) +
        (firstJob ? 1 : 0);
      await this.#run(x, q.upsertScheduler, [
        ...key,
        scheduler.name,
        JSON.stringify(scheduler.data) ?? 'null',
        JSON.stringify(scheduler.opts ?? {}),
        JSON.stringify(scheduler.repeat ?? {}),
        scheduler.nextRunAt,
        runs,
        old ? Number(old.created_at) : scheduler.createdAt ?? Date.now(),
      ]);
      return id;
    });
  }

  /** Returns a scheduler, or null. */
  async getScheduler(queueName: string, schedulerId: string): Promise<SchedulerData | null> {
    const [row] = await this.#run(this.#x(), this.#core.q.getScheduler, [queueName, schedulerId]);
    return row ? rowToScheduler(row) : null;
  }

  /** Lists a queue's schedulers by next run time. */
  async listSchedulers(queueName: string): Promise<SchedulerData[]> {
    const rows = await this.#run(this.#x(), this.#core.q.listSchedulers, [queueName]);
    return rows.map(rowToScheduler);
  }

  /** Removes a scheduler and its pending job. */
  removeScheduler(queueName: string, schedulerId: string): Promise<boolean> {
    return this.#atomic(async (x) => {
      const gone = await this.#run(x, this.#core.q.deleteScheduler, [queueName, schedulerId]);
      await this.#run(x, this.#core.q.removeSchedulerJobs, [queueName, schedulerId]);
      return gone.length > 0;
    });
  }

  /** Advances a scheduler with compare-and-set on `nextRunAt` (see the contract). */
  advanceScheduler(
    queueName: string,
    schedulerId: string,
    expectedRunAt: number,
    nextRunAt: number | null,
    job: NewJob | null,
  ): Promise<string | null | false> {
    return this.#atomic(async (x): Promise<string | null | false> => {
      const ok = await this.#run(x, this.#core.q.advanceScheduler, [
        queueName,
        schedulerId,
        expectedRunAt,
        nextRunAt,
        job ? 1 : 0,
      ]);
      if (ok.length === 0) return false;
      if (!job) return null;
      return (await this.#insertRows(x, queueName, [jobToRow(queueName, job, 0)]))[0];
    });
  }

  // ──────────────────────────────────── Internals ────────────────────────────────────

  #x(options?: SaveOptions): Exec {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new InvalidArgumentError('options', options, 'an object like { tx }');
    }
    if (options?.tx !== undefined) return checkTx(options.tx);
    if (this.#tx) return this.#tx;
    const sql = this.#core.sql;
    if (!sql) throw new StoreError('NOT_CONNECTED', 'PgStore: call connect() first');
    return sql;
  }

  #events(): EventHub {
    const events = this.#core.events;
    if (!events) throw new StoreError('NOT_CONNECTED', 'PgStore: call connect() first');
    return events;
  }

  async #run(x: Exec, text: string, params: Params): Promise<Row[]> {
    // A change made right after subscribe() must not outrun the LISTEN it would notify.
    const events = this.#core.events;
    if (events && events.unsettled > 0) await events.ready();
    let rows: unknown;
    try {
      rows = await x.unsafe(text, params as never[], { prepare: this.#core.o.prepare });
    } catch (e) {
      this.#onQueryError(x, e);
      throw e;
    }
    if (!this.#core.typesRead && x === this.#core.sql) {
      // A query went through the renewed pool: its first connection has read the types.
      stopTypeReads(x as postgres.Sql);
      this.#core.typesRead = true;
    }
    return rows as Row[];
  }

  /** Runs `fn` in a transaction (or a savepoint when already inside one). */
  #atomic<T>(fn: (x: Exec) => Promise<T>, x: Exec = this.#x()): Promise<T> {
    if ('begin' in x && typeof x.begin === 'function') {
      return ((x as postgres.Sql).begin((t) => fn(t)) as Promise<T>).catch((e) => {
        this.#onQueryError(x, e);
        throw e;
      });
    }
    return (x as postgres.TransactionSql).savepoint((t) => fn(t)) as Promise<T>;
  }

  /**
   * Runs `pass`, a batch statement that reaches its jobs by address (`jobsWithIds`), for the
   * unique `ids`, then again for the ids it did not take, while a pass takes some. Such a
   * statement skips a job that another transaction updated (a lock renewal, a progress update)
   * after the statement's snapshot: PostgreSQL rechecks the job's address on its newest version,
   * which the update moved. A later pass has a new snapshot, which sees that version. A pass
   * that takes none of the rest ends it: those jobs are gone or not active with that token. At
   * most three passes; each is its own statement, as the first, so no lock is held between them.
   * Returns what the passes reported for the ids they took.
   */
  async #byIds<V>(
    ids: string[],
    pass: (ids: string[]) => Promise<Map<string, V>>,
  ): Promise<Map<string, V>> {
    const taken = await pass(ids);
    let rest = ids.filter((id) => !taken.has(id));
    for (let n = 1; n < 3 && rest.length > 0; n++) {
      const more = await pass(rest);
      if (more.size === 0) break;
      for (const [id, v] of more) taken.set(id, v);
      rest = rest.filter((id) => !more.has(id));
    }
    return taken;
  }

  /**
   * After a query of the store's own pool failed with CONNECT_TIMEOUT, replaces the pool.
   * postgres.js 3.4.9 can leave a connection unable to send anything again: when its socket
   * closes while a write waits for the next turn of the event loop, it cancels that write's
   * timer without forgetting it, and from then on every connection attempt of that slot of the
   * pool sends nothing and ends in CONNECT_TIMEOUT (after `connect_timeout`), however healthy the
   * server, for as long as the pool lives (seen on Bun after a server crash). A new pool has
   * new connections; the old one ends (queries in flight get 2 s). Errors of a pool already
   * replaced change nothing, so each pool is replaced at most once.
   */
  #onQueryError(x: Exec, e: unknown): void {
    const c = this.#core;
    if (!c.ownsSql || x !== c.sql || (e as { code?: unknown }).code !== 'CONNECT_TIMEOUT') return;
    const fresh = createPool(c.o.connection!, c.o.prepare);
    c.sql = fresh;
    c.typesRead = false;
    c.events?.usePool(fresh);
    const ending = x.end({ timeout: 2 }).catch(() => {}).then(() => void c.retired.delete(ending));
    c.retired.add(ending);
    c.o.onError(
      new StoreError('POOL_RENEWED', `a connection timed out connecting; new pool: ${msg(e)}`, {
        cause: e,
      }),
    );
  }
}

/**
 * The store's boundary with its callers: the promise of every public method of `proto` goes
 * through `unavailable` once, so a connection-level failure anywhere below (a statement, a
 * transaction's BEGIN, COMMIT or savepoint, a NOTIFY) reaches the caller as one `StoreError`
 * with code `UNAVAILABLE` naming the method and its queue, the driver's error as its `cause`.
 * Every other error (a constraint, a typed refusal, an error of the caller's transaction) goes
 * through unchanged, and the store's own code below keeps seeing the driver's errors (the
 * `23505` retries, `#onQueryError`). Synchronous throws (bad arguments) are left alone.
 */
function guardConnections(proto: object): void {
  for (const name of Object.getOwnPropertyNames(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, name)!;
    if (name === 'constructor' || typeof d.value !== 'function') continue;
    const method = d.value as (...args: unknown[]) => unknown;
    d.value = {
      [name](this: unknown, ...args: unknown[]): unknown {
        const out = method.apply(this, args);
        if (!(out instanceof Promise)) return out;
        return out.catch((e) => {
          throw unavailable(e, name, typeof args[0] === 'string' ? args[0] : undefined);
        });
      },
    }[name];
    Object.defineProperty(proto, name, d);
  }
}

guardConnections(PgStore.prototype);

/** The job named by a `conveyor:job_active` error (refuse_active), or null for any other error. */
function activeJob(e: unknown): { queue: string; id: string } | null {
  const err = e as { message?: string; detail?: string };
  if (err.message !== 'conveyor:job_active' || !err.detail) return null;
  return JSON.parse(err.detail) as { queue: string; id: string };
}

/**
 * The dedup-key side of a state change in `updateJob`: a job moved to a terminal state releases
 * a key held without TTL; a job moved back out takes its key again when no live job holds it.
 */
function dedupFollowUp(s: string, state: JobState): string {
  if (state === 'completed' || state === 'failed') {
    return `, r AS (DELETE FROM ${s}.dedup d USING u WHERE d.queue = $1::text
      AND d.key = u.dedup_key AND d.job_id = u.id AND d.expires_at IS NULL)`;
  }
  return `, a AS (INSERT INTO ${s}.dedup AS d (queue, key, job_id, expires_at)
      SELECT $1::text, u.dedup_key, u.id, u.dedup_expires_at FROM u
      WHERE u.dedup_key IS NOT NULL
        AND (u.dedup_expires_at IS NULL OR u.dedup_expires_at > ${s}.now_ms())
      ON CONFLICT (queue, key) DO UPDATE SET job_id = EXCLUDED.job_id,
        expires_at = EXCLUDED.expires_at
      WHERE d.job_id = EXCLUDED.job_id OR (d.expires_at IS NOT NULL AND d.expires_at <= ${s}.now_ms()))`;
}

/**
 * Stops a pool's new connections from reading the array types (postgres.js's option
 * fetch_types), once its first connection has read them for the whole pool: postgres.js leaves
 * that read's promise unhandled, so a connection that dies during it, as when the server goes
 * away while the pool reconnects, ends in an unhandled rejection, which stops a Node process
 * (porsager/postgres#1192). The store's array parameters need the types read once.
 */
function stopTypeReads(sql: postgres.Sql): void {
  (sql.options as { fetch_types: boolean }).fetch_types = false;
}

/**
 * The store's own pool: 10 connections, notices dropped, a short reconnect delay
 * (`reconnectDelay`) and a 10 s connection timeout (postgres.js: 30 s; a slot of the pool that
 * postgres.js left unable to connect holds its query that long, see `PgStore#onQueryError`), each
 * unless the options or the URL (`?backoff=`, `?connect_timeout=`) set it.
 */
function createPool(
  connection: NonNullable<PgStoreOptions['connection']>,
  prepare: boolean,
): postgres.Sql {
  // `prepare` for the whole pool: postgres.js prepares its own COMMIT, ROLLBACK and SAVEPOINT
  // statements when the pool does.
  const base = { onnotice: () => {}, max: 10, prepare };
  const tuned: Record<string, unknown> = { backoff: reconnectDelay, connect_timeout: 10 };
  if (typeof connection !== 'string') {
    return postgres({ ...base, ...tuned, ...connection }) as unknown as postgres.Sql;
  }
  // A URL's own `?backoff=` / `?connect_timeout=` win over these.
  for (const key of Object.keys(tuned)) {
    if (new RegExp(`[?&]${key}=`).test(connection)) delete tuned[key];
  }
  return postgres(connection, { ...base, ...tuned }) as unknown as postgres.Sql;
}

/** Whether a row can take the single-job path: its queue's, and its notification fits. */
function fitsOne(row: Row, queueName: string): boolean {
  return row.q === queueName && (row.name as string).length <= 1000;
}

/**
 * The parameters of `insertNew`, `insertWaiting` and `insertOrExisting` (the packed rows, with
 * their input index when `index` is set, the queue, and the name every row shares or null), and
 * the shape that picks the statement.
 */
function batchParams(rows: Row[], queueName: string, index: boolean): [unknown[], string] {
  const name = rows[0].name;
  const { json, shape } = packRows(rows, queueName, index);
  return [[json, queueName, rows.every((r) => r.name === name) ? name : null], shape];
}

/** The parameters of `insertOne`: queue, the input columns in order, then lifo. */
function oneParams(row: Row, queueName: string): unknown[] {
  const params: unknown[] = [queueName];
  for (const [c] of INPUT_COLUMNS) params.push(row[c] ?? null);
  params.push(row.lifo === true);
  return params;
}

function checkTx(tx: unknown): Exec {
  if (typeof tx !== 'function' || typeof (tx as { unsafe?: unknown }).unsafe !== 'function') {
    throw new InvalidArgumentError(
      'tx',
      tx,
      'a postgres.js transaction (the sql argument of sql.begin)',
    );
  }
  return tx as Exec;
}

function checkQueue(queueName: string): void {
  if (typeof queueName !== 'string' || queueName.length === 0) {
    throw new InvalidArgumentError('queueName', queueName, 'a non-empty string');
  }
}

function checkState(state: JobState): void {
  if (!JOB_STATES.includes(state)) {
    throw new InvalidArgumentError('state', state, JOB_STATES.join(', '));
  }
}

function positiveInt(name: string, v: unknown): void {
  if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) {
    throw new InvalidArgumentError(name, v, 'a whole number >= 1');
  }
}

function checkFetchOptions(opts: FetchOptions): void {
  if (typeof opts !== 'object' || opts === null) {
    throw new InvalidArgumentError('opts', opts, 'fetch options');
  }
  positiveInt('opts.groupConcurrency', opts.groupConcurrency);
  positiveInt('opts.globalConcurrency', opts.globalConcurrency);
  for (const key of ['limiter', 'groupLimiter'] as const) {
    const l = opts[key];
    if (l === undefined) continue;
    positiveInt(`opts.${key}.max`, l?.max);
    if (!(typeof l?.duration === 'number' && l.duration > 0)) {
      throw new InvalidArgumentError(`opts.${key}.duration`, l?.duration, 'a number of ms > 0');
    }
  }
  if (
    opts.excludeGroups !== undefined &&
    (!Array.isArray(opts.excludeGroups) || opts.excludeGroups.some((g) => typeof g !== 'string'))
  ) {
    throw new InvalidArgumentError('opts.excludeGroups', opts.excludeGroups, 'an array of strings');
  }
}

/**
 * A fresh prefix for the tokens of one claim: 96 random bits as 24 hex digits. The claim makes
 * each job's token of it and the job's `seq` in hex, so a token is unique to its claim and job,
 * and no random value is drawn per row on the server: `gen_random_uuid()` for each claimed job
 * took 7% of the server's time in a loop of claims and completions of 50.
 */
function tokenPrefix(): string {
  return crypto.randomUUID().replaceAll('-', '').slice(0, 24);
}

/** Claimed rows in claim order: priority, then FIFO order (`ok`). */
function byPriorityThenOrder(a: Row, b: Row): number {
  return (a.priority as number) - (b.priority as number) || (a.ok as number) - (b.ok as number);
}

/** Claimed rows in LIFO claim order: priority, then newest first (`sq`). */
function byPriorityThenNewest(a: Row, b: Row): number {
  return (a.priority as number) - (b.priority as number) || (b.sq as number) - (a.sq as number);
}

/** One flag per input: true at the given (0-based) indexes. */
function flags(n: number, indexes: readonly number[]): boolean[] {
  const out = new Array<boolean>(n).fill(false);
  for (const i of indexes) out[i] = true;
  return out;
}

function mapSaveError(queueName: string): (e: unknown) => never {
  return (e) => {
    const err = e as { message?: string; detail?: string };
    if (err.message === 'conveyor:group_full' && err.detail) {
      const d = JSON.parse(err.detail) as { group: string; max: number };
      throw new GroupFullError(queueName, d.group, d.max);
    }
    throw e;
  };
}

function rowToScheduler(r: Row): SchedulerData {
  return {
    id: r.id as string,
    queueName: r.queue as string,
    name: r.name as string,
    data: JSON.parse(r.data as string),
    opts: JSON.parse(r.opts as string),
    repeat: JSON.parse(r.repeat as string),
    nextRunAt: r.next_run_at === null ? null : Number(r.next_run_at),
    runCount: Number(r.run_count),
    createdAt: Number(r.created_at),
  };
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
