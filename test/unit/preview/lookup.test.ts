// The namespace lookups of /preview: who may learn what (token review, then access review,
// then the read), the caches, the concurrency bound and the one deadline. The API server is a
// fake whose every answer the test gives by hand, and the deadline a timer the test fires, so
// nothing here depends on how fast the machine is.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  bearerToken,
  NamespaceLookups,
  NOT_KNOWN,
  TtlCache,
  type NamespaceAccess,
  type StartTimer,
} from "../../../src/admission/preview-lookup.js";
import type { KubeUser } from "../../../src/kube/client.js";
import type { NamespaceLabelsResult } from "../../../src/preview.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { captureLogs } from "../admission/helpers.js";

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(v: T): void;
  reject(e: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

/** Lets every promise callback that can run, run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** An API server whose answers wait until the test gives them. */
class HandFake implements NamespaceAccess {
  readonly calls: string[] = [];
  readonly pending = new Map<string, Deferred<unknown>>();
  /** The signal each call was given, by call. */
  readonly signals = new Map<string, AbortSignal | undefined>();
  inFlight = 0;
  maxInFlight = 0;

  private call<T>(what: string, signal?: AbortSignal): Promise<T> {
    this.calls.push(what);
    this.signals.set(what, signal);
    const d = deferred<unknown>();
    // As the client does: an aborted call rejects at once.
    signal?.addEventListener("abort", () => d.reject(new Error(`${what}: aborted`)));
    this.pending.set(what, d);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return d.promise.finally(() => {
      this.inFlight--;
      this.pending.delete(what);
    }) as Promise<T>;
  }
  answer(what: string, value: unknown): void {
    const d = this.pending.get(what);
    assert.ok(d, `no pending call ${what} (pending: ${[...this.pending.keys()].join(", ")})`);
    d.resolve(value);
  }
  fail(what: string, message: string): void {
    const d = this.pending.get(what);
    assert.ok(d, `no pending call ${what}`);
    d.reject(new Error(message));
  }
  reviewToken(token: string, signal?: AbortSignal): Promise<KubeUser | undefined> {
    return this.call(`token ${token}`, signal);
  }
  canGetNamespace(user: KubeUser, name: string, signal?: AbortSignal): Promise<boolean> {
    return this.call(`access ${user.username} ${name}`, signal);
  }
  readNamespaceLabels(name: string, signal?: AbortSignal): Promise<Record<string, string> | undefined> {
    return this.call(`labels ${name}`, signal);
  }
}

/** A deadline the test fires; counts starts and cancels. */
function handTimer(): { timer: StartTimer; fire(): void; started: number[]; cancelled: () => number } {
  const fires: (() => void)[] = [];
  const started: number[] = [];
  let cancelled = 0;
  return {
    timer: (ms) => {
      started.push(ms);
      const done = new Promise<void>((r) => fires.push(r));
      return { done, cancel: () => void cancelled++ };
    },
    fire: () => fires.forEach((f) => f()),
    started,
    cancelled: () => cancelled,
  };
}

/** A deadline of its own for each start (handTimer each), in the order started: the test fires one. */
function timerEach(): { timer: StartTimer; timers: ReturnType<typeof handTimer>[] } {
  const timers: ReturnType<typeof handTimer>[] = [];
  return {
    timer: (ms) => {
      const t = handTimer();
      timers.push(t);
      return t.timer(ms);
    },
    timers,
  };
}

/** A fake that answers at once: tokens, who may get what, labels. */
function instantFake(): NamespaceAccess & { calls: string[]; labels: Record<string, Record<string, string>> } {
  const calls: string[] = [];
  const labels: Record<string, Record<string, string>> = {
    shop: { "istio-injection": "enabled" },
    billing: { team: "money" },
  };
  return {
    calls,
    labels,
    reviewToken: async (t) => {
      calls.push(`token ${t}`);
      return t === "alice" ? { username: "alice" } : t === "bob" ? { username: "bob" } : undefined;
    },
    canGetNamespace: async (u, ns) => {
      calls.push(`access ${u.username} ${ns}`);
      return u.username === "alice" || ns === "shop";
    },
    readNamespaceLabels: async (ns) => {
      calls.push(`labels ${ns}`);
      return Object.hasOwn(labels, ns) ? labels[ns] : undefined;
    },
  };
}

const plain = (m: ReadonlyMap<string, NamespaceLabelsResult>): Record<string, NamespaceLabelsResult> =>
  Object.fromEntries(m);

describe("who learns what", () => {
  test("a token that authenticates no one: one token review, nothing else asked, nothing learnt", async () => {
    const api = instantFake();
    const got = await new NamespaceLookups(() => api).lookup("mallory", ["shop", "billing"]);
    assert.deepEqual(api.calls, ["token mallory"]);
    assert.deepEqual(plain(got), {
      shop: { unknown: NOT_KNOWN.unauthenticated },
      billing: { unknown: NOT_KNOWN.unauthenticated },
    });
  });

  test("authenticated but not allowed: no read of that namespace", async () => {
    const api = instantFake();
    const got = await new NamespaceLookups(() => api).lookup("bob", ["shop", "billing"]);
    assert.deepEqual(plain(got), {
      shop: { labels: { "istio-injection": "enabled" } },
      billing: { unknown: NOT_KNOWN.forbidden },
    });
    assert.deepEqual(
      api.calls.sort(),
      ["access bob billing", "access bob shop", "labels shop", "token bob"],
      "billing is never read",
    );
  });

  test("allowed: the labels; a namespace that does not exist is said not to", async () => {
    const api = instantFake();
    const got = await new NamespaceLookups(() => api).lookup("alice", ["billing", "ghost"]);
    assert.deepEqual(plain(got), { billing: { labels: { team: "money" } }, ghost: { unknown: NOT_KNOWN.missing } });
  });

  test("a forbidden namespace looks the same whether or not it exists", async () => {
    const api = instantFake();
    const got = await new NamespaceLookups(() => api).lookup("bob", ["billing", "ghost"]);
    assert.deepEqual(got.get("billing"), got.get("ghost"));
    assert.ok(!api.calls.some((c) => c.startsWith("labels")), "nothing was read");
  });

  test("the labels cache serves only a caller allowed to get the namespace", async () => {
    const api = instantFake();
    const lookups = new NamespaceLookups(() => api);
    assert.deepEqual(plain(await lookups.lookup("alice", ["billing"])), { billing: { labels: { team: "money" } } });
    api.calls.length = 0;
    assert.deepEqual(plain(await lookups.lookup("bob", ["billing"])), { billing: { unknown: NOT_KNOWN.forbidden } });
    assert.deepEqual(api.calls, ["token bob", "access bob billing"]);
  });

  test("an API server error: not known, a warning naming the namespace, never the token", async () => {
    const logs = captureLogs();
    const api: NamespaceAccess = {
      reviewToken: async () => ({ username: "alice" }),
      canGetNamespace: async () => true,
      readNamespaceLabels: async () => {
        throw new Error("read Namespace shop: connection refused");
      },
    };
    const got = await new NamespaceLookups(() => api, { logger: createLogger({ destination: logs.stream }) }).lookup(
      "s3cr3t-token",
      ["shop"],
    );
    assert.deepEqual(plain(got), { shop: { unknown: NOT_KNOWN.failed } });
    const lines = logs.lines();
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.namespace, '"shop"');
    assert.match(String(lines[0]?.err), /connection refused/);
    assert.ok(!logs.text().includes("s3cr3t-token"));
  });

  test("an API server error of any length: the warning keeps a bounded part of its message", async () => {
    const logs = captureLogs();
    const api: NamespaceAccess = {
      reviewToken: async () => ({ username: "alice" }),
      canGetNamespace: async () => true,
      readNamespaceLabels: async () => {
        throw new Error(`read Namespace shop: ${"x".repeat(100_000)}`);
      },
    };
    await new NamespaceLookups(() => api, { logger: createLogger({ destination: logs.stream }) }).lookup("t", ["shop"]);
    const err = String(logs.lines()[0]?.err);
    assert.match(err, /^read Namespace shop: x+… \(100021 characters\)$/);
    assert.ok(logs.text().length < 2_000, `${logs.text().length} bytes logged`);
  });

  test("a name that cannot be a namespace's is never asked for", async () => {
    const api = instantFake();
    const long = "a".repeat(64);
    const got = await new NamespaceLookups(() => api).lookup("alice", ["Shop", "a/b", long, "-x", "shop"]);
    assert.deepEqual(api.calls.sort(), ["access alice shop", "labels shop", "token alice"]);
    for (const ns of ["Shop", "a/b", long, "-x"]) assert.deepEqual(got.get(ns), { unknown: NOT_KNOWN.invalid }, ns);
    assert.ok("labels" in (got.get("shop") ?? {}));
  });

  test("bearerToken reads only Bearer credentials", () => {
    assert.equal(bearerToken("Bearer abc.def-ghi"), "abc.def-ghi");
    assert.equal(bearerToken("bearer  abc "), "abc");
    for (const h of [undefined, "", "Basic YWxpY2U6cHc=", "Bearer", "Bearer a b", "Bearerabc"])
      assert.equal(bearerToken(h), undefined, String(h));
  });
});

