/**
 * The analyses of the paper's Sec. 4 (SPEC.md section 7):
 *
 * - {@linkcode reconstruct} (reconstruct.ts): norm-constrained reconstructions from a layer;
 * - {@linkcode spectralControl} (spectral.ts): the original's phase with the reconstruction's
 *   amplitude;
 * - {@linkcode spectralResidualSaliency}, {@linkcode salientMask}, {@linkcode normRatio}
 *   (saliency.ts): saliency densities, the 70% salient mask, rho and rho_bar of Eq. 1;
 * - {@linkcode reconstructionGridPng}, {@linkcode rhoScatterPng} (figures.ts): Fig. 5 and Fig. 7
 *   as PNG bytes.
 *
 * @example
 * ```ts
 * import { normRatio, salientMask } from "./mod.ts";
 * const { mask } = salientMask([0.6, 0.3, 0.1]);
 * console.log(normRatio([1, 1, 1], [[1, 0, 0]], mask).rhoBar); // [1]
 * ```
 * @module
 */
export * from "./reconstruct.ts";
export * from "./spectral.ts";
export * from "./saliency.ts";
export * from "./figures.ts";
export * from "./blur.ts";
