import { assert, assertClose, assertEquals } from "../../test/assert.ts";
import { runPython } from "../../test/python.ts";
import { ols, robustnessRegression, tTestP } from "./regression.ts";

// Twelve made-up models: clean accuracy, FEV, robustness (%).
const ACC = [0.512, 0.498, 0.530, 0.521, 0.505, 0.543, 0.517, 0.489, 0.526, 0.534, 0.509, 0.540];
const FEV = [0.10, 0.22, 0.31, 0.18, 0.40, 0.27, 0.35, 0.05, 0.44, 0.15, 0.29, 0.38];
const ROB = [101.2, 103.9, 108.8, 104.1, 110.7, 109.0, 110.9, 99.3, 114.2, 105.5, 108.1, 113.6];

// The known answer, computed independently with numpy 1.24 and scipy 1.10 (Debian's python3):
//   X = column_stack([ones, acc, fev]); b = lstsq(X, y); s2 = r@r/9; se = sqrt(diag(s2*inv(X'X)))
//   t = b/se; p = 2*scipy.stats.t.sf(|t|, 9)
const KNOWN = {
  b: [63.48024272949893, 67.99885819609578, 33.22044389602333],
  se: [7.539160162144341, 14.882805430353535, 2.024601040293685],
  t: [8.420068199140557, 4.5689543221073, 16.40839021361188],
  p: [1.4673134360223426e-05, 1.3489076598480463e-03, 5.162314282052123e-08],
  r2: 0.9781905157717826,
  sigma: 0.7683308227193869,
};

Deno.test("ols: coefficients, standard errors, t and p-values equal numpy + scipy's", () => {
  const fit = robustnessRegression(
    ACC.map((a, i) => ({ cleanAccuracy: a, fev: FEV[i], robustness: ROB[i] })),
  );
  assertEquals(fit.coefficients.map((c) => c.name), ["intercept", "clean_accuracy", "fev"]);
  assertEquals(fit.df, 9);
  fit.coefficients.forEach((c, i) => {
    assertClose(c.estimate, KNOWN.b[i], 1e-9 * Math.abs(KNOWN.b[i]), `b${i}`);
    assertClose(c.stdError, KNOWN.se[i], 1e-9 * KNOWN.se[i], `se${i}`);
    assertClose(c.t, KNOWN.t[i], 1e-9 * KNOWN.t[i], `t${i}`);
    assertClose(c.p, KNOWN.p[i], 1e-8 * KNOWN.p[i], `p${i}`);
  });
  assertClose(fit.rSquared, KNOWN.r2, 1e-12);
  assertClose(fit.sigma, KNOWN.sigma, 1e-12);
});

Deno.test("ols: agrees with numpy's lstsq on a random problem run now", async () => {
  const n = 40;
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.sin(i * 1.3) + i / n;
    const b = Math.cos(i * 0.7) * 2;
    x.push([a, b]);
    y.push(1.5 + 2 * a - 0.7 * b + 0.3 * Math.sin(i * 12.9898));
  }
  const out = await runPython(
    `import sys, json, numpy as np
d = json.loads(sys.argv[1]); X = np.column_stack([np.ones(len(d["y"])), np.array(d["x"])]); y = np.array(d["y"])
b = np.linalg.lstsq(X, y, rcond=None)[0]; r = y - X @ b; s2 = r @ r / (len(y) - 3)
se = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
print(json.dumps({"b": b.tolist(), "se": se.tolist()}))`,
    [JSON.stringify({ x, y })],
  );
  const ref = JSON.parse(out) as { b: number[]; se: number[] };
  const fit = ols(x, y);
  fit.coefficients.forEach((c, i) => {
    assertClose(c.estimate, ref.b[i], 1e-9, `b${i}`);
    assertClose(c.stdError, ref.se[i], 1e-9, `se${i}`);
  });
});

Deno.test("t-test p-values from the t distribution (scipy: 2*t.sf)", () => {
  assertClose(tTestP(2.5, 7), 0.040992218585752874, 1e-12);
  assertClose(tTestP(-0.3, 30), 0.7662461052843528, 1e-12);
  assertEquals(tTestP(Infinity, 5), 0);
});

Deno.test("ols: a line through exact points; no intercept; bad input names the field", () => {
  const fit = ols([1, 2, 3, 4], [3, 5, 7, 9.0000001]);
  assertClose(fit.coefficients[1].estimate, 2, 1e-6);
  assertClose(fit.coefficients[0].estimate, 1, 1e-6);
  const noInt = ols([1, 2, 3], [2, 4, 6.1], { intercept: false });
  assertEquals(noInt.coefficients.length, 1);
  assertEquals(noInt.df, 2);
  const throwsWith = (fn: () => unknown, text: string) => {
    try {
      fn();
    } catch (e) {
      assert(String(e).includes(text), `${e}`);
      assertEquals((e as { code?: string }).code, "INVALID_ARGUMENT");
      return;
    }
    throw new Error(`no error for ${text}`);
  };
  throwsWith(() => ols([1, 2], [1, 2, 3]), "x: 2 rows");
  throwsWith(() => ols([1, 2], [1, 2]), "observations");
  throwsWith(() => ols([[1, 2], [2, 4], [3, 6], [4, 8]], [1, 2, 3, 5]), "rank-deficient");
  throwsWith(() => ols([1, NaN, 3, 4], [1, 2, 3, 4]), "x[1][0]");
});
