/**
 * Stable hashing of job payloads, for `deduplication: { hash: true }`.
 *
 * @module
 */

/**
 * JSON with object keys sorted, so equal payloads give equal strings.
 *
 * @example
 * ```ts
 * import { stableStringify } from '@conveyor/core';
 * stableStringify({ b: 1, a: 2 }); // '{"a":2,"b":1}'
 * ```
 */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  }) ?? 'undefined';
}

/**
 * A 64-bit FNV-1a hash of a job's name and data, as 16 hex digits.
 *
 * @example
 * ```ts
 * import { hashJob } from '@conveyor/core';
 * hashJob('email', { to: 'a' }) === hashJob('email', { to: 'a' }); // true
 * ```
 */
export function hashJob(name: string, data: unknown): string {
  const text = `${name}\u0000${stableStringify(data)}`;
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * prime) & mask;
  }
  return h.toString(16).padStart(16, '0');
}
