/**
 * Cross-process events: LISTEN/NOTIFY on one dedicated connection that reconnects and listens
 * again after a drop, or polling of the events table in poll-only mode (PgBouncer in
 * transaction pooling). Notifications carry ids, coalesced per statement; subscribers get one
 * {@linkcode StoreEvent} per job.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import postgres from 'postgres';
import type { StoreEvent, StoreEventType } from '@conveyor/shared';
import type { SchemaNames } from './names.ts';
import { watched, WATCHED_EVENTS } from './notify.ts';
import { reconnectDelay } from './options.ts';

type Callback = (event: StoreEvent) => void;

/** What the event hub needs from its store. */
export interface EventHubOptions {
  /** The store's pool (queries, NOTIFY). */
  sql: postgres.Sql;
  /** The schema's names. */
  names: SchemaNames;
  /** LISTEN (true) or poll the events table (false). */
  listen: boolean;
  /** Poll interval in ms (poll-only mode). */
  pollInterval: number;
  /** Whether its statements are prepared (the store's `prepare`). */
  prepare: boolean;
  /** Where background errors go. */
  onError: (error: Error) => void;
}

/**
 * The NOTIFY channel of a queue, the same as the schema's SQL function `channel(q)`: always 35
 * bytes, valid for any queue name.
 *
 * @example
 * ```ts
 * import { channelOf } from './events.ts';
 * console.log(channelOf('conveyor', 'x'.repeat(200)).length); // 35
 * ```
 */
export function channelOf(schema: string, queueName: string): string {
  return 'cv_' + createHash('md5').update(`${schema}/${queueName}`, 'utf8').digest('hex');
}

/**
 * The `application_name` of the store's LISTEN connection (to find it in `pg_stat_activity`).
 *
 * @example
 * ```ts
 * import { LISTENER_APP_NAME } from './events.ts';
 * console.log(LISTENER_APP_NAME); // conveyor-listener
 * ```
 */
export const LISTENER_APP_NAME = 'conveyor-listener';

/** How long a watch lasts without renewal (ms); renewed every third of it. */
const WATCH_TTL = 60_000;

/** NOTIFY payloads stay under PostgreSQL's 8000-byte limit. */
const MAX_PAYLOAD = 7900;

/**
 * Turns one notification payload into store events.
 *
 * @example
 * ```ts
 * import { expandPayload } from './events.ts';
 * const events = expandPayload('q', '{"t":"waiting","ts":1,"i":["1","2"]}');
 * console.log(events.length); // 2
 * ```
 */
export function expandPayload(queueName: string, payload: string): StoreEvent[] {
  const p = JSON.parse(payload) as {
    t: StoreEventType;
    ts: number;
    i: Array<string | null>;
    d?: Array<Record<string, unknown> | null>;
    n?: Array<string | null>;
    N?: string;
  };
  return p.i.map((id, k) => {
    const event: StoreEvent = { type: p.t, queueName, timestamp: p.ts };
    if (typeof id === 'string') event.jobId = id;
    const name = p.N ?? p.n?.[k];
    if (typeof name === 'string') event.jobName = name;
    const data = p.d?.[k];
    if (data && typeof data === 'object') event.data = data;
    return event;
  });
}

/**
 * Builds the payload `publish` sends for one event (data is dropped if it would not fit).
 *
 * @example
 * ```ts
 * import { eventPayload } from './events.ts';
 * console.log(eventPayload({ type: 'progress', queueName: 'q', jobId: '1', timestamp: 5 }));
 * ```
 */
export function eventPayload(event: StoreEvent): string {
  const build = (data: unknown) =>
    JSON.stringify({
      t: event.type,
      ts: event.timestamp,
      i: [event.jobId ?? null],
      d: [data ?? null],
      n: [event.jobName ?? null],
    });
  const payload = build(event.data);
  return new TextEncoder().encode(payload).length <= MAX_PAYLOAD ? payload : build(null);
}

/**
 * Delivers the events of subscribed queues to their callbacks, from every process.
 *
 * @example
 * ```ts
 * import { EventHub } from './events.ts';
 * // const hub = new EventHub({ sql, names, listen: true, pollInterval: 1000, onError });
 * // hub.subscribe('q', (e) => console.log(e.type));
 * ```
 */
export class EventHub {
  #o: EventHubOptions;
  #subs = new Map<string, Set<Callback>>();
  #channels = new Map<string, string>();
  #pending = new Map<string, Promise<void>>();
  #listener: postgres.Sql | null = null;
  #closed = false;
  #relistening = false;
  #pollTimer: ReturnType<typeof setTimeout> | null = null;
  #polling: Promise<void> | null = null;
  #lastEventId = -1;
  /** Callbacks that want the watched event types, by queue: the queues whose watch row this
   * hub keeps fresh. */
  #watchers = new Map<string, Set<Callback>>();
  #watchTimer: ReturnType<typeof setInterval> | null = null;

  /** @param options What the hub needs from its store. */
  constructor(options: EventHubOptions) {
    this.#o = options;
  }

  /** Subscriptions whose LISTEN is not acknowledged yet. */
  unsettled = 0;

