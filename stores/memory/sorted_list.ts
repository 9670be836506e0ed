/**
 * A sorted list split into chunks: insert, delete and "first" cost O(log n + chunk) instead of
 * O(n), and iteration walks the entries in order. Used for every per-queue, per-state index of
 * the {@linkcode MemoryStore}.
 *
 * @module
 */

/** Orders two entries: negative when `a` comes first, 0 when equal, positive otherwise. */
export type Compare<T> = (a: T, b: T) => number;

const CHUNK = 128;

/**
 * A sorted list of unique entries (by `compare`). Entries must not change while stored.
 *
 * @example
 * ```ts
 * import { SortedList } from '@conveyor/store-memory/sorted-list';
 * const list = new SortedList<number>((a, b) => a - b);
 * list.insert(3);
 * list.insert(1);
 * console.log(list.first(), [...list]); // 1 [1, 3]
 * ```
 */
export class SortedList<T> implements Iterable<T> {
  #compare: Compare<T>;
  #chunks: T[][] = [];
  #size = 0;

  /**
   * Creates an empty list.
   *
   * @param compare Orders the entries; entries comparing equal count as the same entry.
   */
  constructor(compare: Compare<T>) {
    this.#compare = compare;
  }

  /** The number of entries. */
  get size(): number {
    return this.#size;
  }

  /** The first entry, or undefined when empty. */
  first(): T | undefined {
    return this.#chunks[0]?.[0];
  }

  /** Adds an entry (keeps the order). Returns false when an equal entry is already stored. */
  insert(entry: T): boolean {
    const chunks = this.#chunks;
    if (chunks.length === 0) {
      chunks.push([entry]);
      this.#size = 1;
      return true;
    }
    // Fast paths: appending after the last entry or before the first (FIFO and newest-first
    // indexes do nothing else). push/unshift are much cheaper than splice.
    let c = chunks.length - 1;
    let chunk = chunks[c];
    if (this.#compare(chunk[chunk.length - 1], entry) < 0) chunk.push(entry);
    else if (this.#compare(entry, chunks[0][0]) < 0) {
      c = 0;
      chunk = chunks[0];
      chunk.unshift(entry);
    } else {
      c = this.#chunkFor(entry);
      chunk = chunks[c];
      const i = this.#lowerBound(chunk, entry);
      if (i < chunk.length && this.#compare(chunk[i], entry) === 0) return false;
      chunk.splice(i, 0, entry);
    }
    this.#size++;
    if (chunk.length > 2 * CHUNK) chunks.splice(c + 1, 0, chunk.splice(CHUNK));
    return true;
  }

  /** Removes the entry equal to `entry`. Returns false when there was none. */
  delete(entry: T): boolean {
    const chunks = this.#chunks;
    if (chunks.length === 0) return false;
    // Fast paths: the very entry is the first or the last (claims take the head).
    const head = chunks[0];
    if (head[0] === entry) {
      head.shift();
      if (head.length === 0) chunks.shift();
      this.#size--;
      return true;
    }
    const tail = chunks[chunks.length - 1];
    if (tail[tail.length - 1] === entry) {
      tail.pop();
      if (tail.length === 0) chunks.pop();
      this.#size--;
      return true;
    }
    const c = this.#chunkFor(entry);
    const chunk = chunks[c];
    const i = this.#lowerBound(chunk, entry);
    if (i >= chunk.length || this.#compare(chunk[i], entry) !== 0) return false;
    if (i === 0) chunk.shift();
    else if (i === chunk.length - 1) chunk.pop();
    else chunk.splice(i, 1);
    this.#size--;
    if (chunk.length === 0) chunks.splice(c, 1);
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    this.#chunks = [];
    this.#size = 0;
  }

  /** Walks the entries in order. Do not insert or delete while iterating. */
  *[Symbol.iterator](): Iterator<T> {
    for (const chunk of this.#chunks) yield* chunk;
  }

  /** Walks the entries in reverse order. Do not insert or delete while iterating. */
  *reversed(): Generator<T> {
    for (let c = this.#chunks.length - 1; c >= 0; c--) {
      const chunk = this.#chunks[c];
      for (let i = chunk.length - 1; i >= 0; i--) yield chunk[i];
    }
  }

  /** The entries from index `start` to `end` inclusive (clamped), in order. */
  slice(start: number, end: number): T[] {
    const out: T[] = [];
    let offset = 0;
    for (const chunk of this.#chunks) {
      if (offset > end) break;
      const from = Math.max(0, start - offset);
      const to = Math.min(chunk.length - 1, end - offset);
      for (let i = from; i <= to; i++) out.push(chunk[i]);
      offset += chunk.length;
    }
    return out;
  }

  /** The index of the chunk that holds (or would hold) `entry`. */
  #chunkFor(entry: T): number {
    let lo = 0;
    let hi = this.#chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const chunk = this.#chunks[mid];
      if (this.#compare(chunk[chunk.length - 1], entry) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #lowerBound(chunk: T[], entry: T): number {
    let lo = 0;
    let hi = chunk.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#compare(chunk[mid], entry) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
