/**
 * Conversions between {@linkcode JobData} and rows of the jobs table.
 *
 * @module
 */

import type { NewJob, RemoveOnFinish } from '@conveyor/shared';
import { checkNewJob, InvalidArgumentError } from '@conveyor/shared';
import { INPUT_DEFAULTS } from './columns.ts';

const COLUMNS = [
  'queue',
  'id',
  'name',
  'data',
  'opts',
  'state',
  'priority',
  'attempts_made',
  'attempts_started',
  'progress',
  'returnvalue',
  'failed_reason',
  'stacktrace',
  'logs',
  'created_at',
  'delay_until',
  'processed_at',
  'finished_at',
  'locked_by',
  'lock_until',
  'lock_token',
  'stalled_count',
  'parent_id',
  'parent_queue',
  'pending_children',
  'dedup_key',
  'dedup_expires_at',
  'group_id',
];

/**
 * The columns read back for a job, optionally qualified by a table alias.
 *
 * @example
 * ```ts
 * import { jobColumns } from './rows.ts';
 * console.log(jobColumns('j').startsWith('j.queue')); // true
 * ```
 */
export function jobColumns(alias?: string): string {
  const p = alias ? `${alias}.` : '';
  return [...COLUMNS.map((c) => p + c), `${p}order_key::float8 AS ok`].join(', ');
}

/**
 * Columns a freshly claimed job seldom has away from their defaults (null unless given). The
 * claim sends them as one JSON object (`x`), and only for a row where one of them differs.
 */
const RARE: ReadonlyArray<readonly [string, string?]> = [
  ['progress', "'0'"],
  ['returnvalue', "'null'"],
  ['failed_reason'],
  ['stacktrace', "'[]'"],
  ['logs', "'[]'"],
  ['finished_at'],
  ['stalled_count', '0'],
  ['parent_id'],
  ['parent_queue'],
  ['pending_children', '0'],
  ['dedup_key'],
  ['dedup_expires_at'],
  ['group_id'],
];

/**
 * What a claim returns per job: the columns a claimed job needs, and the rare ones packed into
 * `x` (null when all are at their defaults). The queue, state, owner and lock expiry are known
 * to the claimer; `claimedRow` puts the row back together.
 *
 * @example
 * ```ts
 * import { claimColumns } from './rows.ts';
 * console.log(claimColumns('j').includes(' AS x')); // true
 * ```
 */
export function claimColumns(alias: string): string {
  const p = `${alias}.`;
  const hot = COLUMNS.filter((c) => !RARE.some(([r]) => r === c) && !CLAIM_KNOWN.includes(c));
  const differs = RARE.map(([c, d]) =>
    d === undefined ? `${p}${c} IS NOT NULL` : `${p}${c} <> ${d}`
  );
  return [
    ...hot.map((c) => p + c),
    `${p}order_key::float8 AS ok`,
    `CASE WHEN ${differs.join(' OR ')} THEN json_build_object(${
      RARE.map(([c]) => `'${c}', ${p}${c}`).join(', ')
    })::text END AS x`,
  ].join(', ');
}

const CLAIM_KNOWN = ['queue', 'state', 'locked_by', 'lock_until'];

/**
 * A claimed row (see `claimColumns`) completed to the shape `jobFromRow` reads: the rare
 * columns from `x`, and the columns the claimer knows. The lock expiry is `processed_at +
 * lockDuration`, the same sum the claim stored.
 *
 * @example
 * ```ts
 * import { claimedRow } from './rows.ts';
 * const row = claimedRow({ id: '1', processed_at: 10, x: null }, 'q', 'w', 5);
 * console.log(row.lock_until); // 15
 * ```
 */
export function claimedRow(row: Row, queue: string, workerId: string, lockDuration: number): Row {
  if (row.x !== null) Object.assign(row, JSON.parse(row.x as string));
  row.queue = queue;
  row.state = 'active';
  row.locked_by = workerId;
  row.lock_until = (row.processed_at as number) + lockDuration;
  return row;
}

/** A row as the driver returns it. */
export type Row = Record<string, unknown>;

const json = (value: unknown): string => JSON.stringify(value) ?? 'null';

interface Keep {
  now: boolean;
  count: number | null;
  age: number | null;
}

