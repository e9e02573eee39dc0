/**
 * The Monkey Predictor's view of a V1 data set (core/data/v1_arrays.ts): model inputs (centre crop,
 * resize, TIN normalisation, NHWC), the recording sessions with their neurons, and per session the
 * images it recorded in each split with the repeat-averaged targets and a mask of recorded values
 * (NaN never reaches a loss).
 *
 * @example
 * ```ts
 * import { pinkNoiseImages, simulateV1 } from "../data/simulated_v1.ts";
 * import { preparePredictorData } from "./predictor_data.ts";
 * const sim = simulateV1(pinkNoiseImages(40, 64, 0), { neurons: 4, sessions: 2, testImages: 5 });
 * const data = preparePredictorData(sim.arrays, { size: 32 });
 * console.log(data.sessions.length, data.inputs.shape); // 2 [ 40, 32, 32, 1 ]
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";
import type { NdArray } from "../io/mod.ts";
import { SPLIT, toModelInput, type V1Arrays } from "../data/v1_arrays.ts";

/** One recording session: its neurons (indices into the response array's last axis). */
export interface SessionInfo {
  /** The session id of the `session` array. */
  id: number;
  /** Neuron indices, ascending. */
  neurons: number[];
}

/** Images of one session in one split with repeat-averaged targets. */
export interface SessionSplit {
  /** Image indices. */
  images: number[];
  /** Targets [images, neurons of the session], NaN replaced by 0. */
  targets: Float32Array;
  /** 1 where recorded, 0 where not [images, neurons of the session]. */
  mask: Float32Array;
}

/** The prepared data set. */
export interface PredictorData {
  /** Model inputs NHWC [N, size, size, 1], TIN-normalised. */
  inputs: NdArray<"float32">;
  /** Responses [repeats, N, neurons], NaN where not recorded. */
  responses: NdArray<"float32">;
  /** Split per image (0 train, 1 validation, 2 test). */
  split: Uint8Array;
  /** Noise-free rates [N, neurons] when the data set has them (simulations). */
  rates?: NdArray<"float32">;
  /** Sessions in ascending id order. */
  sessions: SessionInfo[];
  /** Per session (same order), the recorded images of each split. */
  bySession: { train: SessionSplit; validation: SessionSplit; test: SessionSplit }[];
}

/** Options of {@linkcode preparePredictorData}. */
export interface PrepareOptions {
  /** Model input side in pixels (default 64). */
  size?: number;
  /** Centre crop in source pixels (default: the shorter side). */
  crop?: number;
}

/** The sessions of a `session` array (neurons grouped by id, ids ascending). */
export function sessionsOf(session: ArrayLike<number>): SessionInfo[] {
  const by = new Map<number, number[]>();
  for (let k = 0; k < session.length; k++) {
    const s = session[k];
    if (!by.has(s)) by.set(s, []);
    by.get(s)!.push(k);
  }
  return [...by.keys()].sort((a, b) => a - b).map((id) => ({ id, neurons: by.get(id)! }));
}

function sessionSplit(
  responses: NdArray<"float32">,
  split: Uint8Array,
  code: number,
  neurons: number[],
): SessionSplit {
  const [R, N, K] = responses.shape;
  const d = responses.data;
  const images: number[] = [];
  const targets: number[] = [];
  const mask: number[] = [];
  for (let n = 0; n < N; n++) {
    if (split[n] !== code) continue;
    const t = new Array<number>(neurons.length).fill(0);
    const m = new Array<number>(neurons.length).fill(0);
    let any = false;
    for (let j = 0; j < neurons.length; j++) {
      let s = 0, c = 0;
      for (let r = 0; r < R; r++) {
        const v = d[(r * N + n) * K + neurons[j]];
        if (Number.isFinite(v)) {
          s += v;
          c++;
        }
      }
      if (c > 0) {
        t[j] = s / c;
        m[j] = 1;
        any = true;
      }
    }
    if (!any) continue;
    images.push(n);
    targets.push(...t);
    mask.push(...m);
  }
  return { images, targets: Float32Array.from(targets), mask: Float32Array.from(mask) };
}

/** Prepares a V1 data set for the predictor. */
export function preparePredictorData(v1: V1Arrays, options: PrepareOptions = {}): PredictorData {
  const inputs = toModelInput(v1.images, { size: options.size ?? 64, crop: options.crop });
  const split = v1.split.data as Uint8Array;
  const sessions = sessionsOf(v1.session.data as Int32Array);
  if (sessions.length === 0) throw CoreError.invalidArgument("session: no neurons");
  const bySession = sessions.map((s) => ({
    train: sessionSplit(v1.responses, split, SPLIT.train, s.neurons),
    validation: sessionSplit(v1.responses, split, SPLIT.validation, s.neurons),
    test: sessionSplit(v1.responses, split, SPLIT.test, s.neurons),
  }));
  if (bySession.every((b) => b.train.images.length === 0)) {
    throw CoreError.invalidArgument("split: no training image has a recorded response");
  }
  return {
    inputs,
    responses: v1.responses,
    split,
    rates: v1.rates,
    sessions,
    bySession,
  };
}

/** Indices of the images of one split. */
export function imagesOfSplit(split: Uint8Array, code: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < split.length; n++) if (split[n] === code) out.push(n);
  return out;
}

/** Rows `rows` of a row-major array whose rows have `width` values. */
export function takeRows(data: Float32Array, rows: number[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) {
    out.set(data.subarray(rows[i] * width, (rows[i] + 1) * width), i * width);
  }
  return out;
}

/** Responses [R, N, K] restricted to the images `rows`: [R, rows.length, K]. */
export function takeResponseImages(responses: NdArray<"float32">, rows: number[]): Float32Array {
  const [R, N, K] = responses.shape;
  const out = new Float32Array(R * rows.length * K);
  for (let r = 0; r < R; r++) {
    for (let i = 0; i < rows.length; i++) {
      const src = (r * N + rows[i]) * K;
      out.set(responses.data.subarray(src, src + K), (r * rows.length + i) * K);
    }
  }
  return out;
}
