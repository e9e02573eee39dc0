import { assert, assertClose, assertEquals, assertThrowsCode } from "../../test/assert.ts";
import type { NdArray } from "../io/mod.ts";
import { fev, type ResponseDims } from "../metrics/neural.ts";
import {
  gratingImage,
  makeV1Population,
  pinkNoiseImages,
  type SimulatedV1,
  simulateV1,
  type V1Population,
  v1Rates,
} from "./simulated_v1.ts";
import { rngFor } from "../random.ts";
import { SPLIT } from "./v1_arrays.ts";

/** Natural-ish uint8 images: 1/f noise plus two soft oriented luminance edges each. */
function naturalish(n: number, seed: number): NdArray<"uint8"> {
  const pink = pinkNoiseImages(n, 64, seed, 0.3, 9);
  const out = new Uint8Array(n * 64 * 64);
  for (let i = 0; i < n; i++) {
    const rng = rngFor(seed, 99, i);
    const edges = [0, 1].map(() => ({
      a: Math.PI * 2 * rng.uniform(),
      d: rng.uniform(-12, 12),
      c: rng.uniform(-0.25, 0.25),
    }));
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        let v = pink.data[i * 4096 + y * 64 + x];
        for (const e of edges) {
          const u = (x - 31.5) * Math.cos(e.a) + (y - 31.5) * Math.sin(e.a) - e.d;
          v += e.c * Math.tanh(u / 1.5);
        }
        out[i * 4096 + y * 64 + x] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
  }
  return { dtype: "uint8", shape: [n, 64, 64], data: out };
}

