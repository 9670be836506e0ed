/**
 * The in-process event emitter of the {@linkcode MemoryStore}.
 *
 * @module
 */
import type { StoreEvent } from '@conveyor/shared';

/** A subscriber callback. */
export type Listener = (event: StoreEvent) => void;

/**
 * Delivers events to per-queue listeners, synchronously and in publish order. Events queued
 * during a store operation are delivered by {@linkcode Emitter.flush} once the operation's
 * state change is complete, so a listener never observes (or re-enters) a half-done change.
 * A listener that throws does not stop the others; its error goes to `onError`.
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
  #listeners = new Map<string, Set<Listener>>();
  #pending: StoreEvent[] = [];
  #flushing = false;
  #onError: (error: Error) => void;

  /** @param onError Receives errors thrown by listeners. */
  constructor(onError: (error: Error) => void = () => {}) {
    this.#onError = onError;
  }

  /** Adds a listener for one queue. */
  on(queueName: string, listener: Listener): void {
    let set = this.#listeners.get(queueName);
    if (!set) this.#listeners.set(queueName, set = new Set());
    set.add(listener);
  }

  /** Removes one listener of a queue, or all of them when none is given. */
  off(queueName: string, listener?: Listener): void {
    if (!listener) {
      this.#listeners.delete(queueName);
      return;
    }
    const set = this.#listeners.get(queueName);
    set?.delete(listener);
    if (set?.size === 0) this.#listeners.delete(queueName);
  }

  /** Removes every listener and drops undelivered events. */
  clear(): void {
    this.#listeners.clear();
    this.#pending = [];
  }

  /** Queues an event for the next {@linkcode Emitter.flush}. */
  queue(event: StoreEvent): void {
    this.#pending.push(event);
  }

  /** Drops the queued events (the operation that queued them did not happen). */
  discard(): void {
    if (!this.#flushing) this.#pending = [];
  }

  /** Delivers the queued events in order. Re-entrant calls append to the running delivery. */
  flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      for (let i = 0; i < this.#pending.length; i++) {
        const event = this.#pending[i];
        const listeners = this.#listeners.get(event.queueName);
        if (!listeners) continue;
        for (const listener of [...listeners]) {
          try {
            listener(structuredClone(event));
          } catch (error) {
            this.#onError(error instanceof Error ? error : new Error(String(error)));
          }
        }
      }
    } finally {
      this.#pending = [];
      this.#flushing = false;
    }
  }
}
