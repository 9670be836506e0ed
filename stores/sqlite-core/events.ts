/**
 * Events: subscribers in this process are called as soon as a transaction commits; events of
 * other processes (and other connections) are read from `conveyor_events` (one row per
 * transaction, its events as a JSON array) by a cheap poll that
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
          events.push(...JSON.parse(String(row.body)) as StoreEvent[]);
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