function keep(value: RemoveOnFinish | undefined, option: string): Keep {
  if (value === undefined || value === false) return { now: false, count: null, age: null };
  if (value === true) return { now: true, count: null, age: null };
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) {
      throw new InvalidArgumentError(
        option,
        value,
        'a boolean, a whole number >= 0 or { age, count }',
      );
    }
    return { now: false, count: value, age: null };
  }
  if (typeof value === 'object' && value !== null) {
    const { age, count } = value;
    if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
      throw new InvalidArgumentError(`${option}.count`, count, 'a whole number >= 0');
    }
    if (age !== undefined && (typeof age !== 'number' || !(age >= 0))) {
      throw new InvalidArgumentError(`${option}.age`, age, 'a number of seconds >= 0');
    }
    return { now: false, count: count ?? null, age: age ?? null };
  }
  throw new InvalidArgumentError(option, value, 'a boolean, a whole number >= 0 or { age, count }');
}

/**
 * Validates a job to save and turns it into an input row for `serializeRows` (see
 * `columns.ts`). Throws `InvalidArgumentError` naming the field; nothing is saved then.
 *
 * @example
 * ```ts
 * import { newJob } from '@conveyor/shared';
 * import { jobToRow } from './rows.ts';
 * const row = jobToRow('q', newJob('q', 'n', {}), 0);
 * ```
 */
export function jobToRow(queueName: string, job: NewJob, i: number): Row {
  checkNewJob(job, 'job');
  const opts = job.opts;
  const policy = opts.failParentOnChildFailure ?? 'fail';
  const maxSize = opts.group?.maxSize;
  const rc = keep(opts.removeOnComplete, 'opts.removeOnComplete');
  const rf = keep(opts.removeOnFail, 'opts.removeOnFail');
  return {
    i,
    q: queueName,
    id: opts.jobId ?? null,
    lifo: opts.lifo === true,
    group_max: job.groupId !== null && maxSize !== undefined ? maxSize : null,
    dedup_ttl: job.deduplicationKey ? (opts.deduplication?.ttl ?? null) : null,
    name: job.name,
    data: json(job.data),
    opts: json(opts),
    state: job.state,
    priority: job.priority,
    attempts_made: job.attemptsMade ?? 0,
    attempts_started: job.attemptsStarted ?? 0,
    progress: json(job.progress ?? 0),
    created_at: job.createdAt ?? Date.now(),
    delay_until: job.delayUntil ?? 0,
    parent_id: job.parentId ?? null,
    parent_queue: job.parentId ? (job.parentQueueName ?? queueName) : null,
    pending_children: job.pendingChildrenCount ?? 0,
    dedup_key: job.deduplicationKey ?? null,
    dedup_expires_at: job.deduplicationExpiresAt ?? null,
    group_id: job.groupId ?? null,
    scheduler_id: opts.repeat?.schedulerId ?? null,
    fail_policy: policy,
    rc_now: rc.now,
    rc_count: rc.count,
    rc_age: rc.age,
    rf_now: rf.now,
    rf_count: rf.count,
    rf_age: rf.age,
  };
}

/** The SQL column and value for each updatable {@linkcode JobData} field. */
export const UPDATABLE: Readonly<Record<string, (v: unknown) => Array<[string, unknown]>>> = {
  name: (v) => [['name', v]],
  data: (v) => [['data', json(v)]],
  state: (v) => [['state', v]],
  priority: (v) => [['priority', v]],
  attemptsMade: (v) => [['attempts_made', v]],
  attemptsStarted: (v) => [['attempts_started', v]],
  progress: (v) => [['progress', json(v)]],
  returnvalue: (v) => [['returnvalue', json(v)]],
  failedReason: (v) => [['failed_reason', v]],
  stacktrace: (v) => [['stacktrace', json(v ?? [])]],
  logs: (v) => [['logs', json(v ?? [])]],
  createdAt: (v) => [['created_at', v]],
  delayUntil: (v) => [['delay_until', v ?? 0]],
  processedAt: (v) => [['processed_at', v]],
  finishedAt: (v) => [['finished_at', v]],
  lockedBy: (v) => [['locked_by', v]],
  lockUntil: (v) => [['lock_until', v]],
  lockToken: (v) => [['lock_token', v]],
  stalledCount: (v) => [['stalled_count', v]],
  parentId: (v) => [['parent_id', v]],
  parentQueueName: (v) => [['parent_queue', v]],
  pendingChildrenCount: (v) => [['pending_children', v]],
  deduplicationKey: (v) => [['dedup_key', v]],
  deduplicationExpiresAt: (v) => [['dedup_expires_at', v]],
  groupId: (v) => [['group_id', v]],
  opts: (v) => {
    const o = (v ?? {}) as NewJob['opts'];
    const rc = keep(o.removeOnComplete, 'opts.removeOnComplete');
    const rf = keep(o.removeOnFail, 'opts.removeOnFail');
    return [
      ['opts', json(o)],
      ['fail_policy', o.failParentOnChildFailure ?? 'fail'],
      ['scheduler_id', o.repeat?.schedulerId ?? null],
      ['rc_now', rc.now],
      ['rc_count', rc.count],
      ['rc_age', rc.age],
      ['rf_now', rf.now],
      ['rf_count', rf.count],
      ['rf_age', rf.age],
    ];
  },
};

