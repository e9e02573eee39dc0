import assert from "node:assert/strict";
import { CoreError } from "../errors.ts";
import {
  generateImageSet,
  imageSetClasses,
  imageSetImage,
  pinkNoise,
  SHAPES,
  writeImageSet,
} from "./image_set.ts";
import {
  accuracy,
  nearestClassMean,
  orientedEnergyFeatures,
  pixelFeatures,
  ridgeClassifier,
} from "./image_set_probe.ts";
import { rngFor } from "../random.ts";

async function filesUnder(root: string, rel = ""): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(`${root}/${rel}`)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) { for (const [k, v] of await filesUnder(root, p)) out.set(k, v); }
    else out.set(p, await Deno.readFile(`${root}/${p}`));
  }
  return out;
}

Deno.test("image set: class definitions give distinct (shape, texture) pairs", () => {
  const ten = imageSetClasses(10);
  assert.deepEqual(ten.map((c) => c.shape), [...SHAPES]);
  const textures = new Set(ten.map((c) => `${c.orientationDeg}/${c.frequency}`));
  assert.equal(textures.size, 10, "10 classes: 10 distinct textures");
  assert.deepEqual(ten.map((c) => c.orientationDeg), [0, 36, 72, 108, 144, 0, 36, 72, 108, 144]);
  assert.deepEqual(ten.map((c) => c.frequency), [
    0.09,
    0.09,
    0.09,
    0.09,
    0.09,
    0.18,
    0.18,
    0.18,
    0.18,
    0.18,
  ]);
  for (const n of [1, 2, 7, 11, 64, 200, 1000]) {
    const defs = imageSetClasses(n);
    assert.equal(defs.length, n);
    const pairs = new Set(defs.map((c) => `${c.shape}/${c.orientationDeg}/${c.frequency}`));
    assert.equal(pairs.size, n, `${n} classes: distinct pairs`);
    assert.equal(new Set(defs.map((c) => c.wnid)).size, n);
    assert.deepEqual(defs.map((c) => c.wnid), [...defs.map((c) => c.wnid)].sort());
  }
  assert.throws(() => imageSetClasses(0), CoreError);
  assert.throws(() => generateImageSet({ classes: 2, perClass: -1 }), /perClass/);
  assert.throws(() => generateImageSet({ classes: 2, perClass: 1, seed: 0.5 }), /seed/);
});

Deno.test("image set: same seed, same pixels; another seed, other pixels; images independent of set size", () => {
  const a = generateImageSet({ classes: 3, perClass: 4, seed: 21 });
  const b = generateImageSet({ classes: 3, perClass: 4, seed: 21 });
  const c = generateImageSet({ classes: 3, perClass: 4, seed: 22 });
  assert.deepEqual(a.images.data, b.images.data);
  assert.deepEqual(a.bboxes, b.bboxes);
  assert.notDeepEqual(a.images.data, c.images.data);
  assert.deepEqual(a.labels.data, Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]));
  // Image (class 1, index 2) is the same in a bigger set and via `start`.
  const img = a.images.data.subarray(6 * 4096, 7 * 4096);
  const big = generateImageSet({ classes: 3, perClass: 6, seed: 21 });
  assert.deepEqual(big.images.data.subarray(8 * 4096, 9 * 4096), img);
  const one = generateImageSet({ classes: 3, perClass: 1, seed: 21, start: 2 });
  assert.deepEqual(one.images.data.subarray(4096, 8192), img);
  assert.deepEqual(imageSetImage(a.classes, 21, "train", 1, 2).pixels, img);
  // Train and val streams differ.
  const v = generateImageSet({ classes: 3, perClass: 4, seed: 21, split: "val" });
  assert.notDeepEqual(v.images.data, a.images.data);
  // A different size works too.
  assert.deepEqual(generateImageSet({ classes: 2, perClass: 1, size: 40 }).images.shape, [
    2,
    40,
    40,
  ]);
});

Deno.test("image set: pixel statistics are sane and class-independent in the mean", () => {
  const z = pinkNoise(rngFor(1), 64);
  let m = 0, v = 0;
  for (const x of z) m += x;
  for (const x of z) v += (x - m / z.length) ** 2;
  assert.ok(Math.abs(m / z.length) < 1e-9 && Math.abs(v / z.length - 1) < 1e-9);
  const set = generateImageSet({ classes: 4, perClass: 25, seed: 5 });
  const means = [0, 0, 0, 0];
  set.labels.data.forEach((l, k) => {
    let s = 0;
    for (const p of set.images.data.subarray(k * 4096, (k + 1) * 4096)) s += p;
    means[l] += s / 4096 / 25;
  });
  for (const mu of means) assert.ok(Math.abs(mu - 127.5) < 12, `class mean ${mu}`);
  // The object's bounding box lies inside the image and is not degenerate.
  for (let k = 0; k < 100; k++) {
    const [x0, y0, x1, y1] = set.bboxes.subarray(4 * k, 4 * k + 4);
    assert.ok(0 <= x0 && x0 < x1 && x1 < 64 && 0 <= y0 && y0 < y1 && y1 < 64);
    assert.ok(x1 - x0 >= 8 && y1 - y0 >= 8);
  }
});

