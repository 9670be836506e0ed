/**
 * The in-process event emitter of the {@linkcode MemoryStore}.
 *
 * @module
 */
import type { StoreEvent } from '@conveyor/shared';
import { copyValue } from './copy.ts';

/** A subscriber callback. */
export type Listener = (event: StoreEvent) => void;

/**
 * Delivers events to per-queue listeners, synchronously and in publish order. Events queued
 * during a store operation are delivered by {@linkcode Emitter.flush} once the operation's
 * state change is complete, so a listener never observes (or re-enters) a half-done change.
 * A listener that throws does not stop the others; its error goes to `onError`.
 *
 * Queued events belong to the emitter (queue a copy of anything the caller keeps). Each
 * listener gets its own object: the last listener of a queue gets the queued event itself, the
 * others a copy made just before their call, so listeners cannot change what others see.
 *
 * @example
 * ```ts
 * import { Emitter } from './emitter.ts';
 * const emitter = new Emitter();
 * emitter.on('q', (e) => console.log(e.type));
 * emitter.queue({ type: 'waiting', queueName: 'q', jobId: '1', timestamp: Date.now() });
 * emitter.flush(); // logs "waiting"
 * ```
 */
export class Emitter {
  /** Listeners per queue; arrays are replaced, never changed, so a delivery can walk one. */
  #listeners = new Map<string, readonly Listener[]>();
  #pending: StoreEvent[] = [];
  #flushing = false;
  #onError: (error: Error) => void;

  /** @param onError Receives errors thrown by listeners. */
  constructor(onError: (error: Error) => void = () => {}) {
    this.#onError = onError;
  }

  /** Adds a listener for one queue. */
  on(queueName: string, listener: Listener): void {
    const list = this.#listeners.get(queueName) ?? [];
    if (!list.includes(listener)) this.#listeners.set(queueName, [...list, listener]);
  }

  /** Removes one listener of a queue, or all of them when none is given. */
  off(queueName: string, listener?: Listener): void {
    if (!listener) {
      this.#listeners.delete(queueName);
      return;
    }
    const list = this.#listeners.get(queueName);
    if (!list?.includes(listener)) return;
    const rest = list.filter((l) => l !== listener);
    if (rest.length === 0) this.#listeners.delete(queueName);
    else this.#listeners.set(queueName, rest);
  }

  /** Removes every listener and drops undelivered events. */
  clear(): void {
    this.#listeners.clear();
    this.#pending.length = 0;
  }

  /** Queues an event for the next {@linkcode Emitter.flush}. */
  queue(event: StoreEvent): void {
    this.#pending.push(event);
  }

  /** Drops the queued events (the operation that queued them did not happen). */
  discard(): void {
    if (!this.#flushing) this.#pending.length = 0;
  }

  /** Delivers the queued events in order. Re-entrant calls append to the running delivery. */
  flush(): void {
    if (this.#flushing || this.#pending.length === 0) return;
    this.#flushing = true;
    try {
      for (let i = 0; i < this.#pending.length; i++) {
        const event = this.#pending[i];
        const listeners = this.#listeners.get(event.queueName);
        if (!listeners) continue;
        const last = listeners.length - 1;
        for (let l = 0; l <= last; l++) {
          try {
            listeners[l](l === last ? event : copyValue(event));
          } catch (error) {
            this.#onError(error instanceof Error ? error : new Error(String(error)));
          }
        }
      }
    } finally {
      this.#pending.length = 0;
      this.#flushing = false;
    }
  }
}
