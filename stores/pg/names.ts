/**
 * Safe SQL names for a schema: every object lives in one schema, quoted as an identifier.
 *
 * @module
 */

import { InvalidArgumentError } from '@conveyor/shared';

/** The quoted forms of a schema name, ready to splice into SQL. */
export interface SchemaNames {
  /** The schema as a quoted identifier, e.g. `"conveyor"`. */
  s: string;
  /** The schema name as a quoted string literal, e.g. `'conveyor'`. */
  lit: string;
  /** The raw name. */
  name: string;
  /** A quoted string literal naming an object of the schema, for `nextval(...)` and the like. */
  reg: (object: string) => string;
}

/**
 * Quotes a schema name. Any non-empty name of at most 63 bytes works, whatever characters it
 * holds.
 *
 * @example
 * ```ts
 * import { schemaNames } from './names.ts';
 * console.log(schemaNames('my "app"').s); // "my ""app"""
 * ```
 */
export function schemaNames(name: string): SchemaNames {
  if (
    typeof name !== 'string' || name.length === 0 ||
    new TextEncoder().encode(name).length > 63 || name.includes('\0')
  ) {
    throw new InvalidArgumentError('schema', name, 'a non-empty name of at most 63 bytes');
  }
  const s = `"${name.replaceAll('"', '""')}"`;
  return { name, s, lit: literal(name), reg: (object) => literal(`${s}.${object}`) };
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
