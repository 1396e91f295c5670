import assert from "node:assert/strict";
import { test } from "node:test";
import {
  canonicalResources,
  checkQuantity,
  goQuantityError,
  goUnmarshalQuantity,
  MAX_QUANTITY_EXPONENT,
  MAX_QUANTITY_LENGTH,
  parseQuantity,
} from "../../../src/injection/quantity.js";
import { annotationWarnings, validateAnnotations } from "../../../src/injection/validate.js";

// Every expected spelling below is what k8s.io/apimachinery v0.34.2 stores for the input:
// json.Unmarshal into a resource.Quantity, then String() (the kube-apiserver's decode and
// encode of a Pod's resources).
const STORED: readonly (readonly [string, string])[] = [
  // DecimalSI: the largest suffix that keeps the number whole
  ["3000m", "3"],
  ["1000m", "1"],
  ["1500m", "1500m"],
  ["100m", "100m"],
  ["0.5", "500m"],
  ["2", "2"],
  ["1000", "1k"],
  ["1000u", "1m"],
  ["1000000n", "1m"],
  ["100u", "100u"],
  ["2048", "2048"],
  ["1024m", "1024m"],
  ["1E", "1E"],
  ["1500000000000000000000", "1500E"],
  ["12345678901234567890", "12345678901234567890"],
  // BinarySI: the largest binary suffix, DecimalSI below 1024 or when not whole
  ["1024Mi", "1Gi"],
  ["1536Mi", "1536Mi"],
  ["0.5Gi", "512Mi"],
  ["128Mi", "128Mi"],
  ["1.5Gi", "1536Mi"],
  ["1024Ki", "1Mi"],
  ["1048577Ki", "1048577Ki"],
  ["1.1Ki", "1126400m"],
  ["0.3Ki", "307200m"],
  ["-0.5Ki", "-512"],
  ["1.5Ki", "1536"],
  ["1.00000000000000000000Ki", "1Ki"],
  [".5Pi", "512Ti"],
  ["-1.5Gi", "-1536Mi"],
  // BinarySI is capped at 2^63-1
  ["8Ei", "9223372036854775807"],
  ["9Ei", "9223372036854775807"],
  ["-9Ei", "-9223372036854775807"],
  ["7.999999999Ei", "9223372035701854303393153024n"],
  // DecimalExponent keeps its exponent, a multiple of 3
  ["1e3", "1e3"],
  ["12e6", "12e6"],
  ["1.2e6", "1200e3"],
  ["1e-1", "100e-3"],
  ["5e-3", "5e-3"],
  ["1.5E3", "1500"],
  ["1000e0", "1e3"],
  ["1000e-3", "1"],
  ["1e19", "10e18"],
  ["123e5", "12300e3"],
  ["1e1000", "10e999"],
  // below a nano: rounded away from zero to the next nano
  ["0.0000000001", "1n"],
  ["-0.0000000001", "-1n"],
  ["1e-10", "1e-9"],
  ["1.5e-10", "1e-9"],
  ["-.5e-20", "-1e-9"],
  ["1.000000000000000000001", "1000000001n"],
  ["123456789012345678901234567890e-30", "123456790e-9"],
  ["1e-1000", "1e-9"],
  // spellings Kubernetes keeps as written (its int64 fast path, "already canonical")
  ["1.500", "1.500"],
  ["+100m", "+100m"],
  ["001k", "001k"],
  ["+1Ki", "+1Ki"],
  ["01Ki", "01Ki"],
  ["1E3", "1E3"],
  ["1e+3", "1e+3"],
  ["1e0", "1e0"],
  ["1.G", "1.G"],
  ["5.", "5."],
  // zero, however written; a number with no digits reads as zero on the fast path
  ["0", "0"],
  ["-0", "0"],
  ["00000", "0"],
  ["0e5", "0"],
  ["0.0Ki", "0"],
  ["0.e-20", "0"],
  [".", "0"],
  ["k", "0"],
  ["Mi", "0"],
  // Go's white space is trimmed (NBSP and NEL included)
  [" 1Ki ", "1Ki"],
  ["\u00a01", "1"],
  ["\u00851", "1"],
];

test("quantities are spelled as the API server stores them", () => {
  for (const [input, want] of STORED) assert.equal(parseQuantity(input), want, JSON.stringify(input));
});

