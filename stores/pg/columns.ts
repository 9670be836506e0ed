/**
 * The columns a saved job is written with. Both save paths (the single INSERT and the checked
 * one-by-one function) build their SQL from this one list.
 *
 * @module
 */

/** Input columns of a job to save: name and SQL type, in the JSON row format of `toRow`. */
export const INPUT_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['name', 'text'],
  ['data', 'text'],
  ['opts', 'text'],
  ['state', 'text'],
  ['priority', 'float8'],
  ['attempts_made', 'integer'],
  ['attempts_started', 'integer'],
  ['progress', 'text'],
  ['created_at', 'float8'],
  ['delay_until', 'float8'],
  ['parent_id', 'text'],
  ['parent_queue', 'text'],
  ['pending_children', 'integer'],
  ['dedup_key', 'text'],
  ['dedup_expires_at', 'float8'],
  ['group_id', 'text'],
  ['scheduler_id', 'text'],
  ['fail_policy', 'text'],
  ['rc_now', 'boolean'],
  ['rc_count', 'integer'],
  ['rc_age', 'float8'],
  ['rf_now', 'boolean'],
  ['rf_count', 'integer'],
  ['rf_age', 'float8'],
];

/** `json_to_recordset(src) AS x(...)` over the input rows (plus `i`, `q`, `id`, and extras). */
export function recordset(src: string): string {
  const cols = [
    ['i', 'integer'],
    ['q', 'text'],
    ['id', 'text'],
    ['lifo', 'boolean'],
    ['group_max', 'integer'],
    ['dedup_ttl', 'float8'],
    ...INPUT_COLUMNS,
  ];
  return `json_to_recordset(${src}) AS x(${cols.map(([n, t]) => `${n} ${t}`).join(', ')})`;
}

/** The INSERT column list: queue, id, seq, order_key, then the input columns. */
export const INSERT_COLUMNS: string = `queue, id, seq, order_key, ${
  INPUT_COLUMNS.map(([n]) => n).join(', ')
}`;

/** The VALUES expressions for `INSERT_COLUMNS`, from a row alias and id/seq expressions. */
export function insertValues(row: string, id: string, seq: string): string {
  return `${row}.q, ${id}, ${seq}, CASE WHEN ${row}.lifo THEN -${seq} ELSE ${seq} END, ${
    INPUT_COLUMNS.map(([n]) => `${row}.${n}`).join(', ')
  }`;
}
