/**
 * A simulated macaque V1 population: the stand-in for the paper's recordings (SPEC.md section 8),
 * with known noise-free rates so that FEV and FEVe have a ground truth.
 *
 * The model, top to bottom:
 * 1. Neurons sit in recording sessions (default 458 neurons in 32 sessions, as in the paper). The
 *    stimulus was centred on the recorded population, so each session's receptive fields cluster
 *    around a session centre near the image centre (a 32-channel depth electrode records a column:
 *    overlapping RFs), within about 1 deg of it.
 * 2. Each neuron has a Gabor receptive field (Jones and Palmer 1987; Ringach 2002) on a 64 x 64
 *    image at 14 px/deg: preferred orientation, spatial frequency, phase, envelope size tied to the
 *    frequency by the octave bandwidth, and an aspect ratio, drawn from the distributions below.
 * 3. Simple cells: half-squared linear response of the Gabor (Heeger 1992). Complex cells: the
 *    energy model, the sum of squares of a quadrature pair (Adelson and Bergen 1985). The mix of
 *    the two follows the bimodal F1/F0 distribution (Skottun et al. 1991).
 * 4. Divisive normalisation (Heeger 1992; Carandini and Heeger 2012): the drive is divided by a
 *    semi-saturation constant plus a pool that holds the neuron's own quadrature energy and the
 *    untuned local contrast energy (pixel variance in a Gaussian field 1.5x the RF: the
 *    normalisation field extends past the classical RF, Cavanaugh, Bair and Movshon 2002). The
 *    pool is untuned, so normalisation scales responses without moving the tuning peak, and the
 *    ratio stays below 1, so strong stimuli saturate.
 * 5. Expected spike count in the 120 ms window: baseline + gain * normalised response, under a
 *    soft ceiling of 40. Each neuron's semi-saturation constant, gain and baseline are calibrated
 *    once on a fixed set of 1/f noise images (the spectrum of natural images, Field 1987) to a
 *    drawn mean and 95th-percentile count, so a neuron's rate for an image never depends on
 *    which other images are simulated. On natural-like images the counts average ~2.5 per window
 *    (the 99th percentile is ~14, the largest ~30).
 * 6. Spike counts are Poisson (Tolhurst, Movshon and Dean 1983), optionally with a multiplicative
 *    gamma gain per trial (Goris, Movshon and Simoncelli 2014) for super-Poisson variability.
 * 7. Trials as in the paper: training and validation images are shown once per session that
 *    shows them; test images are shown in every session, `testRepeats` (default 40) times.
 *
 * Everything is seeded: the same seed and images give the same bytes. Rates are expected counts
 * per 120 ms window (not spikes/s).
 *
 * @example
 * ```ts
 * import { pinkNoiseImages, simulateV1 } from "./simulated_v1.ts";
 *
 * const images = pinkNoiseImages(100, 64, 1);
 * const sim = simulateV1(images, { neurons: 8, sessions: 2, testImages: 10, seed: 7 });
 * console.log(sim.arrays.responses.shape); // [ 40, 100, 8 ]
 * ```
 * @module
 */

import { CoreError } from "../errors.ts";
import type { NdArray } from "../io/mod.ts";
import { rngFor } from "../random.ts";
import { SPLIT, type V1Arrays } from "./v1_arrays.ts";
import { fft2d } from "../fft.ts";

// Purpose tags of the random streams (rngFor(seed, TAG, ...)).
const STREAM_SESSION = 1;
const STREAM_NEURON = 2;
const STREAM_CALIBRATION = 3;
const STREAM_LAYOUT = 4;
const STREAM_SPIKES = 5;

/**
 * Configuration of the simulated population and experiment. Every field has a default (see
 * {@linkcode SIMULATED_V1_DEFAULTS}).
 *
 * @example
 * ```ts
 * import type { SimulatedV1Options } from "./simulated_v1.ts";
 * const small: SimulatedV1Options = { neurons: 24, sessions: 3, testImages: 20, seed: 1 };
 * ```
 */
