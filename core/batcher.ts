/**
 * Group commit: items submitted while a flush is in flight go out together in the next one.
 *
 * @module
 */

interface Pending<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Collects items and flushes them with one call: items added in the same synchronous run go
 * out together, and the items that arrive while a flush is in flight go out together in the
 * next call. Each `add` resolves with its
 * own result (`flush` returns one result per item, in order). When a flush of several items
 * throws, each item is flushed again on its own, so that one bad item rejects only its own
 * `add` (`flush` must then be all-or-nothing, as a store transaction is).
 *
 * @example
 * ```ts
 * import { Batcher } from '@conveyor/core';
 * const b = new Batcher<number, number>(async (xs) => xs.map((x) => x * 2));
 * console.log(await Promise.all([b.add(1), b.add(2)])); // [2, 4]
 * ```
 */
export class Batcher<T, R> {
  readonly #flush: (items: T[]) => Promise<R[]>;
  #pending: Pending<T, R>[] = [];
  #inFlight: Promise<void> | undefined;

  /** @param flush Sends a batch; returns one result per item. */
  constructor(flush: (items: T[]) => Promise<R[]>) {
    this.#flush = flush;
  }

  /**
   * Submits one item.
   *
   * @example
   * ```ts
   * import { Batcher } from '@conveyor/core';
   * await new Batcher<number, number>(async (xs) => xs).add(1); // 1
   * ```
   */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      // Start on the next microtask, so that items added in the same synchronous run coalesce.
      if (!this.#inFlight) this.#inFlight = Promise.resolve().then(() => this.#run());
    });
  }

  /**
   * Resolves when nothing is pending or in flight.
   *
   * @example
   * ```ts
   * import { Batcher } from '@conveyor/core';
   * await new Batcher<number, number>(async (xs) => xs).idle();
   * ```
   */
  async idle(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  async #run(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        try {
          const results = await this.#flush(batch.map((p) => p.item));
          for (let i = 0; i < batch.length; i++) batch[i].resolve(results[i]);
        } catch (e) {
          if (batch.length === 1) batch[0].reject(e);
          // One bad item must not sink the others: each goes again alone, and only the
          // items that fail alone reject.
          else await Promise.all(batch.map((p) => this.#alone(p)));
        }
      }
    } finally {
      this.#inFlight = undefined;
    }
  }

  async #alone(p: Pending<T, R>): Promise<void> {
    try {
      p.resolve((await this.#flush([p.item]))[0]);
    } catch (e) {
      p.reject(e);
    }
  }
}
