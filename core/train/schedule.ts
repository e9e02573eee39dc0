/**
 * The paper's learning-rate schedule (SPEC.md section 4): ReduceLROnPlateau on a validation metric
 * that should go up (accuracy, correlation), patience 5, at most 5 drops, min lr 1e-4. When patience
 * runs out the trainer restores the best weights and goes on at the lower lr; after the last
 * allowed drop runs out of patience (or lr is at its minimum), training stops. The best checkpoint
 * is the final model.
 *
 * The schedule only decides; the trainer snapshots and restores weights. Its state is plain JSON so
 * it travels in checkpoints.
 *
 * @example
 * ```ts
 * import { PlateauSchedule } from "./schedule.ts";
 * const s = new PlateauSchedule({ lr: 0.1, factor: 0.4 });
 * const d = s.observe(0.52); // { improved: true, decayed: false, stop: false, lr: 0.1 }
 * ```
 * @module
 */

/** Settings of the plateau schedule. */
export interface PlateauOptions {
  /** Initial learning rate. */
  lr: number;
  /** Multiplier applied at each drop (0.4 Baseline, 0.3 MTL, 0.5 predictor). */
  factor: number;
  /** Epochs without improvement before a drop (default 5). */
  patience?: number;
  /** Most drops (default 5). */
  maxDrops?: number;
  /** Lowest learning rate (default 1e-4). */
  minLr?: number;
  /** Relative improvement needed to count as better (PyTorch's default threshold 1e-4, rel). */
  threshold?: number;
}

/** What the trainer must do after an epoch. */
export interface PlateauDecision {
  /** The metric is the best so far: save the weights as the best. */
  improved: boolean;
  /** Patience ran out: restore the best weights and continue at the new `lr`. */
  decayed: boolean;
  /** Training is over: restore the best weights and stop. */
  stop: boolean;
  /** Learning rate for the next epoch. */
  lr: number;
}

/** Serialisable state of the schedule. */
export interface PlateauState {
  lr: number;
  best: number | null;
  bestEpoch: number;
  epoch: number;
  badEpochs: number;
  drops: number;
}

/** ReduceLROnPlateau with best-weight restore and a limit on drops. */
export class PlateauSchedule {
  readonly options: Required<PlateauOptions>;
  #s: PlateauState;

  constructor(options: PlateauOptions, state?: PlateauState) {
    this.options = {
      patience: 5,
      maxDrops: 5,
      minLr: 1e-4,
      threshold: 1e-4,
      ...options,
    };
    this.#s = state ?? {
      lr: options.lr,
      best: null,
      bestEpoch: 0,
      epoch: 0,
      badEpochs: 0,
      drops: 0,
    };
  }

  /** Current learning rate. */
  get lr(): number {
    return this.#s.lr;
  }

  /** The state, for a checkpoint. */
  get state(): PlateauState {
    return { ...this.#s };
  }

  /** Feeds the validation metric of the epoch just finished. */
  observe(metric: number): PlateauDecision {
    const s = this.#s;
    s.epoch++;
    const { patience, maxDrops, minLr, factor, threshold } = this.options;
    const better = s.best === null || metric > s.best * (1 + Math.sign(s.best) * threshold) ||
      (s.best === 0 && metric > 0);
    if (Number.isFinite(metric) && better) {
      s.best = metric;
      s.bestEpoch = s.epoch;
      s.badEpochs = 0;
      return { improved: true, decayed: false, stop: false, lr: s.lr };
    }
    s.badEpochs++;
    if (s.badEpochs <= patience) return { improved: false, decayed: false, stop: false, lr: s.lr };
    s.badEpochs = 0;
    if (s.drops >= maxDrops || s.lr <= minLr) {
      return { improved: false, decayed: false, stop: true, lr: s.lr };
    }
    s.drops++;
    s.lr = Math.max(minLr, s.lr * factor);
    return { improved: false, decayed: true, stop: false, lr: s.lr };
  }
}