describe("concurrency bound and deadline", () => {
  const names = Array.from({ length: 12 }, (_, i) => `ns-${i}`);

  test("at most `concurrency` lookups in flight; the next starts when one ends", async () => {
    const api = new HandFake();
    const t = handTimer();
    const done = new NamespaceLookups(() => api, { concurrency: 5, timer: t.timer }).lookup("tok", names);
    await settle();
    api.answer("token tok", { username: "u" });
    await settle();
    assert.deepEqual(
      api.calls.slice(1),
      names.slice(0, 5).map((n) => `access u ${n}`),
    );
    api.answer("access u ns-0", true);
    await settle();
    assert.equal(api.calls.at(-1), "labels ns-0", "the worker goes on with its namespace");
    assert.equal(api.inFlight, 5);
    api.answer("labels ns-0", { a: "b" });
    await settle();
    assert.equal(api.calls.at(-1), "access u ns-5", "then takes the next one");
    // Answer everything in turn.
    while (api.pending.size > 0) {
      for (const what of [...api.pending.keys()]) api.answer(what, what.startsWith("access") ? true : {});
      await settle();
    }
    const got = await done;
    assert.equal(got.size, 12);
    assert.ok([...got.values()].every((r) => "labels" in r));
    assert.equal(api.maxInFlight, 5);
    assert.equal(api.calls.length, 1 + 12 * 2);
    assert.deepEqual(t.started, Array(1 + api.calls.length).fill(3000), "one deadline for the request, one per call");
    assert.equal(t.cancelled(), 1 + api.calls.length, "each cleared");
  });

  test("at the deadline: what is not read is said not known, and nothing more starts", async () => {
    const api = new HandFake();
    const t = handTimer();
    const done = new NamespaceLookups(() => api, { concurrency: 3, deadlineMs: 250, timer: t.timer }).lookup(
      "tok",
      names,
    );
    await settle();
    api.answer("token tok", { username: "u" });
    await settle();
    api.answer("access u ns-0", true);
    await settle();
    api.answer("labels ns-0", { team: "a" });
    await settle();
    const before = api.calls.length;
    assert.equal(before, 1 + 2 + 3, "ns-0 read; ns-1, ns-2, ns-3 being asked");
    t.fire();
    const got = await done;
    assert.deepEqual(got.get("ns-0"), { labels: { team: "a" } });
    for (const n of names.slice(1)) assert.deepEqual(got.get(n), { unknown: "not read within 250 ms" }, n);
    // The calls in flight end later; no new one starts.
    for (const what of [...api.pending.keys()]) api.answer(what, true);
    await settle();
    assert.equal(api.calls.length, before);
  });

  test("a token review that does not answer by the deadline: nothing else is asked", async () => {
    const api = new HandFake();
    const t = handTimer();
    const done = new NamespaceLookups(() => api, { timer: t.timer }).lookup("tok", ["a", "b"]);
    await settle();
    t.fire();
    assert.deepEqual(plain(await done), {
      a: { unknown: "not read within 3000 ms" },
      b: { unknown: "not read within 3000 ms" },
    });
    assert.equal(api.signals.get("token tok")?.aborted, true, "the review is aborted, not left open");
    await settle();
    assert.deepEqual(api.calls, ["token tok"]);
  });
});

