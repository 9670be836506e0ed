/**
 * Events: subscribers in this process are called as soon as a transaction commits; events of
 * other processes (and other connections) are read from `conveyor_events` (one row per
 * transaction, its events packed by {@linkcode packEvents}) by a cheap poll that
 * runs only while someone is subscribed and only reads the table when `PRAGMA data_version`
 * says another connection committed.
 *
 * @module
 */
import type { StoreEvent } from '@conveyor/shared';
import type { SqliteStatement } from './driver.ts';

/**
 * The callbacks of one store, by queue, and the poller that feeds them other processes' events.
 *
 * @example
 * ```ts
 * import { EventHub } from '@conveyor/store-sqlite-core';
 * const hub = new EventHub((e) => console.error(e));
 * hub.subscribe('q', (event) => console.log(event.type));
 * hub.deliver([{ type: 'waiting', queueName: 'q', jobId: '1', timestamp: Date.now() }]);
 * ```
 */
export class EventHub {
  /** Random id written with each event, so the poller skips this store's own events. */
  readonly origin: string = crypto.randomUUID();
  #subs = new Map<string, Set<(event: StoreEvent) => void>>();
  #onError: (error: Error) => void;
  #timer: ReturnType<typeof setInterval> | undefined;
  #source: PollSource | undefined;
  #interval = 50;
  #lastId = 0;
  #dataVersion = -1;

  /** @param onError Receives errors thrown by callbacks or by the poll. */
  constructor(onError: (error: Error) => void) {
    this.#onError = onError;
  }

  /**
   * Starts reading other connections' events from `source` every `interval` ms (while anyone
   * is subscribed), beginning after the newest event already stored.
   */
  attach(source: PollSource, interval: number): void {
    this.#source = source;
    this.#interval = interval;
    this.#schedule();
  }

  /** Stops polling (on disconnect). Subscriptions are kept. */
  detach(): void {
    this.#source = undefined;
    this.#schedule();
  }

  /** Adds a callback for a queue's events. */
  subscribe(queueName: string, callback: (event: StoreEvent) => void): void {
    let set = this.#subs.get(queueName);
    if (!set) this.#subs.set(queueName, set = new Set());
    set.add(callback);
    this.#schedule();
  }

  /** Removes one callback, or all of a queue's. */
  unsubscribe(queueName: string, callback?: (event: StoreEvent) => void): void {
    const set = this.#subs.get(queueName);
    if (set && callback) set.delete(callback);
    if (!set || !callback || set.size === 0) this.#subs.delete(queueName);
    this.#schedule();
  }

  /** Calls the subscribers of each event's queue, in order. */
  deliver(events: readonly StoreEvent[]): void {
    for (const event of events) {
      const set = this.#subs.get(event.queueName);
      if (!set) continue;
      for (const callback of [...set]) {
        try {
          callback(event);
        } catch (error) {
          this.#onError(error instanceof Error ? error : new Error(String(error)));
        }
      }
    }
  }

  /** Reads and delivers the events other connections committed since the last poll. */
  poll(): void {
    const source = this.#source;
    if (!source) return;
    try {
      const version = Number(source.dataVersion.get()?.data_version);
      if (version === this.#dataVersion) return;
      this.#dataVersion = version;
      const rows = source.since.all(this.#lastId);
      const events: StoreEvent[] = [];
      for (const row of rows) {
        this.#lastId = Number(row.id);
        if (row.origin !== this.origin) {
          events.push(...unpackEvents(String(row.body)));
        }
      }
      this.deliver(events);
    } catch (error) {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #schedule(): void {
    const wanted = this.#source !== undefined && this.#subs.size > 0;
    if (wanted && this.#timer === undefined) {
      // Start after the newest stored event: subscribers get what happens from now on.
      this.#lastId = Number(this.#source!.lastId.get()?.id ?? 0);
      this.#dataVersion = Number(this.#source!.dataVersion.get()?.data_version ?? -1);
      this.#timer = setInterval(() => this.poll(), this.#interval);
    } else if (!wanted && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

/**
 * The prepared statements the poller reads with.
 *
 * @example
 * ```ts
 * import type { PollSource } from '@conveyor/store-sqlite-core';
 * function hasEvents(s: PollSource): boolean {
 *   return s.lastId.get() !== undefined;
 * }
 * ```
 */
export interface PollSource {
  /** `PRAGMA data_version`, returning `data_version`. */
  dataVersion: SqliteStatement;
  /** The newest event id, as `id`. */
  lastId: SqliteStatement;
  /** Events after an id (`id`, `origin`, `body`), oldest first. */
  since: SqliteStatement;
}

/**
 * A run of events that differ only by job id, as stored: `[type, queueName, jobName, timestamp,
 * jobIds]`, or a single event with data as `[type, queueName, jobName, timestamp, [jobId], data]`.
 */
type Packed = [
  string,
  string,
  string | null,
  number,
  Array<string | null>,
  Record<string, unknown>?,
];

/**
 * Packs one transaction's events for the events table: consecutive events that differ only by
 * job id (a bulk save's `waiting` events, a batch claim's `active` events) share one entry, so a
 * bulk write adds a few bytes per job, not a whole JSON object.
 *
 * @example
 * ```ts
 * import { packEvents, unpackEvents } from '@conveyor/store-sqlite-core';
 * const t = Date.now();
 * const body = packEvents([
 *   { type: 'waiting', queueName: 'q', jobId: '1', jobName: 'a', timestamp: t },
 *   { type: 'waiting', queueName: 'q', jobId: '2', jobName: 'a', timestamp: t },
 * ]);
 * console.log(unpackEvents(body).length); // 2
 * ```
 */
export function packEvents(events: readonly StoreEvent[]): string {
  const packed: Packed[] = [];
  let last: Packed | undefined;
  for (const e of events) {
    const name = e.jobName ?? null;
    if (
      last && e.data === undefined && last.length === 5 && last[0] === e.type &&
      last[1] === e.queueName && last[2] === name && last[3] === e.timestamp
    ) {
      last[4].push(e.jobId ?? null);
      continue;
    }
    last = [e.type, e.queueName, name, e.timestamp, [e.jobId ?? null]];
    if (e.data !== undefined) last.push(e.data);
    packed.push(last);
  }
  return JSON.stringify(packed);
}

/**
 * Expands what {@linkcode packEvents} stored back into events, in order.
 *
 * @example
 * ```ts
 * import { packEvents, unpackEvents } from '@conveyor/store-sqlite-core';
 * const e = { type: 'paused' as const, queueName: 'q', data: { jobName: 'a' }, timestamp: 1 };
 * console.log(unpackEvents(packEvents([e]))[0].data); // { jobName: "a" }
 * ```
 */
export function unpackEvents(body: string): StoreEvent[] {
  const events: StoreEvent[] = [];
  for (const [type, queueName, jobName, timestamp, ids, data] of JSON.parse(body) as Packed[]) {
    for (const jobId of ids) {
      const event: StoreEvent = { type: type as StoreEvent['type'], queueName, timestamp };
      if (jobId !== null) event.jobId = jobId;
      if (jobName !== null) event.jobName = jobName;
      if (data !== undefined) event.data = data;
      events.push(event);
    }
  }
  return events;
}
