import assert from "node:assert/strict";
import { CoreError } from "../errors.ts";
import { encodeJpeg } from "../io/image.ts";
import { generateImageSet, writeImageSet } from "./image_set.ts";
import {
  directoryCache,
  loadTinyImageNet,
  memoryCache,
  splitValidation,
  toGray,
} from "./tiny_imagenet.ts";

/** wnids.txt order (deliberately unsorted); labels follow the sorted order. */
const WNIDS = ["n03000000", "n01000000", "n02000000"];
const SORTED = [...WNIDS].sort();
const TRAIN_PER = 10;
const VAL_PER = 2;

/** The gray value of training image `i` of the class with label `label`. */
function trainValue(label: number, i: number): number {
  return 30 + 60 * label + 3 * i;
}

function constantJpeg(rgb: [number, number, number], size = 64): Uint8Array {
  const data = new Uint8Array(size * size * 3);
  for (let p = 0; p < size * size; p++) data.set(rgb, 3 * p);
  return encodeJpeg({ width: size, height: size, channels: 3, data }, 95);
}

/** Writes a small Tiny ImageNet in the real layout: constant-gray JPEGs that encode their label. */
async function makeTin(root: string): Promise<void> {
  await Deno.writeTextFile(`${root}/wnids.txt`, WNIDS.join("\n") + "\n");
  await Deno.writeTextFile(
    `${root}/words.txt`,
    "n01000000\tfirst thing\nn02000000\tsecond, thing\nn09999999\tnot ours\n",
  );
  for (const w of WNIDS) {
    const label = SORTED.indexOf(w);
    await Deno.mkdir(`${root}/train/${w}/images`, { recursive: true });
    for (let i = 0; i < TRAIN_PER; i++) {
      const v = trainValue(label, i);
      await Deno.writeFile(`${root}/train/${w}/images/${w}_${i}.JPEG`, constantJpeg([v, v, v]));
    }
  }
  await Deno.mkdir(`${root}/val/images`, { recursive: true });
  const lines: string[] = [];
  let k = 0;
  for (let i = 0; i < VAL_PER; i++) {
    for (const w of WNIDS) {
      const v = 200 + 10 * SORTED.indexOf(w);
      await Deno.writeFile(`${root}/val/images/val_${k}.JPEG`, constantJpeg([v, v, v]));
      lines.push(`val_${k}.JPEG\t${w}\t0\t3\t60\t62`);
      k++;
    }
  }
  await Deno.writeTextFile(`${root}/val/val_annotations.txt`, lines.join("\n") + "\n");
}

