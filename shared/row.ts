/**
 * The row shape shared by the SQL stores (SQLite and PostgreSQL name their job columns the
 * same way), and its one mapping to {@linkcode JobData}.
 *
 * @module
 */
import type { JobData, JobState } from './types.ts';

/**
 * Builds a fresh {@linkcode JobData} from a jobs-table row with the SQL stores' column names
 * (`queue`, `attempts_made`, `lock_until`, …). JSON columns may come back as text (parsed
 * here) or already parsed; numeric columns as numbers, bigints or numeric strings.
 *
 * @example
 * ```ts
 * import { jobFromRow } from '@conveyor/shared';
 * const job = jobFromRow({ id: '1', queue: 'q', name: 'n', data: '{"a":1}', state: 'waiting' });
 * console.log(job.data); // { a: 1 }
 * ```
 */
export function jobFromRow(r: Record<string, unknown>): JobData {
  return {
    id: r.id as string,
    queueName: r.queue as string,
    name: r.name as string,
    data: json(r.data),
    opts: (json(r.opts) ?? {}) as JobData['opts'],
    state: r.state as JobState,
    priority: Number(r.priority ?? 0),
    attemptsMade: Number(r.attempts_made ?? 0),
    attemptsStarted: Number(r.attempts_started ?? 0),
    progress: (json(r.progress) ?? 0) as JobData['progress'],
    returnvalue: json(r.returnvalue),
    failedReason: (r.failed_reason as string | null) ?? null,
    stacktrace: (json(r.stacktrace) as string[]) ?? [],
    logs: (json(r.logs) as string[]) ?? [],
    createdAt: Number(r.created_at ?? 0),
    delayUntil: Number(r.delay_until ?? 0),
    processedAt: num(r.processed_at),
    finishedAt: num(r.finished_at),
    lockedBy: (r.locked_by as string | null) ?? null,
    lockUntil: num(r.lock_until),
    lockToken: (r.lock_token as string | null) ?? null,
    stalledCount: Number(r.stalled_count ?? 0),
    parentId: (r.parent_id as string | null) ?? null,
    parentQueueName: (r.parent_queue as string | null) ?? null,
    pendingChildrenCount: Number(r.pending_children ?? 0),
    deduplicationKey: (r.dedup_key as string | null) ?? null,
    deduplicationExpiresAt: num(r.dedup_expires_at),
    groupId: (r.group_id as string | null) ?? null,
  };
}

function json(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? JSON.parse(value) : value;
}

function num(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}
