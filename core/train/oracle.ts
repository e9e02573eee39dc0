/**
 * The Oracle control (SPEC.md section 4, "Oracle (two stages)"):
 *
 * - stage 1 trains the whole network on a 1:1 mix of clean and corrupted images (corruption drawn
 *   uniformly from the paper's 14, severity uniformly from 1..5, per image, seeded) plus a
 *   feature-consistency loss, lambda times the mean squared distance between the conv3_1 outputs
 *   of two differently corrupted copies of the same image;
 * - stage 2 freezes the trunk up to conv3_1 (weights and BN statistics: it runs in eval mode),
 *   re-initialises the rest and retrains it on clean images.
 *
 * This module makes stage 1's batches and stage 2's network; core/train/classifier.ts runs both.
 *
 * @example
 * ```ts
 * import { oracleBatch } from "./oracle.ts";
 * const images = { dtype: "uint8" as const, shape: [2, 32, 32], data: new Uint8Array(2048).fill(128) };
 * const b = oracleBatch(images, Int32Array.from([0, 1]), { seed: 0, epoch: 1, augment: false });
 * console.log(b.clean.shape, b.corruptedA.shape, b.choices[0].a.corruption !== b.choices[0].b.corruption);
 * // [ 2, 32, 32, 1 ] [ 2, 32, 32, 1 ] true
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { corruptBatch, PAPER_14 } from "../corruptions/mod.ts";
import { augment, normalizeTin } from "../data/augment.ts";
import type { NdArray } from "../io/ndarray.ts";
import {
  createMtl,
  type MtlModel,
  mtlParams,
  SHARED_LAYER,
  sharedParamNames,
} from "../models/mtl.ts";
import type { VggModel } from "../models/vgg.ts";
import { mulberry32 } from "./batch_cycler.ts";

/** One image's two corruptions. */
export interface OracleChoice {
  a: { corruption: string; severity: number };
  b: { corruption: string; severity: number };
}

/** Stage 1's inputs for a batch of rows: clean, corrupted (A) and differently corrupted (B). */
export interface OracleBatch {
  clean: NdArray<"float32">;
  corruptedA: NdArray<"float32">;
  corruptedB: NdArray<"float32">;
  choices: OracleChoice[];
}

/** The corruptions of image `row` in `epoch`: two different ones of the 14, severities 1..5. */
export function oracleChoice(seed: number, epoch: number, row: number): OracleChoice {
  const rand = mulberry32(((seed * 1_000_003) ^ (epoch * 7919) ^ (row * 104_729)) >>> 0);
  const ia = Math.floor(rand() * PAPER_14.length);
  const ib = (ia + 1 + Math.floor(rand() * (PAPER_14.length - 1))) % PAPER_14.length;
  return {
    a: { corruption: PAPER_14[ia], severity: 1 + Math.floor(rand() * 5) },
    b: { corruption: PAPER_14[ib], severity: 1 + Math.floor(rand() * 5) },
  };
}

/** Builds stage 1's three views of rows `rows` of uint8 images [N, H, W]. */
export function oracleBatch(
  images: NdArray<"uint8">,
  rows: Int32Array,
  options: { seed: number; epoch: number; augment: boolean },
): OracleBatch {
  const [, h, w] = images.shape;
  const px = h * w;
  const n = rows.length;
  const picked = new Uint8Array(n * px);
  for (let k = 0; k < n; k++) {
    picked.set(images.data.subarray(rows[k] * px, (rows[k] + 1) * px), k * px);
  }
  let base: NdArray<"uint8"> = { dtype: "uint8", shape: [n, h, w], data: picked };
  if (options.augment) base = augment(base, rows, { seed: options.seed, epoch: options.epoch });
  const a = new Uint8Array(n * px);
  const b = new Uint8Array(n * px);
  const choices: OracleChoice[] = [];
  for (let k = 0; k < n; k++) {
    const c = oracleChoice(options.seed, options.epoch, rows[k]);
    choices.push(c);
    const one = {
      dtype: "uint8" as const,
      shape: [1, h, w],
      data: base.data.subarray(k * px, (k + 1) * px),
    };
    const common = { seed: options.seed * 4099 + options.epoch, indexOffset: rows[k] };
    a.set(corruptBatch(one, { ...c.a, ...common }).data as Uint8Array, k * px);
    b.set(corruptBatch(one, { ...c.b, ...common }).data as Uint8Array, k * px);
  }
  return {
    clean: normalizeTin(base),
    corruptedA: normalizeTin({ dtype: "uint8", shape: [n, h, w], data: a }),
    corruptedB: normalizeTin({ dtype: "uint8", shape: [n, h, w], data: b }),
    choices,
  };
}

/**
 * Stage 2's network: the stage-1 network's trunk up to conv3_1 (copied), the rest freshly
 * initialised from `seed`. Returns the new network and the names of the frozen variables.
 */
export function oracleStage2(
  stage1: MtlModel,
  seed: number,
): { model: MtlModel; frozen: Set<string> } {
  const model = createMtl({ ...stage1.config, neurons: 0, seed });
  const frozen = new Set(sharedParamNames(model));
  const src = mtlParams(stage1);
  const dst = mtlParams(model);
  for (const name of frozen) dst.get(name)!.assign(src.get(name)!);
  return { model, frozen };
}

/** The VGG after conv3_1 as a model of its own (same variables), so it can run from features. */
export function vggTail(vgg: VggModel): VggModel {
  const i = vgg.layers.findIndex((l) => l.name === SHARED_LAYER);
  const l = vgg.layers[i];
  if (l.kind !== "conv") throw new Error(`no ${SHARED_LAYER}`);
  return {
    ...vgg,
    config: { ...vgg.config, inChannels: l.outChannels },
    layers: vgg.layers.slice(i + 1),
  };
}

/** Mean squared distance between two feature maps (the consistency term). */
export function featureConsistency(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.mean(tf.squaredDifference(a, b)) as tf.Scalar;
}
