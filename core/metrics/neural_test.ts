import { assert, assertClose } from "../../test/assert.ts";
import { correlationToAverage, fev, nanMean, pearson, singleTrialCorrelation } from "./neural.ts";

Deno.test("fev: matches a direct computation with NaN and unequal repeats", () => {
  // 3 repeats x 2 images x 1 neuron; image 1 has only 2 repeats
  const resp = [1, 4, 3, NaN, 2, 8]; // (r0: 1,4) (r1: 3,NaN) (r2: 2,8)
  const pred = [2, 6];
  const r = fev(resp, pred, [3, 2, 1]);
  // image 0: [1,3,2] var ddof1 = 1; image 1: [4,8] var = 8 -> noise = 4.5
  assertClose(r.noiseVar[0], 4.5, 1e-12);
  const trials = [1, 3, 2, 4, 8];
  const m = trials.reduce((a, b) => a + b) / 5;
  const tv = trials.reduce((a, b) => a + (b - m) ** 2, 0) / 4;
  assertClose(r.totalVar[0], tv, 1e-12);
  const mse = ((2 - 1) ** 2 + (2 - 3) ** 2 + (2 - 2) ** 2 + (6 - 4) ** 2 + (6 - 8) ** 2) / 5;
  assertClose(r.mse[0], mse, 1e-12);
  assertClose(r.fev[0], (tv - 4.5) / tv, 1e-12);
  assertClose(r.feve[0], 1 - (mse - 4.5) / (tv - 4.5), 1e-12);
});

Deno.test("fev: the true rates score near 1, a constant predictor at most 0", () => {
  // Poisson-like noise around known rates: 40 repeats x 50 images x 3 neurons
  let s = 12345;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const R = 40, N = 50, K = 3;
  const rates = new Float64Array(N * K).map(() => 1 + 9 * rand());
  const resp = new Float64Array(R * N * K);
  for (let r = 0; r < R; r++) {
    for (let i = 0; i < N * K; i++) {
      // Gaussian approximation with variance = rate
      const g = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
      resp[r * N * K + i] = rates[i] + Math.sqrt(rates[i]) * g;
    }
  }
  const truth = fev(resp, rates, [R, N, K]);
  assert(truth.meanFeve > 0.9, `FEVe of the true rates ${truth.meanFeve}`);
  const mean = nanMean(rates);
  const constant = fev(resp, new Float64Array(N * K).fill(mean), [R, N, K]);
  assert(constant.meanFeve <= 0, `FEVe of a constant ${constant.meanFeve}`);
  const c = singleTrialCorrelation(resp, rates, [R, N, K]);
  const ca = correlationToAverage(resp, rates, [R, N, K]);
  for (let k = 0; k < K; k++) assert(ca[k] > c[k] && ca[k] > 0.95, `${ca[k]} ${c[k]}`);
});

Deno.test("pearson: known values and NaN handling", () => {
  assertClose(pearson([1, 2, 3], [2, 4, 6]), 1, 1e-12);
  assertClose(pearson([1, 2, 3, NaN], [3, 2, 1, 5]), -1, 1e-12);
  assert(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])));
});