async function withTin(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "cotrain-tin-" });
  try {
    await makeTin(root);
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function meanOf(a: Uint8Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s / a.length;
}

async function assertCoreError(
  p: Promise<unknown>,
  code: string,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CoreError, `expected a CoreError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("tiny imagenet: reads the real layout with right labels, splits and test order", async () => {
  await withTin(async (root) => {
    const tin = await loadTinyImageNet(root, { seed: 3 });
    assert.deepEqual(tin.classes, SORTED);
    assert.deepEqual(tin.words, ["first thing", "second, thing", "n03000000"]);
    assert.equal(tin.decoded, 30 + 6);
    assert.equal(tin.fromCache, false);
    // 10% of each class held out: 1 of 10.
    assert.deepEqual(tin.train.images.shape, [27, 64, 64]);
    assert.deepEqual(tin.val.images.shape, [3, 64, 64]);
    assert.deepEqual(tin.test.images.shape, [6, 64, 64]);
    for (let c = 0; c < 3; c++) {
      assert.equal(tin.val.labels.data.filter((l) => l === c).length, 1);
      assert.equal(tin.train.labels.data.filter((l) => l === c).length, 9);
    }
    // Every image's pixels say which class and file it is.
    for (const split of [tin.train, tin.val]) {
      split.source.forEach((src, k) => {
        const file = tin.manifest.trainFiles[src];
        const [, w, , name] = file.split("/");
        const label = split.labels.data[k];
        assert.equal(tin.classes[label], w);
        const i = Number(name.match(/_(\d+)\.JPEG$/)![1]);
        const img = split.images.data.subarray(k * 4096, (k + 1) * 4096);
        assert.ok(Math.abs(meanOf(img) - trainValue(label, i)) < 1.5, file);
      });
    }
    // Train and val are disjoint, together all files, each ascending.
    const all = [...tin.train.source, ...tin.val.source].sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 30 }, (_, i) => i));
    // Test set: annotation order (classes interleaved n03, n01, n02, ...).
    assert.deepEqual([...tin.test.labels.data], [2, 0, 1, 2, 0, 1]);
    assert.deepEqual(tin.manifest.testFiles.slice(0, 2), [
      "val/images/val_0.JPEG",
      "val/images/val_1.JPEG",
    ]);
    tin.test.labels.data.forEach((l, k) => {
      const img = tin.test.images.data.subarray(k * 4096, (k + 1) * 4096);
      assert.ok(Math.abs(meanOf(img) - (200 + 10 * l)) < 1.5);
    });
    // The split is seeded: same seed same split, another seed another split.
    const again = await loadTinyImageNet(root, { seed: 3 });
    assert.deepEqual(again.val.source, tin.val.source);
    const other = await loadTinyImageNet(root, { seed: 4, valFraction: 0.2 });
    assert.equal(other.val.source.length, 6);
  });
});

Deno.test("tiny imagenet: colour JPEGs become gray with PIL's luma", async () => {
  const root = await Deno.makeTempDir({ prefix: "cotrain-tin-" });
  try {
    await makeTin(root);
    const rgb: [number, number, number] = [200, 100, 50];
    await Deno.writeFile(`${root}/train/n01000000/images/n01000000_0.JPEG`, constantJpeg(rgb));
    const tin = await loadTinyImageNet(root, { valFraction: 0 });
    const expected = (19595 * 200 + 38470 * 100 + 7471 * 50 + 32768) >> 16; // 124
    assert.equal(expected, 124);
    assert.ok(Math.abs(meanOf(tin.train.images.data.subarray(0, 4096)) - expected) < 2);
    assert.equal(
      toGray({ width: 1, height: 1, channels: 4, data: new Uint8Array([200, 100, 50, 0]) })[0],
      124,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("tiny imagenet: a second load decodes nothing (memory and folder caches)", async () => {
  await withTin(async (root) => {
    const cache = memoryCache();
    const first = await loadTinyImageNet(root, { cache, seed: 1 });
    assert.equal(first.decoded, 36);
    assert.equal(cache.entries.size, 2);
    const key = [...cache.entries.keys()].find((k) => k.endsWith(".json"))!;
    assert.match(key, /^tiny-imagenet\/[0-9a-f]{64}\.json$/);

    // Damage a JPEG without changing its size or mtime: a load that decoded it would fail.
    const path = `${root}/train/n02000000/images/n02000000_4.JPEG`;
    const st = await Deno.stat(path);
    const good = await Deno.readFile(path);
    await Deno.writeFile(path, new Uint8Array(good.length).fill(7));
    await Deno.utime(path, st.atime!, st.mtime!);

    const second = await loadTinyImageNet(root, { cache, seed: 1 });
    assert.equal(second.decoded, 0);
    assert.equal(second.fromCache, true);
    assert.deepEqual(second.train.images.data, first.train.images.data);
    assert.deepEqual(second.val.labels.data, first.val.labels.data);
    assert.deepEqual(second.test.images.data, first.test.images.data);
    assert.deepEqual(second.manifest, first.manifest);
    // Another split seed reuses the same cache.
    const reseeded = await loadTinyImageNet(root, { cache, seed: 2 });
    assert.equal(reseeded.decoded, 0);

    // A changed listing (the file's mtime now differs) misses the cache and decodes again, which
    // finds the damaged file.
    await Deno.utime(path, st.atime!, new Date(st.mtime!.getTime() + 5000));
    await assertCoreError(
      loadTinyImageNet(root, { cache }),
      "INVALID_ARGUMENT",
      /n02000000_4\.JPEG/,
    );
    await Deno.writeFile(path, good);
    const third = await loadTinyImageNet(root, { cache });
    assert.equal(third.decoded, 36);
    assert.deepEqual(third.train.images.data.length, first.train.images.data.length);

    // A damaged cache blob is ignored and rewritten.
    const npzKey = `tiny-imagenet/${third.manifest.listingSha256}.npz`;
    assert.ok(cache.entries.has(npzKey));
    for (const k of cache.entries.keys()) {
      if (k.endsWith(".npz")) cache.entries.set(k, new Uint8Array(10));
    }
    const repaired = await loadTinyImageNet(root, { cache });
    assert.equal(repaired.decoded, 36);
    assert.ok(cache.entries.get(npzKey)!.length > 1000);

    // A real folder as the cache, a fresh cache object on the second load.
    const dir = await Deno.makeTempDir({ prefix: "cotrain-cache-" });
    try {
      const a = await loadTinyImageNet(root, { cache: directoryCache(dir), cachePrefix: "tin/" });
      assert.equal(a.decoded, 36);
      const files = [...Deno.readDirSync(`${dir}/tin`)].map((e) => e.name).sort();
      assert.equal(files.length, 2);
      assert.match(files[0], /^[0-9a-f]{64}\.json$/);
      assert.match(files[1], /^[0-9a-f]{64}\.npz$/);
      const b = await loadTinyImageNet(root, { cache: directoryCache(dir), cachePrefix: "tin/" });
      assert.equal(b.decoded, 0);
      assert.deepEqual(b.train.images.data, a.train.images.data);
      await assert.rejects(directoryCache(dir).put("../x", new Uint8Array(1)), CoreError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("tiny imagenet: missing and corrupt files, unknown wnids and wrong sizes are named", async () => {
  await assertCoreError(loadTinyImageNet("/nonexistent/tin"), "NOT_FOUND", /\/nonexistent\/tin/);
  await withTin(async (root) => {
    await assertCoreError(
      loadTinyImageNet(root, { valFraction: 1 }),
      "INVALID_ARGUMENT",
      /valFraction/,
    );

    const ann = `${root}/val/val_annotations.txt`;
    const annText = await Deno.readTextFile(ann);
    await Deno.writeTextFile(ann, annText + "val_9.JPEG\tn07777777\t0\t0\t10\t10\n");
    await assertCoreError(
      loadTinyImageNet(root),
      "INVALID_ARGUMENT",
      /val_annotations\.txt line 7: wnid n07777777 .*not in wnids\.txt/,
    );
    await Deno.writeTextFile(ann, annText + "val_9.JPEG\tn01000000\t0\t0\tx\t10\n");
    await assertCoreError(loadTinyImageNet(root), "INVALID_ARGUMENT", /line 7: bounding box/);
    await Deno.writeTextFile(ann, annText + "val_9.JPEG\tn01000000\n");
    await assertCoreError(
      loadTinyImageNet(root),
      "NOT_FOUND",
      /val\/images\/val_9\.JPEG not found/,
    );
    await Deno.writeTextFile(ann, annText + annText.split("\n")[0] + "\n");
    await assertCoreError(loadTinyImageNet(root), "INVALID_ARGUMENT", /annotated twice/);
    await Deno.writeTextFile(ann, annText);

    const img = `${root}/train/n03000000/images/n03000000_2.JPEG`;
    const good = await Deno.readFile(img);
    await Deno.writeFile(img, good.subarray(0, 200));
    await assertCoreError(
      loadTinyImageNet(root),
      "INVALID_ARGUMENT",
      /n03000000_2\.JPEG cannot be decoded/,
    );
    await Deno.writeFile(img, new TextEncoder().encode("not an image"));
    await assertCoreError(
      loadTinyImageNet(root),
      "INVALID_ARGUMENT",
      /n03000000_2\.JPEG cannot be decoded/,
    );
    await Deno.writeFile(img, constantJpeg([9, 9, 9], 32));
    await assertCoreError(
      loadTinyImageNet(root),
      "INVALID_ARGUMENT",
      /n03000000_2\.JPEG is 32x32; expected 64x64/,
    );
    await Deno.writeFile(img, good);

    await Deno.remove(`${root}/train/n02000000`, { recursive: true });
    await assertCoreError(
      loadTinyImageNet(root),
      "NOT_FOUND",
      /train\/n02000000\/images not found/,
    );
    await Deno.remove(ann);
    await Deno.mkdir(`${root}/train/n02000000/images`, { recursive: true });
    await assertCoreError(
      loadTinyImageNet(root),
      "INVALID_ARGUMENT",
      /n02000000\/images holds no images/,
    );
    await Deno.writeFile(`${root}/train/n02000000/images/a.JPEG`, good);
    await assertCoreError(loadTinyImageNet(root), "NOT_FOUND", /val_annotations\.txt not found/);
    await Deno.remove(`${root}/wnids.txt`);
    await assertCoreError(loadTinyImageNet(root), "NOT_FOUND", /wnids\.txt not found/);
  });
});

Deno.test("tiny imagenet: reads a folder written by the image set generator", async () => {
  const root = await Deno.makeTempDir({ prefix: "cotrain-set-" });
  try {
    await writeImageSet(root, { classes: 4, trainPerClass: 10, valPerClass: 3, seed: 11 });
    const tin = await loadTinyImageNet(root, { seed: 0 });
    assert.deepEqual(tin.classes, ["n90000000", "n90000001", "n90000002", "n90000003"]);
    assert.match(tin.words[1], /^square, /);
    assert.equal(tin.train.labels.data.length + tin.val.labels.data.length, 40);
    assert.equal(tin.test.labels.data.length, 12);
    // Pixels match the in-memory generator up to JPEG error.
    const mem = generateImageSet({ classes: 4, perClass: 10, seed: 11 });
    tin.train.source.forEach((src, k) => {
      const file = tin.manifest.trainFiles[src];
      const [, w, , name] = file.split("/");
      const label = tin.classes.indexOf(w);
      assert.equal(tin.train.labels.data[k], label);
      const i = Number(name.match(/_(\d+)\.JPEG$/)![1]);
      const a = tin.train.images.data.subarray(k * 4096, (k + 1) * 4096);
      const b = mem.images.data.subarray((label * 10 + i) * 4096, (label * 10 + i + 1) * 4096);
      let err = 0;
      for (let p = 0; p < 4096; p++) err += Math.abs(a[p] - b[p]);
      assert.ok(err / 4096 < 4, `${file}: mean abs JPEG error ${err / 4096}`);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("tiny imagenet: the validation split is stratified, seeded and rounds per class", () => {
  const labels = Int32Array.from({ length: 95 }, (_, i) => (i < 50 ? 0 : i < 80 ? 1 : 2));
  const a = splitValidation(labels, 0.1, 5);
  assert.deepEqual(
    [0, 1, 2].map((c) => a.val.filter((i) => labels[i] === c).length),
    [5, 3, 2],
  );
  assert.equal(a.train.length + a.val.length, 95);
  assert.deepEqual(splitValidation(labels, 0.1, 5), a);
  assert.notDeepEqual(splitValidation(labels, 0.1, 6).val, a.val);
  assert.equal(splitValidation(labels, 0, 5).val.length, 0);
});