Deno.test("image set: the Tiny ImageNet layout on disk, balanced and byte-identical per seed", async () => {
  const a = await Deno.makeTempDir({ prefix: "cotrain-set-" });
  const b = await Deno.makeTempDir({ prefix: "cotrain-set-" });
  try {
    const opts = { classes: 3, trainPerClass: 5, valPerClass: 4, seed: 8 };
    const s = await writeImageSet(a, opts);
    await writeImageSet(b, opts);
    assert.equal(s.train, 15);
    assert.equal(s.val, 12);
    const fa = await filesUnder(a);
    const fb = await filesUnder(b);
    assert.deepEqual([...fa.keys()].sort(), [...fb.keys()].sort());
    for (const [k, v] of fa) assert.deepEqual(fb.get(k), v, k);

    const wnids = new TextDecoder().decode(fa.get("wnids.txt")).trim().split("\n");
    assert.deepEqual(wnids, ["n90000000", "n90000001", "n90000002"]);
    const words = new TextDecoder().decode(fa.get("words.txt"));
    assert.match(words, /^n90000000\tdisk, 0 deg grating, 0\.125 c\/px$/m);
    for (const w of wnids) {
      for (let i = 0; i < 5; i++) {
        const jpg = fa.get(`train/${w}/images/${w}_${i}.JPEG`);
        assert.ok(jpg && jpg[0] === 0xff && jpg[1] === 0xd8, `${w}_${i}`);
      }
      const boxes = new TextDecoder().decode(fa.get(`train/${w}/${w}_boxes.txt`)).trim().split(
        "\n",
      );
      assert.equal(boxes.length, 5);
      assert.match(boxes[0], new RegExp(`^${w}_0\\.JPEG\\t\\d+\\t\\d+\\t\\d+\\t\\d+$`));
    }
    const ann = new TextDecoder().decode(fa.get("val/val_annotations.txt")).trim().split("\n");
    assert.equal(ann.length, 12);
    const perClass = new Map<string, number>();
    ann.forEach((line, k) => {
      const f = line.split("\t");
      assert.equal(f.length, 6);
      assert.equal(f[0], `val_${k}.JPEG`);
      assert.ok(fa.has(`val/images/${f[0]}`));
      perClass.set(f[1], (perClass.get(f[1]) ?? 0) + 1);
    });
    assert.deepEqual([...perClass.values()], [4, 4, 4]);
    // The val order is shuffled, not class-major.
    assert.notDeepEqual(
      ann.map((l) => l.split("\t")[1]),
      [...ann.map((l) => l.split("\t")[1])].sort(),
    );
    const meta = JSON.parse(new TextDecoder().decode(fa.get("image_set.json")));
    assert.equal(meta.seed, 8);
    assert.equal(meta.classes.length, 3);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("image set: oriented energy separates the classes, a linear read-out of pixels does not", () => {
  const classes = 10;
  const train = generateImageSet({ classes, perClass: 30, seed: 1 });
  const test = generateImageSet({ classes, perClass: 20, seed: 1, split: "val" });
  const probe = accuracy(
    nearestClassMean(
      orientedEnergyFeatures(train.images),
      train.labels.data,
      orientedEnergyFeatures(test.images),
    ),
    test.labels.data,
  );
  const px = pixelFeatures(train.images);
  const pxTest = pixelFeatures(test.images);
  // The best of several ridge strengths, scored on the test set itself: an upper bound.
  const linear = Math.max(
    ...[0.1, 10, 1000].map((lambda) =>
      accuracy(ridgeClassifier(px, train.labels.data, pxTest, lambda), test.labels.data)
    ),
  );
  // The same linear classifier on the oriented-energy features works: the read-out is not at fault.
  const linearOnEnergy = accuracy(
    ridgeClassifier(
      orientedEnergyFeatures(train.images),
      train.labels.data,
      orientedEnergyFeatures(test.images),
      1,
    ),
    test.labels.data,
  );
  console.log(
    `probe (oriented energy + nearest class mean) ${probe.toFixed(3)}, ` +
      `ridge on pixels ${linear.toFixed(3)}, ridge on oriented energy ${
        linearOnEnergy.toFixed(3)
      }, ` +
      `chance ${(1 / classes).toFixed(3)}`,
  );
  assert.ok(probe >= 0.85, `probe accuracy ${probe}`);
  assert.ok(linearOnEnergy >= 0.85, `ridge on energy ${linearOnEnergy}`);
  assert.ok(linear <= 0.25, `linear accuracy on pixels ${linear}: should be near chance`);
  assert.ok(probe - linear >= 0.6);
});

Deno.test("image set probe: the linear read-out does learn a pixel-level class signal", () => {
  // Guard against a broken ridge: add a left-bright/right-dark step to class 1 (a pixel-level,
  // linearly visible signal) and the same classifier must find it.
  const set = generateImageSet({ classes: 2, perClass: 30, seed: 2 });
  const shifted = set.images.data.map((v, i) =>
    set.labels.data[Math.floor(i / 4096)] === 1
      ? Math.min(255, Math.max(0, v + (i % 64 < 32 ? 30 : -30)))
      : v
  );
  const images = { ...set.images, data: shifted };
  const half = (k: number) => Math.floor(k / 30) * 30;
  const trainRows = [...Array(60).keys()].filter((k) => k - half(k) < 20);
  const testRows = [...Array(60).keys()].filter((k) => k - half(k) >= 20);
  const pick = (rows: number[]) => ({
    x: pixelFeatures({
      dtype: "uint8",
      shape: [rows.length, 64, 64],
      data: Uint8Array.from(
        rows.flatMap((r) => [...images.data.subarray(r * 4096, (r + 1) * 4096)]),
      ),
    }),
    y: Int32Array.from(rows, (r) => set.labels.data[r]),
  });
  const tr = pick(trainRows);
  const te = pick(testRows);
  assert.ok(accuracy(ridgeClassifier(tr.x, tr.y, te.x, 1), te.y) >= 0.9);
});
