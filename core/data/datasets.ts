/**
 * The data sets the classifier-trainer can train on, named by URI:
 *
 * - `builtin:image-set?classes=10&train_per_class=450&val_per_class=50&test_per_class=50&size=64&seed=0`:
 *   the built-in class-structured image set (core/data/image_set.ts); train and validation come
 *   from its train stream (validation after the training images), test from its val stream;
 * - `file:///abs/dir`: a folder in the Tiny ImageNet layout (core/data/tiny_imagenet.ts), decoded
 *   once and cached as packed arrays through the caller's ArrayCache (the services pass one on
 *   their object store: platform/store's `arrayCache`).
 *
 * Anything else, or a folder that does not exist, is NOT_FOUND. Shared by the classifier-trainer
 * (training), the evaluator (test split) and the orchestrator (class names, counts).
 *
 * @example
 * ```ts
 * import { loadDataset } from "./datasets.ts";
 * const d = await loadDataset("builtin:image-set?classes=2&train_per_class=3&val_per_class=1&test_per_class=1&size=16");
 * console.log(d.classes, d.train.images.shape); // 2 [ 6, 16, 16 ]
 * ```
 * @module
 */
import { fileURLToPath } from "node:url";
import { generateImageSet } from "./image_set.ts";
import { type ArrayCache, type LabelledImages, loadTinyImageNet } from "./tiny_imagenet.ts";
import { CoreError } from "../errors.ts";

/** A loaded data set: splits, class count and names. */
export interface Dataset {
  train: LabelledImages;
  val: LabelledImages;
  test: LabelledImages;
  classes: number;
  classNames: string[];
}

const BUILTIN_PARAMS: Record<string, number> = {
  classes: 10,
  train_per_class: 450,
  val_per_class: 50,
  test_per_class: 50,
  size: 64,
  seed: 0,
};

function builtin(uri: string): Dataset {
  const url = new URL(uri);
  if (url.pathname !== "image-set") {
    throw new CoreError(
      "NOT_FOUND",
      `dataset_uri: ${uri}: no built-in data set ${JSON.stringify(url.pathname)}; ` +
        `the built-in one is builtin:image-set?classes=..&train_per_class=..`,
    );
  }
  const p = { ...BUILTIN_PARAMS };
  for (const [k, v] of url.searchParams) {
    if (!(k in p)) {
      throw CoreError.invalidArgument(
        `dataset_uri: unknown parameter ${k}; allowed: ${Object.keys(p).join(", ")}`,
      );
    }
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw CoreError.invalidArgument(`dataset_uri: ${k}=${v} must be a whole number >= 0`);
    }
    p[k] = n;
  }
  if (p.classes < 1 || p.train_per_class < 1 || p.val_per_class < 1 || p.size < 16) {
    throw CoreError.invalidArgument(
      "dataset_uri: need classes >= 1, train_per_class >= 1, val_per_class >= 1, size >= 16",
    );
  }
  const common = { classes: p.classes, size: p.size, seed: p.seed };
  const train = generateImageSet({ ...common, perClass: p.train_per_class });
  const val = generateImageSet({ ...common, perClass: p.val_per_class, start: p.train_per_class });
  const test = generateImageSet({ ...common, perClass: p.test_per_class, split: "val" });
  return {
    train: { images: train.images, labels: train.labels },
    val: { images: val.images, labels: val.labels },
    test: { images: test.images, labels: test.labels },
    classes: p.classes,
    classNames: train.classes.map((c) => c.name),
  };
}

const memo = new Map<string, Promise<Dataset>>();

/** Loads the data set named by `uri` (memoised per process). */
export function loadDataset(uri: string, cache?: ArrayCache): Promise<Dataset> {
  let p = memo.get(uri);
  if (!p) {
    p = load(uri, cache);
    memo.set(uri, p);
    p.catch(() => memo.delete(uri));
    if (memo.size > 8) memo.delete(memo.keys().next().value!);
  }
  return p;
}

async function load(uri: string, cache?: ArrayCache): Promise<Dataset> {
  if (!uri) {
    throw CoreError.invalidArgument(
      "dataset_uri: missing (builtin:image-set?.. or file:///dir)",
    );
  }
  if (uri.startsWith("builtin:")) return builtin(uri);
  if (uri.startsWith("file://")) {
    const dir = fileURLToPath(uri);
    try {
      const st = await Deno.stat(dir);
      if (!st.isDirectory) throw new Deno.errors.NotFound(dir);
    } catch {
      throw new CoreError("NOT_FOUND", `dataset_uri: ${uri}: no such folder`);
    }
    const tin = await loadTinyImageNet(dir, { cache });
    return {
      train: tin.train,
      val: tin.val,
      test: tin.test,
      classes: tin.classes.length,
      classNames: tin.words,
    };
  }
  throw new CoreError(
    "NOT_FOUND",
    `dataset_uri: ${uri}: unknown data set; use builtin:image-set?.. or file:///dir (Tiny ImageNet layout)`,
  );
}
