/**
 * Reverse-mode automatic differentiation that writes its result as an ONNX graph, so that a whole
 * training step (forward, loss, every gradient) runs as one onnxruntime session on all cores.
 *
 * Why: onnxruntime's CPU kernels (MLAS convolutions and GEMMs, threaded element-wise ops) train a
 * VGG several times faster than tfjs on its wasm backend, and onnxruntime-node's CPU build has no
 * training API; tfjs cannot call it from its synchronous kernels either. So cotrain records the
 * forward pass on a {@linkcode Tape}: every op adds its ONNX nodes and remembers its
 * vector-Jacobian product, and {@linkcode Tape.gradients} replays those backwards as more nodes.
 * No library does this for ONNX (onnxruntime-training's artifact generator is Python-only and not
 * in the npm package), hence the hand-written rules below, each checked against tfjs' autodiff in
 * the tests.
 *
 * Shapes are static (one graph per batch size) and tensors are NCHW, as onnxruntime's fast
 * kernels want them.
 *
 * @example
 * ```ts
 * import { Tape } from "./tape.ts";
 * const t = new Tape();
 * const x = t.input("x", [2, 3], false);
 * const w = t.input("w", [3, 1], true);
 * const loss = t.meanAll(t.matMul(x, w));
 * const [gw] = t.gradients(loss, [w]);
 * t.output(loss, "loss");
 * t.output(gw!, "grad_w");
 * console.log(t.toModel().byteLength > 0); // true
 * ```
 * @module
 */
import { NCHWC_DOMAIN, OnnxGraph } from "../onnx/graph.ts";

/** A symbolic tensor: its name in the graph and its static shape. */
export interface Sym {
  readonly name: string;
  readonly shape: readonly number[];
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * A convolution's kernels in onnxruntime's NCHWc filter layout, fed in place of the plain ones:
 * `w` for the forward pass, `back` (the flipped, transposed kernel) for the input gradient.
 */
export interface BlockedKernels {
  w?: Sym;
  back?: Sym;
}

/** What an op's backward gets: the gradient of its output; it returns one per input (or null). */
type Vjp = (gy: Sym) => (Sym | null)[];

interface Entry {
  inputs: Sym[];
  output: Sym;
  vjp: Vjp;
}

/**
 * The recording: ops add nodes to an {@linkcode OnnxGraph} and entries to the tape; a tensor
 * "needs a gradient" when it is a trainable input or computed from one.
 */
export class Tape {
  readonly g: OnnxGraph = new OnnxGraph();
  readonly #entries: Entry[] = [];
  readonly #needs = new Set<string>();
  readonly #consts = new Map<string, string>();
  readonly #perImageFrom: number;
  /** The channel block of onnxruntime's NCHWc kernels, 0 = plain convolutions only. */
  readonly nchwcBlock: number;

  /**
   * `perImageWeightGradFrom`: convolutions with at least this many output pixels compute their
   * weight gradient per image, as batched matrix products (see {@linkcode Tape.conv}; default
   * 1024, i.e. 32 x 32 and larger).
   * `nchwcBlock`: onnxruntime's NCHWc channel block on this CPU (program.ts' nchwcBlock), which
   * lets {@linkcode Tape.conv} run convolutions of {@linkcode Tape.blocked} inputs on those
   * kernels; 0 (the default): plain Conv.
   */
  constructor(options: { perImageWeightGradFrom?: number; nchwcBlock?: number } = {}) {
    this.#perImageFrom = options.perImageWeightGradFrom ?? 1024;
    this.nchwcBlock = options.nchwcBlock ?? 0;
  }

  /** A float32 graph input; `trainable` ones get gradients. */
  input(name: string, shape: readonly number[], trainable: boolean): Sym {
    this.g.input(name, [...shape]);
    if (trainable) this.#needs.add(name);
    return { name, shape };
  }

  /**
   * A trainable value that is not itself a graph input: something else (e.g. its NCHWc layout)
   * is fed in its place, and only its gradient (by this name) is computed.
   */
  gradientOnly(name: string, shape: readonly number[]): Sym {
    this.#needs.add(name);
    return { name, shape };
  }

