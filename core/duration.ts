/**
 * Human durations: `"2h"`, `"1h30m"`, `"in 10 minutes"`, `"500ms"`, or a number of ms.
 *
 * @module
 */
import { InvalidArgumentError } from '@conveyor/shared';

const UNITS: Record<string, number> = {
  ms: 1,
  msec: 1,
  msecs: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)/g;
const WHOLE = /^(?:\d+(?:\.\d+)?\s*[a-z]+\s*(?:,\s*|and\s+)?)+$/;

/**
 * Parses a duration into ms: a non-negative number (already ms), or a string of one or more
 * `<amount><unit>` parts (`ms`, `s`, `m`, `h`, `d`, `w` and their long forms), optionally after
 * `in`. Throws {@linkcode InvalidArgumentError} naming `option` otherwise.
 *
 * @example
 * ```ts
 * import { parseDuration } from '@conveyor/core';
 * parseDuration('1h30m'); // 5_400_000
 * parseDuration('in 10 minutes'); // 600_000
 * parseDuration(250); // 250
 * ```
 */
export function parseDuration(input: number | string, option = 'duration'): number {
  if (typeof input === 'number') {
    if (Number.isFinite(input) && input >= 0) return input;
    throw new InvalidArgumentError(option, input, 'a finite number of ms >= 0 or a duration');
  }
  if (typeof input !== 'string') {
    throw new InvalidArgumentError(option, input, 'a number of ms or a duration like "1h30m"');
  }
  const text = input.trim().toLowerCase().replace(/^in\s+/, '');
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text);
  if (!WHOLE.test(text)) {
    throw new InvalidArgumentError(
      option,
      input,
      'a duration like "2h", "1h30m" or "in 10 minutes"',
    );
  }
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) {
    const size = UNITS[unit];
    if (size === undefined) {
      throw new InvalidArgumentError(option, input, `a duration with known units (not "${unit}")`);
    }
    total += Number(amount) * size;
  }
  return Math.round(total);
}

/**
 * Turns a "when" into a delay in ms from `now`: a number is a delay in ms, a `Date` an instant
 * (a past instant gives 0), a string a human duration (see {@linkcode parseDuration}).
 *
 * @example
 * ```ts
 * import { delayUntilWhen } from '@conveyor/core';
 * delayUntilWhen('in 2 hours', 0); // 7_200_000
 * delayUntilWhen(new Date(5000), 1000); // 4000
 * ```
 */
export function delayUntilWhen(when: number | string | Date, now: number, option = 'when'): number {
  if (when instanceof Date) {
    const at = when.getTime();
    if (Number.isNaN(at)) throw new InvalidArgumentError(option, String(when), 'a valid Date');
    return Math.max(0, at - now);
  }
  return parseDuration(when, option);
}
