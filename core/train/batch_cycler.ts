/**
 * The batch cycler of MTL training (SPEC.md section 4): one optimizer step accumulates the
 * gradients of one classification batch and of the neural batches the ratio asks for. A ratio
 * r:1 with r >= 1 means r neural batches per classification batch; r < 1 (1:k) means one neural
 * batch every k classification batches. The paper's Fig. 3C ratios are {@linkcode PAPER_RATIOS}.
 *
 * Both data sets are walked in seeded shuffled order, epoch after epoch, independently: the
 * classification set defines the epoch; the neural set simply cycles.
 *
 * @example
 * ```ts
 * import { IndexCycler, neuralBatchesAt, parseRatio } from "./batch_cycler.ts";
 * const r = parseRatio("1:4"); // 0.25
 * console.log([0, 1, 2, 3, 4].map((s) => neuralBatchesAt(s, r))); // [ 1, 0, 0, 0, 1 ]
 * const c = new IndexCycler(10, 4, 7);
 * console.log(c.next().length); // 4
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";

/** The batch ratios of the paper's Fig. 3C, as neural : classification. */
export const PAPER_RATIOS = [
  "1:15",
  "1:10",
  "1:7",
  "1:5",
  "1:4",
  "1:3",
  "1:2",
  "1:1",
  "2:1",
  "3:1",
  "4:1",
  "5:1",
] as const;

/**
 * A ratio as a number of neural batches per classification batch: `"r:1"`, `"1:k"` or a number.
 * Ratios >= 1 must be whole numbers, ratios < 1 must be 1/k for a whole k (INVALID_ARGUMENT
 * naming `field` otherwise).
 */
export function parseRatio(ratio: string | number, field = "ratio"): number {
  let r: number;
  if (typeof ratio === "number") r = ratio;
  else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(ratio);
    r = m ? Number(m[1]) / Number(m[2]) : Number(ratio);
  }
  if (!Number.isFinite(r) || r <= 0) {
    throw CoreError.invalidArgument(
      `${field}: ${JSON.stringify(ratio)} must be > 0 (neural:classification, e.g. "1:4", "2:1")`,
    );
  }
  if (r >= 1) {
    if (Math.abs(r - Math.round(r)) > 1e-9) {
      throw CoreError.invalidArgument(`${field}: ${JSON.stringify(ratio)}: r:1 needs a whole r`);
    }
  } else if (Math.abs(1 / r - Math.round(1 / r)) > 1e-6) {
    throw CoreError.invalidArgument(`${field}: ${JSON.stringify(ratio)}: 1:k needs a whole k`);
  }
  return r;
}

/** How many neural batches classification step `step` (0-based, counted over the run) takes. */
export function neuralBatchesAt(step: number, ratio: number): number {
  if (ratio >= 1) return Math.round(ratio);
  const every = Math.round(1 / ratio);
  return step % every === 0 ? 1 : 0;
}

/** mulberry32: a small seeded generator for permutations. */
export function mulberry32(seed: number): () => number {
  let a = (seed >>> 0) ^ 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Endless batches of row indices into a set of `n` rows: a fresh seeded permutation per pass,
 * batches of `batch` (the last one of a pass may be shorter). Its position is plain numbers, so
 * it can be checkpointed.
 */
export class IndexCycler {
  readonly n: number;
  readonly batch: number;
  readonly seed: number;
  #pass: number;
  #pos: number;
  #perm: Int32Array;

  constructor(n: number, batch: number, seed: number, state?: { pass: number; pos: number }) {
    if (!(n > 0) || !(batch > 0)) {
      throw CoreError.invalidArgument(
        `batch cycler: need n > 0 and batch > 0 (got ${n}, ${batch})`,
      );
    }
    this.n = n;
    this.batch = batch;
    this.seed = seed;
    this.#pass = state?.pass ?? 0;
    this.#pos = state?.pos ?? 0;
    this.#perm = permutation(n, seed * 7919 + this.#pass);
  }

  /** Where the cycler is (pass number, position in the pass). */
  get state(): { pass: number; pos: number } {
    return { pass: this.#pass, pos: this.#pos };
  }

  /** The next batch of row indices. */
  next(): Int32Array {
    if (this.#pos >= this.n) {
      this.#pass++;
      this.#pos = 0;
      this.#perm = permutation(this.n, this.seed * 7919 + this.#pass);
    }
    const end = Math.min(this.n, this.#pos + this.batch);
    const rows = this.#perm.slice(this.#pos, end);
    this.#pos = end;
    return rows;
  }
}

/** The classification batches of one epoch: a seeded permutation cut into batches. */
export function epochBatches(n: number, batch: number, seed: number, epoch: number): Int32Array[] {
  const p = permutation(n, seed * 104729 + epoch);
  const out: Int32Array[] = [];
  for (let i = 0; i < n; i += batch) out.push(p.slice(i, Math.min(n, i + batch)));
  return out;
}