  /**
   * Whether a 3 x 3 convolution reading `channels` input channels runs on onnxruntime's NCHWc
   * kernels (direct convolutions over channel blocks, no im2col: 1.3-2x faster than Conv on
   * VGG's 16-128-channel layers). Fewer channels than a block stay plain (MLAS' NCHW-input path
   * is slower there than Conv).
   */
  blocked(channels: number): boolean {
    const b = this.nchwcBlock;
    return b > 1 && channels >= b && channels % 4 === 0;
  }

  /** A float32 scalar constant, shared by value. */
  scalar(v: number): Sym {
    const key = String(v);
    let name = this.#consts.get(key);
    if (!name) {
      name = this.g.initializer("c", new Float32Array([v]), []);
      this.#consts.set(key, name);
    }
    return { name, shape: [] };
  }

  /** An int64 constant (shapes, axes). */
  ints(values: number[]): string {
    return this.g.int64("i", values);
  }

  /** Declares `s` as a graph output called `name`. */
  output(s: Sym, name: string): void {
    this.g.output(s.name, name, [...s.shape]);
  }

  /** Whether `s` depends on a trainable input. */
  needsGrad(s: Sym): boolean {
    return this.#needs.has(s.name);
  }

  /** A raw node (no gradient: use for values that need none). */
  raw(op: string, inputs: (Sym | string)[], shape: readonly number[], attrs = {}): Sym {
    const name = this.g.node(op, inputs.map((i) => typeof i === "string" ? i : i.name), attrs);
    return { name, shape };
  }

  /** Records a differentiable op whose output is `out`. */
  #record(inputs: Sym[], out: Sym, vjp: Vjp): Sym {
    if (inputs.some((i) => this.#needs.has(i.name))) {
      this.#needs.add(out.name);
      this.#entries.push({ inputs, output: out, vjp });
    }
    return out;
  }

  // ---- element-wise ---------------------------------------------------------------------------

  /** a + b (NumPy broadcasting; b may be smaller, e.g. a per-channel [1, C, 1, 1]). */
  add(a: Sym, b: Sym): Sym {
    const y = this.raw("Add", [a, b], a.shape.length >= b.shape.length ? a.shape : b.shape);
    return this.#record([a, b], y, (gy) => [this.#unbroadcast(gy, a), this.#unbroadcast(gy, b)]);
  }