function bytesOf(a: { data: ArrayBufferView }): Uint8Array {
  return new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

function sameBytes(a: { data: ArrayBufferView }, b: { data: ArrayBufferView }): boolean {
  const x = bytesOf(a), y = bytesOf(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Responses and true rates of the test images, in core/metrics/neural.ts's layout. */
function testSet(sim: SimulatedV1) {
  const { responses, rates, split } = sim.arrays;
  const [R, N, K] = responses.shape;
  const test = [...split.data.keys()].filter((n) => split.data[n] === SPLIT.test);
  const T = test.length;
  const resp = new Float64Array(R * T * K), pred = new Float64Array(T * K);
  for (let r = 0; r < R; r++) {
    for (let i = 0; i < T; i++) {
      for (let k = 0; k < K; k++) {
        resp[(r * T + i) * K + k] = responses.data[(r * N + test[i]) * K + k];
      }
    }
  }
  for (let i = 0; i < T; i++) {
    for (let k = 0; k < K; k++) pred[i * K + k] = rates.data[test[i] * K + k];
  }
  return { resp, pred, dims: [R, T, K] as ResponseDims };
}

const IMAGES = naturalish(300, 1);
const SMALL = { neurons: 24, sessions: 3, testImages: 75, seed: 5 };
const SIM = simulateV1(IMAGES, SMALL);

Deno.test("simulateV1: same seed gives the same bytes, another seed differs", () => {
  const images = naturalish(60, 2);
  const opts = { neurons: 9, sessions: 3, testImages: 10, testRepeats: 5, seed: 11 };
  const a = simulateV1(images, opts), b = simulateV1(images, opts);
  for (const name of ["responses", "rates", "session", "split"] as const) {
    assert(sameBytes(a.arrays[name], b.arrays[name]), `${name} differs between equal seeds`);
  }
  assertEquals(a.population, b.population);
  const c = simulateV1(images, { ...opts, seed: 12 });
  assert(!sameBytes(a.arrays.responses, c.arrays.responses), "responses equal for another seed");
  assert(!sameBytes(a.arrays.rates, c.arrays.rates), "rates equal for another seed");
  assert(!sameBytes(a.arrays.split, c.arrays.split), "split equal for another seed");
});

Deno.test("v1Rates: an image's rates do not depend on the other images", () => {
  const pop = makeV1Population({ neurons: 10, sessions: 2, seed: 4 });
  const all = v1Rates(pop, IMAGES);
  const some: NdArray<"uint8"> = {
    dtype: "uint8",
    shape: [7, 64, 64],
    data: IMAGES.data.slice(40 * 4096, 47 * 4096),
  };
  const part = v1Rates(pop, some);
  assertEquals([...part], [...all.slice(40 * 10, 47 * 10)]);
  // float [0, 1] input equals uint8 / 255
  const f: NdArray<"float32"> = {
    dtype: "float32",
    shape: [7, 64, 64],
    data: Float32Array.from(some.data, (v) => v / 255),
  };
  const pf = v1Rates(pop, f);
  for (let i = 0; i < part.length; i++) assertClose(pf[i], part[i], 1e-4 * (1 + part[i]));
});

/** One neuron's expected counts for full-field gratings around its preferred stimulus. */
function tuning(pop: V1Population, k: number, contrast: number) {
  const n = pop.neurons[k];
  const single = { ...pop, neurons: [n] };
  const steps = [-3, -2, -1, 0, 1, 2, 3];
  const phases = Array.from({ length: 8 }, (_, i) => n.phase + (i * Math.PI) / 4);
  const stim: [number, number, number][] = [];
  for (const j of steps) {
    for (const p of phases) stim.push([n.orientation + (j * Math.PI) / 12, n.sf, p]);
  }
  for (const j of steps) for (const p of phases) stim.push([n.orientation, n.sf * 2 ** (j / 2), p]);
  for (let i = 0; i < 16; i++) stim.push([n.orientation, n.sf, n.phase + (i * Math.PI) / 8]);
  const data = new Float32Array(stim.length * 4096);
  stim.forEach(([orientation, sf, phase], i) =>
    data.set(gratingImage(64, { orientation, sf, phase, contrast, x: n.x, y: n.y }), i * 4096)
  );
  const r = v1Rates(single, { dtype: "float32", shape: [stim.length, 64, 64], data });
  const bestOverPhase = (block: number) =>
    steps.map((_, j) => Math.max(...r.slice((block * 7 + j) * 8, (block * 7 + j + 1) * 8)));
  const phaseCurve = [...r.slice(112, 128)];
  let re = 0, im = 0, f0 = 0;
  phaseCurve.forEach((v, i) => {
    f0 += v / 16;
    re += (v * Math.cos((i * Math.PI) / 8)) / 16;
    im += (v * Math.sin((i * Math.PI) / 8)) / 16;
  });
  return {
    orientation: bestOverPhase(0),
    sf: bestOverPhase(1),
    // F0 is the mean response above the spontaneous count (the response to a blank screen), as
    // Skottun et al. (1991) measured it
    f1f0: (2 * Math.hypot(re, im)) / (f0 - n.baseline),
  };
}

Deno.test("tuning: cells prefer their orientation and frequency; complex cells are phase invariant", () => {
  const pop = makeV1Population({ neurons: 24, sessions: 2, seed: 3 });
  let simple = 0, complex = 0;
  for (const [k, n] of pop.neurons.entries()) {
    for (const contrast of [0.2, 1]) {
      const t = tuning(pop, k, contrast);
      const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));
      assertEquals(argmax(t.orientation), 3, `neuron ${k} orientation tuning ${t.orientation}`);
      assertEquals(argmax(t.sf), 3, `neuron ${k} frequency tuning ${t.sf}`);
      // orientation tuning is real: 45 deg off the preferred drops the response below half
      assert(
        t.orientation[0] < 0.5 * t.orientation[3] && t.orientation[6] < 0.5 * t.orientation[3],
      );
      if (n.complex) {
        assert(t.f1f0 < 0.05, `complex neuron ${k} F1/F0 ${t.f1f0}`);
      } else {
        assert(t.f1f0 > 1, `simple neuron ${k} F1/F0 ${t.f1f0}`);
      }
    }
    if (n.complex) complex++;
    else simple++;
  }
  assert(simple >= 3 && complex >= 3, `${simple} simple, ${complex} complex`);
});

Deno.test("simulateV1: spike counts are Poisson around the rates", () => {
  const { resp, pred, dims } = testSet(SIM);
  const [R, T, K] = dims;
  let sumVar = 0, sumMean = 0, sumRate = 0;
  for (let i = 0; i < T; i++) {
    for (let k = 0; k < K; k++) {
      let s = 0, ss = 0;
      for (let r = 0; r < R; r++) s += resp[(r * T + i) * K + k];
      const m = s / R;
      for (let r = 0; r < R; r++) ss += (resp[(r * T + i) * K + k] - m) ** 2;
      sumVar += ss / (R - 1);
      sumMean += m;
      sumRate += pred[i * K + k];
    }
  }
  // 75 x 24 cells x 40 repeats: the pooled ratios are within a few percent of 1
  assertClose(sumVar / sumMean, 1, 0.06, "variance / mean");
  assertClose(sumMean / sumRate, 1, 0.03, "mean count / rate");
  for (const v of resp) assert(Number.isInteger(v) && v >= 0, `count ${v}`);

  // gain noise makes the counts super-Poisson (Fano factor 1 + rate * gainNoise^2)
  const noisy = testSet(simulateV1(IMAGES, { ...SMALL, gainNoise: 0.5 }));
  let nv = 0, nm = 0;
  for (let i = 0; i < T * K; i++) {
    const k = i % K, n = (i - k) / K;
    let s = 0, ss = 0;
    for (let r = 0; r < R; r++) s += noisy.resp[(r * T + n) * K + k];
    for (let r = 0; r < R; r++) ss += (noisy.resp[(r * T + n) * K + k] - s / R) ** 2;
    nv += ss / (R - 1);
    nm += s / R;
  }
  assert(nv / nm > 1.3, `gain noise Fano ${nv / nm}`);
});

Deno.test("simulateV1: FEVe of the true rates is ~1, of a constant at most 0; FEV is like real data", () => {
  const { resp, pred, dims } = testSet(SIM);
  const truth = fev(resp, pred, dims);
  assert(truth.meanFeve > 0.85, `true-rate FEVe ${truth.meanFeve}`);
  assertClose(truth.meanFeve, 1, 0.05, "true-rate FEVe");
  assert(truth.meanFev > 0.2 && truth.meanFev < 0.9, `mean FEV ${truth.meanFev}`);
  // not all neurons are near the ceiling or the floor
  const sorted = [...truth.fev].sort((a, b) => a - b);
  assert(
    sorted[0] < 0.5 && sorted[sorted.length - 1] > 0.5,
    `FEV range ${sorted[0]}..${sorted.at(-1)}`,
  );

  // a constant predictor: each neuron's mean over the training trials, and over the test trials
  const [R, N, K] = SIM.arrays.responses.shape;
  const trainMean = new Float64Array(K), count = new Float64Array(K);
  for (let r = 0; r < R; r++) {
    for (let n = 0; n < N; n++) {
      if (SIM.arrays.split.data[n] !== SPLIT.train) continue;
      for (let k = 0; k < K; k++) {
        const v = SIM.arrays.responses.data[(r * N + n) * K + k];
        if (Number.isFinite(v)) {
          trainMean[k] += v;
          count[k]++;
        }
      }
    }
  }
  const T = dims[1];
  const constTrain = new Float64Array(T * K).map((_, i) => trainMean[i % K] / count[i % K]);
  const ct = fev(resp, constTrain, dims);
  for (let k = 0; k < K; k++) assert(ct.feve[k] <= 1e-3, `constant FEVe ${ct.feve[k]} neuron ${k}`);
  // the test-set mean itself: FEVe = totalVar / trials / (totalVar - noiseVar), which is tiny
  const testMean = new Float64Array(K);
  for (let i = 0; i < resp.length; i++) testMean[i % K] += resp[i] / (R * T);
  const c0 = fev(resp, new Float64Array(T * K).map((_, i) => testMean[i % K]), dims);
  for (let k = 0; k < K; k++) {
    const bound = c0.totalVar[k] / (R * T) / (c0.totalVar[k] - c0.noiseVar[k]);
    assert(c0.feve[k] <= bound + 1e-9 && c0.feve[k] < 0.01, `test-mean FEVe ${c0.feve[k]}`);
  }
});

Deno.test("simulateV1: counts are realistic for a 120 ms window", () => {
  const { rates } = SIM.arrays;
  const K = SIM.population.neurons.length, N = IMAGES.shape[0];
  const means = Array.from({ length: K }, (_, k) => {
    let s = 0;
    for (let n = 0; n < N; n++) s += rates.data[n * K + k];
    return s / N;
  }).sort((a, b) => a - b);
  const median = means[K >> 1];
  assert(median > 1 && median < 5, `median mean count ${median}`);
  const sorted = Float32Array.from(rates.data).sort();
  assert(sorted[Math.floor(0.99 * sorted.length)] < 25, `99th percentile ${sorted.at(-1)}`);
  assert(sorted[sorted.length - 1] <= 40, `max rate ${sorted.at(-1)}`);
  assert(sorted[0] > 0, "rates are positive");
});

Deno.test("simulateV1: layout: sessions, split and NaN where not recorded", () => {
  const { responses, session, split } = SIM.arrays;
  const [R, N, K] = responses.shape;
  assertEquals(R, 40);
  assertEquals([...session.data], Array.from({ length: K }, (_, k) => Math.floor((k * 3) / K)));
  const counts = [0, 0, 0];
  for (const s of split.data) counts[s]++;
  assertEquals(counts, [202, 23, 75]); // 75 test, Math.round(0.1 * 225) = 23 validation
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      let recorded = 0;
      for (let r = 0; r < R; r++) {
        if (Number.isFinite(responses.data[(r * N + n) * K + k])) recorded++;
      }
      // default: every session shows every image; test images 40 times
      assertEquals(recorded, split.data[n] === SPLIT.test ? 40 : 1);
      assert(Number.isFinite(responses.data[n * K + k]), "repeat 0 is recorded");
    }
  }

  // one session per training image, 3 to 6 test repeats per session
  const sim = simulateV1(IMAGES, {
    ...SMALL,
    trainSessions: 1,
    testRepeats: 3,
    testRepeatsMax: 6,
  });
  const rs = sim.arrays.responses, sess = sim.arrays.session.data, sp = sim.arrays.split.data;
  assertEquals(rs.shape, [Math.max(...sim.testRepeats), N, K]);
  assert(sim.testRepeats.every((v) => v >= 3 && v <= 6));
  const perSession = [0, 0, 0];
  for (let n = 0; n < N; n++) {
    const shownIn = new Set<number>();
    for (let k = 0; k < K; k++) {
      let recorded = 0;
      for (let r = 0; r < rs.shape[0]; r++) {
        if (Number.isFinite(rs.data[(r * N + n) * K + k])) recorded++;
      }
      if (sp[n] === SPLIT.test) assertEquals(recorded, sim.testRepeats[sess[k]]);
      else if (recorded) {
        assertEquals(recorded, 1);
        shownIn.add(sess[k]);
      }
    }
    if (sp[n] !== SPLIT.test) {
      assertEquals(shownIn.size, 1, `image ${n} shown in ${[...shownIn]}`);
      perSession[[...shownIn][0]]++;
      // all neurons of that session recorded it
      for (let k = 0; k < K; k++) {
        assertEquals(Number.isFinite(rs.data[n * K + k]), shownIn.has(sess[k]));
      }
    }
  }
  assert(Math.max(...perSession) - Math.min(...perSession) <= 1, `per session ${perSession}`);

  // an explicit split is used as given
  const given = new Uint8Array(N).map((_, n) => (n < 10 ? 2 : n < 20 ? 1 : 0));
  const s2 = simulateV1(IMAGES, { ...SMALL, split: given, testRepeats: 2 });
  assertEquals([...s2.arrays.split.data], [...given]);
  assertEquals(s2.arrays.responses.shape[0], 2); // testRepeatsMax follows testRepeats
  assertEquals([...s2.testRepeats], [2, 2, 2]);
});