export interface SimulatedV1Options {
  /** Seed of every random choice (a whole number). */
  seed?: number;
  /** Number of neurons (paper: 458). */
  neurons?: number;
  /** Number of recording sessions the neurons are split into, as evenly as possible (paper: 32). */
  sessions?: number;
  /** Pixels per degree of visual angle of the images (paper: 14 at 64 px). */
  pxPerDeg?: number;
  /** Fraction of simple cells; the rest are complex. */
  simpleFraction?: number;
  /** Median preferred spatial frequency, cycles/deg. */
  sfMedian?: number;
  /** Standard deviation of log2 preferred spatial frequency, octaves. */
  sfSdOctaves?: number;
  /** Limits of preferred spatial frequency, cycles/deg (the top stays below Nyquist). */
  sfRange?: [number, number];
  /** Mean and standard deviation of the spatial-frequency bandwidth (full width at half height), octaves. */
  bandwidthOctaves?: [mean: number, sd: number];
  /** Median of the RF aspect ratio (envelope length along the bars / across them). */
  aspectMedian?: number;
  /** Radius (deg) of the disc around the image centre that holds the session centres. */
  sessionSpreadDeg?: number;
  /** Standard deviation (deg) of each neuron's RF position around its session centre. */
  rfScatterDeg?: number;
  /** Normalisation pool envelope relative to the RF envelope. */
  poolScale?: number;
  /** Median over neurons of the mean spike count per 120 ms window on natural-like images. */
  meanCount?: number;
  /** Upper limit of a neuron's 95th-percentile count per window on natural-like images. */
  peakCount?: number;
  /** Number of test images (chosen at random unless `split` is given; paper: 75). */
  testImages?: number;
  /** Fraction of the non-test images held out for validation (chosen at random). */
  validationFraction?: number;
  /** Explicit split per image (0 train, 1 validation, 2 test); overrides the two above. */
  split?: ArrayLike<number>;
  /** Repeats of each test image per session (paper: 40 to 50). */
  testRepeats?: number;
  /**
   * When larger than `testRepeats`, each session draws its repeat count uniformly in
   * [testRepeats, testRepeatsMax] (the paper: 40 to 50). Default: `testRepeats`.
   */
  testRepeatsMax?: number;
  /**
   * In how many sessions each training/validation image is shown (once each); the others record
   * NaN. Default: all sessions (every neuron sees every image). 1 gives one session per image;
   * the paper's sessions each showed ~15,000 of 24,000 images, i.e. ~0.6 x sessions.
   */
  trainSessions?: number;
  /** Standard deviation of a per-trial multiplicative gamma gain (0 = pure Poisson). */
  gainNoise?: number;
}

/**
 * The defaults of {@linkcode SimulatedV1Options}.
 *
 * @example
 * ```ts
 * import { SIMULATED_V1_DEFAULTS } from "./simulated_v1.ts";
 * console.log(SIMULATED_V1_DEFAULTS.neurons, SIMULATED_V1_DEFAULTS.sessions); // 458 32
 * ```
 */
export const SIMULATED_V1_DEFAULTS = Object.freeze({
  seed: 0,
  neurons: 458,
  sessions: 32,
  pxPerDeg: 14,
  // Skottun et al. 1991 (Vision Res 31:1079): the F1/F0 ratio to drifting gratings is bimodal,
  // > 1 for simple and < 1 for complex cells; estimates of the simple-cell share in macaque V1
  // range from about a quarter to a half (e.g. Ringach, Shapley and Hawken 2002, J Neurosci
  // 22:5639). Simple cells here give F1/F0 ~1.1-1.6, complex cells ~0.
  simpleFraction: 0.4,
  // De Valois, Albrecht and Thorell 1982 (Vision Res 22:545): preferred spatial frequencies of
  // macaque V1 cells near the fovea spread over ~0.5 to 8+ cycles/deg, roughly log-normally, with
  // the bulk at 2-4 cycles/deg. Log-normal here with median 2.5 and 0.5 octave s.d., clipped to
  // [0.7, 5.6] (5.6 = 0.8 x the 7 cycles/deg Nyquist limit of 14 px/deg).
  sfMedian: 2.5,
  sfSdOctaves: 0.5,
  sfRange: [0.7, 5.6] as [number, number],
  // De Valois, Albrecht and Thorell 1982: spatial-frequency bandwidths (full width at half
  // height) range from ~0.5 to 3+ octaves with a median of ~1.4; normal here, clipped to
  // [0.8, 2.4]. The envelope width follows from it (see makeV1Population).
  bandwidthOctaves: [1.4, 0.35] as [number, number],
  // Ringach 2002 (J Neurophysiol 88:455): Gabor fits of macaque simple cells, (n_x, n_y) =
  // envelope s.d. x frequency across/along the bars; most RFs are compact to moderately
  // elongated, n_y / n_x mostly ~0.7 to 2. Log-normal aspect ratio, median 1.3, clipped [0.7, 3].
  aspectMedian: 1.3,
  sessionSpreadDeg: 0.5,
  rfScatterDeg: 0.2,
  // Cavanaugh, Bair and Movshon 2002 (J Neurophysiol 88:2530): the normalisation field (centre
  // plus suppressive surround) is larger than the classical RF, about twice its size on average.
  poolScale: 1.5,
  // Awake macaque V1 fires ~10-40 spikes/s to natural images: a few spikes in a 120 ms window
  // (the paper counts 40-160 ms after onset). Per neuron: mean ~ log-normal(2.5, 0.4), 95th
  // percentile 1.5-8x the mean and at most peakCount, spontaneous 5-20% of the mean.
  meanCount: 2.5,
  peakCount: 15,
  testImages: 75,
  validationFraction: 0.1,
  testRepeats: 40,
  trainSessions: 0, // 0 = all sessions
  gainNoise: 0,
});

/**
 * One model neuron. Angles in radians, positions and sizes in degrees (x right, y down, from the
 * image centre), frequency in cycles/deg, counts per 120 ms window.
 *
 * @example
 * ```ts
 * import { makeV1Population } from "./simulated_v1.ts";
 * const n = makeV1Population({ neurons: 2, sessions: 1 }).neurons[0];
 * console.log(n.complex ? "complex" : "simple", n.sf.toFixed(2), "cyc/deg");
 * ```
 */