/** Column types for casting update parameters. */
export const COLUMN_TYPES: Readonly<Record<string, string>> = {
  stacktrace: 'jsonb',
  logs: 'jsonb',
  priority: 'float8',
  attempts_made: 'integer',
  attempts_started: 'integer',
  created_at: 'float8',
  delay_until: 'float8',
  processed_at: 'float8',
  finished_at: 'float8',
  lock_until: 'float8',
  stalled_count: 'integer',
  pending_children: 'integer',
  dedup_expires_at: 'float8',
  rc_now: 'boolean',
  rc_count: 'integer',
  rc_age: 'float8',
  rf_now: 'boolean',
  rf_count: 'integer',
  rf_age: 'float8',
};

/**
 * Serializes input rows for `inputRows` (see `columns.ts`) as one JSON object of column arrays.
 * A column whose values are all null or default is left out, and so is the queue when it is
 * `queueName`; the SQL fills them back in. Column names are sent once, not once per row.
 *
 * @example
 * ```ts
 * import { serializeRows } from './rows.ts';
 * console.log(serializeRows([{ i: 0, q: 'q', name: 'n', priority: 0 }], 'q')); // {"i":[0],"name":["n"]}
 * ```
 */
export function serializeRows(rows: Row[], queueName: string | null): string {
  return JSON.stringify(columnsOf(rows, queueName));
}

/**
 * Packs input rows for a shaped `inputRows` (see `columns.ts`): like `serializeRows`, and a
 * column whose rows all hold one value is sent once. Returns the JSON and its shape. The input
 * index `i` is sent only when `index` is set (or when no other column varies, to count rows).
 *
 * @example
 * ```ts
 * import { packRows } from './rows.ts';
 * const rows = [{ i: 0, name: 'n', data: '1' }, { i: 1, name: 'n', data: '2' }];
 * console.log(packRows(rows, null, false)); // { json: '{"name":"n","data":["1","2"]}', shape: 'name data[]' }
 * ```
 */
export function packRows(
  rows: Row[],
  queueName: string | null,
  index: boolean,
): { json: string; shape: string } {
  const cols = columnsOf(rows, queueName);
  const out: Record<string, unknown> = {};
  const shape: string[] = [];
  for (const key in cols) {
    if (key === 'i') continue;
    const vs = cols[key];
    const one = vs.every((v) => v !== null && v === vs[0]);
    out[key] = one ? vs[0] : vs;
    shape.push(one ? key : `${key}[]`);
  }
  if (index || !shape.some((k) => k.endsWith('[]'))) {
    out.i = cols.i;
    shape.push('i[]');
  }
  return { json: JSON.stringify(out), shape: shape.join(' ') };
}

/** The non-default values of rows, one array a column (see `serializeRows`). */
function columnsOf(rows: Row[], queueName: string | null): Record<string, unknown[]> {
  const cols: Record<string, unknown[]> = {};
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    for (const key in row) {
      const v = row[key];
      if (v === null || v === undefined || INPUT_DEFAULTS.get(key) === v) continue;
      if (key === 'q' && v === queueName) continue;
      if (key === 'lifo' && v === false) continue;
      (cols[key] ??= new Array(rows.length).fill(null))[r] = v;
    }
  }
  return cols;
}
