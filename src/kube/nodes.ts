// `nativeSidecars: auto`: native sidecars (init containers with restartPolicy Always) are used
// when every node's kubelet runs Kubernetes 1.33 or later, as Istio decides it. The node list
// is read periodically; until the first answer (or when it fails) nothing is assumed. With
// `--workers N` only the primary reads it, and pushes each change to the workers (onChange).
import type { Logger } from "pino";
import type { KubeApi } from "./api.js";

export const NATIVE_SIDECAR_MIN_MINOR = 33;

/** True when there are nodes and every kubelet is v1.33 or later. */
export function nativeSidecarsSupported(kubeletVersions: readonly string[]): boolean {
  if (kubeletVersions.length === 0) return false;
  return kubeletVersions.every((v) => {
    const m = /^v?(\d+)\.(\d+)/.exec(v);
    return m !== null && (Number(m[1]) > 1 || Number(m[2]) >= NATIVE_SIDECAR_MIN_MINOR);
  });
}

export class NativeSidecarDetector {
  private value: boolean | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: Array<(value: boolean) => void> = [];

  constructor(
    private readonly kube: KubeApi,
    private readonly logger: Logger,
    private readonly intervalMs = 5 * 60_000,
  ) {}

  current(): boolean | undefined {
    return this.value;
  }

  /** Called with every change of current() (the first answer included). */
  onChange(fn: (value: boolean) => void): void {
    this.listeners.push(fn);
  }

  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    try {
      const versions = await this.kube.listKubeletVersions();
      const next = nativeSidecarsSupported(versions);
      if (next === this.value) return;
      this.logger.info(
        { nodes: versions.length, nativeSidecars: next },
        "native sidecar support (nativeSidecars: auto)",
      );
      this.value = next;
      for (const fn of this.listeners) fn(next);
    } catch (e) {
      this.logger.warn(
        { err: e instanceof Error ? e.message : String(e) },
        "could not read node versions for nativeSidecars: auto",
      );
    }
  }
}
