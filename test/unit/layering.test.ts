// The dependency rule of the README's "Layout" is enforced by lint (eslint.config.js): these
// cases lint code as if it were a file of src/injection/, src/config/, the admission gate or
// the preview, so removing or weakening the rule fails here, not silently in a later change.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ESLint } from "eslint";

const eslint = new ESLint();

async function ruleIds(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? "fatal"}@${m.line}`);
}

test("injection/ may not import I/O, servers, clients or the layers above it", async () => {
  const code = [
    'import { readFileSync } from "node:fs";',
    'import express from "express";',
    'import { ERRORS } from "../admission/errors.js";',
    'import { KubePort } from "../kube/api.js";',
    "export const all = [readFileSync, express, ERRORS, KubePort];",
  ].join("\n");
  assert.deepEqual(await ruleIds("src/injection/layering-case.ts", code), [
    "no-restricted-imports@1",
    "no-restricted-imports@2",
    "no-restricted-imports@3",
    "no-restricted-imports@4",
  ]);
});

test("injection/ may import config, kube types, itself, yaml and node:net", async () => {
  const code = [
    'import { isIP } from "node:net";',
    'import { parse } from "yaml";',
    'import type { Config } from "../config/types.js";',
    'import type { Pod } from "../kube/types.js";',
    'import { quote } from "./quote.js";',
    "export const all = (c: Config, p: Pod): unknown => [isIP, parse, quote, c, p];",
  ].join("\n");
  assert.deepEqual(await ruleIds("src/injection/layering-case.ts", code), []);
});

test("injection/ has no clock, randomness or process state", async () => {
  const code = "export const all = (): unknown => [Date.now(), new Date(), Math.random(), process.env, console];";
  assert.deepEqual(await ruleIds("src/injection/layering-case.ts", code), [
    "no-restricted-syntax@1",
    "no-restricted-syntax@1",
    "no-restricted-syntax@1",
    "no-restricted-globals@1",
    "no-restricted-globals@1",
  ]);
});

test("config/ may not reach the serving layers", async () => {
  const code = [
    'import { createApp } from "../admission/server.js";',
    'import pino from "pino";',
    "export const all = [createApp, pino];",
  ].join("\n");
  assert.deepEqual(await ruleIds("src/config/layering-case.ts", code), [
    "no-restricted-imports@1",
    "no-restricted-imports@2",
  ]);
});

test("the admission gate is pure: the engine, config and kube types, and the error registry", async () => {
  const allowed = [
    'import type { Pod } from "../kube/types.js";',
    'import type { Config } from "../config/types.js";',
    'import { quote } from "../injection/quote.js";',
    'import { ERRORS } from "./errors.js";',
    "export const all = (p: Pod, c: Config): unknown => [quote, ERRORS, p, c];",
  ].join("\n");
  assert.deepEqual(await ruleIds("src/admission/gate.ts", allowed), []);
  const refused = [
    'import express from "express";',
    'import { readFileSync } from "node:fs";',
    'import { admit } from "./review.js";',
    'import { createMetrics } from "../telemetry/metrics.js";',
    'import { KubePort } from "../kube/api.js";',
    "export const all = (): unknown => [express, readFileSync, admit, createMetrics, KubePort, process.env, console];",
  ].join("\n");
  assert.deepEqual(await ruleIds("src/admission/gate.ts", refused), [
    "no-restricted-imports@1",
    "no-restricted-imports@2",
    "no-restricted-imports@3",
    "no-restricted-imports@4",
    "no-restricted-imports@5",
    "no-restricted-globals@6",
    "no-restricted-globals@6",
  ]);
  assert.deepEqual(
    await ruleIds("src/admission/errors.ts", 'import { admit } from "./review.js";\nexport const all = [admit];'),
    ["no-restricted-imports@1"],
  );
});

test("the preview takes only the gate and the error registry from admission/, nothing that serves", async () => {
  const code = [
    'import { gate } from "./admission/gate.js";',
    'import { AdmissionError } from "./admission/errors.js";',
    'import { inject } from "./injection/inject.js";',
    'import { describeObject } from "./admission/review.js";',
    'import { createApp } from "./admission/server.js";',
    'import { createMetrics } from "./telemetry/metrics.js";',
    'import express from "express";',
    'import { runServe } from "./main.js";',
    "export const all = [gate, AdmissionError, inject, describeObject, createApp, createMetrics, express, runServe];",
  ].join("\n");
  for (const file of ["src/preview.ts", "src/documents.ts"])
    assert.deepEqual(
      await ruleIds(file, code),
      [
        "no-restricted-imports@4",
        "no-restricted-imports@5",
        "no-restricted-imports@6",
        "no-restricted-imports@7",
        "no-restricted-imports@8",
      ],
      file,
    );
});

test("policy/ may import the engine, config, kube types, itself and node:util, nothing that does I/O", async () => {
  const allowed = [
    'import { isDeepStrictEqual } from "node:util";',
    'import { inject } from "../injection/inject.js";',
    'import type { Config } from "../config/types.js";',
    'import type { Pod } from "../kube/types.js";',
    'import { str } from "./cel.js";',
    "export const all = (c: Config, p: Pod): unknown => [isDeepStrictEqual, inject, str, c, p];",
  ].join("\n");
  assert.deepEqual(await ruleIds("src/policy/layering-case.ts", allowed), []);
  const refused = [
    'import { readFileSync } from "node:fs";',
    'import { KubeConfig } from "@kubernetes/client-node";',
    'import { ERRORS } from "../admission/errors.js";',
    'import { KubePort } from "../kube/api.js";',
    "export const all = (): unknown => [readFileSync, KubeConfig, ERRORS, KubePort, process.env, console];",
  ].join("\n");
  assert.deepEqual(await ruleIds("src/policy/layering-case.ts", refused), [
    "no-restricted-imports@1",
    "no-restricted-imports@2",
    "no-restricted-imports@3",
    "no-restricted-imports@4",
    "no-restricted-globals@5",
    "no-restricted-globals@5",
  ]);
});
