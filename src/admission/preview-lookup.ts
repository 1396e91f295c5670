// Namespace labels for /preview, read from the API server only for a caller who could read
// them itself, so that /preview never tells a caller more about the cluster than it may know.
//
// - A caller that presents no `Authorization: Bearer <token>` gets no lookup: its preview says
//   the labels are not known and assumes the API server calls the injector. (The API server's
//   service proxy strips the header: such callers give the labels with ?namespaceLabels=.)
// - With a token: one TokenReview says who the caller is (none: no lookup); then, for each
//   namespace, a SubjectAccessReview says whether that user may `get` it (no: not known for
//   that namespace, whether or not it exists); only then are its labels read. All three with
//   the injector's own client.
// - The lookups of one request run at most LOOKUP_CONCURRENCY at a time, under one deadline
//   for all of them (LOOKUP_DEADLINE_MS): what is not read by then is said not known, and
//   lookups not yet started never start. Whatever the number of requests, at most
//   LOOKUP_MAX_IN_FLIGHT calls to the API server are in flight (a call that hangs is aborted
//   once it has run for the deadline, its connection closed and its slot given back): past
//   that, a lookup is not queued but said not known at once (overload is shed, not stored up).
// - Answers are cached for LOOKUP_CACHE_TTL_MS, at most LOOKUP_CACHE_MAX_ENTRIES of each kind:
//   token reviews by the token's SHA-256, access reviews by that hash and the namespace,
//   labels by namespace (and served only after the caller's access review allowed it).
//   Concurrent requests for the same answer share one call. Failures are not cached. A name
//   that cannot be a namespace's is never asked for (nor kept as a key). Of each answer, at
//   most MAX_ANSWER_BYTES are read (kube/capped-http.ts): a longer one is a failed call.
// - The token is never logged, never put in a message, and kept only as its hash.
// - With `--workers N` the lookups run in the primary, the one process that loads the
//   Kubernetes client: a worker sends each request's token and namespaces over IPC
//   (workers/protocol.ts), so the caches and the limit on calls in flight are the pod's, not
//   a worker's.

import { createHash } from "node:crypto";
import type { KubeApi, KubeUser } from "../kube/api.js";
import { clip, quote } from "../injection/quote.js";
import type { NamespaceLabels, NamespaceLabelsResult } from "../preview.js";
import type { Logger } from "../telemetry/logger.js";

/** Characters of an API call's error message a warning line keeps. */
const MAX_ERROR_CHARS = 512;

/** What /preview needs of the API server. */
export type NamespaceAccess = Pick<KubeApi, "reviewToken" | "canGetNamespace" | "readNamespaceLabels">;

/** What /preview asks for: the labels of `namespaces` that the bearer of `token` may get. */
export interface NamespaceLookupService {
  lookup(token: string, namespaces: readonly string[]): Promise<Map<string, NamespaceLabelsResult>>;
}

/** One deadline for all the lookups of a request. */
export const LOOKUP_DEADLINE_MS = 3000;
/** Lookups of one request in flight at once. */
export const LOOKUP_CONCURRENCY = 5;
/** Calls to the API server in flight at once, for all requests together. */
export const LOOKUP_MAX_IN_FLIGHT = 20;
/** How long an answer of the API server is reused. */
export const LOOKUP_CACHE_TTL_MS = 5000;
/** Entries of each cache (tokens, access reviews, labels). */
export const LOOKUP_CACHE_MAX_ENTRIES = 1000;

/** Why labels are not known, as the preview says it. */
export const NOT_KNOWN = {
  anonymous:
    "no bearer token presented: give them (namespaceLabels), or call with a Kubernetes bearer token that may get the namespace",
  unauthenticated: "the bearer token presented is not authenticated by the API server",
  forbidden: "the caller may not get this namespace",
  missing: "the namespace does not exist",
  failed: "the API server could not be asked",
  busy: "the injector has too many lookups in flight: try again, or give them",
  invalid: "not a namespace name (a DNS label of at most 63 characters)",
} as const;

/** A namespace name the API server could have (RFC 1123 label); anything else is never asked for. */
export function isNamespaceName(ns: string): boolean {
  return ns.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns);
}

export function notReadWithin(ms: number): string {
  return `not read within ${ms} ms`;
}

/** The token of an `Authorization: Bearer <token>` header, if that is what it is. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header ?? "");
  return m?.[1];
}

/** A timer that can be waited for and cancelled; tests pass their own. */
export type StartTimer = (ms: number) => { readonly done: Promise<void>; cancel(): void };

const realTimer: StartTimer = (ms) => {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return { done, cancel: () => clearTimeout(timer) };
};

/** A map whose entries expire after `ttlMs` and which forgets its oldest past `maxEntries`. */
export class TtlCache<V> {
  private readonly entries = new Map<string, { readonly value: V; readonly expires: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expires: this.now() + this.ttlMs });
  }

  delete(key: string, value: V): void {
    if (this.entries.get(key)?.value === value) this.entries.delete(key);
  }

  /** The cached promise, or a new one from `make` (dropped again if it fails). */
  shared<T>(this: TtlCache<Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
    const hit = this.get(key);
    if (hit) return hit;
    const p = make();
    this.set(key, p);
    p.catch(() => this.delete(key, p));
    return p;
  }
}

export interface NamespaceLookupsOptions {
  readonly deadlineMs?: number;
  readonly concurrency?: number;
  readonly maxInFlight?: number;
  readonly ttlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
  readonly timer?: StartTimer;
  readonly logger?: Logger;
}

const TIMEOUT = Symbol("timeout");

/** No slot for one more call to the API server. */
class Busy extends Error {}

/** A call aborted once it ran for the deadline (a request sharing it may have come later). */
class GaveUp extends Error {}