Deno.test("simulateV1: bad input is INVALID_ARGUMENT", () => {
  const int16 = { dtype: "int16", shape: [4, 64, 64], data: new Int16Array(4 * 4096) } as NdArray;
  assertThrowsCode(
    () => simulateV1(int16, { neurons: 2, sessions: 1, testImages: 1 }),
    "INVALID_ARGUMENT",
  );
  const over: NdArray = {
    dtype: "float32",
    shape: [4, 64, 64],
    data: new Float32Array(4 * 4096).fill(2),
  };
  const e = assertThrowsCode(
    () => simulateV1(over, { neurons: 2, sessions: 1, testImages: 1 }),
    "INVALID_ARGUMENT",
  );
  assert(e.message.includes("images"), e.message);
  const ok = naturalish(4, 3);
  const bad = (o: Record<string, unknown>) =>
    assertThrowsCode(
      () => simulateV1(ok, { neurons: 4, sessions: 2, testImages: 1, ...o }),
      "INVALID_ARGUMENT",
    );
  bad({ sessions: 5 });
  bad({ testImages: 4 });
  bad({ split: [0, 1] });
  bad({ split: [0, 1, 3, 0] });
  bad({ trainSessions: 3 });
  bad({ seed: -1 });
  bad({ simpleFraction: 2 });
  bad({ testRepeats: 5, testRepeatsMax: 4 });
  assertThrowsCode(
    () => simulateV1({ dtype: "uint8", shape: [2, 64], data: new Uint8Array(128) }, {}),
    "INVALID_ARGUMENT",
  );
});