  /** a - b. */
  sub(a: Sym, b: Sym): Sym {
    const y = this.raw("Sub", [a, b], a.shape.length >= b.shape.length ? a.shape : b.shape);
    return this.#record([a, b], y, (gy) => [
      this.#unbroadcast(gy, a),
      this.needsGrad(b) ? this.#unbroadcast(this.raw("Neg", [gy], gy.shape), b) : null,
    ]);
  }

  /** a * b (broadcasting). */
  mul(a: Sym, b: Sym): Sym {
    const y = this.raw("Mul", [a, b], a.shape.length >= b.shape.length ? a.shape : b.shape);
    return this.#record([a, b], y, (gy) => [
      this.needsGrad(a) ? this.#unbroadcast(this.raw("Mul", [gy, b], y.shape), a) : null,
      this.needsGrad(b) ? this.#unbroadcast(this.raw("Mul", [gy, a], y.shape), b) : null,
    ]);
  }

  /** a * c for a constant c. */
  scale(a: Sym, c: number): Sym {
    const k = this.scalar(c);
    const y = this.raw("Mul", [a, k], a.shape);
    return this.#record([a], y, (gy) => [this.raw("Mul", [gy, k], a.shape)]);
  }

  /** exp(a). */
  exp(a: Sym): Sym {
    const y = this.raw("Exp", [a], a.shape);
    return this.#record([a], y, (gy) => [this.raw("Mul", [gy, y], a.shape)]);
  }

  /** max(a, 0). */
  relu(a: Sym): Sym {
    const y = this.raw("Relu", [a], a.shape);
    return this.#record([a], y, (gy) => [this.#reluGrad(gy, y)]);
  }

  /**
   * gy where y > 0, else 0: gy * float(y > 0). (onnxruntime's Sign is a scalar loop, 3-4x slower
   * than Greater + Cast, which cost about one pass over y.)
   */
  #reluGrad(gy: Sym, y: Sym): Sym {
    const mask = this.raw("Cast", [this.raw("Greater", [y, this.scalar(0)], y.shape)], y.shape, {
      to: 1,
    });
    return this.raw("Mul", [gy, mask], y.shape);
  }

  /** Mean over every element: a scalar. */
  meanAll(a: Sym): Sym {
    const y = this.raw("ReduceMean", [a], [], { keepdims: 0 });
    return this.#record([a], y, (gy) => [
      this.raw("Expand", [
        this.raw("Mul", [gy, this.scalar(1 / size(a.shape))], []),
        this.#shapeOf(a),
      ], a.shape),
    ]);
  }

  /** Sum over every element: a scalar. */
  sumAll(a: Sym): Sym {
    const y = this.raw("ReduceSum", [a], [], { keepdims: 0 });
    return this.#record([a], y, (gy) => [this.raw("Expand", [gy, this.#shapeOf(a)], a.shape)]);
  }

  /** Matrix product of 2-D a [m, k] and b [k, n]. */
  matMul(a: Sym, b: Sym): Sym {
    const y = this.raw("MatMul", [a, b], [a.shape[0], b.shape[1]]);
    return this.#record([a, b], y, (gy) => [
      this.needsGrad(a) ? this.raw("Gemm", [gy, b], a.shape, { transB: 1 }) : null,
      this.needsGrad(b) ? this.raw("Gemm", [a, gy], b.shape, { transA: 1 }) : null,
    ]);
  }

  /** Reshape (same number of elements). */
  reshape(a: Sym, shape: number[]): Sym {
    const y = this.raw("Reshape", [a, this.ints(shape)], shape);
    return this.#record([a], y, (gy) => [this.raw("Reshape", [gy, this.#shapeOf(a)], a.shape)]);
  }

  /** Transpose by `perm`. */
  transpose(a: Sym, perm: number[]): Sym {
    const y = this.raw("Transpose", [a], perm.map((p) => a.shape[p]), { perm });
    const inv = perm.map((_, i) => perm.indexOf(i));
    return this.#record([a], y, (gy) => [this.raw("Transpose", [gy], a.shape, { perm: inv })]);
  }

  /** Rows [start, end) of axis 0. */
  sliceRows(a: Sym, start: number, end: number): Sym {
    const shape = [end - start, ...a.shape.slice(1)];
    const y = this.raw("Slice", [a, this.ints([start]), this.ints([end]), this.ints([0])], shape);
    return this.#record([a], y, (gy) => {
      const pads = new Array(2 * a.shape.length).fill(0);
      pads[0] = start;
      pads[a.shape.length] = a.shape[0] - end;
      return [this.raw("Pad", [gy, this.ints(pads)], a.shape, { mode: "constant" })];
    });
  }

  /** An int64 graph input (indices; never differentiated). */
  indexInput(name: string, shape: readonly number[]): Sym {
    this.g.input(name, [...shape], "int64");
    return { name, shape };
  }

  /** Sum over `axes` (keepdims or not). */
  reduceSum(a: Sym, axes: number[], keepdims: boolean): Sym {
    const kept = a.shape.map((d, i) => axes.includes(i) ? 1 : d);
    const shape = keepdims ? kept : a.shape.filter((_, i) => !axes.includes(i));
    const y = this.raw("ReduceSum", [a, this.ints(axes)], shape, { keepdims: keepdims ? 1 : 0 });
    return this.#record([a], y, (gy) => {
      const g = keepdims ? gy : this.raw("Reshape", [gy, this.ints(kept)], kept);
      return [this.raw("Expand", [g, this.#shapeOf(a)], a.shape)];
    });
  }

  /** ELU (alpha 1). */
  elu(a: Sym): Sym {
    const y = this.raw("Elu", [a], a.shape, { alpha: { f: 1 } });
    return this.#record([a], y, (gy) => {
      const pos = this.raw("Greater", [a, this.scalar(0)], a.shape);
      const d = this.raw("Where", [
        pos,
        this.scalar(1),
        this.raw("Add", [y, this.scalar(1)], a.shape),
      ], a.shape);
      return [this.raw("Mul", [gy, d], a.shape)];
    });
  }

  /**
   * Rows of a table [R, C] at int64 `idx` (any shape S): [...S, C]. Backward: the rows'
   * gradients added back where they came from (ScatterND with reduction "add").
   */
  gatherRows(table: Sym, idx: Sym): Sym {
    const [r, c] = table.shape;
    const shape = [...idx.shape, c];
    const y = this.raw("Gather", [table, idx], shape, { axis: 0 });
    return this.#record([table], y, (gy) => {
      const m = size(idx.shape);
      const zeros = this.raw("Expand", [this.scalar(0), this.ints([r, c])], [r, c]);
      const ind = this.raw("Reshape", [idx, this.ints([m, 1])], [m, 1]);
      const upd = this.raw("Reshape", [gy, this.ints([m, c])], [m, c]);
      return [this.raw("ScatterND", [zeros, ind, upd], [r, c], { reduction: "add" })];
    });
  }

  /** Natural logarithm. Backward: gy / a (tfjs' Log gradient). */
  log(a: Sym): Sym {
    const y = this.raw("Log", [a], a.shape);
    return this.#record([a], y, (gy) => [this.raw("Div", [gy, a], a.shape)]);
  }

  /**
   * |a|. Backward: gy where a > 0, -gy elsewhere, exactly tfjs' Abs gradient (dy * step(a, -1),
   * which is -1 at 0, not 0).
   */
  abs(a: Sym): Sym {
    const y = this.raw("Abs", [a], a.shape);
    return this.#record([a], y, (gy) => {
      const pos = this.raw("Greater", [a, this.scalar(0)], a.shape);
      const sign = this.raw("Where", [pos, this.scalar(1), this.scalar(-1)], a.shape);
      return [this.raw("Mul", [gy, sign], a.shape)];
    });
  }

  // ---- convolutional layers (NCHW) ------------------------------------------------------------

  /**
   * A stride-1 convolution of x [N, C, H, W] with w [O, C, k, k], zero padding `pad` on every side
   * (`wBack`: the flipped, transposed kernel [C, O, k, k] as an input, see flipTranspose; else the
   * graph makes it, and onnxruntime's Transpose of small 4-D weights is slow).
   * Backward: the input gradient is a convolution of dy with the flipped, transposed kernel; the
   * weight gradient dW[o, c, i, j] = sum_{n,h,w} dy[n, o, h, w] x[n, c, h + i - pad, w + j - pad]
   * is a 3-D convolution of x seen as [1, N, C, H, W] with dy as the kernel [O, N, 1, H', W']: one
   * GEMM of a good shape (O x N H' W' x 9 C) in onnxruntime, no transposes of x. On large maps
   * (see the constructor) it is k^2 batched matrix products over the images instead (see
   * #shiftedWeightGrad), which onnxruntime spreads over its threads.
   * `blocked`: kernels in NCHWc layout (see {@linkcode Tape.blocked}); the forward pass and the
   * input gradient then run on onnxruntime's NCHWc Conv, `w` is only named for its gradient (it
   * may be a {@linkcode Tape.gradientOnly} value) and the weight gradient stays as above.
   */
  conv(x: Sym, w: Sym, pad: number, wBack?: Sym, blocked: BlockedKernels = {}): Sym {
    const [n, , h, wd] = x.shape;
    const [o, c, k] = w.shape;
    const oh = h + 2 * pad - k + 1;
    const ow = wd + 2 * pad - k + 1;
    const attrs = { kernel_shape: [k, k], pads: [pad, pad, pad, pad] };
    const y = blocked.w
      ? this.#nchwcConv(x, blocked.w, o, [n, o, oh, ow], attrs)
      : this.raw("Conv", [x, w], [n, o, oh, ow], attrs);
    return this.#record([x, w], y, (gy) => {
      let gx: Sym | null = null;
      if (this.needsGrad(x) && blocked.back) {
        const p = k - 1 - pad;
        gx = this.#nchwcConv(gy, blocked.back, c, x.shape, {
          kernel_shape: [k, k],
          pads: [p, p, p, p],
        });
      } else if (this.needsGrad(x)) {
        let wb = wBack ?? this.raw("Transpose", [w], [c, o, k, k], { perm: [1, 0, 2, 3] });
        if (k > 1 && !wBack) {
          wb = this.raw(
            "Slice",
            [
              wb,
              this.ints([-1, -1]),
              this.ints([-k - 1, -k - 1]),
              this.ints([2, 3]),
              this.ints([-1, -1]),
            ],
            wb.shape,
          );
        }
        const p = k - 1 - pad;
        gx = this.raw("Conv", [gy, wb], x.shape, { kernel_shape: [k, k], pads: [p, p, p, p] });
      }
      let gw: Sym | null = null;
      if (this.needsGrad(w) && oh * ow >= this.#perImageFrom) {
        gw = this.#shiftedWeightGrad(x, gy, k, pad);
      } else if (this.needsGrad(w)) {
        const x5 = this.raw("Unsqueeze", [x, this.ints([0])], [1, n, c, h, wd]);
        const k5 = this.raw(
          "Unsqueeze",
          [this.raw("Transpose", [gy], [o, n, oh, ow], { perm: [1, 0, 2, 3] }), this.ints([2])],
          [o, n, 1, oh, ow],
        );
        const r = this.raw("Conv", [x5, k5], [1, o, c, k, k], {
          kernel_shape: [1, oh, ow],
          pads: [0, pad, pad, 0, pad, pad],
        });
        gw = this.raw("Reshape", [r, this.ints([o, c, k, k])], w.shape);
      }
      return [gx, gw];
    });
  }

  /**
   * The weight gradient of a stride-1 k x k convolution (x [N, C, H, W] zero-padded by `pad`,
   * gy [N, O, H', W']) as k^2 batched matrix products, one per kernel tap: with the padded x's rows
   * laid end to end (row length Wp = W + 2 pad) and gy's rows padded with k - 1 zero columns to the
   * same length, the pixels tap (i, j) pairs are one contiguous run of x, offset by i Wp + j, so
   * dW[:, :, i, j]^T = sum over images of x_run [C, L] x gy^T [L, O] (the padding columns meet zeros
   * of gy). onnxruntime parallelises a batched MatMul over the images, which its grouped and 3-D
   * convolutions (the same products through a generic N-D im2col) do not: 1.2-2x faster on maps of
   * 32 x 32 and larger (VGG w=1/4 conv1_2: 15 vs 20 ms).
   */
  #shiftedWeightGrad(x: Sym, gy: Sym, k: number, pad: number): Sym {
    const [n, c, h, wd] = x.shape;
    const [, o, oh, ow] = gy.shape;
    const wp = wd + 2 * pad;
    const l = oh * wp;
    // one more zero row below when k > 1: the last tap's run reaches k - 1 values past the image
    const rows = h + 2 * pad + (k > 1 ? 1 : 0);
    const padded = this.raw("Pad", [
      x,
      this.ints([0, 0, pad, pad, 0, 0, rows - h - pad, pad]),
    ], [n, c, rows, wp]);
    const xf = this.raw("Reshape", [padded, this.ints([n, c, rows * wp])], [n, c, rows * wp]);
    let g = gy;
    if (wp > ow) {
      g = this.raw("Pad", [gy, this.ints([0, 0, 0, 0, 0, 0, 0, wp - ow])], [n, o, oh, wp]);
    }
    const gt = this.raw(
      "Transpose",
      [
        this.raw("Reshape", [g, this.ints([n, o, l])], [n, o, l]),
      ],
      [n, l, o],
      { perm: [0, 2, 1] },
    );
    const taps: Sym[] = [];
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const s = i * wp + j;
        const run = this.raw("Slice", [xf, this.ints([s]), this.ints([s + l]), this.ints([2])], [
          n,
          c,
          l,
        ]);
        const per = this.raw("MatMul", [run, gt], [n, c, o]);
        taps.push(this.raw("ReduceSum", [per, this.ints([0])], [1, c, o], { keepdims: 1 }));
      }
    }
    const all = taps.length === 1 ? taps[0] : this.raw("Concat", taps, [k * k, c, o], { axis: 0 });
    return this.raw(
      "Transpose",
      [
        this.raw("Reshape", [all, this.ints([k, k, c, o])], [k, k, c, o]),
      ],
      [o, c, k, k],
      { perm: [3, 2, 0, 1] },
    );
  }

  /**
   * Conv of x NCHW with `kernel` already in NCHWc filter layout ([O', C', k, k] blocked, see
   * core/engine/layouts.ts' hwioToNchwc): x reordered to channel blocks, onnxruntime's NCHWc
   * Conv, the result reordered back to NCHW with its `outChannels` channels.
   */
  #nchwcConv(
    x: Sym,
    kernel: Sym,
    outChannels: number,
    outShape: readonly number[],
    attrs: Record<string, number[]>,
  ): Sym {
    const [n, c, h, w] = x.shape;
    const b = this.nchwcBlock;
    const up = (v: number) => Math.ceil(v / b) * b;
    const xr = this.#nchwc("ReorderInput", [x], [n, up(c), h, w], {});
    const yr = this.#nchwc(
      "Conv",
      [xr, kernel],
      [n, up(outChannels), outShape[2], outShape[3]],
      attrs,
    );
    return this.#nchwc("ReorderOutput", [yr], outShape, { channels: outChannels });
  }

  #nchwc(
    op: string,
    inputs: Sym[],
    shape: readonly number[],
    attrs: Record<string, number | number[]>,
  ): Sym {
    const name = this.g.node(op, inputs.map((i) => i.name), attrs, undefined, NCHWC_DOMAIN);
    return { name, shape };
  }

  /**
   * Batch normalisation with batch statistics over (N, H, W) per channel, then ReLU:
   * y = relu((z - mean) / sqrt(var + eps) * gamma + beta) with the biased variance (as tfjs'
   * moments and PyTorch's forward). gamma and beta are [1, C, 1, 1]. Returns the output and the
   * batch mean and variance [1, C, 1, 1] (for the running averages; no gradient flows through
   * them). Backward in closed form:
   * dz = gamma inv (g - mean(g) - xhat mean(g xhat)) with g the gradient after ReLU.
   */
  bnRelu(z: Sym, gamma: Sym, beta: Sym, eps: number): { y: Sym; mean: Sym; variance: Sym } {
    const c = z.shape[1];
    const cs = [1, c, 1, 1];
    const m = z.shape[0] * z.shape[2] * z.shape[3];
    const mean = this.raw("ReduceMean", [z], cs, { axes: [0, 2, 3], keepdims: 1 });
    const d = this.raw("Sub", [z, mean], z.shape);
    const variance = this.raw("ReduceSumSquare", [d], cs, { axes: [0, 2, 3], keepdims: 1 });
    const varB = this.raw("Mul", [variance, this.scalar(1 / m)], cs);
    const inv = this.raw("Reciprocal", [
      this.raw("Sqrt", [this.raw("Add", [varB, this.scalar(eps)], cs)], cs),
    ], cs);
    const a = this.raw("Mul", [gamma, inv], cs);
    const y = this.raw(
      "Relu",
      [this.raw("Add", [this.raw("Mul", [d, a], z.shape), beta], z.shape)],
      z.shape,
    );
    const out = this.#record([z, gamma, beta], y, (gy) => {
      const g = this.#reluGrad(gy, y);
      const axes = this.ints([0, 2, 3]);
      const sumG = this.raw("ReduceSum", [g, axes], cs, { keepdims: 1 });
      const sumGd = this.raw("ReduceSum", [this.raw("Mul", [g, d], z.shape), axes], cs, {
        keepdims: 1,
      });
      // dgamma = inv * sum(g d); dbeta = sum(g)
      const dGamma = this.raw("Mul", [inv, sumGd], cs);
      let dz: Sym | null = null;
      if (this.needsGrad(z)) {
        // dz = a g - a inv^2 sum(g d)/m d - a sum(g)/m
        const inv2 = this.raw("Mul", [inv, inv], cs);
        const kd = this.raw("Mul", [
          this.raw("Mul", [a, inv2], cs),
          this.raw("Mul", [sumGd, this.scalar(-1 / m)], cs),
        ], cs);
        const kc = this.raw("Mul", [a, this.raw("Mul", [sumG, this.scalar(-1 / m)], cs)], cs);
        const t = this.raw("Add", [
          this.raw("Mul", [g, a], z.shape),
          this.raw("Mul", [d, kd], z.shape),
        ], z.shape);
        dz = this.raw("Add", [t, kc], z.shape);
      }
      return [dz, dGamma, sumG];
    });
    return { y: out, mean, variance: varB };
  }

  /** 2x2 max-pool, stride 2 (odd rows/columns dropped). Backward: MaxUnpool of the indices. */
  maxPool2(x: Sym): Sym {
    const [n, c, h, w] = x.shape;
    const shape = [n, c, Math.floor(h / 2), Math.floor(w / 2)];
    const name = this.g.fresh("pool");
    const idx = this.g.fresh("pool_idx");
    this.g.nodeMulti("MaxPool", [x.name], [name, idx], { kernel_shape: [2, 2], strides: [2, 2] });
    const y = { name, shape };
    return this.#record([x], y, (gy) => [
      this.raw("MaxUnpool", [gy, idx, this.#shapeOf(x)], x.shape, {
        kernel_shape: [2, 2],
        strides: [2, 2],
      }),
    ]);
  }

  /** Max over `axis` (dropped). Backward to the element(s) equal to the maximum. */
  maxOver(x: Sym, axis: number): Sym {
    const kept = x.shape.map((d, i) => i === axis ? 1 : d);
    const m = this.raw("ReduceMax", [x], kept, { axes: [axis], keepdims: 1 });
    const shape = x.shape.filter((_, i) => i !== axis);
    const y = this.raw("Reshape", [m, this.ints(shape)], shape);
    return this.#record([x], y, (gy) => {
      const g = this.raw("Reshape", [gy, this.ints(kept)], kept);
      const hit = this.raw("Equal", [x, m], x.shape);
      return [this.raw("Where", [hit, g, this.scalar(0)], x.shape)];
    });
  }

  // ---- losses ---------------------------------------------------------------------------------

  /** Mean softmax cross-entropy of logits [N, K] against one-hot rows [N, K] (no gradient). */
  crossEntropy(logits: Sym, oneHot: Sym): Sym {
    const [n] = logits.shape;
    const ls = this.raw("LogSoftmax", [logits], logits.shape, { axis: 1 });
    const y = this.raw(
      "Mul",
      [
        this.raw("ReduceSum", [this.raw("Mul", [ls, oneHot], logits.shape)], [], { keepdims: 0 }),
        this.scalar(-1 / n),
      ],
      [],
    );
    return this.#record([logits], y, (gy) => {
      const p = this.raw("Softmax", [logits], logits.shape, { axis: 1 });
      const d = this.raw("Sub", [p, oneHot], logits.shape);
      return [this.raw("Mul", [d, this.raw("Mul", [gy, this.scalar(1 / n)], [])], logits.shape)];
    });
  }

  /** Mean of (a - b)^2 over every element: a scalar. */
  meanSquaredError(a: Sym, b: Sym): Sym {
    const d = this.sub(a, b);
    return this.meanAll(this.mul(d, d));
  }

  // ---- backward -------------------------------------------------------------------------------

  /** Gradients of the scalar `loss` with respect to `wrt` (null where it does not depend on one). */
  gradients(loss: Sym, wrt: Sym[]): (Sym | null)[] {
    const grads = new Map<string, Sym>();
    grads.set(loss.name, this.scalar(1));
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i];
      const gy = grads.get(e.output.name);
      if (!gy) continue;
      const gs = e.vjp(gy);
      e.inputs.forEach((inp, k) => {
        const gk = gs[k];
        if (!gk || !this.#needs.has(inp.name)) return;
        const prev = grads.get(inp.name);
        grads.set(inp.name, prev ? this.raw("Add", [prev, gk], inp.shape) : gk);
      });
    }
    return wrt.map((w) => grads.get(w.name) ?? null);
  }

  /** Serialises the graph. */
  toModel(name = "cotrain-train-step"): Uint8Array {
    return this.g.toModel({ name });
  }

  #shapeOf(a: Sym): string {
    return this.ints([...a.shape]);
  }

  /** Sums `g` down to `target`'s (broadcast) shape. */
  #unbroadcast(g: Sym, target: Sym): Sym | null {
    if (!this.needsGrad(target)) return null;
    const gs = g.shape;
    const ts = target.shape;
    if (gs.length === ts.length && gs.every((d, i) => d === ts[i])) return g;
    const lead = gs.length - ts.length;
    const axes: number[] = [];
    for (let i = 0; i < gs.length; i++) {
      if (i < lead || (ts[i - lead] === 1 && gs[i] !== 1)) axes.push(i);
    }
    const r = this.raw(
      "ReduceSum",
      [g, this.ints(axes)],
      gs.map((d, i) => axes.includes(i) ? 1 : d),
      {
        keepdims: 1,
      },
    );
    return size(r.shape) === size(ts) && r.shape.length !== ts.length
      ? this.raw("Reshape", [r, this.ints([...ts])], ts)
      : r;
  }
}
