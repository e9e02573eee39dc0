import assert from "node:assert/strict";
import {
  decodeImage,
  decodeJpeg,
  decodePng,
  encodeJpeg,
  encodePng,
  sniffImageFormat,
} from "./image.ts";
import {
  assertBytesEqual,
  assertInvalid,
  makePng,
  pngChunk as chunk,
  psnr,
  randomImage,
  Rng,
  smoothImage,
} from "./_test_util.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);

Deno.test("PNG round-trips gray, RGB and RGBA exactly", () => {
  const rng = new Rng(31);
  for (const channels of [1, 3, 4] as const) {
    for (const [w, h] of [[1, 1], [7, 5], [64, 33]]) {
      const img = randomImage(rng, w, h, channels);
      const png = encodePng(img);
      assert.equal(sniffImageFormat(png), "png");
      const back = decodeImage(png);
      assert.deepEqual([back.width, back.height, back.channels], [w, h, channels]);
      assertBytesEqual(back.data, img.data, `${w}x${h}x${channels}`);
    }
  }
});

Deno.test("JPEG round-trips within a PSNR bound that rises with quality", () => {
  const img = smoothImage(64, 48, 3);
  const results: number[] = [];
  for (const quality of [30, 75, 95]) {
    const jpeg = encodeJpeg(img, quality);
    assert.equal(sniffImageFormat(jpeg), "jpeg");
    const back = decodeImage(jpeg);
    assert.deepEqual([back.width, back.height, back.channels], [64, 48, 3]);
    results.push(psnr(back.data, img.data));
  }
  assert.ok(results[0] > 30, `q30 PSNR ${results[0].toFixed(1)} dB`);
  assert.ok(results[2] > 40, `q95 PSNR ${results[2].toFixed(1)} dB`);
  assert.ok(results[0] < results[1] && results[1] < results[2], `PSNR rises: ${results}`);
  // Gray input is stored as RGB with equal channels; RGBA loses its alpha.
  const gray = smoothImage(32, 32, 1);
  const g = decodeJpeg(encodeJpeg(gray));
  assert.equal(g.channels, 3);
  const r = new Uint8Array(32 * 32).map((_, i) => g.data[3 * i]);
  assert.ok(psnr(r, gray.data) > 35, `gray PSNR ${psnr(r, gray.data)}`);
  const rgba = decodeJpeg(encodeJpeg(smoothImage(16, 16, 4), 95));
  assert.equal(rgba.channels, 3);
  assert.ok(psnr(rgba.data, smoothImage(16, 16, 3).data) > 38);
});

Deno.test("JPEGs from libjpeg decode: gray stays 1 channel, baseline and progressive RGB", async () => {
  const gray = decodeImage(await Deno.readFile(new URL("gray16_libjpeg.jpg", TESTDATA)));
  assert.deepEqual([gray.width, gray.height, gray.channels], [16, 16, 1]);
  const wantGray = new Uint8Array(256).map((_, i) => (i % 16) * 12 + Math.floor(i / 16) * 3);
  assert.ok(psnr(gray.data, wantGray) > 40, `gray PSNR ${psnr(gray.data, wantGray)}`);
  const wantRgb = new Uint8Array(768).map((_, i) => {
    const p = Math.floor(i / 3), x = p % 16, y = Math.floor(p / 16);
    return [x * 15, y * 15, (x + y) * 7][i % 3];
  });
  for (const name of ["rgb16_libjpeg.jpg", "rgb16_progressive_libjpeg.jpg"]) {
    const img = decodeImage(await Deno.readFile(new URL(name, TESTDATA)));
    assert.deepEqual([img.width, img.height, img.channels], [16, 16, 3], name);
    assert.ok(psnr(img.data, wantRgb) > 30, `${name} PSNR ${psnr(img.data, wantRgb)}`);
  }
});

