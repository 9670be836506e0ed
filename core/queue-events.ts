/**
 * {@linkcode QueueEvents}: a queue's events, from every process, through the store's pub/sub.
 *
 * @module
 */
import type { StoreEvent, StoreInterface } from '@conveyor/shared';
import { Emitter } from './emitter.ts';
import { checkKeys, checkName, checkStore } from './validate.ts';

/**
 * The events of {@linkcode QueueEvents} and their payloads.
 *
 * @example
 * ```ts
 * import type { QueueEventsMap } from '@conveyor/core';
 * type Completed = QueueEventsMap['completed'][0]; // { jobId, name, returnvalue }
 * ```
 */
export interface QueueEventsMap {
  [event: string]: unknown[];
  /** A job became `waiting` (added, promoted, retried, released, or a parent released). */
  waiting: [e: { jobId: string; name?: string }];
  /** A flow parent was saved waiting for its children. */
  'waiting-children': [e: { jobId: string; name?: string }];
  /** A job became `delayed` until `delayUntil`. */
  delayed: [e: { jobId: string; name?: string; delayUntil: number }];
  /** A worker claimed a job. */
  active: [e: { jobId: string; name?: string }];
  /** A job reported progress. */
  progress: [e: { jobId: string; name?: string; progress: unknown }];
  /** A job completed, with its return value. */
  completed: [e: { jobId: string; name?: string; returnvalue: unknown }];
  /** A job failed for good. */
  failed: [e: { jobId: string; name?: string; failedReason: string; attemptsMade: number }];
  /** An attempt failed and the job will be retried. */
  retrying: [e: { jobId: string; name?: string; failedReason: string; attemptsMade: number }];
  /** A job's lock expired and it was rescued (requeued or failed). */
  stalled: [e: { jobId: string; name?: string }];
  /** A job was removed. */
  removed: [e: { jobId: string; name?: string }];
  /**
   * An add was answered by the live job `jobId` holding its deduplication key
   * (`deduplicationId`) and saved nothing. `deduplicatedJobId` is the `jobId` option of the
   * refused job, or null when it had none (only saved jobs get ids; BullMQ always has one).
   */
  deduplicated: [e: { jobId: string; deduplicationId: string; deduplicatedJobId: string | null }];
  /** An add with a `jobId` option that exists (`jobId`) saved nothing. */
  duplicated: [e: { jobId: string }];
  /** A worker found the queue empty. */
  drained: [e: { timestamp: number }];
  /** The queue (`__all__`) or a job name was paused. */
  paused: [e: { jobName: string }];
  /** The queue (`__all__`) or a job name was resumed. */
  resumed: [e: { jobName: string }];
  /** A listener threw, or the store failed to give a value. */
  error: [error: unknown];
  /** `close` was called. */
  closed: [];
}

/**
 * Options of {@linkcode QueueEvents}.
 *
 * @example
 * ```ts
 * import type { QueueEventsOptions } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 * const opts: QueueEventsOptions = { store: new MemoryStore() };
 * ```
 */
export interface QueueEventsOptions {
  /** A connected store. */
  store: StoreInterface;
}

/**
 * Listens to a queue's events from every process (no Worker needed), through the store's
 * pub/sub.
 *
 * @example
 * ```ts
 * import { QueueEvents } from '@conveyor/core';
 * import { MemoryStore } from '@conveyor/store-memory';
 *
 * const store = new MemoryStore();
 * await store.connect();
 * const events = new QueueEvents('emails', { store });
 * events.on('completed', ({ jobId, returnvalue }) => console.log(jobId, returnvalue));
 * events.on('failed', ({ jobId, failedReason }) => console.error(jobId, failedReason));
 * await events.close();
 * ```
 */
export class QueueEvents extends Emitter<QueueEventsMap> {
  /** The queue name. */
  readonly name: string;
  /** The store. */
  readonly store: StoreInterface;
  readonly #listener: (event: StoreEvent) => void;
  #closed = false;
  #closing: Promise<void> = Promise.resolve();
  /** Reads of completed values that did not fit the transport (see `#dispatch`). */
  readonly #reads = new Set<Promise<void>>();

  /**
   * Subscribes to the queue's events at once.
   *
   * @example
   * ```ts
   * import { QueueEvents } from '@conveyor/core';
   * import { MemoryStore } from '@conveyor/store-memory';
   * const events = new QueueEvents('emails', { store: new MemoryStore() });
   * ```
   */
  constructor(name: string, opts: QueueEventsOptions) {
    super();
    checkName('queueName', name);
    checkStore(opts);
    checkKeys('opts', opts, new Set(['store']));
    this.name = name;
    this.store = opts.store;
    this.#listener = (event) => this.#dispatch(event);
    this.store.subscribe(name, this.#listener);
  }

  /**
   * Resolves once the subscription is live: it starts in the constructor, and on a shared store
   * (PostgreSQL) events of other processes arrive once this resolves.
   *
   * @example
   * ```ts
   * import type { QueueEvents } from '@conveyor/core';
   * declare const events: QueueEvents;
   * await events.waitUntilReady();
   * ```
   */
  async waitUntilReady(): Promise<void> {
    await this.store.subscriptionsReady?.();
  }

  /**
   * Unsubscribes and emits `closed`, once the reads of completed values in flight emitted (no
   * event comes after `closed`).
   *
   * @example
   * ```ts
   * import type { QueueEvents } from '@conveyor/core';
   * declare const events: QueueEvents;
   * await events.close();
   * ```
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.store.unsubscribe(this.name, this.#listener);
      // The reads of completed values in flight emit first: nothing comes after `closed`.
      this.#closing = Promise.all(this.#reads).then(() => void this.emit('closed'));
    }
    return this.#closing;
  }

  /** Same as `close`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #dispatch(e: StoreEvent): void {
    const jobId = e.jobId ?? '';
    const name = e.jobName;
    const d = e.data ?? {};
    switch (e.type) {
      case 'waiting':
      case 'waiting-children':
      case 'active':
      case 'stalled':
      case 'removed':
        this.emit(e.type, { jobId, name });
        break;
      case 'delayed':
        this.emit('delayed', { jobId, name, delayUntil: Number(d.delayUntil ?? 0) });
        break;
      case 'progress':
        this.emit('progress', { jobId, name, progress: d.progress });
        break;
      case 'completed':
        if ('returnvalue' in d) this.emit('completed', { jobId, name, returnvalue: d.returnvalue });
        else {
          // The value did not fit the transport: read it from the store (null if removed).
          const read = this.store.getJob(this.name, jobId).then(
            (job) =>
              void this.emit('completed', { jobId, name, returnvalue: job?.returnvalue ?? null }),
            (err) => void this.emit('error', err),
          ).finally(() => this.#reads.delete(read));
          this.#reads.add(read);
        }
        break;
      case 'failed':
      case 'retrying':
        this.emit(e.type, {
          jobId,
          name,
          failedReason: String(d.failedReason ?? ''),
          attemptsMade: Number(d.attemptsMade ?? 0),
        });
        break;
      case 'drained':
        this.emit('drained', { timestamp: e.timestamp });
        break;
      case 'deduplicated':
        this.emit('deduplicated', {
          jobId,
          deduplicationId: String(d.deduplicationId ?? ''),
          deduplicatedJobId: typeof d.deduplicatedJobId === 'string' ? d.deduplicatedJobId : null,
        });
        break;
      case 'duplicated':
        this.emit('duplicated', { jobId });
        break;
      case 'paused':
      case 'resumed':
        this.emit(e.type, { jobName: String(d.jobName ?? '') });
        break;
    }
  }
}
