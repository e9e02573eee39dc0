/**
 * The compute backend of this process, chosen once at start-up from `COTRAIN_BACKEND`:
 *
 * - `wasm` (default): tfjs' WebAssembly backend (XNNPACK convolutions), with cotrain's own
 *   gradient kernels registered on top (core/engine/kernels).
 * - `tensorflow`: @tensorflow/tfjs-node(-gpu), imported only when selected. Its installer downloads
 *   libtensorflow, so it is optional: when it is not installed the error says how to install it.
 * - `webgpu`: Deno's built-in WebGPU (`navigator.gpu`, Vulkan on NVIDIA GPUs).
 * - `cpu`: pure JS, the last resort (and the reference in gradient checks).
 *
 * There is exactly one tfjs-core instance: every module imports the bare specifier
 * `@tensorflow/tfjs-core` from the import map, so backends register into the same registry.
 *
 * @example
 * ```ts
 * import { initBackend } from "./backend.ts";
 * const info = await initBackend("cpu");
 * console.log(info.name); // "cpu"
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
// tfjs-core's node bundle registers no gradients; the @tensorflow/tfjs bundle registers all of them
// into the same (single) tfjs-core instance. Training needs them.
import "@tensorflow/tfjs";
import { CoreError } from "../errors.ts";
import { registerWasmKernels } from "./kernels/register.ts";

/** Backends cotrain can run on. */
export const BACKENDS = ["wasm", "tensorflow", "webgpu", "cpu"] as const;
/** One of {@linkcode BACKENDS}. */
export type BackendName = typeof BACKENDS[number];

/** What is running, for logs and health metadata. */
export interface BackendInfo {
  name: BackendName;
  /** tfjs-core version. */
  tfjs: string;
  /** Threads the backend uses (wasm), when known. */
  threads?: number;
  /** Free-form details: adapter name for webgpu, library version for tensorflow. */
  detail?: string;
}

let active: BackendInfo | null = null;

/** The backend chosen by {@linkcode initBackend}, or null before. */
export function activeBackend(): BackendInfo | null {
  return active;
}

async function importOptional(specifier: string, hint: string): Promise<unknown> {
  try {
    return await import(specifier);
  } catch (err) {
    throw new CoreError(
      "FAILED_PRECONDITION",
      `backend needs ${specifier}, which is not installed (${(err as Error).message}). ${hint}`,
    );
  }
}

/**
 * Loads and activates a backend (default: `COTRAIN_BACKEND`, else `wasm`). Calling it again with
 * the same name is a no-op; with another name it switches.
 */
export async function initBackend(name?: string): Promise<BackendInfo> {
  let chosen = name;
  if (!chosen) {
    try {
      chosen = Deno.env.get("COTRAIN_BACKEND") ?? "wasm";
    } catch {
      chosen = "wasm";
    }
  }
  if (!(BACKENDS as readonly string[]).includes(chosen)) {
    throw new CoreError(
      "INVALID_ARGUMENT",
      `COTRAIN_BACKEND=${JSON.stringify(chosen)}: unknown backend; allowed: ${BACKENDS.join(", ")}`,
    );
  }
  const backend = chosen as BackendName;
  if (active?.name === backend && tf.getBackend() === backend) return active;
  // tfjs' console banners ("install our node backend", ...) would break the services' JSON logs
  tf.env().set("PROD", true);
  let detail: string | undefined;
  switch (backend) {
    case "cpu":
      await import("@tensorflow/tfjs-backend-cpu");
      break;
    case "wasm": {
      await import("@tensorflow/tfjs-backend-cpu"); // fallback for kernels wasm lacks
      await import("@tensorflow/tfjs-backend-wasm");
      registerWasmKernels(); // cotrain's gradient kernels (core/engine/kernels)
      break;
    }
    case "tensorflow": {
      const hint = "Install it where libtensorflow can be downloaded: " +
        "`npm i @tensorflow/tfjs-node-gpu@4.22.0` (GPU) or `@tensorflow/tfjs-node@4.22.0`.";
      try {
        await importOptional("npm:@tensorflow/tfjs-node-gpu@4.22.0", hint);
        detail = "tfjs-node-gpu";
      } catch {
        await importOptional("npm:@tensorflow/tfjs-node@4.22.0", hint);
        detail = "tfjs-node";
      }
      break;
    }
    case "webgpu": {
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      const adapter = gpu ? await gpu.requestAdapter() : null;
      if (!adapter) {
        throw new CoreError(
          "FAILED_PRECONDITION",
          "webgpu backend: no WebGPU adapter (run Deno with a Vulkan driver, e.g. Debian's " +
            "mesa-vulkan-drivers for a software one, or an NVIDIA driver)",
        );
      }
      await import("@tensorflow/tfjs-backend-webgpu");
      const info =
        (adapter as { info?: { vendor?: string; architecture?: string; device?: string } })
          .info;
      detail = `navigator.gpu: ${
        [info?.vendor, info?.architecture, info?.device].filter(Boolean).join(" ") || "adapter"
      }`;
      break;
    }
  }
  const ok = await tf.setBackend(backend);
  if (!ok) {
    throw new CoreError("FAILED_PRECONDITION", `backend ${backend} failed to initialise`);
  }
  await tf.ready();
  active = { name: backend, tfjs: tf.version_core, detail };
  return active;
}
