/**
 * Job selection of the {@linkcode MemoryStore}: which waiting job a claim takes, given the fetch
 * options. Read-only; the store performs the claim.
 *
 * @module
 */
import { type FetchOptions, type JobData, PAUSE_ALL } from '@conveyor/shared';
import { NO_GROUP, QueueState, type StoredJob } from './queue_state.ts';

/**
 * The waiting job a claim with `opts` takes now, or null: the first in claim order (or
 * newest-first with `lifo`) that passes every filter and limit; with round-robin, the best
 * priority level's job of the group served least recently. Filtered claims look only at the
 * heads of the per-group or per-name indexes, so blocked groups and paused names cost nothing.
 *
 * @example
 * ```ts
 * import { QueueState } from './queue_state.ts';
 * import { selectNext } from './select.ts';
 * console.log(selectNext(new QueueState('q'), { jobName: 'email' }, Date.now())); // null
 * ```
 */
export function selectNext(qs: QueueState, opts: FetchOptions, now: number): StoredJob | null {
  if (qs.paused.has(PAUSE_ALL)) return null;
  if (opts.globalConcurrency !== undefined && qs.lists.active.size >= opts.globalConcurrency) {
    return null;
  }
  if (
    opts.limiter && (qs.limitedUntil > now || !QueueState.allows(qs.limiter, opts.limiter, now))
  ) {
    return null;
  }
  if (
    opts.jobName === undefined && qs.paused.size === 0 && !opts.excludeGroups?.length &&
    opts.groupConcurrency === undefined && opts.groupLimiter === undefined &&
    opts.groupRoundRobin !== true
  ) {
    // No filter: the head of the claim order (or of the newest-first order) is the pick.
    const head = (opts.lifo ? qs.recent : qs.lists.waiting).first();
    return head ? qs.jobs.get(head.id)! : null;
  }
  const excluded = opts.excludeGroups?.length ? new Set(opts.excludeGroups) : null;
  const nameOk = (job: JobData): boolean =>
    (opts.jobName === undefined || job.name === opts.jobName) &&
    !(qs.paused.size > 0 && qs.paused.has(job.name));
  const groupOpen = (g: string): boolean =>
    !excluded?.has(g) &&
    (opts.groupConcurrency === undefined ||
      (qs.groupActive.get(g) ?? 0) < opts.groupConcurrency) &&
    (!opts.groupLimiter || QueueState.allows(qs.groupWindows.get(g), opts.groupLimiter, now));
  const served = (rec: StoredJob): number => qs.served.get(rec.job.groupId ?? NO_GROUP) ?? -1;
  const groupFilters = excluded !== null || opts.groupConcurrency !== undefined ||
    opts.groupLimiter !== undefined || opts.groupRoundRobin === true;
  const roundRobin = opts.groupRoundRobin === true;
  if (groupFilters && !opts.lifo) {
    const lists = [qs.ungrouped];
    for (const [groupId, list] of qs.waitingByGroup) if (groupOpen(groupId)) lists.push(list);
    return bestHead(qs, lists, nameOk, roundRobin, served);
  }
  if ((opts.jobName !== undefined || qs.paused.size > 0) && !opts.lifo) {
    const names = opts.jobName !== undefined ? [opts.jobName] : qs.waitingByName.keys();
    const lists = [];
    for (const name of names) {
      const list = qs.waitingByName.get(name);
      if (list && !qs.paused.has(name)) lists.push(list);
    }
    return bestHead(qs, lists, () => true, false, served);
  }
  const eligible = (job: JobData) =>
    nameOk(job) && (job.groupId === null || groupOpen(job.groupId));
  return scan(qs, eligible, opts, served);
}

/**
 * Walks the claim order (or newest-first order with `lifo`) and returns the first job that
 * passes `eligible`; with round-robin, the eligible job of the best priority level whose
 * group was served least recently.
 */
function scan(
  qs: QueueState,
  eligible: (job: JobData) => boolean,
  opts: FetchOptions,
  served: (rec: StoredJob) => number,
): StoredJob | null {
  let pick: StoredJob | null = null;
  let pickServed = Infinity;
  for (const entry of opts.lifo ? qs.recent : qs.lists.waiting) {
    const rec = qs.jobs.get(entry.id)!;
    if (pick && rec.job.priority !== pick.job.priority) break;
    if (!eligible(rec.job)) continue;
    if (!opts.groupRoundRobin) return rec;
    const s = served(rec);
    if (s < pickServed) {
      pick = rec;
      pickServed = s;
      if (s === -1) break;
    }
  }
  return pick;
}

/**
 * The claim under filters, without walking the jobs of blocked groups or filtered names:
 * takes the first job of each candidate list (claim-ordered subsets of the waiting jobs) that
 * passes `eligible`, then the best of these heads in claim order (with round-robin: best
 * priority, then least recently served group). Costs O(lists) plus the skips inside a list.
 */
function bestHead(
  qs: QueueState,
  lists: Iterable<Iterable<{ id: string }>>,
  eligible: (job: JobData) => boolean,
  roundRobin: boolean,
  served: (rec: StoredJob) => number,
): StoredJob | null {
  let best: StoredJob | null = null;
  let bestServed = Infinity;
  for (const list of lists) {
    let rec: StoredJob | null = null;
    for (const entry of list) {
      const candidate = qs.jobs.get(entry.id)!;
      if (eligible(candidate.job)) {
        rec = candidate;
        break;
      }
    }
    if (!rec) continue;
    const x = rec.entry!;
    const y = best?.entry;
    const s = roundRobin ? served(rec) : 0;
    const better = !y || x.a < y.a ||
      (x.a === y.a && (s < bestServed || (s === bestServed && x.b < y.b)));
    if (better) {
      best = rec;
      bestServed = s;
    }
  }
  return best;
}