test("what the API server refuses is refused, with its reason", () => {
  const refused: readonly (readonly [string, RegExp])[] = [
    ["", /empty/],
    [" ", /empty/],
    ["lots", /not a Kubernetes quantity/],
    ["1.2.3", /not a Kubernetes quantity/],
    ["10 Mi", /not a Kubernetes quantity/],
    ["1Q", /not a Kubernetes quantity/],
    ["1,5", /not a Kubernetes quantity/],
    ["0x1", /not a Kubernetes quantity/],
    ["1e3m", /not a Kubernetes quantity/],
    ["\ufeff1", /not a Kubernetes quantity/],
    ["1Mi1", /unknown suffix "Mi1"/],
    ["1e", /unknown suffix "e"/],
    ["1e+", /unknown suffix/],
    ["1Ee3", /unknown suffix/],
    ["1K", /unknown suffix "K"/],
    ["1ki", /unknown suffix/],
    ["1i", /unknown suffix/],
    ["1mm", /unknown suffix/],
    // the inf.Dec path needs a digit: a fraction of a Pi, or a value below the nano, without one
    ["Pi", /no digits/],
    [".e-20", /no digits/],
  ];
  for (const [input, why] of refused) {
    const r = checkQuantity(input);
    assert.equal(r.ok, false, JSON.stringify(input));
    if (!r.ok) assert.match(r.reason, why, JSON.stringify(input));
    assert.equal(parseQuantity(input), undefined);
  }
});

test("what the API server would not store as given is refused, naming the reason", () => {
  // An exponent past int32 is read as another number; past the bound it is quadratic to expand.
  for (const input of [
    "1e30000000",
    "1e10000000",
    "1e4294967296",
    "1e-2147483648",
    `1e${MAX_QUANTITY_EXPONENT + 1}`,
    "1e99999999999999999999",
  ]) {
    const r = checkQuantity(input);
    assert.ok(!r.ok && /exponent beyond ±1000/.test(r.reason), input);
  }
  assert.equal(parseQuantity(`1e${MAX_QUANTITY_EXPONENT}`), `10e${MAX_QUANTITY_EXPONENT - 1}`);
  assert.equal(parseQuantity(`1e-${MAX_QUANTITY_EXPONENT}`), "1e-9");
  // DecimalSI above E: Kubernetes drops the exponent ("1000E" would be stored as "1").
  const cases: readonly (readonly [string, string])[] = [
    ["1000E", '"1"'],
    ["1000000000000000000000", '"1"'],
    ["10000E", '"10"'],
    ["-1000000P", '"-1"'],
  ];
  for (const [input, stored] of cases) {
    const r = checkQuantity(input);
    assert.ok(!r.ok && r.reason.includes(`would store ${stored}`), `${input}: ${JSON.stringify(r)}`);
  }
});

test("the input length is capped, and the work and the answer stay small whatever the input", () => {
  const longest = `1.${"0".repeat(MAX_QUANTITY_LENGTH - 3)}1`;
  assert.equal(longest.length, MAX_QUANTITY_LENGTH);
  assert.equal(parseQuantity(longest), "1000000001n");
  const hostile = [
    "1e30000000",
    "1e10000000",
    `1${"0".repeat(MAX_QUANTITY_LENGTH)}`,
    `0.${"0".repeat(200_000)}1`,
    `${"9".repeat(200_000)}Ei`,
    `${" ".repeat(100_000)}1${" ".repeat(100_000)}`,
    "1".repeat(MAX_QUANTITY_LENGTH + 1),
  ];
  for (const input of hostile) {
    const r = checkQuantity(input);
    if (r.ok) assert.ok(r.canonical.length <= 2 * MAX_QUANTITY_LENGTH, input.slice(0, 20));
    else if (input.trim().length > MAX_QUANTITY_LENGTH) assert.match(r.reason, /longer than 64 characters/);
  }
  // Padding is trimmed before the cap applies, as the API server trims it.
  assert.equal(parseQuantity(`${" ".repeat(100_000)}1${" ".repeat(100_000)}`), "1");
  // Every accepted spelling is bounded: digits (at most the cap, plus 9 for the nano, plus 2
  // to reach a multiple of 3) and a suffix or an exponent of at most 5 characters.
  for (const sign of ["", "-"]) {
    for (const body of [
      `${"9".repeat(60)}.9`,
      `.${"9".repeat(62)}`,
      `${"9".repeat(50)}e999`,
      `${"1".repeat(55)}e-${MAX_QUANTITY_EXPONENT}`,
    ]) {
      const out = parseQuantity(sign + body);
      assert.ok(out !== undefined && out.length <= MAX_QUANTITY_LENGTH + 9 + 2 + 6, `${sign}${body} -> ${out}`);
    }
  }
});