describe("calls in flight for all requests together", () => {
  test("past maxInFlight a lookup is not queued: said not known at once", async () => {
    const api = new HandFake();
    const t = handTimer();
    const lookups = new NamespaceLookups(() => api, { concurrency: 5, maxInFlight: 2, timer: t.timer });
    const done = lookups.lookup("tok", ["a", "b", "c", "d"]);
    await settle();
    api.answer("token tok", { username: "u" });
    await settle();
    assert.deepEqual(api.calls, ["token tok", "access u a", "access u b"], "two slots, two calls");
    api.answer("access u a", false);
    api.answer("access u b", false);
    const got = await done;
    assert.deepEqual(plain(got), {
      a: { unknown: NOT_KNOWN.forbidden },
      b: { unknown: NOT_KNOWN.forbidden },
      c: { unknown: NOT_KNOWN.busy },
      d: { unknown: NOT_KNOWN.busy },
    });
  });

  test("a call that hangs gives its slot back at the deadline", async () => {
    const api = new HandFake();
    const t = handTimer();
    let now = 0;
    const lookups = new NamespaceLookups(() => api, { maxInFlight: 1, timer: t.timer, now: () => now });
    const first = lookups.lookup("tok", ["a"]);
    await settle();
    now = 2999;
    const busy = await lookups.lookup("other", ["a"]);
    assert.deepEqual(plain(busy), { a: { unknown: NOT_KNOWN.busy } }, "the one slot is taken");
    now = 3000;
    t.fire();
    assert.deepEqual(plain(await first), { a: { unknown: "not read within 3000 ms" } });
    assert.equal(api.signals.get("token tok")?.aborted, true, "the hung call is aborted at the deadline");
    await settle();
    assert.equal(api.inFlight, 0);
    const next = lookups.lookup("other", ["a"]);
    await settle();
    assert.deepEqual(api.calls, ["token tok", "token other"], "its slot is free again");
    assert.equal(api.signals.get("token other")?.aborted, false);
    api.answer("token other", undefined);
    assert.deepEqual(plain(await next), { a: { unknown: NOT_KNOWN.unauthenticated } });
  });

  test("a request sharing a call keeps it past the deadline of the one that started it", async () => {
    const api = new HandFake();
    const { timer, timers } = timerEach();
    const logs = captureLogs();
    const lookups = new NamespaceLookups(() => api, { timer, logger: createLogger({ destination: logs.stream }) });
    const first = lookups.lookup("tok", ["a"]); // timers[0]: its deadline; timers[1]: the call's
    await settle();
    const second = lookups.lookup("tok", ["a"]); // timers[2]
    await settle();
    assert.deepEqual(api.calls, ["token tok"], "the second request shares the first's call");
    timers[0]?.fire();
    assert.deepEqual(plain(await first), { a: { unknown: "not read within 3000 ms" } });
    assert.equal(api.signals.get("token tok")?.aborted, false, "the call lives on for the second");
    api.answer("token tok", undefined);
    assert.deepEqual(plain(await second), { a: { unknown: NOT_KNOWN.unauthenticated } });
    assert.deepEqual(logs.lines(), []);
  });

  test("a shared call that runs for the deadline is aborted: its requests are told so, without a warning", async () => {
    const api = new HandFake();
    const { timer, timers } = timerEach();
    const logs = captureLogs();
    const lookups = new NamespaceLookups(() => api, { timer, logger: createLogger({ destination: logs.stream }) });
    const first = lookups.lookup("tok", ["a"]);
    await settle();
    const second = lookups.lookup("tok", ["a"]);
    await settle();
    timers[1]?.fire(); // the call's own deadline
    await settle();
    assert.equal(api.signals.get("token tok")?.aborted, true);
    assert.deepEqual(plain(await first), { a: { unknown: "not read within 3000 ms" } });
    assert.deepEqual(plain(await second), { a: { unknown: "not read within 3000 ms" } });
    assert.deepEqual(logs.lines(), [], "a call given up at its deadline is no failure to warn of");
  });
});

