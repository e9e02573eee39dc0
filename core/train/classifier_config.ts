/**
 * The settings of a classifier-training run (SPEC.md section 4) and their checks: the model kind
 * (Baseline, MTL, MTL-Shuffled, Oracle stage 1 and 2), the paper's optimiser and schedule (SGD lr 0.1, momentum 0.75,
 * weight decay 5e-4; plateau factor 0.4 for the Baseline, 0.3 for MTL), batch sizes, the batch
 * ratio of the cycler and the maximum number of epochs.
 *
 * @example
 * ```ts
 * import { resolveTrainConfig } from "./classifier_config.ts";
 * const c = resolveTrainConfig({ kind: "mtl", maxEpochs: 3, width: 0.125 });
 * console.log(c.lr, c.factor, c.ratio); // 0.1 0.3 1
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";
import { parseRatio } from "./batch_cycler.ts";

/**
 * The networks this trainer builds (MTL-Monkey and MTL-Oracle are `mtl` with other targets;
 * `oracle` is the Oracle's stage 1, `oracle-stage2` its stage 2).
 */
export const MODEL_KINDS = ["baseline", "mtl", "mtl-shuffled", "oracle", "oracle-stage2"] as const;
/** One of {@linkcode MODEL_KINDS}. */
export type ModelKind = typeof MODEL_KINDS[number];

/** Aliases accepted for the kinds (the paper's names). */
export const KIND_ALIASES: Record<string, ModelKind> = {
  "baseline": "baseline",
  "mtl": "mtl",
  "mtl-monkey": "mtl",
  "mtl-oracle": "mtl",
  "mtl-shuffled": "mtl-shuffled",
  "oracle": "oracle",
  "oracle-stage1": "oracle",
  "oracle-stage2": "oracle-stage2",
};

/**
 * The request-level kind that runs both Oracle stages in one call (services/classifier-trainer:
 * stage 1, then stage 2 on its network, each its own job); not a kind of a single run.
 */
export const ORACLE_TWO_STAGE = "oracle-two-stage";

/**
 * The demo scale of the classifier (issue 6): the built-in image set and the Baseline settings
 * with which VGG-19-BN at width 1/8 reaches at least 70% test accuracy
 * (test/classifier_demo_test.ts; measured 0.81 after 10 epochs). Paper optimiser (SGD, momentum
 * 0.75, weight decay 5e-4); what the scale changes: lr 0.02 at batch 32 (0.05 and 0.1 stalled near
 * 25% within 6 epochs, 0.01 reached 0.76 in 10), the last head conv's init scaled by 0.01 (logits
 * start near 0, CE at chance) and 300 images per class (100 per class left the network at ~20%
 * after 8 epochs: it needs ~1000 steps of distinct images). 32 px keeps an epoch at ~8 s on two
 * cores. The service's dataset URI of the same images: {@linkcode DEMO_DATASET_URI}.
 */
export const DEMO_SCALE = Object.freeze({
  imageSet: Object.freeze({
    classes: 10,
    trainPerClass: 300,
    valPerClass: 50,
    testPerClass: 50,
    size: 32,
    seed: 0,
  }),
  training: Object.freeze({
    kind: "baseline",
    width: 0.125,
    batchSize: 32,
    neuralBatchSize: 32,
    maxEpochs: 12,
    lr: 0.02,
    headInitScale: 0.01,
    augment: false,
    seed: 0,
  }),
});

/** {@linkcode DEMO_SCALE}'s image set as classifier-trainer's `dataset_uri`. */
export const DEMO_DATASET_URI =
  "builtin:image-set?classes=10&train_per_class=300&val_per_class=50&test_per_class=50&size=32&seed=0";

