import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AdmissionError,
  ERRORS,
  errorBody,
  EXIT_ERRORS,
  exitStatusOf,
  isErrorCode,
  type CodedErrorCode,
  type ExitSpec,
} from "../../../src/admission/errors.js";
import type { CertError } from "../../../src/certs/authority.js";
import type { DerError } from "../../../src/certs/der.js";
import type { CertificateFileError } from "../../../src/certs/files.js";
import type { CheckNotFoundError } from "../../../src/check/check.js";
import type { CompareError } from "../../../src/compare/review.js";
import type { ConfigError } from "../../../src/config/load.js";
import type { KubeError } from "../../../src/kube/api.js";
import type { IstioConfigError } from "../../../src/istio/source.js";
import type { ManifestError } from "../../../src/manifest.js";
import type { PreviewError, PreviewLimitError } from "../../../src/preview.js";
import type { RemotePreviewError } from "../../../src/preview-client.js";
import { INJECTION_ERROR_CODES, type InjectionError } from "../../../src/injection/types.js";
import { runCli } from "../../support/run.js";

/** The code of every coded error class: each must be in the registry, HTTP or not. */
type ThrownCode =
  | AdmissionError["code"]
  | InjectionError["code"]
  | PreviewError["code"]
  | PreviewLimitError["code"]
  | ConfigError["code"]
  | ManifestError["code"]
  | CertificateFileError["code"]
  | CertError["code"]
  | DerError["code"]
  | KubeError["code"]
  | RemotePreviewError["code"]
  | CheckNotFoundError["code"]
  | IstioConfigError["code"]
  | CompareError["code"];
// Compile-time completeness: a class whose code has no entry fails `tsc` here.
const everyCodeRegistered: [Exclude<ThrownCode, CodedErrorCode>] extends [never] ? true : false = true;
const commandCodes: Readonly<Record<Exclude<ThrownCode, keyof typeof ERRORS>, ExitSpec>> = EXIT_ERRORS;

describe("error registry", () => {
  it("maps the transport errors to their HTTP statuses", () => {
    const want: Record<string, number> = {
      ERR_UNSUPPORTED_MEDIA_TYPE: 415,
      ERR_BODY_TOO_LARGE: 413,
      ERR_EMPTY_BODY: 400,
      ERR_MALFORMED_JSON: 400,
      ERR_NOT_ADMISSION_REVIEW: 400,
      ERR_REQUEST_TIMEOUT: 408,
      ERR_NOT_FOUND: 404,
      ERR_METHOD_NOT_ALLOWED: 405,
      ERR_NOT_READY: 503,
    };
    for (const [code, status] of Object.entries(want)) {
      assert.ok(isErrorCode(code), code);
      assert.equal(ERRORS[code].status, status, code);
      assert.equal(ERRORS[code].answer, "http", code);
    }
  });

  it("has a review-level entry for every code the engine throws", () => {
    for (const code of INJECTION_ERROR_CODES) {
      assert.ok(isErrorCode(code), code);
      assert.equal(ERRORS[code].answer, "review");
      assert.equal(ERRORS[code].status, 400);
      assert.equal(ERRORS[code].reason, "BadRequest");
    }
  });

  it("uses ERR_ codes, messages and Kubernetes reasons throughout", () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      assert.match(code, /^ERR_[A-Z_]+$/);
      assert.ok(spec.message.length > 0);
      assert.match(spec.reason, /^[A-Z][A-Za-z]+$/);
    }
  });

  it("renders {error:{code,message}}", () => {
    assert.deepEqual(errorBody("ERR_EMPTY_BODY"), { error: { code: "ERR_EMPTY_BODY", message: "no body found" } });
    const e = new AdmissionError("ERR_BODY_TOO_LARGE", "too big: 10 > 5");
    assert.equal(e.status, 413);
    assert.deepEqual(e.toBody(), { error: { code: "ERR_BODY_TOO_LARGE", message: "too big: 10 > 5" } });
  });

  it("rejects names that are not codes, including inherited ones", () => {
    assert.equal(isErrorCode("ERR_NOPE"), false);
    assert.equal(isErrorCode("toString"), false);
    assert.equal(isErrorCode(415), false);
  });
});

describe("exit statuses", () => {
  it("every class's code is registered, and a command's errors map to exit statuses", () => {
    assert.equal(everyCodeRegistered, true);
    for (const [code, spec] of Object.entries(commandCodes)) assert.equal(exitStatusOf(code), spec.exit, code);
    assert.equal(exitStatusOf("ENOENT"), 2);
    assert.equal(exitStatusOf("ERR_CONFIG"), 2);
    // What the webhook refuses, a command refuses: input refused.
    for (const code of [
      "ERR_NOT_ADMISSION_REVIEW",
      "ERR_INVALID_ANNOTATION",
      "ERR_INVALID_POD",
      "ERR_PREVIEW_INPUT",
      "ERR_PREVIEW_TOO_MANY_PODS",
    ])
      assert.equal(exitStatusOf(code), 2, code);
  });

  it("a bug, or a code the registry does not hold, has no status of its own (the command ends with one line and 2)", () => {
    for (const code of ["ERR_INTERNAL", "ERR_SOMETHING_ELSE", "EACCES", "", 42, undefined, "__proto__", "toString"])
      assert.equal(exitStatusOf(code), undefined, String(code));
  });

  it("the code nothing throws is gone", () => {
    assert.equal(isErrorCode("ERR_INVALID_CONFIG"), false);
    assert.equal(exitStatusOf("ERR_INVALID_CONFIG"), undefined);
  });

  it("the CLI exits with the registry's status", async () => {
    const dir = await mkdtemp(join(tmpdir(), "exit-status-"));
    try {
      const pod = join(dir, "pod.yaml");
      await writeFile(
        pod,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x}]}\n",
      );
      const config = join(dir, "config.yaml");
      await writeFile(config, "nosuchkey: 1\n");
      const bad = join(dir, "bad.yaml");
      await writeFile(
        bad,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {sidecar.istio.io/proxyCPU: lots}}\nspec: {containers: [{name: a, image: x}]}\n",
      );
      const cases: [readonly string[], number, RegExp][] = [
        [["inject", "--no-such-option"], 2, /^error: .*--no-such-option/],
        [["inject", "-f", pod, "--config", config], 2, /^error: .*nosuchkey/],
        // A refused object is an answer (1), reported per document; a file that cannot be read, 2.
        [["inject", "-f", bad], 1, /refused: invalid annotation sidecar\.istio\.io\/proxyCPU/],
        [["inject", "-f", join(dir, "absent.yaml")], 2, /^error: .*absent\.yaml/],
      ];
      for (const [args, code, stderr] of cases) {
        const ran = await runCli(args);
        assert.equal(ran.code, code, `${args.join(" ")}: ${ran.stderr}`);
        assert.match(ran.stderr, stderr, args.join(" "));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
