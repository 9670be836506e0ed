/**
 * The per-queue state of the {@linkcode MemoryStore}: the jobs and the ordered indexes that make
 * a claim cost O(log n).
 *
 * @module
 */
import type { JobData, JobState, RateLimit, RemoveOnFinish, SchedulerData } from '@conveyor/shared';
import { SortedList } from './sorted_list.ts';

/** One entry of an index: ordered by `a`, then `b` (unique within a queue). */
export interface Entry {
  /** The primary sort key. */
  a: number;
  /** The tie breaker (derived from the save sequence, so unique). */
  b: number;
  /** The job id. */
  id: string;
}

/** A stored job with its save sequence and the index entries it currently occupies. */
export interface StoredJob {
  /** The job (never handed out: callers get copies). */
  job: JobData;
  /** The store-wide save sequence: the job's FIFO place. */
  seq: number;
  /** The entry in the index of the job's state, while indexed. */
  entry: Entry | null;
  /** The entry in the newest-first index, while `waiting`. */
  recent: Entry | null;
  /** The recorded return values of the job's completed children, by `<queue>:<id>`. */
  childValues?: Map<string, unknown>;
  /**
   * Set once the job has counted as finished for its parent (completed, failed for good under
   * `ignore` / `remove`): a child counts once, also when retried and finishing again.
   */
  counted?: boolean;
  /**
   * The worker's `removeOnComplete` / `removeOnFail` recorded when the job last finished
   * without an option of its own (`completeJobs` / `failJobs` options), for `pruneFinished`.
   */
  keep?: RemoveOnFinish;
}

/** A fixed rate-limit window and the claims counted in it. */
export interface Window {
  /** Window end (ms since epoch, a multiple of the duration), so its time left is known. */
  end: number;
  /** Claims counted in the window. */
  count: number;
}

const byEntry = (x: Entry, y: Entry): number => x.a - y.a || x.b - y.b;

/** The group key of jobs without a group (for round-robin bookkeeping). */
export const NO_GROUP = '\u0000none';

/**
 * Everything the memory store keeps for one queue. Indexes per state:
 * - `waiting`: claim order (priority, then per-job LIFO newest first, then FIFO), also split
 *   per group (`waitingByGroup`, `ungrouped`) and per name (`waitingByName`) for filtered claims;
 * - `recent`: waiting jobs by priority, newest first (the fetch option `lifo`);
 * - `delayed`: by `delayUntil`, then FIFO;
 * - `completed` / `failed`: newest `finishedAt` first;
 * - `active` / `waiting-children`: FIFO.
 *
 * Always call {@linkcode QueueState.unindex} before changing a job's state, priority,
 * `delayUntil`, `finishedAt`, `opts.lifo` or group, and {@linkcode QueueState.index} after.
 *
 * @example
 * ```ts
 * import { QueueState } from './queue_state.ts';
 * const qs = new QueueState('emails');
 * console.log(qs.lists.waiting.size); // 0
 * ```
 */
export class QueueState {
  /** The queue name. */
  readonly name: string;
  /** Jobs by id. */
  readonly jobs: Map<string, StoredJob> = new Map();
  /** One ordered index per state. */
  readonly lists: Record<JobState, SortedList<Entry>> = {
    waiting: new SortedList(byEntry),
    'waiting-children': new SortedList(byEntry),
    delayed: new SortedList(byEntry),
    active: new SortedList(byEntry),
    completed: new SortedList(byEntry),
    failed: new SortedList(byEntry),
  };
  /** Waiting jobs by priority, newest first. */
  readonly recent: SortedList<Entry> = new SortedList(byEntry);
  /** Waiting jobs of each group, in claim order (so a blocked group is skipped at once). */
  readonly waitingByGroup: Map<string, SortedList<Entry>> = new Map();
  /** Waiting jobs without a group, in claim order. */
  readonly ungrouped: SortedList<Entry> = new SortedList(byEntry);
  /** Waiting jobs of each name, in claim order (so paused or filtered names are skipped). */
  readonly waitingByName: Map<string, SortedList<Entry>> = new Map();
  /** Waiting jobs per group. */
  readonly groupWaiting: Map<string, number> = new Map();
  /** Active jobs per group. */
  readonly groupActive: Map<string, number> = new Map();
  /** The latest holder of each deduplication key (check liveness before trusting it). */
  readonly dedup: Map<string, string> = new Map();
  /** Paused job names (maybe `__all__`). */
  readonly paused: Set<string> = new Set();
  /** Job schedulers by id. */
  readonly schedulers: Map<string, SchedulerData> = new Map();
  /** The queue-wide rate-limit window. */
  limiter: Window | null = null;
  /** The manual rate limit (`setRateLimit`): limited claims take nothing before this time. */
  limitedUntil = 0;
  /** Rate-limit windows per group. */
  readonly groupWindows: Map<string, Window> = new Map();
  /** Round-robin: the claim number at which each group was last served. */
  readonly served: Map<string, number> = new Map();
  /** Round-robin: claims so far. */
  claims = 0;

