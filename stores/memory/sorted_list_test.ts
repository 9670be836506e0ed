/**
 * Unit tests of {@linkcode SortedList} (run by tests/memory.test.ts on every runtime).
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SortedList } from './sorted_list.ts';

const numeric = (a: number, b: number) => a - b;

/** A deterministic pseudo-random sequence (so failures reproduce). */
function random(seed: number): () => number {
  let x = seed;
  return () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
}

describe('SortedList', () => {
  it('keeps entries sorted and reports first and size', () => {
    const list = new SortedList(numeric);
    assert.equal(list.first(), undefined);
    for (const n of [5, 1, 4, 2, 3]) assert.equal(list.insert(n), true);
    assert.deepEqual([...list], [1, 2, 3, 4, 5]);
    assert.equal(list.first(), 1);
    assert.equal(list.size, 5);
  });

  it('refuses duplicates and deletes only present entries', () => {
    const list = new SortedList(numeric);
    list.insert(1);
    assert.equal(list.insert(1), false);
    assert.equal(list.delete(2), false);
    assert.equal(list.delete(1), true);
    assert.equal(list.delete(1), false);
    assert.equal(list.size, 0);
    assert.deepEqual([...list], []);
  });

  it('matches a sorted array through many random inserts and deletes (several chunks)', () => {
    const list = new SortedList(numeric);
    const model = new Set<number>();
    const next = random(42);
    for (let i = 0; i < 20_000; i++) {
      const n = Math.floor(next() * 5000);
      if (next() < 0.6) assert.equal(list.insert(n), !model.has(n)), model.add(n);
      else assert.equal(list.delete(n), model.has(n)), model.delete(n);
    }
    const sorted = [...model].sort(numeric);
    assert.deepEqual([...list], sorted);
    assert.deepEqual([...list.reversed()], [...sorted].reverse());
    assert.equal(list.size, sorted.length);
    assert.equal(list.first(), sorted[0]);
  });

  it('matches a model under queue-like use: appends, prepends, head and tail deletes', () => {
    type E = { k: number };
    const list = new SortedList<E>((a, b) => a.k - b.k);
    const model: E[] = [];
    const next = random(7);
    let low = 0;
    let high = 0;
    for (let i = 0; i < 30_000; i++) {
      const op = Math.floor(next() * 6);
      if (op <= 1) {
        const e = { k: ++high };
        assert.equal(list.insert(e), true);
        model.push(e);
      } else if (op === 2) {
        const e = { k: --low };
        assert.equal(list.insert(e), true);
        model.unshift(e);
      } else if (op === 3 && model.length > 0) {
        // The head, by identity or by an equal copy (the slow path).
        const e = next() < 0.5 ? model[0] : { k: model[0].k };
        assert.equal(list.delete(e), true);
        model.shift();
      } else if (op === 4 && model.length > 0) {
        assert.equal(list.delete(model[model.length - 1]), true);
        model.pop();
      } else if (model.length > 0) {
        const at = Math.floor(next() * model.length);
        assert.equal(list.delete(model[at]), true);
        assert.equal(list.delete(model[at]), false);
        model.splice(at, 1);
      }
      assert.equal(list.size, model.length);
    }
    assert.deepEqual([...list], model);
    assert.equal(list.first(), model[0]);
    assert.equal(list.insert({ k: model[0]?.k ?? 0 }), model.length === 0);
  });

  it('slices by inclusive index across chunks', () => {
    const list = new SortedList(numeric);
    for (let i = 0; i < 3000; i++) list.insert(i);
    assert.deepEqual(list.slice(0, 2), [0, 1, 2]);
    assert.deepEqual(list.slice(1020, 1026), [1020, 1021, 1022, 1023, 1024, 1025, 1026]);
    assert.deepEqual(list.slice(2998, 5000), [2998, 2999]);
    assert.deepEqual(list.slice(10, 9), []);
    list.clear();
    assert.equal(list.size, 0);
    assert.deepEqual(list.slice(0, 10), []);
  });

  it('orders by a composite comparator', () => {
    type E = { p: number; s: number };
    const list = new SortedList<E>((a, b) => a.p - b.p || a.s - b.s);
    list.insert({ p: 1, s: 2 });
    list.insert({ p: 0, s: 9 });
    list.insert({ p: 1, s: -3 });
    assert.deepEqual([...list].map((e) => `${e.p}:${e.s}`), ['0:9', '1:-3', '1:2']);
    assert.equal(list.delete({ p: 1, s: -3 }), true);
    assert.deepEqual([...list].map((e) => `${e.p}:${e.s}`), ['0:9', '1:2']);
  });
});