export interface V1Neuron {
  /** Recording session (0-based). */
  session: number;
  /** Energy-model complex cell (true) or half-squared simple cell (false). */
  complex: boolean;
  /** RF centre, deg from the image centre (x right, y down). */
  x: number;
  /** See `x`. */
  y: number;
  /**
   * Preferred orientation: the direction of the luminance modulation (the grating's wave vector),
   * radians in [0, pi); 0 is vertical bars (luminance varies along x).
   */
  orientation: number;
  /** Preferred spatial frequency, cycles/deg. */
  sf: number;
  /** Spatial phase of the Gabor carrier at the RF centre, radians. */
  phase: number;
  /** Spatial-frequency bandwidth, octaves. */
  bandwidth: number;
  /** Envelope standard deviation across the bars (along the wave vector), deg. */
  sigmaAcross: number;
  /** Envelope standard deviation along the bars, deg. */
  sigmaAlong: number;
  /** Semi-saturation constant (squared contrast-energy units of the unit-norm filters). */
  semiSaturation: number;
  /** Gain from normalised response to expected count. */
  gain: number;
  /** Spontaneous expected count per window. */
  baseline: number;
}

/**
 * A population: the options it was made with and its neurons (ordered by session).
 *
 * @example
 * ```ts
 * import { makeV1Population } from "./simulated_v1.ts";
 * const pop = makeV1Population({ neurons: 6, sessions: 3 });
 * console.log(pop.neurons.map((n) => n.session)); // [ 0, 0, 1, 1, 2, 2 ]
 * ```
 */
export interface V1Population {
  options: Readonly<Required<Omit<SimulatedV1Options, "split">>>;
  neurons: V1Neuron[];
}

/**
 * The simulated experiment: the arrays in the layout of `v1_arrays.ts` (with the noise-free
 * `rates`), the population, and the number of test repeats of each session.
 *
 * @example
 * ```ts
 * import type { SimulatedV1 } from "./simulated_v1.ts";
 * const testRepeatsOf = (sim: SimulatedV1, session: number) => sim.testRepeats[session];
 * ```
 */
export interface SimulatedV1 {
  arrays: V1Arrays & { rates: NdArray<"float32"> };
  population: V1Population;
  /** Repeats of each test image per session. */
  testRepeats: Int32Array;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function resolve(options: SimulatedV1Options): V1Population["options"] {
  const merged: Record<string, unknown> = { ...SIMULATED_V1_DEFAULTS };
  for (const [k, v] of Object.entries(options ?? {})) if (v !== undefined) merged[k] = v;
  const o = merged as Required<SimulatedV1Options>;
  const whole = (name: string, v: number, lo: number) => {
    if (!Number.isSafeInteger(v) || v < lo) {
      throw CoreError.invalidArgument(
        `simulated_v1: ${name} is ${v}; expected a whole number >= ${lo}`,
      );
    }
  };
  const positive = (name: string, v: number) => {
    if (!(v > 0) || !Number.isFinite(v)) {
      throw CoreError.invalidArgument(`simulated_v1: ${name} is ${v}; expected a positive number`);
    }
  };
  whole("seed", o.seed, 0);
  whole("neurons", o.neurons, 1);
  whole("sessions", o.sessions, 1);
  if (o.sessions > o.neurons) {
    throw CoreError.invalidArgument(
      `simulated_v1: sessions (${o.sessions}) exceeds neurons (${o.neurons}); every session needs a neuron`,
    );
  }
  positive("pxPerDeg", o.pxPerDeg);
  positive("sfMedian", o.sfMedian);
  positive("aspectMedian", o.aspectMedian);
  positive("poolScale", o.poolScale);
  positive("meanCount", o.meanCount);
  positive("peakCount", o.peakCount);
  if (!(o.simpleFraction >= 0 && o.simpleFraction <= 1)) {
    throw CoreError.invalidArgument(
      `simulated_v1: simpleFraction is ${o.simpleFraction}; expected 0..1`,
    );
  }
  if (!(o.validationFraction >= 0 && o.validationFraction < 1)) {
    throw CoreError.invalidArgument(
      `simulated_v1: validationFraction is ${o.validationFraction}; expected 0 <= f < 1`,
    );
  }
  if (
    !(o.sfSdOctaves >= 0) || !(o.sessionSpreadDeg >= 0) || !(o.rfScatterDeg >= 0) ||
    !(o.gainNoise >= 0)
  ) {
    throw CoreError.invalidArgument(
      `simulated_v1: sfSdOctaves, sessionSpreadDeg, rfScatterDeg and gainNoise must be >= 0`,
    );
  }
  if (!(o.sfRange[0] > 0 && o.sfRange[1] >= o.sfRange[0])) {
    throw CoreError.invalidArgument(
      `simulated_v1: sfRange is [${o.sfRange}]; expected 0 < lo <= hi`,
    );
  }
  whole("testImages", o.testImages, 0);
  whole("testRepeats", o.testRepeats, 1);
  o.testRepeatsMax = options.testRepeatsMax ?? o.testRepeats;
  whole("testRepeatsMax", o.testRepeatsMax, 1);
  whole("trainSessions", o.trainSessions, 0);
  if (o.trainSessions > o.sessions) {
    throw CoreError.invalidArgument(
      `simulated_v1: trainSessions (${o.trainSessions}) exceeds sessions (${o.sessions})`,
    );
  }
  if (o.testRepeatsMax < o.testRepeats) {
    throw CoreError.invalidArgument(
      `simulated_v1: testRepeatsMax (${o.testRepeatsMax}) is less than testRepeats (${o.testRepeats})`,
    );
  }
  const { split: _split, ...rest } = o;
  return Object.freeze(rest);
}

// ---------------------------------------------------------------------------------------------
// Receptive fields as filters on an image grid

/**
 * The filters of one neuron on an image of a given size, cropped to a window around the RF and
 * interleaved per pixel: [Gabor at the phase, Gabor at phase + pi/2, normalisation-field weight].
 */
interface FilterBank {
  top: number;
  left: number;
  rows: number;
  cols: number;
  /** (rows * cols * 3) interleaved weights. */
  weights: Float32Array;
  /** Sum of the normalisation-field weights. */
  poolWeight: number;
  /**
   * Effective pixel count of the RF envelope, (sum env)^2 / sum env^2: the energy of the
   * quadrature pair for its optimal grating is this times the grating's pixel variance, so the
   * pool's local contrast energy is scaled by it into the same units.
   */
  kappa: number;
}

/**
 * One DC-free, unit-norm Gabor on the window: envelope with standard deviations (sa across, sl
 * along the bars) in deg, carrier cos(2 pi f u + phase) with u the coordinate along the wave
 * vector, measured from the RF centre.
 */
function gabor(
  bank: { top: number; left: number; rows: number; cols: number },
  cx: number,
  cy: number,
  ppd: number,
  orientation: number,
  sf: number,
  phase: number,
  sa: number,
  sl: number,
): Float32Array {
  const { top, left, rows, cols } = bank;
  const c = Math.cos(orientation), s = Math.sin(orientation);
  const env = new Float64Array(rows * cols);
  const g = new Float64Array(rows * cols);
  let sumEnv = 0, sumG = 0;
  for (let i = 0; i < rows; i++) {
    const dy = (top + i + 0.5 - cy) / ppd;
    for (let j = 0; j < cols; j++) {
      const dx = (left + j + 0.5 - cx) / ppd;
      const u = dx * c + dy * s; // across the bars
      const v = -dx * s + dy * c; // along the bars
      const e = Math.exp(-0.5 * ((u * u) / (sa * sa) + (v * v) / (sl * sl)));
      const k = i * cols + j;
      env[k] = e;
      g[k] = e * Math.cos(2 * Math.PI * sf * u + phase);
      sumEnv += e;
      sumG += g[k];
    }
  }
  // Remove the DC response under the envelope, then scale to unit energy.
  const dc = sumEnv > 0 ? sumG / sumEnv : 0;
  let norm = 0;
  for (let k = 0; k < g.length; k++) {
    g[k] -= dc * env[k];
    norm += g[k] * g[k];
  }
  const out = new Float32Array(g.length);
  const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let k = 0; k < g.length; k++) out[k] = g[k] * inv;
  return out;
}