describe("caches", () => {
  test("answers are reused for the TTL, then asked again", async () => {
    let now = 1_000;
    const api = instantFake();
    const lookups = new NamespaceLookups(() => api, { ttlMs: 5000, now: () => now });
    await lookups.lookup("alice", ["shop"]);
    assert.equal(api.calls.length, 3);
    now += 4999;
    await lookups.lookup("alice", ["shop"]);
    assert.equal(api.calls.length, 3, "within the TTL: no call");
    now += 1;
    api.labels.shop = { "istio-injection": "disabled" };
    const got = await lookups.lookup("alice", ["shop"]);
    assert.deepEqual(api.calls.slice(3), ["token alice", "access alice shop", "labels shop"]);
    assert.deepEqual(got.get("shop"), { labels: { "istio-injection": "disabled" } });
  });

  test("concurrent requests for the same answers share one call", async () => {
    const api = new HandFake();
    const t = handTimer();
    const lookups = new NamespaceLookups(() => api, { timer: t.timer });
    const one = lookups.lookup("tok", ["shop"]);
    const two = lookups.lookup("tok", ["shop"]);
    await settle();
    api.answer("token tok", { username: "u" });
    await settle();
    api.answer("access u shop", true);
    await settle();
    api.answer("labels shop", { x: "y" });
    const [a, b] = await Promise.all([one, two]);
    assert.deepEqual(a, b);
    assert.deepEqual(api.calls, ["token tok", "access u shop", "labels shop"]);
  });

  test("a failure is not cached", async () => {
    const api = new HandFake();
    const t = handTimer();
    const lookups = new NamespaceLookups(() => api, { timer: t.timer });
    const first = lookups.lookup("tok", ["shop"]);
    await settle();
    api.fail("token tok", "connection refused");
    assert.deepEqual(plain(await first), { shop: { unknown: NOT_KNOWN.failed } });
    const second = lookups.lookup("tok", ["shop"]);
    await settle();
    assert.deepEqual(api.calls, ["token tok", "token tok"], "asked again");
    api.answer("token tok", undefined);
    assert.deepEqual(plain(await second), { shop: { unknown: NOT_KNOWN.unauthenticated } });
  });

  test("TtlCache keeps at most maxEntries, forgetting the oldest", () => {
    const c = new TtlCache<number>(1000, 3, () => 0);
    for (let i = 0; i < 5; i++) c.set(`k${i}`, i);
    assert.equal(c.size, 3);
    assert.deepEqual(
      ["k0", "k1", "k2", "k3", "k4"].map((k) => c.get(k)),
      [undefined, undefined, 2, 3, 4],
    );
  });

  test("TtlCache: an entry expires exactly at its TTL", () => {
    let now = 0;
    const c = new TtlCache<string>(100, 10, () => now);
    c.set("a", "x");
    now = 99;
    assert.equal(c.get("a"), "x");
    now = 100;
    assert.equal(c.get("a"), undefined);
    assert.equal(c.size, 0, "and is dropped");
  });

  test("many distinct tokens stay within the bound", async () => {
    const api = instantFake();
    const lookups = new NamespaceLookups(() => api, { maxEntries: 10 });
    for (let i = 0; i < 50; i++) await lookups.lookup(`t${i}`, ["shop"]);
    // Each of the 50 tokens was reviewed once; the caches stayed bounded (checked through TtlCache above).
    assert.equal(api.calls.filter((c) => c.startsWith("token")).length, 50);
    await lookups.lookup("t49", ["shop"]);
    await lookups.lookup("t0", ["shop"]);
    assert.equal(
      api.calls.filter((c) => c.startsWith("token")).length,
      51,
      "the newest is kept, the oldest was forgotten",
    );
  });
});
