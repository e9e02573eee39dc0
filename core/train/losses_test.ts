import * as tf from "@tensorflow/tfjs-core";
import { assertClose } from "../../test/assert.ts";
import { initBackend } from "../engine/backend.ts";
import { crossEntropy, mse, mtlLoss, poissonLoss, readoutL1, scaledPoissonLoss } from "./losses.ts";

await initBackend("cpu");

Deno.test("losses: Poisson, scaled Poisson, CE, MSE, MTL and L1 match hand computations", () => {
  const out = tf.tensor2d([[0.5, 2], [1, 4]]);
  const tgt = tf.tensor2d([[0, 3], [2, 1]]);
  const expected = 0.5 + (2 - 3 * Math.log(2)) + (1 - 2 * Math.log(1)) + (4 - Math.log(4));
  assertClose(poissonLoss(out, tgt).dataSync()[0], expected, 1e-5);
  assertClose(scaledPoissonLoss(out, tgt, 8).dataSync()[0], expected * 2, 1e-5);
  const logits = tf.tensor2d([[1, 2, 3], [0, 0, 0]]);
  const labels = tf.tensor1d([2, 0]);
  const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  assertClose(crossEntropy(logits, labels).dataSync()[0], ((lse - 3) + Math.log(3)) / 2, 1e-5);
  assertClose(mse(out, tgt).dataSync()[0], (0.25 + 1 + 1 + 9) / 4, 1e-6);
  const l = mtlLoss(tf.scalar(2), tf.scalar(4), tf.scalar(0.5), tf.scalar(-1));
  assertClose(l.dataSync()[0], Math.exp(-0.5) * 2 + 0.25 + 0.5 * Math.exp(1) * 4 - 0.5, 1e-5);
  assertClose(readoutL1(tf.tensor1d([1, -2, 3])).dataSync()[0], 3, 1e-6);
});
