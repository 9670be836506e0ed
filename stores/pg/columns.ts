/**
 * The columns a saved job is written with. Both save paths (the single INSERT and the checked
 * one-by-one function) build their SQL from this one list.
 *
 * @module
 */

/**
 * Input columns of a job to save: name, SQL type, and the default applied when the JSON row
 * leaves the key out (`jobToRow` drops null and default values, so rows stay small).
 */
export const INPUT_COLUMNS: ReadonlyArray<readonly [string, string, (string | number | boolean)?]> =
  [
    ['name', 'text'],
    ['data', 'text', 'null'],
    ['opts', 'text', '{}'],
    ['state', 'text', 'waiting'],
    ['priority', 'float8', 0],
    ['attempts_made', 'integer', 0],
    ['attempts_started', 'integer', 0],
    ['progress', 'text', '0'],
    ['created_at', 'float8'],
    ['delay_until', 'float8', 0],
    ['parent_id', 'text'],
    ['parent_queue', 'text'],
    ['pending_children', 'integer', 0],
    ['dedup_key', 'text'],
    ['dedup_expires_at', 'float8'],
    ['group_id', 'text'],
    ['scheduler_id', 'text'],
    ['fail_policy', 'text', 'fail'],
    ['rc_now', 'boolean', false],
    ['rc_count', 'integer'],
    ['rc_age', 'float8'],
    ['rf_now', 'boolean', false],
    ['rf_count', 'integer'],
    ['rf_age', 'float8'],
  ];

/** Extra input keys that are not columns: input index, queue, custom id, and save options. */
const EXTRA_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['i', 'integer'],
  ['q', 'text'],
  ['id', 'text'],
  ['lifo', 'boolean'],
  ['group_max', 'integer'],
  ['dedup_ttl', 'float8'],
];

/** The defaults of `INPUT_COLUMNS`, by key (for dropping default values from JSON rows). */
export const INPUT_DEFAULTS: ReadonlyMap<string, string | number | boolean> = new Map(
  INPUT_COLUMNS.filter((c) => c[2] !== undefined).map((c) => [c[0], c[2]!]),
);

/**
 * The input rows as a subquery (alias it, e.g. `x`), from a JSON object of column arrays
 * (`serializeRows`): `{"i": [0, 1], "name": ["a", "b"], "priority": [null, 5]}`. A column left
 * out is null in every row, and a null is the column's default (see `insertValues`). Rows come
 * in array order, so sequence numbers given while reading them follow the input.
 *
 * With a `shape` (`packRows`), the JSON object holds only the keys the shape names: `key[]`, an
 * array with one value per row, or `key`, one value every row shares. The subquery then reads
 * just those keys and returns just those columns, which saves the server the per-row work of
 * every other column (a bulk add of plain jobs carries two or three keys of thirty).
 */
export function inputRows(src: string, shape?: string): string {
  const all = [...EXTRA_COLUMNS, ...INPUT_COLUMNS];
  if (shape === undefined) {
    return `(SELECT x.* FROM json_to_record(${src}) AS c(${
      all.map(([n, t]) => `${n} ${t}[]`).join(', ')
    }), unnest(${all.map(([n]) => `c.${n}`).join(', ')}) AS x(${all.map(([n]) => n).join(', ')}))`;
  }
  const kinds = shapeKinds(shape);
  const cols = all.filter(([n]) => kinds.has(n));
  const each = cols.filter(([n]) => kinds.get(n) === 'each').map(([n]) => n);
  return `(SELECT ${
    cols.map(([n]) => kinds.get(n) === 'each' ? `x.${n}` : `c.${n}`).join(', ')
  } FROM json_to_record(${src}) AS c(${
    cols.map(([n, t]) => `${n} ${t}${kinds.get(n) === 'each' ? '[]' : ''}`).join(', ')
  }), unnest(${each.map((n) => `c.${n}`).join(', ')}) AS x(${each.join(', ')}))`;
}

/** The keys a shape names (see `inputRows`), each with how it is sent. */
function shapeKinds(shape: string): Map<string, 'each' | 'one'> {
  return new Map(
    shape.split(' ').map((k) => k.endsWith('[]') ? [k.slice(0, -2), 'each'] : [k, 'one']),
  );
}

const TYPES: ReadonlyMap<string, string> = new Map(
  [...EXTRA_COLUMNS, ...INPUT_COLUMNS].map(([n, t]) => [n, t]),
);

/**
 * SQL for input key `key` of row alias `row`: the column, or a typed NULL when `shape` leaves
 * the key out.
 *
 * @example
 * ```ts
 * import { inputColumn } from './columns.ts';
 * console.log(inputColumn('y', 'id', 'name data[]')); // NULL::text
 * ```
 */
export function inputColumn(row: string, key: string, shape?: string): string {
  return hasInput(key, shape) ? `${row}.${key}` : `NULL::${TYPES.get(key)}`;
}

/**
 * Whether input rows of `shape` may carry key `key` (every key may without a shape).
 *
 * @example
 * ```ts
 * import { hasInput } from './columns.ts';
 * console.log(hasInput('id', 'name data[]')); // false
 * ```
 */
export function hasInput(key: string, shape?: string): boolean {
  return shape === undefined || shapeKinds(shape).has(key);
}

/** The INSERT column list: queue, id, seq, order_key, then the input columns. */
export const INSERT_COLUMNS: string = `queue, id, seq, order_key, ${
  INPUT_COLUMNS.map(([n]) => n).join(', ')
}`;

function literal(v: string | number | boolean): string {
  return typeof v === 'string' ? `'${v.replaceAll("'", "''")}'` : String(v);
}

/**
 * The VALUES expressions for `INSERT_COLUMNS` from a row alias, with defaults for left-out
 * keys; `queue` is used when the row has no `q`. With a `shape`, keys it leaves out are their
 * defaults outright.
 */
export function insertValues(
  row: string,
  id: string,
  seq: string,
  queue: string,
  shape?: string,
): string {
  const has = (n: string) => shape === undefined || shapeKinds(shape).has(n);
  const values = INPUT_COLUMNS.map(([n, t, d]) =>
    !has(n)
      ? `${d === undefined ? 'NULL' : literal(d)}::${t}`
      : d === undefined
      ? `${row}.${n}`
      : `coalesce(${row}.${n}, ${literal(d)})`
  );
  return `${has('q') ? `coalesce(${row}.q, ${queue})` : queue}, ${id}, ${seq},
    ${has('lifo') ? `CASE WHEN ${row}.lifo THEN -${seq} ELSE ${seq} END` : seq}, ${
    values.join(', ')
  }`;
}
