// User values in messages and logs: quoted, and cut to a bounded prefix, so that a refused
// 200 KB annotation costs a 100-byte message, not a 200 KB one (and never a 10 MB log line).

/** How many characters of a user value a message or log line quotes. */
export const QUOTE_MAX_CHARS = 64;

/** `value` cut after `max` characters, never inside a surrogate pair; `cut` says whether it was. */
function prefix(value: string, max: number): { text: string; cut: boolean } {
  if (value.length <= max) return { text: value, cut: false };
  // Do not split a surrogate pair: the cut would not be valid UTF-16.
  let end = max;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return { text: `${value.slice(0, end)}…`, cut: true };
}

/**
 * `value` as a JSON string literal, cut after `max` characters with the full length noted:
 * `"1e300000000…"` stays whole, a long value becomes `"abc…" (200000 characters)`.
 */
export function quote(value: string, max: number = QUOTE_MAX_CHARS): string {
  const p = prefix(value, max);
  return p.cut ? `${JSON.stringify(p.text)} (${value.length} characters)` : JSON.stringify(value);
}

const PLAIN_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/**
 * A name or label value as is when it reads as one (what Kubernetes allows in a label value:
 * at most 63 letters, digits, `-`, `_`, `.`, alphanumeric at both ends), else quote()d: messages
 * keep reading `namespace demo has istio-injection=enabled`, and a hostile value is bounded.
 */
export function quoteName(value: string): string {
  return PLAIN_NAME.test(value) ? value : quote(value);
}

/**
 * A user value for a structured log field (which the logger itself writes as a JSON string):
 * the value when short, else its bounded prefix with the full length noted, like quote()
 * without the quotation marks: `abc… (200000 characters)`.
 */
export function clip(value: string, max: number = QUOTE_MAX_CHARS): string {
  const p = prefix(value, max);
  return p.cut ? `${p.text} (${value.length} characters)` : value;
}
