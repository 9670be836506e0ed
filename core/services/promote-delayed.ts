/**
 * The service that promotes delayed jobs when they are due, woken by a timer, not by polling.
 *
 * @module
 */
import type { StoreEvent, StoreInterface } from '@conveyor/shared';
import type { Service } from './service.ts';

const MAX_TIMER = 2 ** 31 - 1;

/**
 * Keeps one timer armed for the queue's earliest delayed job (from `getNextDelayedTimestamp`),
 * re-armed on `delayed` events; when it fires, promotes the due jobs and re-arms. A fallback
 * check runs every `pollInterval` ms, for stores whose events can be missed.
 *
 * @example
 * ```ts
 * import { PromoteDelayedService } from '@conveyor/core';
 * import type { StoreInterface } from '@conveyor/shared';
 * declare const store: StoreInterface;
 * const s = new PromoteDelayedService(store, 'q', 5000, console.error);
 * s.start();
 * await s.stop();
 * ```
 */
export class PromoteDelayedService implements Service {
  readonly #store: StoreInterface;
  readonly #queue: string;
  readonly #pollInterval: number;
  readonly #onError: (error: unknown) => void;
  readonly #listener = (e: StoreEvent): void => this.notify(e);
  readonly #subscribe: boolean;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Infinity;
  #running = false;
  #stopped = true;
  #busy: Promise<void> | undefined;
  #again = false;

  /**
   * @param store The store.
   * @param queueName The queue.
   * @param pollInterval The fallback check interval in ms.
   * @param onError Receives errors.
   * @param subscribe Subscribe to the store's events (default). A caller that already
   *   subscribes (a Worker) passes false and forwards events with `notify`, so the store
   *   delivers each event once.
   */
  constructor(
    store: StoreInterface,
    queueName: string,
    pollInterval: number,
    onError: (error: unknown) => void,
    subscribe = true,
  ) {
    this.#subscribe = subscribe;
    this.#store = store;
    this.#queue = queueName;
    this.#pollInterval = pollInterval;
    this.#onError = onError;
  }

  /**
   * Subscribes and arms the first timer.
   *
   * @example
   * ```ts
   * import type { PromoteDelayedService } from '@conveyor/core';
   * declare const s: PromoteDelayedService;
   * s.start();
   * ```
   */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    if (this.#subscribe) this.#store.subscribe(this.#queue, this.#listener, ['delayed']);
    this.#check();
  }

  /**
   * Unsubscribes and clears the timer.
   *
   * @example
   * ```ts
   * import type { PromoteDelayedService } from '@conveyor/core';
   * declare const s: PromoteDelayedService;
   * await s.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#subscribe) this.#store.unsubscribe(this.#queue, this.#listener);
    this.#clear();
    await this.#busy;
  }

  /**
   * Takes a store event: a `delayed` event earlier than the armed timer re-arms it.
   *
   * @example
   * ```ts
   * import type { PromoteDelayedService } from '@conveyor/core';
   * declare const s: PromoteDelayedService;
   * s.notify({ type: 'delayed', queueName: 'q', data: { delayUntil: Date.now() + 10 }, timestamp: Date.now() });
   * ```
   */
  notify(e: StoreEvent): void {
    if (e.type !== 'delayed' || this.#stopped) return;
    const at = Number(e.data?.delayUntil);
    if (Number.isFinite(at) && at > 0) {
      if (at < this.#armedAt) this.#arm(at);
    } else this.#check();
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  #arm(at: number): void {
    if (this.#stopped) return;
    this.#clear();
    this.#armedAt = at;
    const wait = Math.min(Math.max(0, at - Date.now()), this.#pollInterval, MAX_TIMER);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#armedAt = Infinity;
      this.#check();
    }, wait);
  }

  /** Promotes what is due, then arms the timer for the next delayed job. */
  #check(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#busy = (async () => {
      try {
        do {
          this.#again = false;
          await this.#store.promoteDelayedJobs(this.#queue, Date.now());
          const next = await this.#store.getNextDelayedTimestamp(this.#queue);
          if (this.#stopped) return;
          const now = Date.now();
          // Due by our clock but not promoted (store clock behind): retry shortly.
          const target = next === null ? now + this.#pollInterval : Math.max(next, now + 1);
          // Never push back a timer armed meanwhile (by a `delayed` event) for an earlier time.
          if (this.#timer === undefined || target < this.#armedAt) this.#arm(target);
        } while (this.#again && !this.#stopped);
      } catch (e) {
        this.#onError(e);
        if (this.#timer === undefined) this.#arm(Date.now() + this.#pollInterval);
      } finally {
        this.#running = false;
      }
    })();
  }
}