  /** Resolves once every subscription made so far is listening. */
  async ready(): Promise<void> {
    await Promise.all(this.#pending.values());
  }

  /**
   * Adds a callback for a queue (starts listening on its channel when it is the first). When
   * `types` is missing or includes `active` or `completed`, the queue is also watched: those
   * events are published only while some process watches the queue.
   */
  subscribe(queueName: string, callback: Callback, types?: readonly StoreEventType[]): void {
    let set = this.#subs.get(queueName);
    if (!set) this.#subs.set(queueName, set = new Set());
    set.add(callback);
    const watch = !types || types.some((t) => WATCHED_EVENTS.includes(t));
    let watchers = this.#watchers.get(queueName);
    if (watch) {
      if (!watchers) this.#watchers.set(queueName, watchers = new Set());
      watchers.add(callback);
    }
    // Listen for the queue's first callback; record the watch for its first watching one.
    const first = !this.#pending.has(queueName);
    if (!first && !(watch && watchers!.size === 1)) return;
    this.unsettled++;
    const before = this.#pending.get(queueName);
    const p = (async () => {
      if (first) await this.#start(queueName);
      else await before;
      if (watch) await this.#watch(queueName);
    })().catch((e) => {
      if (first) this.#pending.delete(queueName);
      this.#o.onError(e as Error);
    }).finally(() => this.unsettled--);
    this.#pending.set(queueName, p);
  }

  /** Removes one callback, or all of a queue's. */
  unsubscribe(queueName: string, callback?: Callback): void {
    const set = this.#subs.get(queueName);
    if (!set) return;
    const watchers = this.#watchers.get(queueName);
    if (callback) {
      set.delete(callback);
      watchers?.delete(callback);
    } else {
      set.clear();
      watchers?.clear();
    }
    if (watchers?.size === 0) this.#watchers.delete(queueName);
    if (set.size > 0) return;
    this.#subs.delete(queueName);
    const pending = this.#pending.get(queueName);
    this.#pending.delete(queueName);
    pending?.then(() => this.#stop(queueName)).catch((e) => {
      if (!this.#closed) this.#o.onError(e as Error);
    });
  }

  /** Publishes an event to every process. */
  async publish(event: StoreEvent, exec: postgres.Sql | postgres.TransactionSql): Promise<void> {
    const { s } = this.#o.names;
    const params = [event.queueName, eventPayload(event)];
    await exec.unsafe(
      WATCHED_EVENTS.includes(event.type)
        ? `SELECT ${s}.send(${s}.channel($1::text), $2::text) WHERE ${watched(s, '$1::text')}`
        : `SELECT ${s}.send(${s}.channel($1::text), $2::text)`,
      params,
      { prepare: this.#o.prepare },
    );
  }

  /** Stops listening and polling. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    if (this.#watchTimer) clearInterval(this.#watchTimer);
    this.#subs.clear();
    const listener = this.#listener;
    this.#listener = null;
    await listener?.end({ timeout: 1 });
  }

  /** Uses `sql` from now on (the store replaced its pool). */
  usePool(sql: postgres.Sql): void {
    this.#o = { ...this.#o, sql };
  }

  /** Opens the LISTEN connection now, so that later subscriptions take one round trip. */
  async open(): Promise<void> {
    if (this.#o.listen) await this.#connection().unsafe('SELECT 1');
  }

  #channel(queueName: string): string {
    const channel = channelOf(this.#o.names.name, queueName);
    this.#channels.set(channel, queueName);
    return channel;
  }

  async #start(queueName: string): Promise<void> {
    const channel = this.#channel(queueName);
    if (this.#closed) return;
    if (!this.#o.listen) return await this.#startPolling();
    await this.#connection().unsafe(`LISTEN "${channel}"`);
  }

  async #stop(queueName: string): Promise<void> {
    if (this.#closed || this.#subs.has(queueName) || !this.#o.listen || !this.#listener) return;
    for (const [channel, q] of this.#channels) {
      if (q !== queueName) continue;
      this.#channels.delete(channel);
      await this.#listener.unsafe(`UNLISTEN "${channel}"`);
    }
  }

  /** Marks the queue watched for WATCH_TTL ms, and keeps it so while subscribed. */
  async #watch(queueName: string): Promise<void> {
    if (this.#closed) return;
    await this.#renew([queueName]);
    this.#watchTimer ??= setInterval(() => {
      if (this.#watchers.size === 0) return;
      this.#renew([...this.#watchers.keys()]).catch((e) => this.#o.onError(e as Error));
    }, WATCH_TTL / 3);
  }

  async #renew(queues: string[]): Promise<void> {
    const { s } = this.#o.names;
    await this.#o.sql.unsafe(
      `INSERT INTO ${s}.watchers (queue, until)
       SELECT q, ${s}.now_ms() + $2::float8 FROM unnest($1::text[]) AS q
       ON CONFLICT (queue) DO UPDATE SET until = greatest(${s}.watchers.until, EXCLUDED.until)`,
      [queues, WATCH_TTL] as never[],
      { prepare: this.#o.prepare },
    );
  }

  #connection(): postgres.Sql {
    if (this.#listener) return this.#listener;
    const base = this.#o.sql.options as unknown as postgres.Options<Record<string, never>>;
    const listener: postgres.Sql = postgres({
      ...base,
      max: 1,
      connection: { ...(base.connection ?? {}), application_name: LISTENER_APP_NAME },
      idle_timeout: 0,
      max_lifetime: null,
      // The store's own connection: it reconnects soon after an outage, whatever the pool's
      // backoff (a shared pool may keep postgres.js's default of up to 20 s).
      backoff: reconnectDelay,
      // No array types to read: LISTEN takes none, and the read is where postgres.js can leave
      // a rejection unhandled when the connection dies (see `PgStore.connect`).
      fetch_types: false,
      onnotice: () => {},
      onnotify: (channel: string, payload: string) => this.#deliver(channel, payload),
      // A listener replaced after a CONNECT_TIMEOUT (see `#relisten`) is no longer ours.
      onclose: () => {
        if (listener === this.#listener) this.#onClose();
      },
    } as postgres.Options<Record<string, never>>) as unknown as postgres.Sql;
    this.#listener = listener;
    return listener;
  }

  #deliver(channel: string, payload: string): void {
    const queueName = this.#channels.get(channel);
    if (queueName === undefined) return;
    const set = this.#subs.get(queueName);
    if (!set || set.size === 0) return;
    let events: StoreEvent[];
    try {
      events = expandPayload(queueName, payload);
    } catch (e) {
      this.#o.onError(e as Error);
      return;
    }
    for (const event of events) {
      for (const cb of [...set]) {
        try {
          cb(event);
        } catch (e) {
          this.#o.onError(e as Error);
        }
      }
    }
  }

  #onClose(): void {
    if (this.#closed || this.#relistening) return;
    this.#relistening = true;
    this.#o.onError(new Error('conveyor: LISTEN connection closed; reconnecting'));
    void this.#relisten(0);
  }

  async #relisten(attempt: number): Promise<void> {
    if (this.#closed) return;
    const channels = [...this.#channels.keys()];
    try {
      const listener = this.#connection();
      if (channels.length > 0) {
        await listener.unsafe(channels.map((c) => `LISTEN "${c}"`).join('; '));
      } else {
        await listener.unsafe('SELECT 1');
      }
      this.#relistening = false;
      if (this.#watchers.size > 0) await this.#renew([...this.#watchers.keys()]);
      // Events published while the connection was down are lost: wake every subscriber so
      // workers look for jobs again.
      for (const queueName of this.#subs.keys()) {
        this.#deliver(
          [...this.#channels].find(([, q]) => q === queueName)?.[0] ?? '',
          JSON.stringify({ t: 'waiting', ts: Date.now(), i: [null] }),
        );
      }
    } catch (e) {
      this.#o.onError(e as Error);
      if ((e as { code?: unknown }).code === 'CONNECT_TIMEOUT') {
        // postgres.js can leave a connection unable to connect again (see PgStore's pool
        // renewal): the next attempt goes through a new listener.
        const stale = this.#listener;
        this.#listener = null;
        void stale?.end({ timeout: 0 }).catch(() => {});
      }
      const delay = Math.min(50 * 2 ** attempt, 2000);
      setTimeout(() => void this.#relisten(attempt + 1), delay);
    }
  }

  /** Starts polling; resolves after the first poll (announced, and at the head of the log). */
  #startPolling(): Promise<void> {
    if (this.#polling) return this.#polling;
    const tick = async () => {
      try {
        await this.#poll();
      } catch (e) {
        this.#o.onError(e as Error);
      }
      if (!this.#closed) this.#pollTimer = setTimeout(tick, this.#o.pollInterval);
    };
    this.#polling = tick();
    return this.#polling;
  }

  async #poll(): Promise<void> {
    const { s } = this.#o.names;
    const sql = this.#o.sql;
    const horizon = this.#o.pollInterval * 3 + 5000;
    await sql.unsafe(
      `INSERT INTO ${s}.settings (k, v) VALUES ('poll_until', ${s}.now_ms() + $1::float8)
       ON CONFLICT (k) DO UPDATE SET v = greatest(${s}.settings.v, EXCLUDED.v)`,
      [horizon],
      { prepare: this.#o.prepare },
    );
    if (this.#lastEventId < 0) {
      const [row] = await sql.unsafe(`SELECT coalesce(max(id), 0)::float8 AS id FROM ${s}.events`);
      this.#lastEventId = Number(row.id);
      return;
    }
    const rows = await sql.unsafe(
      `SELECT id::float8 AS id, channel, payload FROM ${s}.events
       WHERE id > $1::bigint ORDER BY id LIMIT 5000`,
      [this.#lastEventId],
      { prepare: this.#o.prepare },
    );
    for (const row of rows) {
      this.#lastEventId = Number(row.id);
      this.#deliver(row.channel as string, row.payload as string);
    }
    if (Math.random() < 0.05) {
      await sql.unsafe(`DELETE FROM ${s}.events WHERE at < ${s}.now_ms() - 60000`);
    }
  }
}
