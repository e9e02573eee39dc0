/**
 * Idempotent long-running work (DESIGN.md "Contracts"): a request's result is stored under a key
 * derived from the request's content, so sending the same request again returns the stored result,
 * or resumes from the last checkpoint when the first run died. In one process, a request already
 * running is joined rather than started twice: the second caller sees the same progress events.
 *
 * Store layout under `jobs/<kind>/<key>/`: `request.json`, `state.json` (the resumable state the
 * work saves at checkpoints), `result.json`, and any artefacts the work writes itself.
 *
 * @example
 * ```ts
 * import { FileStore } from "../store/file_store.ts";
 * import { JobRunner, requestKey } from "./jobs.ts";
 * const store = new FileStore(`file://${await Deno.makeTempDir()}`);
 * const jobs = new JobRunner(store, "train");
 * const key = await requestKey({ model: "baseline", epochs: 3, seed: 0 });
 * for await (const ev of jobs.run(key, { epochs: 3 }, async function* (job) {
 *   let epoch = job.state?.epoch ?? 0;
 *   while (epoch < 3) {
 *     epoch++;
 *     await job.save({ epoch });
 *     yield { epoch };
 *   }
 *   return { accuracy: 0.9 };
 * })) console.log(ev);
 * await store.close();
 * ```
 * @module
 */
import { CotrainError } from "../errors.ts";
import { sha256Hex } from "../store/keys.ts";
import type { ObjectStore } from "../store/types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** JSON with sorted keys; byte arrays become `{"sha256": ...}` so large payloads hash cheaply. */
export function canonicalJson(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return { $bytes_sha256: sha256Hex(v) };
    if (ArrayBuffer.isView(v)) {
      const b = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      return { $bytes_sha256: sha256Hex(b), $type: v.constructor.name };
    }
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = norm(x);
      }
      return out;
    }
    if (typeof v === "bigint") return v.toString();
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    return v;
  };
  return JSON.stringify(norm(value));
}

/** The content key of a request: sha256 of its canonical JSON (first 32 hex digits). */
export function requestKey(request: unknown): Promise<string> {
  return Promise.resolve(sha256Hex(enc.encode(canonicalJson(request))).slice(0, 32));
}

/** What the work sees of its job. */
export interface JobContext<S> {
  /** The content key. */
  key: string;
  /** Store prefix of this job (`jobs/<kind>/<key>/`), for artefacts the work writes. */
  prefix: string;
  /** State saved by the last checkpoint of an earlier run, or null on a fresh start. */
  state: S | null;
  /** Saves the resumable state (call after each checkpoint's artefacts are stored). */
  save(state: S): Promise<void>;
}

/** Events a job run yields: the work's own progress, then the result. */
export type JobEvent<P, R> =
  | { kind: "progress"; progress: P }
  | { kind: "result"; result: R; cached: boolean; resumed: boolean };

interface Running<P, R> {
  listeners: Set<(ev: JobEvent<P, R> | { kind: "error"; error: unknown }) => void>;
}

/** Runs content-keyed jobs of one kind against a store. */
export class JobRunner {
  readonly store: ObjectStore;
  readonly kind: string;
  // deno-lint-ignore no-explicit-any
  #running = new Map<string, Running<any, any>>();

  constructor(store: ObjectStore, kind: string) {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(kind)) {
      throw CotrainError.invalidArgument(`job kind ${JSON.stringify(kind)}: use [a-z0-9_-]`);
    }
    this.store = store;
    this.kind = kind;
  }

  /** The store prefix of a job. */
  prefix(key: string): string {
    if (!/^[0-9a-f]{8,64}$/.test(key)) throw CotrainError.invalidArgument(`job key ${key}`);
    return `jobs/${this.kind}/${key}/`;
  }

  async #readJson<T>(key: string): Promise<T | null> {
    const info = await this.store.stat(key);
    if (!info) return null;
    return JSON.parse(dec.decode(await this.store.get(key))) as T;
  }

  /** The stored result of a finished job, or null. */
  result<R>(key: string): Promise<R | null> {
    return this.#readJson<R>(`${this.prefix(key)}result.json`);
  }

  /**
   * Runs `work` for the request with content key `key`, unless its result is stored (then yields
   * it at once, `cached: true`) or it is already running in this process (then joins it). An
   * earlier run's saved state is handed to `work` to resume from (`resumed: true`).
   */
  async *run<S, P, R>(
    key: string,
    request: unknown,
    work: (job: JobContext<S>) => AsyncGenerator<P, R>,
  ): AsyncGenerator<JobEvent<P, R>> {
    const prefix = this.prefix(key);
    const done = await this.result<R>(key);
    if (done !== null) {
      yield { kind: "result", result: done, cached: true, resumed: false };
      return;
    }
    const running = this.#running.get(key) as Running<P, R> | undefined;
    if (running) {
      yield* this.#follow(running);
      return;
    }
    const entry: Running<P, R> = { listeners: new Set() };
    this.#running.set(key, entry);
    const emit = (ev: JobEvent<P, R> | { kind: "error"; error: unknown }) => {
      for (const l of entry.listeners) l(ev);
    };
    try {
      await this.store.put(`${prefix}request.json`, enc.encode(canonicalJson(request)), {
        contentType: "application/json",
      });
      const state = await this.#readJson<S>(`${prefix}state.json`);
      const ctx: JobContext<S> = {
        key,
        prefix,
        state,
        save: async (s: S) => {
          await this.store.put(`${prefix}state.json`, enc.encode(JSON.stringify(s)), {
            contentType: "application/json",
          });
        },
      };
      const gen = work(ctx);
      while (true) {
        const step = await gen.next();
        if (step.done) {
          await this.store.put(`${prefix}result.json`, enc.encode(JSON.stringify(step.value)), {
            contentType: "application/json",
          });
          const ev: JobEvent<P, R> = {
            kind: "result",
            result: step.value,
            cached: false,
            resumed: state !== null,
          };
          emit(ev);
          yield ev;
          return;
        }
        const ev: JobEvent<P, R> = { kind: "progress", progress: step.value };
        emit(ev);
        yield ev;
      }
    } catch (error) {
      emit({ kind: "error", error });
      throw error;
    } finally {
      this.#running.delete(key);
    }
  }

  async *#follow<P, R>(running: Running<P, R>): AsyncGenerator<JobEvent<P, R>> {
    const queue: (JobEvent<P, R> | { kind: "error"; error: unknown })[] = [];
    let wake: (() => void) | null = null;
    const listener = (ev: JobEvent<P, R> | { kind: "error"; error: unknown }) => {
      queue.push(ev);
      wake?.();
    };
    running.listeners.add(listener);
    try {
      while (true) {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const ev = queue.shift()!;
        if (ev.kind === "error") throw ev.error;
        yield ev;
        if (ev.kind === "result") return;
      }
    } finally {
      running.listeners.delete(listener);
    }
  }
}