  /**
   * Creates the empty state of a queue.
   *
   * @param name The queue name.
   */
  constructor(name: string) {
    this.name = name;
  }

  /** Adds a job to the indexes of its current state. */
  index(rec: StoredJob): void {
    const { job, seq } = rec;
    const id = job.id;
    let entry: Entry;
    switch (job.state) {
      case 'waiting':
        entry = { a: job.priority, b: job.opts.lifo ? -seq : seq, id };
        rec.recent = { a: job.priority, b: -seq, id };
        this.recent.insert(rec.recent);
        this.#groupList(job.groupId, true)!.insert(entry);
        this.#nameList(job.name).insert(entry);
        break;
      case 'delayed':
        entry = { a: job.delayUntil, b: seq, id };
        break;
      case 'completed':
      case 'failed':
        entry = { a: -(job.finishedAt ?? 0), b: -seq, id };
        break;
      default:
        entry = { a: 0, b: seq, id };
    }
    rec.entry = entry;
    this.lists[job.state].insert(entry);
    const counts = this.#groupCounts(job.state);
    if (counts && job.groupId !== null) {
      counts.set(job.groupId, (counts.get(job.groupId) ?? 0) + 1);
    }
  }

  /** Removes a job from the indexes of its current state. */
  unindex(rec: StoredJob): void {
    const { job } = rec;
    if (rec.entry) this.lists[job.state].delete(rec.entry);
    if (rec.recent) this.recent.delete(rec.recent);
    if (rec.entry && job.state === 'waiting') {
      const list = this.#groupList(job.groupId, false);
      list?.delete(rec.entry);
      if (job.groupId !== null && list?.size === 0) this.waitingByGroup.delete(job.groupId);
      const byName = this.waitingByName.get(job.name);
      byName?.delete(rec.entry);
      if (byName?.size === 0) this.waitingByName.delete(job.name);
    }
    rec.entry = rec.recent = null;
    const counts = this.#groupCounts(job.state);
    if (counts && job.groupId !== null) {
      const n = (counts.get(job.groupId) ?? 0) - 1;
      if (n > 0) counts.set(job.groupId, n);
      else counts.delete(job.groupId);
    }
  }

  /** The stored jobs of a state, in the state's index order. */
  *inState(state: JobState): Generator<StoredJob> {
    for (const entry of this.lists[state]) yield this.jobs.get(entry.id)!;
  }

  /** Whether a rate limit allows one more claim now (`window` is the current record). */
  static allows(window: Window | null | undefined, limit: RateLimit, now: number): boolean {
    return !window || window.end !== windowEnd(limit, now) || window.count < limit.max;
  }

  /** Counts one claim against a rate limit and returns the updated window. */
  static take(window: Window | null | undefined, limit: RateLimit, now: number): Window {
    const end = windowEnd(limit, now);
    if (!window || window.end !== end) return { end, count: 1 };
    window.count++;
    return window;
  }

  #groupList(groupId: string | null, create: boolean): SortedList<Entry> | undefined {
    if (groupId === null) return this.ungrouped;
    let list = this.waitingByGroup.get(groupId);
    if (!list && create) this.waitingByGroup.set(groupId, list = new SortedList(byEntry));
    return list;
  }

  #nameList(name: string): SortedList<Entry> {
    let list = this.waitingByName.get(name);
    if (!list) this.waitingByName.set(name, list = new SortedList(byEntry));
    return list;
  }

  #groupCounts(state: JobState): Map<string, number> | null {
    if (state === 'waiting') return this.groupWaiting;
    if (state === 'active') return this.groupActive;
    return null;
  }
}

function windowEnd(limit: RateLimit, now: number): number {
  return now - (now % limit.duration) + limit.duration;
}