Deno.test("PNG decoding normalises bit depths, gray+alpha and palettes to 8 bits", () => {
  // 16-bit gray: scaled with round(v / 257).
  const g16 = new Uint8Array([0x00, 0x00, 0x01, 0x00, 0x80, 0x80, 0xff, 0xff]);
  const a = decodePng(makePng(4, 1, 16, 0, [g16]));
  assert.deepEqual([a.channels, ...a.data], [1, 0, 1, 128, 255]);
  // 16-bit RGB.
  const rgb16 = new Uint8Array([0xff, 0xff, 0x00, 0x00, 0x12, 0x34]);
  const b = decodePng(makePng(1, 1, 16, 2, [rgb16]));
  assert.deepEqual([b.channels, ...b.data], [3, 255, 0, Math.round(0x1234 / 257)]);
  // 1-, 2- and 4-bit gray scale to 0..255, rows padded to whole bytes.
  assert.deepEqual([
    ...decodePng(makePng(10, 1, 1, 0, [new Uint8Array([0b10110000, 0b01000000])])).data,
  ], [
    255,
    0,
    255,
    255,
    0,
    0,
    0,
    0,
    0,
    255,
  ]);
  assert.deepEqual([...decodePng(makePng(3, 1, 2, 0, [new Uint8Array([0b00011011])])).data], [
    0,
    85,
    170,
  ]);
  assert.deepEqual([
    ...decodePng(makePng(3, 2, 4, 0, [new Uint8Array([0x0f, 0x80]), new Uint8Array([0x12, 0x30])]))
      .data,
  ], [
    0,
    255,
    136,
    17,
    34,
    51,
  ]);
  // Gray + alpha (8 and 16 bit) becomes RGBA.
  const ga = decodePng(makePng(2, 1, 8, 4, [new Uint8Array([10, 20, 30, 40])]));
  assert.deepEqual([ga.channels, ...ga.data], [4, 10, 10, 10, 20, 30, 30, 30, 40]);
  const ga16 = decodePng(makePng(1, 1, 16, 4, [new Uint8Array([0xff, 0xff, 0x00, 0x00])]));
  assert.deepEqual([ga16.channels, ...ga16.data], [4, 255, 255, 255, 0]);
  // RGBA 16.
  const rgba16 = decodePng(
    makePng(1, 1, 16, 6, [new Uint8Array([0, 0, 0xff, 0xff, 0, 0, 0x80, 0x80])]),
  );
  assert.deepEqual([rgba16.channels, ...rgba16.data], [4, 0, 255, 0, 128]);
  // Palettes: RGB, RGBA with tRNS, and 2-bit indices.
  const plte = chunk("PLTE", new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255]));
  const p8 = decodePng(makePng(3, 1, 8, 3, [new Uint8Array([2, 0, 1])], [plte]));
  assert.deepEqual([p8.channels, ...p8.data], [3, 0, 0, 255, 255, 0, 0, 0, 255, 0]);
  const trns = chunk("tRNS", new Uint8Array([0, 128]));
  const pa = decodePng(makePng(3, 1, 8, 3, [new Uint8Array([0, 1, 2])], [plte, trns]));
  assert.deepEqual([pa.channels, ...pa.data], [4, 255, 0, 0, 0, 0, 255, 0, 128, 0, 0, 255, 255]);
  const p2 = decodePng(makePng(5, 1, 2, 3, [new Uint8Array([0b10010001, 0b10000000])], [plte]));
  assert.deepEqual([...p2.data], [0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]);
  assertInvalid(
    () => decodePng(makePng(2, 1, 8, 3, [new Uint8Array([0, 1])])),
    /palette image \(colour type 3\) has no PLTE chunk/,
  );
  assertInvalid(
    () => decodePng(makePng(2, 1, 8, 3, [new Uint8Array([0, 7])], [plte])),
    /pixel 1 uses palette index 7 of 3/,
  );
});

