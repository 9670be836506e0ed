/**
 * SQL fragments for notifications, shared by the schema's functions (`emit`, `send`) and the
 * statements that notify inline (the single-job save), so that the payload format and the
 * conditions are written once.
 *
 * @module
 */

import type { StoreEventType } from '@conveyor/shared';

/**
 * The event types published only while a process watches the queue: those of every claim and
 * completion, and the `drained` a worker publishes after each burst. The first two come from
 * the schema's functions, `drained` from `EventHub.publish`.
 *
 * @example
 * ```ts
 * import { WATCHED_EVENTS } from './notify.ts';
 * console.log(WATCHED_EVENTS.includes('active')); // true
 * ```
 */
export const WATCHED_EVENTS: readonly StoreEventType[] = ['active', 'completed', 'drained'];

/** `WATCHED_EVENTS` as an SQL array literal, for the functions' check. */
export const WATCHED_SQL: string = `ARRAY[${WATCHED_EVENTS.map((t) => `'${t}'`).join(', ')}]`;

/**
 * SQL that is true while some process watches queue `q` (an SQL expression) for its `active`,
 * `completed` and `drained` events: only then are they published. Spliced into statements
 * rather than wrapped in a function, so the planner runs it as one index probe.
 *
 * @example
 * ```ts
 * import { watched } from './notify.ts';
 * console.log(watched('"conveyor"', '$1::text').startsWith('EXISTS')); // true
 * ```
 */
export function watched(s: string, q: string): string {
  return `EXISTS (SELECT 1 FROM ${s}.watchers w WHERE w.queue = ${q} AND w.until > ${s}.now_ms())`;
}

/**
 * SQL that is true while some poll-only subscriber (no LISTEN) reads the events table, so
 * notifications are also written there.
 *
 * @example
 * ```ts
 * import { pollActive } from './notify.ts';
 * console.log(pollActive('"conveyor"').includes('poll_until')); // true
 * ```
 */
export function pollActive(s: string): string {
  return `EXISTS (SELECT 1 FROM ${s}.settings WHERE k = 'poll_until' AND v > ${s}.now_ms())`;
}

/**
 * A notification payload as an SQL text expression: `{"t": kind, "ts": now, "i": ids, ...}`.
 * `ids` is SQL for the JSON array of job ids; `extra` is SQL for the text of further members
 * (`,"d":[...]`, `,"n":[...]` or `,"N":"name"`), or `''`. `expandPayload` in `events.ts` reads
 * it.
 *
 * @example
 * ```ts
 * import { payloadSql } from './notify.ts';
 * console.log(payloadSql('"conveyor"', "'waiting'", "'[\"1\"]'", "''").includes('"ts"')); // true
 * ```
 */
export function payloadSql(s: string, kind: string, ids: string, extra: string): string {
  return `'{"t":' || to_json(${kind}::text)::text || ',"ts":' || ${s}.now_ms()::bigint
    || ',"i":' || ${ids} || ${extra} || '}'`;
}
