// Start-up and memory: the built CLI (`node dist/cli.js serve --local`, its own process, as
// `npm start` runs it) from spawn to the first 200 from /readyz, with the local certificates
// already in place and with them generated at start; its RSS once idle; and /preview of bodies
// near the 6 MiB limit (a List of Pods in JSON and in YAML, answered as JSON, YAML and diff),
// timed from the request's first byte to the answer's last, against that same process, with
// the CPU time the server (all its threads) spent on it.
// Each figure is the median of STARTUP_RUNS runs (default 5); the load average is printed
// with them, since on a busy machine every figure grows; the CPU time the server spent until
// it was ready (user + system, from /proc) grows far less, and is printed beside.
// The floor is a bare Node HTTPS server (node:https, the same certificate, /readyz answering
// 200; no framework, no logging, no engine), started the same way in the same rounds.
// STARTUP_BASE_CLI=<another build's dist/cli.js> runs that build too, in the same rounds, as
// "base" (before and after from one run: e.g. a build of the commit before a change).
// STARTUP_NODE_FLAGS (e.g. "--max-semi-space-size=16") are given to the server's node;
// STARTUP_PREVIEW=0 leaves out the /preview part.
// Run: node --import tsx test/bench/startup.bench.ts      (after npm run build)
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { previewListBody } from "./preview-body.js";
import { median } from "./table.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = join(root, "dist", "cli.js");
const baseCli = process.env.STARTUP_BASE_CLI;
const runs = Number(process.env.STARTUP_RUNS ?? "5");
const nodeFlags = (process.env.STARTUP_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean);
const ticks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
const MIB = 1024 * 1024;

interface Answer {
  readonly status: number;
  readonly bytes: number;
  /** The error code of a JSON error answer. */
  readonly code?: string;
}

