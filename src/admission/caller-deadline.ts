// How long the caller of a request still waits for its answer, for the review worker's queue
// (review-pool.ts), which drops a job whose caller no longer waits instead of working on it.
//
// The server's own bound is its request timeout (https.ts requestTimeoutMs; 0: none). The API
// server states its own: it calls a webhook at `<url>?timeout=<N>s`, the time it has left of
// the webhook's timeoutSeconds (1-30 s, default 10 s) rounded up to whole seconds and written
// as Go writes a duration (`10s`), and gives up on the call then. The deadline is the earlier
// of the two, counted from when the request's headers were read: after the API server began
// counting, so it comes a little late, never early. A `timeout` in another form (`10`, `1.5s`,
// `1m0s`), of 0 s, or past MAX_TIMEOUT_PARAM_SECONDS is not the API server's and is ignored:
// the request timeout stands. Given twice, the first counts.
//
// Read only for a request that is to wait for the worker: an ordinary review's query is never
// looked at.

/** The longest `?timeout=` the API server sends: a webhook's timeoutSeconds is at most 30. */
export const MAX_TIMEOUT_PARAM_SECONDS = 30;

const TIMEOUT_PARAM = "timeout=";
const SECONDS = /^[0-9]{1,9}s$/;

/** The `timeout` parameter of a request target (`/inject?timeout=10s`), in ms; undefined when absent or ignored. */
export function timeoutParamMs(url: string): number | undefined {
  let at = url.indexOf("?");
  if (at < 0) return undefined;
  // The first parameter named `timeout` exactly (not `xtimeout=`).
  do {
    at = url.indexOf(TIMEOUT_PARAM, at + 1);
  } while (at >= 0 && url[at - 1] !== "?" && url[at - 1] !== "&");
  if (at < 0) return undefined;
  const from = at + TIMEOUT_PARAM.length;
  const end = url.indexOf("&", from);
  const value = url.slice(from, end < 0 ? url.length : end);
  if (!SECONDS.test(value)) return undefined;
  const seconds = Number(value.slice(0, -1));
  return seconds >= 1 && seconds <= MAX_TIMEOUT_PARAM_SECONDS ? seconds * 1000 : undefined;
}

/**
 * How long, from when its headers were read, the caller of the request to `url` waits at most,
 * in ms: the earlier of `requestTimeoutMs` (0: none) and its `?timeout=`; Infinity for neither.
 */
export function callerWaitsMs(url: string | undefined, requestTimeoutMs: number): number {
  const param = url === undefined ? undefined : timeoutParamMs(url);
  const own = requestTimeoutMs > 0 ? requestTimeoutMs : Infinity;
  return param === undefined ? own : Math.min(param, own);
}
