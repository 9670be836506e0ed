/**
 * Tests of the memory store's copier: it matches `structuredClone` on everything jobs carry.
 * Run through stores/memory/memory_store_test.ts (tests/memory.test.ts) on every runtime.
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newJob } from '@conveyor/shared';
import { copyJob, copyValue, EMPTY_LIST, MAX_DEPTH, toStored } from './copy.ts';

describe('memory store copies', () => {
  it('deep-copies JSON values: equal, and sharing no object with the input', () => {
    const input = { a: 1, s: 'x', n: null, b: true, u: undefined, list: [1, { c: [2, 3] }] };
    const out = copyValue(input);
    assert.deepEqual(out, input);
    assert.notEqual(out, input);
    assert.notEqual(out.list, input.list);
    assert.notEqual(out.list[1], input.list[1]);
    (input.list[1] as { c: number[] }).c.push(4);
    assert.deepEqual((out.list[1] as { c: number[] }).c, [2, 3]);
    for (const primitive of [0, -0, NaN, 'a', true, null, undefined, 10n]) {
      assert.ok(Object.is(copyValue(primitive), primitive), String(primitive));
    }
  });

  it('gives the same result as structuredClone for other values', () => {
    const date = new Date(5);
    const map = new Map([['k', { v: 1 }]]);
    class Point {
      x = 1;
    }
    const nullProto = Object.assign(Object.create(null), { z: 1 });
    const input = {
      date,
      map,
      set: new Set([1]),
      bytes: new Uint8Array([1, 2]),
      point: new Point(),
      nullProto,
    };
    const out = copyValue(input);
    assert.deepEqual(out, structuredClone(input));
    assert.ok(out.date instanceof Date && out.date !== date);
    assert.ok(out.map instanceof Map && out.map.get('k') !== map.get('k'));
    assert.equal(Object.getPrototypeOf(out.point), Object.prototype);
    assert.equal(Object.getPrototypeOf(out.nullProto), Object.prototype);
  });

  it('keeps holes, and an own __proto__ key as a plain key', () => {
    const sparse = [1, , 3];
    const out = copyValue(sparse);
    assert.equal(out.length, 3);
    assert.ok(!(1 in out));
    const tricky = JSON.parse('{"__proto__": {"polluted": true}}');
    const copy = copyValue(tricky);
    assert.equal(Object.getPrototypeOf(copy), Object.prototype);
    assert.deepEqual(Object.keys(copy), ['__proto__']);
    assert.equal((copy as Record<string, { polluted: boolean }>)['__proto__'].polluted, true);
  });

  it('copies cycles and very deep values like structuredClone', () => {
    const cyclic: { self?: unknown; list: unknown[] } = { list: [] };
    cyclic.self = cyclic;
    cyclic.list.push(cyclic);
    const out = copyValue(cyclic);
    assert.notEqual(out, cyclic);
    assert.equal(out.self, out);
    assert.equal(out.list[0], out);
    let deep: unknown = 'leaf';
    for (let i = 0; i < MAX_DEPTH * 2; i++) deep = { next: deep };
    assert.deepEqual(copyValue(deep), deep);
  });

  it('refuses what structuredClone refuses', () => {
    assert.throws(() => copyValue(() => 1));
    assert.throws(() => copyValue({ f: () => 1 }));
    assert.throws(() => copyValue([Symbol('s')]));
  });

  it('copies every job field; the stored record normalises the derived fields', () => {
    const job = newJob('q', 'n', { a: [1] }, { group: { id: 'g' }, attempts: 2 }, {
      parentId: 'p',
      logs: ['l'],
      stacktrace: ['s'],
      progress: { pct: 5 },
      returnvalue: { r: 1 },
    });
    const stored = toStored(job, 'other');
    assert.deepEqual(stored, {
      ...job,
      id: '',
      queueName: 'other',
      parentQueueName: 'other',
      groupId: 'g',
    });
    stored.id = '1';
    const out = copyJob(stored);
    assert.deepEqual(out, stored);
    for (const key of ['data', 'opts', 'progress', 'returnvalue', 'stacktrace', 'logs'] as const) {
      assert.notEqual(out[key], stored[key], key);
      assert.notEqual(stored[key], job[key], key);
    }
  });

  it('stored empty lists and options are shared and frozen; copies of them are fresh', () => {
    const a = toStored(newJob('q', 'n', {}), 'q');
    const b = toStored(newJob('q', 'n', {}), 'q');
    assert.equal(a.logs, EMPTY_LIST);
    assert.equal(a.stacktrace, EMPTY_LIST);
    assert.equal(a.opts, b.opts);
    assert.ok(Object.isFrozen(a.opts) && Object.isFrozen(EMPTY_LIST));
    const out = copyJob(a);
    assert.ok(!Object.isFrozen(out.logs) && !Object.isFrozen(out.stacktrace));
    assert.ok(!Object.isFrozen(out.opts));
    out.logs.push('x');
    out.opts.attempts = 3;
    assert.deepEqual(b.logs, []);
    assert.deepEqual(b.opts, {});
  });
});
