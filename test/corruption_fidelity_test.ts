/**
 * Fidelity to the reference (bethgelab/imagecorruptions 1.1.2, measured by
 * test/corruption_data/make_reference.py into reference.json): for every corruption and severity,
 * cotrain's mean PSNR and SSIM to the clean image over four natural 64x64 images must lie within a
 * stated tolerance of the reference's; and, wherever the reference's PSNR falls from one severity
 * to the next, cotrain's must fall too.
 *
 * Tolerances: 0.5 dB and 0.03 SSIM, except where cotrain cannot match draw for draw:
 * - frost: procedural textures instead of the reference's photographs (2 dB, 0.06);
 * - fog: a plasma fractal's mean level varies a lot from draw to draw (1 dB, 0.05);
 * - spatter: few large drops per 64 px image, so few draws are noisy (1.5 dB, 0.05).
 */
import { assert } from "./assert.ts";
import { CORRUPTIONS } from "../core/corruptions/mod.ts";
import { loadImages, loadReference, measure } from "./corruption_fidelity.ts";

const TOL: Record<string, { psnr: number; ssim: number }> = {
  frost: { psnr: 2, ssim: 0.06 },
  fog: { psnr: 1, ssim: 0.05 },
  spatter: { psnr: 1.5, ssim: 0.05 },
};
const DEFAULT_TOL = { psnr: 0.5, ssim: 0.03 };
const REPEATS = 3;
/** Corruptions whose few large random structures make a 4-image mean noisy: more draws. */
const NOISY_REPEATS: Record<string, number> = { snow: 12, frost: 40, fog: 12, spatter: 12 };

Deno.test("fidelity: PSNR and SSIM per corruption and severity match the reference (64 px)", async () => {
  const ref = (await loadReference()).sizes["64"].table;
  const images = await loadImages(64);
  const failures: string[] = [];
  for (const c of CORRUPTIONS) {
    const ours = measure(images, 64, c, NOISY_REPEATS[c] ?? REPEATS);
    const tol = TOL[c] ?? DEFAULT_TOL;
    for (let s = 0; s < 5; s++) {
      const dp = ours[s].psnr - ref[c][s].psnr, ds = ours[s].ssim - ref[c][s].ssim;
      if (Math.abs(dp) > tol.psnr || Math.abs(ds) > tol.ssim) {
        failures.push(
          `${c} s${s + 1}: PSNR ${ours[s].psnr.toFixed(2)} vs ${
            ref[c][s].psnr
          } (tol ${tol.psnr}), ` +
            `SSIM ${ours[s].ssim.toFixed(3)} vs ${ref[c][s].ssim} (tol ${tol.ssim})`,
        );
      }
      if (
        s > 0 && ref[c][s].psnr < ref[c][s - 1].psnr - 0.5 && !(ours[s].psnr < ours[s - 1].psnr)
      ) {
        failures.push(
          `${c}: PSNR does not fall from s${s} to s${s + 1} (${ours[s - 1].psnr.toFixed(2)} -> ` +
            `${ours[s].psnr.toFixed(2)}) while the reference's does`,
        );
      }
    }
  }
  assert(failures.length === 0, `fidelity:\n${failures.join("\n")}`);
});

Deno.test("fidelity: the reference table covers all 19 corruptions at 64 and 224 px", async () => {
  const ref = await loadReference();
  for (const size of ["64", "224"]) {
    for (const c of CORRUPTIONS) {
      assert(ref.sizes[size].table[c]?.length === 5, `reference.json lacks ${c} at ${size} px`);
    }
  }
});