test("requests and limits: rounded up to the milli, as the Pod's defaulting does", () => {
  // Checked against kube-apiserver v1.34.4 (server-side dry-run Pod create) and apimachinery's
  // Quantity.RoundUp(Milli).
  const milli: readonly (readonly [string, string])[] = [
    ["100u", "1m"],
    ["-100u", "-1m"],
    ["1.5e-10", "1e-3"],
    ["1e-4", "1e-3"],
    ["0.0001", "1m"],
    ["1000000n", "1m"],
    ["7.999999999Ei", "9223372035701854303394m"],
    ["123456789012345678901234567890e-30", "124e-3"],
    ["1.500", "1.500"],
    ["+100m", "+100m"],
    ["1E3", "1E3"],
    ["3000m", "3"],
    ["0.5Gi", "512Mi"],
    ["1.0005", "1001m"],
  ];
  for (const [input, want] of milli) assert.equal(parseQuantity(input, "milli"), want, input);
  assert.deepEqual(canonicalResources({ requests: { cpu: "100u", memory: "1.5e-10" } }), {
    requests: { cpu: "1m", memory: "1e-3" },
  });
});

test("a stored spelling reads back as itself", () => {
  for (const [, stored] of STORED) assert.equal(parseQuantity(stored), stored, stored);
});

test("resource annotations: refused where resource.ParseQuantity refuses them, naming the annotation; warned about where the API server would not take them", () => {
  const refuse = (value: string, why: RegExp): void =>
    assert.throws(
      () => validateAnnotations({ "sidecar.istio.io/proxyCPU": value }),
      (e: Error) => e.message.startsWith("invalid annotation sidecar.istio.io/proxyCPU=") && why.test(e.message),
    );
  refuse("lots", /not a Kubernetes quantity/);
  refuse(" 1", /white space around it/);
  refuse("1e99999999999999999999", /not a Kubernetes quantity/);
  refuse("Ei", /not a Kubernetes quantity/);
  // The value is quoted to a bounded prefix, however long.
  assert.throws(
    () => validateAnnotations({ "sidecar.istio.io/proxyMemory": `${"9".repeat(100_000)}x` }),
    (e: Error) => e.message.length < 300 && /not a Kubernetes quantity/.test(e.message),
  );
  const warned = (value: string, why: RegExp): void => {
    validateAnnotations({ "sidecar.istio.io/proxyCPU": value });
    const w = annotationWarnings({ "sidecar.istio.io/proxyCPU": value }, false, false);
    assert.equal(w.length, 1, value);
    assert.match(w[0] ?? "", why);
    assert.ok((w[0] ?? "").length <= 120);
  };
  warned("-100m", /is negative: the API server will refuse the Pod/);
  warned("1e30000000", /written as given/);
  warned("1000E", /written as given/);
  warned("9".repeat(100_000), /written as given/);
  for (const value of ["-0", "1.5Gi", "k", ".", "+"]) {
    validateAnnotations({ "sidecar.istio.io/proxyCPU": value });
    assert.deepEqual(annotationWarnings({ "sidecar.istio.io/proxyCPU": value }, false, false), [], value);
  }
});

test("canonicalResources rewrites requests and limits only, and keeps what it cannot read", () => {
  assert.deepEqual(
    canonicalResources({ limits: { cpu: "3000m" }, requests: { memory: "1024Mi" }, claims: [{ name: "x" }] }),
    {
      limits: { cpu: "3" },
      requests: { memory: "1Gi" },
      claims: [{ name: "x" }],
    },
  );
  assert.deepEqual(canonicalResources({ requests: { cpu: 0.5, memory: "lots" } }), {
    requests: { cpu: "500m", memory: "lots" },
  });
});

test("goQuantityError: resource.ParseQuantity's own error for each way a quantity fails", () => {
  const format = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
  for (const ok of ["0", "1.5Gi", "1e3", "+.5", "k"]) assert.equal(goQuantityError(ok), undefined, ok);
  for (const bad of ["", " 1", "1 ", "1Zi", "true", "{}"]) assert.equal(goQuantityError(bad), format, bad);
  for (const bad of ["5KM", "1e", "1e99999999999999999999"]) {
    assert.equal(goQuantityError(bad), "unable to parse quantity's suffix", bad);
  }
  assert.equal(goQuantityError("Ei"), "unable to parse numeric part of quantity");
});

test("goUnmarshalQuantity: a JSON string (trimmed unless Go escapes the space) or number, null as 0", () => {
  assert.deepEqual(goUnmarshalQuantity(" 1000 "), { ok: true, value: "1k" });
  assert.deepEqual(goUnmarshalQuantity("\u00a01Gi"), { ok: true, value: "1Gi" });
  assert.deepEqual(goUnmarshalQuantity(1.5), { ok: true, value: "1500m" });
  // Spelled "1e+21" (Go's float64 text), which Go keeps as written.
  assert.deepEqual(goUnmarshalQuantity(1e21), { ok: true, value: "1e+21" });
  assert.deepEqual(goUnmarshalQuantity(null), { ok: true, value: "0" });
  // Go writes a tab as \t inside the quotes: TrimSpace does not see a space.
  for (const bad of ["\t1", "1\n", true, [1], { a: 1 }]) assert.equal(goUnmarshalQuantity(bad).ok, false);
});