function filterBank(n: V1Neuron, h: number, w: number, ppd: number, poolScale: number): FilterBank {
  const cx = w / 2 + n.x * ppd, cy = h / 2 + n.y * ppd;
  const { sigmaAcross: sa, sigmaAlong: sl } = n;
  const sp = poolScale * Math.sqrt(sa * sl); // isotropic normalisation field, deg
  const reach = 3 * Math.max(sa, sl, sp) * ppd;
  const top = Math.max(0, Math.floor(cy - reach)), bottom = Math.min(h, Math.ceil(cy + reach));
  const left = Math.max(0, Math.floor(cx - reach)), right = Math.min(w, Math.ceil(cx + reach));
  const win = { top, left, rows: Math.max(0, bottom - top), cols: Math.max(0, right - left) };
  const even = gabor(win, cx, cy, ppd, n.orientation, n.sf, n.phase, sa, sl);
  const odd = gabor(win, cx, cy, ppd, n.orientation, n.sf, n.phase + Math.PI / 2, sa, sl);
  const px = win.rows * win.cols;
  const weights = new Float32Array(px * 3);
  const c = Math.cos(n.orientation), s = Math.sin(n.orientation);
  let poolWeight = 0, envSum = 0, envSq = 0;
  for (let i = 0; i < win.rows; i++) {
    const dy = (top + i + 0.5 - cy) / ppd;
    for (let j = 0; j < win.cols; j++) {
      const dx = (left + j + 0.5 - cx) / ppd;
      const k = i * win.cols + j;
      const u = dx * c + dy * s, v = -dx * s + dy * c;
      const env = Math.exp(-0.5 * ((u * u) / (sa * sa) + (v * v) / (sl * sl)));
      envSum += env;
      envSq += env * env;
      const wp = Math.exp(-0.5 * (dx * dx + dy * dy) / (sp * sp));
      poolWeight += wp;
      weights[3 * k] = even[k];
      weights[3 * k + 1] = odd[k];
      weights[3 * k + 2] = wp;
    }
  }
  const kappa = envSq > 0 ? (envSum * envSum) / envSq : 0;
  return { ...win, weights, poolWeight, kappa };
}

/**
 * Drive (half-squared linear response for a simple cell, quadrature energy for a complex cell)
 * and normalisation pool (the neuron's own quadrature energy plus the local contrast energy:
 * the pixel variance weighted by the normalisation field, times `kappa`) of one neuron for one
 * image.
 */
