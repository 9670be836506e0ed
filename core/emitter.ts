/**
 * A tiny typed event emitter (web-standard code, no `node:events`).
 *
 * @module
 */

/**
 * A map from event names to listener argument tuples.
 *
 * @example
 * ```ts
 * import type { EventMap } from '@conveyor/core';
 * interface Events extends EventMap { tick: [n: number] }
 * ```
 */
export type EventMap = Record<string, unknown[]>;

/**
 * A typed emitter: `on`, `once`, `off`, `emit`. A listener that throws is reported to the
 * `error` listeners (or `console.error` when there are none) and does not stop the others.
 *
 * @example
 * ```ts
 * import { Emitter } from '@conveyor/core';
 * const e = new Emitter<{ tick: [n: number] }>();
 * e.on('tick', (n) => console.log(n));
 * e.emit('tick', 1);
 * ```
 */
export class Emitter<E extends EventMap> {
  #listeners: Map<keyof E, Array<(...args: never[]) => unknown>> = new Map();

  /**
   * Adds a listener.
   *
   * @example
   * ```ts
   * import { Emitter } from '@conveyor/core';
   * new Emitter<{ ping: [] }>().on('ping', () => {});
   * ```
   */
  on<K extends keyof E>(event: K, listener: (...args: E[K]) => unknown): this {
    const list = this.#listeners.get(event);
    if (list) list.push(listener as (...args: never[]) => unknown);
    else this.#listeners.set(event, [listener as (...args: never[]) => unknown]);
    return this;
  }

  /**
   * Adds a listener called at most once.
   *
   * @example
   * ```ts
   * import { Emitter } from '@conveyor/core';
   * new Emitter<{ ping: [] }>().once('ping', () => {});
   * ```
   */
  once<K extends keyof E>(event: K, listener: (...args: E[K]) => unknown): this {
    const wrapper = (...args: E[K]): unknown => {
      this.off(event, wrapper);
      return listener(...args);
    };
    return this.on(event, wrapper);
  }

  /**
   * Removes a listener, or every listener of the event when none is given.
   *
   * @example
   * ```ts
   * import { Emitter } from '@conveyor/core';
   * const e = new Emitter<{ ping: [] }>();
   * const f = () => {};
   * e.on('ping', f).off('ping', f);
   * ```
   */
  off<K extends keyof E>(event: K, listener?: (...args: E[K]) => unknown): this {
    if (!listener) {
      this.#listeners.delete(event);
      return this;
    }
    const list = this.#listeners.get(event);
    if (!list) return this;
    const i = list.indexOf(listener as (...args: never[]) => unknown);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#listeners.delete(event);
    return this;
  }

  /**
   * The number of listeners of an event.
   *
   * @example
   * ```ts
   * import { Emitter } from '@conveyor/core';
   * console.log(new Emitter<{ ping: [] }>().listenerCount('ping')); // 0
   * ```
   */
  listenerCount<K extends keyof E>(event: K): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /**
   * Calls the listeners of an event in order. Returns whether there were any.
   *
   * @example
   * ```ts
   * import { Emitter } from '@conveyor/core';
   * new Emitter<{ tick: [n: number] }>().emit('tick', 1); // false
   * ```
   */
  emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const listener of list.slice()) {
      try {
        const r = (listener as (...a: E[K]) => unknown)(...args);
        if (r instanceof Promise) r.catch((e) => this.#listenerFailed(event, e));
      } catch (e) {
        this.#listenerFailed(event, e);
      }
    }
    return true;
  }

  #listenerFailed(event: keyof E, error: unknown): void {
    if (event !== 'error' && this.listenerCount('error' as keyof E) > 0) {
      this.emit('error' as keyof E, ...[error] as unknown as E[keyof E]);
    } else {
      console.error(error);
    }
  }
}
