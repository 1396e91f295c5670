// JSON written by hand where the engine writes many small values of a shape it built itself
// (the probers handed to the agent, the Pod's ports): JSON.stringify costs about as much per
// call for a four-field object as the text it writes, and a Pod of a hundred containers makes
// hundreds of such calls. Each writer here gives JSON.stringify's text, byte for byte.

/**
 * Whether JSON writes `s` between quotes as it is: no control character, quote, backslash or
 * surrogate (a lone surrogate is escaped; a pair is not, but is rare enough to leave to
 * JSON.stringify). Only for short strings: a long one is JSON.stringify's (its own fast path).
 */
export function plainJsonString(s: string): boolean {
  if (s.length > 64) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

/** `s` as JSON.stringify writes it. */
export function jsonString(s: string): string {
  return plainJsonString(s) ? `"${s}"` : JSON.stringify(s);
}

/** A number or a string (a port by number or by name) as JSON.stringify writes it. */
export function jsonScalar(v: number | string): string {
  if (typeof v === "string") return jsonString(v);
  return Number.isFinite(v) ? String(v) : "null";
}