function driveAndPool(n: V1Neuron, b: FilterBank, img: Float32Array, w: number): [number, number] {
  const wt = b.weights;
  let l0 = 0, l1 = 0, s1 = 0, s2 = 0;
  let k = 0;
  for (let i = 0; i < b.rows; i++) {
    let o = (b.top + i) * w + b.left;
    for (let j = 0; j < b.cols; j++, k += 3) {
      const v = img[o++];
      l0 += wt[k] * v;
      l1 += wt[k + 1] * v;
      const wv = wt[k + 2] * v;
      s1 += wv;
      s2 += wv * v;
    }
  }
  const energy = l0 * l0 + l1 * l1;
  const drive = n.complex ? energy : l0 > 0 ? l0 * l0 : 0;
  const m = s1 / b.poolWeight;
  const variance = Math.max(0, s2 / b.poolWeight - m * m);
  // The pool holds the neuron itself (Heeger 1992): drive <= energy, so the ratio stays below 1
  // and strong stimuli saturate; the untuned contrast term leaves the tuning's peak in place.
  return [drive, b.kappa * variance + energy];
}

// ---------------------------------------------------------------------------------------------
// Images

/** (N, H, W) images as one [0, 1] float32 plane per image, validated. */
function imagePlanes(
  images: NdArray,
  where = "images",
): { N: number; H: number; W: number; planes: (n: number) => Float32Array } {
  if (typeof images !== "object" || images === null || !Array.isArray(images.shape)) {
    throw CoreError.invalidArgument(`${where}: expected an array {dtype, shape, data}`);
  }
  const shape = images.shape;
  if (!(shape.length === 3 || (shape.length === 4 && shape[3] === 1))) {
    throw CoreError.invalidArgument(
      `${where}: shape (${shape.join(", ")}); expected (N, H, W) or (N, H, W, 1)`,
    );
  }
  const [N, H, W] = shape;
  if (!(H >= 8 && W >= 8) || N < 1) {
    throw CoreError.invalidArgument(
      `${where}: shape (${shape.join(", ")}); need N >= 1, H and W >= 8`,
    );
  }
  const data = images.data as ArrayLike<number>;
  if (data.length !== N * H * W) {
    throw CoreError.invalidArgument(
      `${where}: ${data.length} values for shape (${shape.join(", ")})`,
    );
  }
  let scale: number;
  if (images.dtype === "uint8") scale = 1 / 255;
  else if (images.dtype === "float32" || images.dtype === "float64") scale = 1;
  else {
    throw CoreError.invalidArgument(
      `${where}: dtype ${images.dtype}; expected uint8 (0..255) or float32 (0..1)`,
    );
  }
  const planes = (n: number) => {
    const p = new Float32Array(H * W);
    const o = n * H * W;
    for (let i = 0; i < H * W; i++) {
      const v = data[o + i] * scale;
      if (!(v >= 0 && v <= 1)) {
        throw CoreError.invalidArgument(
          `${where}: value ${
            data[o + i]
          } at image ${n}, pixel ${i}; float images must lie in [0, 1]`,
        );
      }
      p[i] = v;
    }
    return p;
  };
  return { N, H, W, planes };
}

/**
 * Seeded 1/f ("pink") noise images, the amplitude spectrum of natural images (Field 1987):
 * random phases, amplitude 1/f (DC removed), scaled to mean 0.5 and RMS contrast `rmsContrast`
 * (standard deviation / mean), clipped to [0, 1]. An (count, size, size) float32 array.
 *
 * @example
 * ```ts
 * import { pinkNoiseImages } from "./simulated_v1.ts";
 * const imgs = pinkNoiseImages(2, 32, 5);
 * console.log(imgs.shape); // [ 2, 32, 32 ]
 * ```
 */