Deno.test("PNG decoding handles Adam7-interlaced files", async () => {
  const { encode } = await import("fast-png");
  const img = randomImage(new Rng(4), 13, 11, 3);
  const png = encode({ ...img, depth: 8 }, { interlace: "Adam7" });
  assertBytesEqual(decodePng(png).data, img.data, "interlaced");
});

Deno.test("image decoders reject corrupt, truncated and oversized input", () => {
  const png = encodePng(smoothImage(20, 20, 3));
  const jpeg = encodeJpeg(smoothImage(20, 20, 3));
  assertInvalid(
    () => decodeImage(new Uint8Array([1, 2, 3])),
    /image: not a PNG or JPEG \(first bytes: 01 02 03\)/,
  );
  assertInvalid(() => decodeImage(new Uint8Array(0)), /first bytes: none/);
  const badCrc = png.slice();
  badCrc[40] ^= 0xff; // inside IDAT
  assertInvalid(() => decodeImage(badCrc), /png: corrupt or unsupported data/);
  assertInvalid(() => decodeImage(png.subarray(0, 20)), /too short for a PNG/);
  assertInvalid(() => decodeImage(png.subarray(0, png.length - 30)), /png: /);
  const bigPng = makePng(70000, 70000, 8, 0, []);
  assertInvalid(
    () => decodeImage(bigPng),
    /70000x70000 is 4900000000 pixels, more than the limit of 100000000/,
  );
  assertInvalid(
    () => decodeImage(png, { maxPixels: 399 }),
    /20x20 is 400 pixels, more than the limit of 399/,
  );
  assertInvalid(() => decodeImage(makePng(0, 5, 8, 0, [])), /size 0x5/);
  const noIhdr = png.slice();
  noIhdr[12] = 0x58;
  assertInvalid(() => decodeImage(noIhdr), /first chunk is not a 13-byte IHDR/);
  assertInvalid(
    () => decodeImage(jpeg, { maxPixels: 100 }),
    /jpeg: 20x20 is 400 pixels, more than the limit of 100/,
  );
  assertInvalid(() => decodeImage(jpeg.subarray(0, 10)), /jpeg: no frame header \(SOF\) found/);
  assertInvalid(() => decodeImage(new Uint8Array([0xff, 0xd8, 0xff, 0xd9])), /no frame header/);
  const badJpeg = jpeg.slice();
  badJpeg.fill(0xff, 200, 260);
  const r = (() => {
    try {
      return decodeImage(badJpeg);
    } catch (err) {
      return err;
    }
  })();
  assert.ok(
    !(r instanceof Error) || (r as { code?: string }).code === "INVALID_ARGUMENT",
    String(r),
  );
  assertInvalid(() => decodePng(jpeg), /png: data does not start with the PNG signature/);
  assertInvalid(() => decodeJpeg(png), /jpeg: data does not start with the JPEG SOI marker/);
});

Deno.test("image encoders validate the image and the quality", () => {
  const ok = smoothImage(4, 4, 3);
  assertInvalid(
    () => encodePng({ ...ok, channels: 2 as 1 }),
    /png: channels is 2; expected 1, 3 or 4/,
  );
  assertInvalid(() => encodePng({ ...ok, width: 0 }), /png: size 0x4; expected positive integers/);
  assertInvalid(
    () => encodePng({ ...ok, data: new Uint8Array(47) }),
    /png: data has 47 bytes; 4x4x3 needs 48/,
  );
  assertInvalid(
    () => encodePng({ ...ok, data: [1, 2] as unknown as Uint8Array }),
    /data is an array of length 2; expected a Uint8Array/,
  );
  assertInvalid(() => encodeJpeg(ok, 0), /jpeg: quality 0; expected an integer 1..100/);
  assertInvalid(() => encodeJpeg(ok, 101), /quality 101/);
  assertInvalid(() => encodeJpeg(ok, 50.5), /quality 50.5/);
  assertInvalid(
    () => encodeJpeg({ width: 70000, height: 1, channels: 1, data: new Uint8Array(70000) }),
    /larger than JPEG's 65535x65535/,
  );
});