/** A run's settings, every field resolved. */
export interface TrainConfig {
  kind: ModelKind;
  /** VGG width multiplier (1 = the paper). */
  width: number;
  /** Seed of initialisation, data order, augmentation and dropout. */
  seed: number;
  /** Most epochs (400 Baseline, 407 MTL in the paper). */
  maxEpochs: number;
  /** Classification batch size (128 in the paper). */
  batchSize: number;
  /** Neural batch size (128 in the paper). */
  neuralBatchSize: number;
  /** Neural batches per classification batch (r:1 -> r, 1:k -> 1/k). */
  ratio: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Plateau decay factor (0.4 Baseline, 0.3 MTL). */
  factor: number;
  patience: number;
  maxDrops: number;
  minLr: number;
  /** Random crop (pad 4), flip and rotation (+-15 degrees) of classification batches. */
  augment: boolean;
  /** Seed of the permutation of MTL-Shuffled's targets. */
  shuffleSeed: number;
  /**
   * Multiplier of the last head conv's initial weights (1 = the paper's kaiming fan_out). With few
   * classes the paper's init gives huge initial logits (kaiming fan_out std sqrt(2 / classes): CE
   * ~ 10-30 at 4 classes), and SGD at lr 0.1 diverges; smoke runs use ~sqrt(classes / 200).
   */
  headInitScale: number;
  /** Oracle stage 1: weight lambda of the conv3_1 feature-consistency MSE (default 1). */
  oracleLambda: number;
}

/** A run's settings as a caller gives them: the kind, anything else optional. */
export type TrainConfigInput = Partial<Omit<TrainConfig, "kind" | "ratio">> & {
  kind: string;
  /** `"r:1"`, `"1:k"` or a number of neural batches per classification batch. */
  ratio?: number | string;
};

/** Whether a kind trains the neural branch. */
export function isMtl(kind: ModelKind): boolean {
  return kind === "mtl" || kind === "mtl-shuffled";
}

function positive(name: string, v: number, integer = false): number {
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw CoreError.invalidArgument(
      `${name}: ${v} must be a ${integer ? "whole number" : "number"} > 0`,
    );
  }
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw CoreError.invalidArgument(`${name}: ${v} must be >= 0`);
  return v;
}

/** Fills defaults (the paper's) and checks every field (INVALID_ARGUMENT naming it). */
export function resolveTrainConfig(input: TrainConfigInput): TrainConfig {
  const kind = KIND_ALIASES[input.kind];
  if (!kind) {
    throw CoreError.invalidArgument(
      `model: unknown kind ${JSON.stringify(input.kind)}; allowed: ${
        [...Object.keys(KIND_ALIASES), ORACLE_TWO_STAGE].join(", ")
      }`,
    );
  }
  const mtl = isMtl(kind);
  const c: TrainConfig = {
    kind,
    width: input.width ?? 1,
    seed: input.seed ?? 0,
    maxEpochs: input.maxEpochs ?? (mtl ? 407 : 400),
    batchSize: input.batchSize ?? 128,
    neuralBatchSize: input.neuralBatchSize ?? 128,
    ratio: 1,
    lr: input.lr ?? 0.1,
    momentum: input.momentum ?? 0.75,
    weightDecay: input.weightDecay ?? 5e-4,
    factor: input.factor ?? (mtl ? 0.3 : 0.4),
    patience: input.patience ?? 5,
    maxDrops: input.maxDrops ?? 5,
    minLr: input.minLr ?? 1e-4,
    augment: input.augment ?? true,
    shuffleSeed: input.shuffleSeed ?? 0,
    headInitScale: input.headInitScale ?? 1,
    oracleLambda: input.oracleLambda ?? 1,
  };
  positive("width", c.width);
  if (c.width > 4) throw CoreError.invalidArgument(`width: ${c.width} must be <= 4`);
  if (!Number.isSafeInteger(c.seed)) throw CoreError.invalidArgument(`seed: ${c.seed}`);
  positive("max_epochs", c.maxEpochs, true);
  positive("batch_size", c.batchSize, true);
  positive("neural_batch_size", c.neuralBatchSize, true);
  c.ratio = parseRatio(input.ratio ?? 1, "neural_ratio");
  if (!Number.isFinite(c.lr) || c.lr < 0) {
    throw CoreError.invalidArgument(`lr: ${c.lr} must be >= 0 (the paper uses 0.1)`);
  }
  if (!(c.momentum >= 0 && c.momentum < 1)) {
    throw CoreError.invalidArgument(`momentum: ${c.momentum} must be in [0, 1)`);
  }
  nonNegative("weight_decay", c.weightDecay);
  if (!(c.factor > 0 && c.factor < 1)) {
    throw CoreError.invalidArgument(`lr_factor: ${c.factor} must be in (0, 1)`);
  }
  nonNegative("patience", c.patience);
  nonNegative("max_drops", c.maxDrops);
  nonNegative("min_lr", c.minLr);
  positive("head_init_scale", c.headInitScale);
  nonNegative("oracle_lambda", c.oracleLambda);
  return c;
}