function send(url: string, method: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((ok, fail) => {
    const req = request(
      url,
      {
        method,
        rejectUnauthorized: false,
        agent: false,
        headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) },
      },
      (res) => {
        let bytes = 0;
        let head = "";
        res.on("data", (c: Buffer) => {
          if (bytes < 512) head += c.subarray(0, 512 - bytes).toString("utf8");
          bytes += c.length;
        });
        res.on("end", () => {
          const code = res.statusCode !== 200 ? /"code":"(ERR_\w+)"/.exec(head)?.[1] : undefined;
          ok({ status: res.statusCode ?? 0, bytes, ...(code ? { code } : {}) });
        });
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

/** utime + stime of a process, in milliseconds. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return ((Number(stat[11]) + Number(stat[12])) / ticks) * 1000;
}

function rssMiB(pid: number): number {
  const kib = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN);
  return kib / 1024;
}

/**
 * Spawns `serve --local` and resolves with the milliseconds until /readyz first answered 200,
 * and the CPU time the server had used by then.
 */
async function start(
  port: number,
  certDir: string,
  files = false,
  program = cli,
): Promise<{ server: ChildProcess; readyMs: number; cpuMs: number }> {
  // files: the certificate files of an earlier local start, as the chart's tls.mode secret and
  // certManager pass them (--tls-cert/--tls-key, watched for changes).
  const certs = files
    ? ["--tls-cert", join(certDir, "tls.crt"), "--tls-key", join(certDir, "tls.key")]
    : ["--local", "--cert-dir", certDir];
  return startProcess(port, [...nodeFlags, program, "serve", ...certs, "--port", String(port), "--log-level", "warn"]);
}

/** The floor: a bare node:https server with the certificate of `certDir`, /readyz answering 200. */
const BARE_SERVER = `import { readFileSync } from "node:fs";
import { createServer } from "node:https";
const [port, cert, key] = process.argv.slice(2);
createServer({ minVersion: "TLSv1.2", cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => res.writeHead(req.url === "/readyz" ? 200 : 404).end()).listen(Number(port), "127.0.0.1");
`;

function startBare(
  port: number,
  certDir: string,
  script: string,
): Promise<{ server: ChildProcess; readyMs: number; cpuMs: number }> {
  return startProcess(port, [...nodeFlags, script, String(port), join(certDir, "tls.crt"), join(certDir, "tls.key")]);
}

async function startProcess(
  port: number,
  args: readonly string[],
): Promise<{ server: ChildProcess; readyMs: number; cpuMs: number }> {
  const t0 = performance.now();
  const server = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
  const url = `https://127.0.0.1:${port}/readyz`;
  for (;;) {
    const status = await send(url, "GET").then(
      (a) => a.status,
      () => 0,
    );
    if (status === 200) return { server, readyMs: performance.now() - t0, cpuMs: cpuMs(server.pid ?? 0) };
    if (server.exitCode !== null)
      throw new Error(`${args.join(" ")} exited with ${server.exitCode} before it was ready`);
    if (performance.now() - t0 > 30_000) {
      server.kill("SIGKILL");
      throw new Error(`${args.join(" ")} was not ready within 30 s`);
    }
    await sleep(2);
  }
}

async function stop(server: ChildProcess): Promise<void> {
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  await exited;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-startup-"));
  const port = 20000 + Math.floor(Math.random() * 1000);
  try {
    const bareScript = join(dir, "bare-server.mjs");
    writeFileSync(bareScript, BARE_SERVER);
    /** Ready ms and CPU ms per row, one of each per run. */
    const rows = new Map<string, { ms: number[]; cpu: number[] }>();
    const record = (row: string, r: { readyMs: number; cpuMs: number }): void => {
      const into = rows.get(row) ?? { ms: [], cpu: [] };
      into.ms.push(r.readyMs);
      into.cpu.push(r.cpuMs);
      rows.set(row, into);
    };
    const idle: number[] = [];
    const programs = baseCli === undefined ? [["", cli] as const] : [["", cli] as const, ["base: ", baseCli] as const];
    for (let r = 0; r < runs; r++) {
      for (const [label, program] of programs) {
        const certDir = join(dir, `certs-${label ? "base-" : ""}${r}`);
        const first = await start(port, certDir, false, program);
        record(`${label}--local, certificates generated`, first);
        await stop(first.server);
        const second = await start(port, certDir, false, program);
        record(`${label}--local, certificates present`, second);
        if (label === "") {
          await sleep(2000);
          idle.push(rssMiB(second.server.pid ?? 0));
        }
        await stop(second.server);
        const third = await start(port, certDir, true, program);
        record(`${label}--tls-cert/--tls-key (the chart's secret and certManager modes)`, third);
        await stop(third.server);
      }
      const bare = await startBare(port, join(dir, `certs-${r}`), bareScript);
      record("floor: bare node:https server, same certificate", bare);
      await stop(bare.server);
    }
    const [l1, l5] = loadavg();
    process.stdout.write(
      `load average ${l1?.toFixed(2)} (1 min), ${l5?.toFixed(2)} (5 min); ${runs} runs, medians${nodeFlags.length ? `; node ${nodeFlags.join(" ")}` : ""}${baseCli ? `; base: ${baseCli}` : ""}\n\n`,
    );
    process.stdout.write(
      `| spawn to first 200 from /readyz | ms | CPU ms | ms over the floor |\n|---|---:|---:|---:|\n`,
    );
    const floor = median(rows.get("floor: bare node:https server, same certificate")?.ms ?? []);
    for (const [row, { ms, cpu }] of rows) {
      process.stdout.write(
        `| ${row.startsWith("floor") || row.startsWith("base") ? row : `serve ${row}`} | ${median(ms).toFixed(0)} | ${median(cpu).toFixed(0)} | ${row.startsWith("floor") ? "" : (median(ms) - floor).toFixed(0)} |\n`,
      );
    }
    process.stdout.write(`\nidle RSS after /readyz and 2 s: ${median(idle).toFixed(1)} MiB\n\n`);

    if (process.env.STARTUP_PREVIEW === "0") return;
    const bodies = { json: Buffer.from(previewListBody("json", 100)), yaml: Buffer.from(previewListBody("yaml", 100)) };
    for (const [label, program] of programs) await previews(label, program, port, join(dir, "certs-0"), bodies);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The /preview table, against `program` started with the certificates of `certDir`. */
async function previews(
  label: string,
  program: string,
  port: number,
  certDir: string,
  bodies: { readonly json: Buffer; readonly yaml: Buffer },
): Promise<void> {
  const { server } = await start(port, certDir, false, program);
  try {
    process.stdout.write(
      `\n| ${label}/preview, body | body MiB | answer | status | answer MiB | ms | server CPU ms |\n|---|---:|---|---:|---:|---:|---:|\n`,
    );
    const accept = { json: "application/json", yaml: "application/yaml", diff: "application/json" } as const;
    let peak = rssMiB(server.pid ?? 0);
    for (const input of ["json", "yaml"] as const) {
      for (const answer of ["json", "yaml", "diff"] as const) {
        const body = bodies[input];
        const times: number[] = [];
        const cpu: number[] = [];
        let last: Answer = { status: 0, bytes: 0 };
        for (let r = 0; r < runs; r++) {
          const c0 = cpuMs(server.pid ?? 0);
          const t0 = performance.now();
          last = await send(
            `https://127.0.0.1:${port}/preview?namespaceLabels=istio-injection=enabled${answer === "diff" ? "&format=diff" : ""}`,
            "POST",
            body,
            {
              "content-type": input === "json" ? "application/json" : "application/yaml",
              accept: accept[answer],
            },
          );
          times.push(performance.now() - t0);
          cpu.push(cpuMs(server.pid ?? 0) - c0);
          peak = Math.max(peak, rssMiB(server.pid ?? 0));
        }
        process.stdout.write(
          `| ${input} List of 100 Pods | ${(body.length / MIB).toFixed(2)} | ${answer} | ${last.status}${last.code ? ` ${last.code}` : ""} | ${(last.bytes / MIB).toFixed(2)} | ${median(times).toFixed(0)} | ${median(cpu).toFixed(0)} |\n`,
        );
      }
    }
    process.stdout.write(
      `\n${label}RSS after the previews: ${rssMiB(server.pid ?? 0).toFixed(1)} MiB (highest seen between requests ${peak.toFixed(1)} MiB)\n`,
    );
  } finally {
    await stop(server);
  }
}

await main();