/** The namespace lookups of /preview, with their caches; one per server. */
export class NamespaceLookups implements NamespaceLookupService {
  private readonly users: TtlCache<Promise<KubeUser | undefined>>;
  private readonly access: TtlCache<Promise<boolean>>;
  private readonly labels: TtlCache<Promise<NamespaceLabels | undefined>>;
  private readonly deadlineMs: number;
  private readonly concurrency: number;
  private readonly maxInFlight: number;
  /** Calls in flight (each ends, answered or aborted, by the deadline). */
  private callsInFlight = 0;
  private readonly timer: StartTimer;

  constructor(
    private readonly api: () => NamespaceAccess,
    private readonly opts: NamespaceLookupsOptions = {},
  ) {
    const ttl = opts.ttlMs ?? LOOKUP_CACHE_TTL_MS;
    const max = opts.maxEntries ?? LOOKUP_CACHE_MAX_ENTRIES;
    this.users = new TtlCache(ttl, max, opts.now);
    this.access = new TtlCache(ttl, max, opts.now);
    this.labels = new TtlCache(ttl, max, opts.now);
    this.deadlineMs = opts.deadlineMs ?? LOOKUP_DEADLINE_MS;
    this.concurrency = Math.max(1, opts.concurrency ?? LOOKUP_CONCURRENCY);
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? LOOKUP_MAX_IN_FLIGHT);
    this.timer = opts.timer ?? realTimer;
  }

  /** The labels of `namespaces` that the bearer of `token` may get; the others not known, and why. */
  async lookup(token: string, namespaces: readonly string[]): Promise<Map<string, NamespaceLabelsResult>> {
    const out = new Map<string, NamespaceLabelsResult>();
    const all = (unknown: string): Map<string, NamespaceLabelsResult> => {
      for (const ns of namespaces) if (!out.has(ns)) out.set(ns, { unknown });
      return out;
    };
    if (namespaces.length === 0) return out;
    const deadline = this.timer(this.deadlineMs);
    let expired = false;
    const timedOut = deadline.done.then((): typeof TIMEOUT => {
      expired = true;
      return TIMEOUT;
    });
    const within = <T>(p: Promise<T>): Promise<T | typeof TIMEOUT> => Promise.race([p, timedOut]);
    const late = notReadWithin(this.deadlineMs);
    try {
      const hash = createHash("sha256").update(token).digest("hex");
      let user: KubeUser | undefined | typeof TIMEOUT;
      try {
        user = await within(this.users.shared(hash, () => this.call((api, signal) => api.reviewToken(token, signal))));
      } catch (e) {
        if (e instanceof Busy) return all(NOT_KNOWN.busy);
        if (e instanceof GaveUp) return all(late);
        this.warn("bearer token not reviewed for /preview", e);
        return all(NOT_KNOWN.failed);
      }
      if (user === TIMEOUT) return all(late);
      if (user === undefined) return all(NOT_KNOWN.unauthenticated);
      const who = user;

      const one = async (ns: string): Promise<NamespaceLabelsResult> => {
        if (!isNamespaceName(ns)) return { unknown: NOT_KNOWN.invalid };
        try {
          const allowed = await within(
            this.access.shared(`${hash}\u0000${ns}`, () =>
              this.call((api, signal) => api.canGetNamespace(who, ns, signal)),
            ),
          );
          if (allowed === TIMEOUT) return { unknown: late };
          if (!allowed) return { unknown: NOT_KNOWN.forbidden };
          const labels = await within(
            this.labels.shared(ns, () => this.call((api, signal) => api.readNamespaceLabels(ns, signal))),
          );
          if (labels === TIMEOUT) return { unknown: late };
          return labels === undefined ? { unknown: NOT_KNOWN.missing } : { labels };
        } catch (e) {
          if (e instanceof Busy) return { unknown: NOT_KNOWN.busy };
          if (e instanceof GaveUp) return { unknown: late };
          this.warn("namespace labels not read for /preview", e, ns);
          return { unknown: NOT_KNOWN.failed };
        }
      };
      // At most `concurrency` workers, each taking the next namespace until none is left or
      // the deadline passed.
      let next = 0;
      const worker = async (): Promise<void> => {
        while (!expired && next < namespaces.length) {
          const ns = namespaces[next++];
          if (ns !== undefined) out.set(ns, await one(ns));
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.concurrency, namespaces.length) }, worker));
      return all(late);
    } finally {
      deadline.cancel();
    }
  }

  /**
   * One call to the API server, in one of the `maxInFlight` slots (Busy when none is free),
   * aborted (its connection closed, GaveUp thrown) when it has run for the deadline: a hung API
   * server cannot keep the slots or the sockets, and calls start at most `maxInFlight` per
   * deadline. The call's own deadline, not its first caller's: requests that share it (the
   * caches) keep it as long as it may take.
   */
  private async call<T>(f: (api: NamespaceAccess, signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.callsInFlight >= this.maxInFlight) throw new Busy("no slot for a call to the API server");
    this.callsInFlight += 1;
    const controller = new AbortController();
    const deadline = this.timer(this.deadlineMs);
    void deadline.done.then(() => controller.abort());
    try {
      return await f(this.api(), controller.signal);
    } catch (e) {
      if (controller.signal.aborted) throw new GaveUp("aborted at the deadline");
      throw e;
    } finally {
      deadline.cancel();
      this.callsInFlight -= 1;
    }
  }

  private warn(msg: string, e: unknown, namespace?: string): void {
    this.opts.logger?.warn(
      {
        ...(namespace === undefined ? {} : { namespace: quote(namespace) }),
        // The API server's message, which a failing or hostile one can make any length.
        err: clip(e instanceof Error ? e.message : String(e), MAX_ERROR_CHARS),
      },
      msg,
    );
  }
}
