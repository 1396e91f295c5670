// User values in messages and logs: quoted, and cut to a bounded prefix, so that a refused
// 200 KB annotation costs a 100-byte message, not a 200 KB one (and never a 10 MB log line).

/** How many characters of a user value a message or log line quotes. */
export const QUOTE_MAX_CHARS = 64;

/**
 * `value` as a JSON string literal, cut after `max` characters with the full length noted:
 * `"1e300000000…"` stays whole, a long value becomes `"abc…" (200000 characters)`.
 */
export function quote(value: string, max: number = QUOTE_MAX_CHARS): string {
  if (value.length <= max) return JSON.stringify(value);
  // Do not split a surrogate pair: the cut would not be valid UTF-16.
  let end = max;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${JSON.stringify(`${value.slice(0, end)}…`)} (${value.length} characters)`;
}