export function pinkNoiseImages(
  count: number,
  size: number,
  seed: number,
  rmsContrast = 0.4,
  stream = 0,
): NdArray<"float32"> {
  if (
    !Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(size) || size < 2 ||
    (size & (size - 1)) !== 0
  ) {
    throw CoreError.invalidArgument(
      `pinkNoiseImages: count ${count}, size ${size}; expected count >= 0, size a power of two`,
    );
  }
  const out = new Float32Array(count * size * size);
  const re = new Float64Array(size * size), im = new Float64Array(size * size);
  for (let n = 0; n < count; n++) {
    const rng = rngFor(seed, STREAM_CALIBRATION, stream, n);
    for (let ky = 0; ky < size; ky++) {
      const fy = ky <= size / 2 ? ky : ky - size;
      for (let kx = 0; kx < size; kx++) {
        const fx = kx <= size / 2 ? kx : kx - size;
        const f = Math.hypot(fx, fy);
        const amp = f === 0 ? 0 : 1 / f;
        const ph = 2 * Math.PI * rng.uniform();
        re[ky * size + kx] = amp * Math.cos(ph);
        im[ky * size + kx] = amp * Math.sin(ph);
      }
    }
    // Inverse 2-D FFT; the real part is the image (its scale goes with the standardisation below).
    fft2d(re, im, size, true);
    const img = re;
    let mean = 0;
    for (let i = 0; i < img.length; i++) mean += img[i];
    mean /= size * size;
    let ss = 0;
    for (let i = 0; i < img.length; i++) ss += (img[i] - mean) ** 2;
    const sd = Math.sqrt(ss / img.length) || 1;
    const o = n * size * size;
    for (let i = 0; i < img.length; i++) {
      const v = 0.5 + 0.5 * rmsContrast * ((img[i] - mean) / sd);
      out[o + i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return { dtype: "float32", shape: [count, size, size], data: out };
}

/**
 * A full-field sinusoidal grating as a (size x size) float32 plane in [0, 1]:
 * `0.5 + 0.5 * contrast * cos(2 pi sf u + phase)`, where u (deg) runs along the wave vector at
 * angle `orientation` and is measured from the point (`x`, `y`) deg from the image centre.
 * Same conventions as {@linkcode V1Neuron}, so a simple cell's preferred stimulus is the grating
 * with its orientation, sf and phase at its RF centre.
 *
 * @example
 * ```ts
 * import { gratingImage } from "./simulated_v1.ts";
 * const g = gratingImage(64, { orientation: 0, sf: 2, phase: 0 });
 * console.log(g.length); // 4096
 * ```
 */
export function gratingImage(
  size: number,
  p: {
    orientation: number;
    sf: number;
    phase: number;
    contrast?: number;
    x?: number;
    y?: number;
    pxPerDeg?: number;
  },
): Float32Array {
  const ppd = p.pxPerDeg ?? SIMULATED_V1_DEFAULTS.pxPerDeg;
  const contrast = p.contrast ?? 1;
  const cx = size / 2 + (p.x ?? 0) * ppd, cy = size / 2 + (p.y ?? 0) * ppd;
  const c = Math.cos(p.orientation), s = Math.sin(p.orientation);
  const out = new Float32Array(size * size);
  for (let i = 0; i < size; i++) {
    const dy = (i + 0.5 - cy) / ppd;
    for (let j = 0; j < size; j++) {
      const dx = (j + 0.5 - cx) / ppd;
      out[i * size + j] = 0.5 +
        0.5 * contrast * Math.cos(2 * Math.PI * p.sf * (dx * c + dy * s) + p.phase);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The population

/** Number of 1/f noise images (64 x 64) that calibrate each neuron's semi-saturation and gain. */
const CALIBRATION_IMAGES = 128;
const CALIBRATION_SIZE = 64;

/**
 * Draws a population from the distributions documented on {@linkcode SIMULATED_V1_DEFAULTS} and
 * calibrates each neuron on 1/f noise images (64 x 64 at `pxPerDeg`, RMS contrast 0.4): the
 * semi-saturation constant is the median pool energy times a log-normal factor (c50 varies over a
 * decade across cells: Albrecht and Hamilton 1982; Sclar, Maunsell and Lennie 1990); gain and
 * baseline give the neuron its drawn mean and 95th-percentile counts on those images (baseline at
 * least the drawn spontaneous count; if that cannot hold, the mean alone is matched).
 *
 * @example
 * ```ts
 * import { makeV1Population } from "./simulated_v1.ts";
 * const pop = makeV1Population({ neurons: 10, sessions: 2, seed: 3 });
 * console.log(pop.neurons.length, pop.neurons.filter((n) => n.complex).length >= 0); // 10 true
 * ```
 */
export function makeV1Population(options: SimulatedV1Options = {}): V1Population {
  const o = resolve(options);
  const K = o.neurons, S = o.sessions;

  const centres: [number, number][] = [];
  for (let s = 0; s < S; s++) {
    const rng = rngFor(o.seed, STREAM_SESSION, s);
    const r = o.sessionSpreadDeg * Math.sqrt(rng.uniform());
    const a = 2 * Math.PI * rng.uniform();
    centres.push([r * Math.cos(a), r * Math.sin(a)]);
  }

  const neurons: V1Neuron[] = [];
  const targets: { meanCount: number; peakCount: number; spontaneous: number; c50: number }[] = [];
  const [sfLo, sfHi] = o.sfRange;
  const [bwMean, bwSd] = o.bandwidthOctaves;
  for (let k = 0; k < K; k++) {
    const session = Math.floor((k * S) / K);
    const rng = rngFor(o.seed, STREAM_NEURON, k);
    const complex = rng.uniform() >= o.simpleFraction;
    const x = centres[session][0] + o.rfScatterDeg * rng.normal();
    const y = centres[session][1] + o.rfScatterDeg * rng.normal();
    // De Valois, Yund and Hepler 1982 (Vision Res 22:531): all orientations are represented in
    // macaque V1, with at most a mild excess at the cardinals: uniform.
    const orientation = Math.PI * rng.uniform();
    const sf = Math.min(
      sfHi,
      Math.max(sfLo, o.sfMedian * Math.pow(2, o.sfSdOctaves * rng.normal())),
    );
    const bandwidth = Math.min(2.4, Math.max(0.8, bwMean + bwSd * rng.normal()));
    // Gaussian envelope of a Gabor with octave bandwidth b (full width at half height of the
    // frequency tuning): sigma = sqrt(ln 2 / 2) / (pi f) * (2^b + 1) / (2^b - 1).
    const b2 = Math.pow(2, bandwidth);
    const sigmaAcross = (Math.sqrt(Math.LN2 / 2) / (Math.PI * sf)) * ((b2 + 1) / (b2 - 1));
    const aspect = Math.min(3, Math.max(0.7, rng.logNormal(o.aspectMedian, 0.3)));
    // Ringach 2002: RF phases cover the whole circle (with some excess of even and odd
    // symmetry): uniform.
    const phase = 2 * Math.PI * rng.uniform();
    // Contrast sensitivity varies over about a decade across cells (Albrecht and Hamilton 1982,
    // J Neurophysiol 48:217; Sclar, Maunsell and Lennie 1990, Vision Res 30:1): the
    // semi-saturation constant is the median calibration pool times a log-normal factor.
    const c50 = rng.logNormal(1, 0.7);
    const meanCount = clamp(rng.logNormal(o.meanCount, 0.4), o.meanCount / 4, o.meanCount * 3);
    const peakCount = Math.min(o.peakCount, meanCount * clamp(rng.logNormal(3, 0.3), 1.5, 8));
    const spontaneous = meanCount * rng.uniform(0.05, 0.2);
    neurons.push({
      session,
      complex,
      x,
      y,
      orientation,
      sf,
      phase,
      bandwidth,
      sigmaAcross,
      sigmaAlong: aspect * sigmaAcross,
      semiSaturation: 1,
      gain: 1,
      baseline: spontaneous,
    });
    targets.push({ meanCount, peakCount, spontaneous, c50 });
  }

  // Calibration on 1/f noise: semi-saturation from the pool energy, gain from the target mean.
  const calib = pinkNoiseImages(CALIBRATION_IMAGES, CALIBRATION_SIZE, o.seed);
  const planes = Array.from(
    { length: CALIBRATION_IMAGES },
    (_, n) => calib.data.subarray(n * CALIBRATION_SIZE ** 2, (n + 1) * CALIBRATION_SIZE ** 2),
  );
  const drives = new Float64Array(CALIBRATION_IMAGES), pools = new Float64Array(CALIBRATION_IMAGES);
  for (let k = 0; k < K; k++) {
    const n = neurons[k];
    const bank = filterBank(n, CALIBRATION_SIZE, CALIBRATION_SIZE, o.pxPerDeg, o.poolScale);
    for (let i = 0; i < CALIBRATION_IMAGES; i++) {
      [drives[i], pools[i]] = driveAndPool(n, bank, planes[i], CALIBRATION_SIZE);
    }
    const sorted = Float64Array.from(pools).sort();
    const medianPool = sorted[CALIBRATION_IMAGES >> 1] || 1e-12;
    n.semiSaturation = targets[k].c50 * medianPool;
    const norm = drives.map((d, i) => d / (n.semiSaturation + pools[i]));
    let meanNorm = 0;
    for (const v of norm) meanNorm += v / CALIBRATION_IMAGES;
    const peakNorm = norm.sort()[Math.floor(0.95 * CALIBRATION_IMAGES)];
    // baseline + gain * norm has the target mean and 95th percentile on the calibration images,
    // unless that needs a baseline below the spontaneous count: then the mean alone is matched.
    const { meanCount, peakCount, spontaneous } = targets[k];
    let gain = peakNorm > meanNorm && peakCount > meanCount
      ? (peakCount - meanCount) / (peakNorm - meanNorm)
      : 0;
    let baseline = meanCount - gain * meanNorm;
    if (!(gain > 0 && baseline >= spontaneous)) {
      baseline = spontaneous;
      gain = meanNorm > 0 ? (meanCount - spontaneous) / meanNorm : 0;
    }
    n.baseline = baseline;
    n.gain = gain;
  }
  return { options: o, neurons };
}

/**
 * Soft ceiling on expected counts, L tanh(x / L) with L = 40 spikes per 120 ms (~330 spikes/s):
 * below 15 spikes it changes a count by under 5%, and it keeps an optimal full-contrast grating,
 * which drives the model far harder than natural images, at a rate V1 cells can fire.
 */
function countCeiling(x: number): number {
  return MAX_COUNT * Math.tanh(x / MAX_COUNT);
}
const MAX_COUNT = 40;

/**
 * Noise-free expected spike counts per 120 ms window, (N, neurons) row-major, for (N, H, W)
 * images (uint8 0..255 or float in [0, 1]) seen at the population's `pxPerDeg`, centred on the
 * image centre.
 *
 * @example
 * ```ts
 * import { gratingImage, makeV1Population, v1Rates } from "./simulated_v1.ts";
 * const pop = makeV1Population({ neurons: 4, sessions: 1 });
 * const g = gratingImage(64, { orientation: 0, sf: 2, phase: 0 });
 * const r = v1Rates(pop, { dtype: "float32", shape: [1, 64, 64], data: g });
 * console.log(r.length); // 4
 * ```
 */
export function v1Rates(population: V1Population, images: NdArray): Float32Array {
  const { N, H, W, planes } = imagePlanes(images);
  const o = population.options;
  const K = population.neurons.length;
  const banks = population.neurons.map((n) => filterBank(n, H, W, o.pxPerDeg, o.poolScale));
  const out = new Float32Array(N * K);
  for (let i = 0; i < N; i++) {
    const img = planes(i);
    for (let k = 0; k < K; k++) {
      const n = population.neurons[k];
      const [d, p] = driveAndPool(n, banks[k], img, W);
      out[i * K + k] = countCeiling(n.baseline + n.gain * d / (n.semiSaturation + p));
    }
  }
  return out;
}

/**
 * Simulates the experiment on `images` ((N, H, W) or (N, H, W, 1); uint8 0..255 or float in
 * [0, 1]; 64 x 64 at 14 px/deg is the paper's geometry): makes the population, computes the
 * noise-free rates, chooses the split and the sessions that show each image, and draws Poisson
 * spike counts. Returns the arrays in the layout of `v1_arrays.ts` (write them with
 * `writeV1Arrays`), with `responses` NaN wherever a neuron's session did not record the trial.
 *
 * @example
 * ```ts
 * import { pinkNoiseImages, simulateV1 } from "./simulated_v1.ts";
 * import { writeV1Arrays } from "./v1_arrays.ts";
 *
 * const sim = simulateV1(pinkNoiseImages(50, 64, 0), { neurons: 6, sessions: 2, testImages: 5 });
 * await writeV1Arrays(await Deno.makeTempFile({ suffix: ".npz" }), sim.arrays, { compress: true });
 * ```
 */
export function simulateV1(images: NdArray, options: SimulatedV1Options = {}): SimulatedV1 {
  const o = resolve(options);
  const { N, H, W } = imagePlanes(images);
  const K = o.neurons, S = o.sessions;

  // Split: explicit, or testImages at random and a validation fraction of the rest.
  const layout = rngFor(o.seed, STREAM_LAYOUT);
  const split = new Uint8Array(N);
  if (options.split !== undefined) {
    const given = options.split;
    if (given.length !== N) {
      throw CoreError.invalidArgument(
        `simulated_v1: split has ${given.length} values; images has ${N}`,
      );
    }
    for (let n = 0; n < N; n++) {
      const v = given[n];
      if (v !== 0 && v !== 1 && v !== 2) {
        throw CoreError.invalidArgument(`simulated_v1: split[${n}] is ${v}; expected 0, 1 or 2`);
      }
      split[n] = v;
    }
  } else {
    if (o.testImages >= N) {
      throw CoreError.invalidArgument(
        `simulated_v1: testImages (${o.testImages}) must be less than the number of images (${N})`,
      );
    }
    const order = layout.shuffle(Array.from({ length: N }, (_, i) => i));
    const nVal = Math.round(o.validationFraction * (N - o.testImages));
    for (let i = 0; i < o.testImages; i++) split[order[i]] = SPLIT.test;
    for (let i = 0; i < nVal; i++) split[order[o.testImages + i]] = SPLIT.validation;
  }

  const population = makeV1Population(options);
  const rates = v1Rates(population, images);

  // Test repeats per session, and the sessions that show each non-test image (balanced).
  const testRepeats = new Int32Array(S);
  for (let s = 0; s < S; s++) testRepeats[s] = layout.intIn(o.testRepeats, o.testRepeatsMax + 1);
  const perImage = o.trainSessions === 0 ? S : o.trainSessions;
  const slot = new Int32Array(N); // position of each non-test image in a random order
  {
    const order = layout.shuffle(Array.from({ length: N }, (_, i) => i));
    let p = 0;
    for (const n of order) if (split[n] !== SPLIT.test) slot[n] = p++;
  }
  const R = split.includes(SPLIT.test) ? Math.max(...testRepeats) : 1;
  const firstNeuron = new Int32Array(S + 1);
  for (let k = 0, s = 0; s <= S; s++) {
    while (k < K && population.neurons[k].session < s) k++;
    firstNeuron[s] = k;
  }

  // Spike counts: one random stream per image, so an image's counts do not depend on the others.
  const responses = new Float32Array(R * N * K).fill(NaN);
  const shape = o.gainNoise > 0 ? 1 / (o.gainNoise * o.gainNoise) : 0;
  for (let n = 0; n < N; n++) {
    const rng = rngFor(o.seed, STREAM_SPIKES, n);
    const isTest = split[n] === SPLIT.test;
    for (let j = 0; j < (isTest ? S : perImage); j++) {
      const s = isTest ? j : (slot[n] * perImage + j) % S;
      const reps = isTest ? testRepeats[s] : 1;
      for (let r = 0; r < reps; r++) {
        for (let k = firstNeuron[s]; k < firstNeuron[s + 1]; k++) {
          let lambda = rates[n * K + k];
          if (shape > 0) lambda *= rng.gamma(shape) / shape;
          responses[(r * N + n) * K + k] = rng.poisson(lambda);
        }
      }
    }
  }

  const imgArray: V1Arrays["images"] = images.dtype === "uint8"
    ? { dtype: "uint8", shape: [N, H, W], data: images.data as Uint8Array }
    : {
      dtype: "float32",
      shape: [N, H, W],
      data: images.dtype === "float32"
        ? images.data as Float32Array
        : Float32Array.from(images.data as Float64Array),
    };
  return {
    arrays: {
      images: imgArray,
      responses: { dtype: "float32", shape: [R, N, K], data: responses },
      session: {
        dtype: "int32",
        shape: [K],
        data: Int32Array.from(population.neurons, (n) => n.session),
      },
      split: { dtype: "uint8", shape: [N], data: split },
      rates: { dtype: "float32", shape: [N, K], data: rates },
    },
    population,
    testRepeats,
  };
}
