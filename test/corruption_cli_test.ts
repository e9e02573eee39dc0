/**
 * `deno task corrupt` (clients/ts/corrupt.ts): npy and PNG-folder round trips equal the library,
 * and bad command lines exit 2 with a message naming the option.
 */
import { assert, assertEquals } from "./assert.ts";
import { decodePng, encodePng, readNpy, writeNpy } from "../core/io/mod.ts";
import { corruptBatch } from "../core/corruptions/mod.ts";
import { expandCorruptions, expandSeverities, main } from "../clients/ts/corrupt.ts";

function batch(n: number) {
  const data = new Uint8Array(n * 32 * 32 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 29 + (i >> 5)) % 256;
  return { dtype: "uint8" as const, shape: [n, 32, 32, 3], data };
}

Deno.test("cli: an npy array in, one npy per corruption and severity out, equal to the library", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-cli-" });
  try {
    const b = batch(5);
    await Deno.writeFile(`${dir}/in.npy`, writeNpy(b));
    const code = await main([
      "--in",
      `${dir}/in.npy`,
      "--out",
      `${dir}/out`,
      "--corruptions",
      "gaussian_noise,pixelate",
      "--severities",
      "2-3",
      "--seed",
      "4",
      "--batch",
      "2",
      "--quiet",
    ]);
    assertEquals(code, 0);
    for (const c of ["gaussian_noise", "pixelate"]) {
      for (const s of [2, 3]) {
        const got = readNpy(await Deno.readFile(`${dir}/out/${c}-s${s}.npy`));
        const want = corruptBatch(b, { corruption: c, severity: s, seed: 4 });
        assertEquals(got.shape, [5, 32, 32, 3]);
        assertEquals(got.data, want.data, `${c} s${s}`);
      }
    }
    // One pair to a named file, gray output.
    assertEquals(
      await main([
        "--in",
        `${dir}/in.npy`,
        "--out",
        `${dir}/one.npy`,
        "--corruptions",
        "fog",
        "--severities",
        "1",
        "--to-gray",
        "--quiet",
      ]),
      0,
    );
    assertEquals(readNpy(await Deno.readFile(`${dir}/one.npy`)).shape, [5, 32, 32, 1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a folder of PNGs in, PNGs out per corruption and severity", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-cli-" });
  try {
    const b = batch(2);
    await Deno.mkdir(`${dir}/in`);
    for (let i = 0; i < 2; i++) {
      await Deno.writeFile(
        `${dir}/in/img${i}.png`,
        encodePng({
          width: 32,
          height: 32,
          channels: 3,
          data: b.data.slice(i * 3072, (i + 1) * 3072),
        }),
      );
    }
    assertEquals(
      await main([
        "--in",
        `${dir}/in`,
        "--out",
        `${dir}/out`,
        "--corruptions",
        "snow",
        "--severities",
        "5",
        "--quiet",
      ]),
      0,
    );
    const want = corruptBatch(b, { corruption: "snow", severity: 5, seed: 0 });
    for (let i = 0; i < 2; i++) {
      const got = decodePng(await Deno.readFile(`${dir}/out/snow/5/img${i}.png`));
      assertEquals(got.data, want.data.slice(i * 3072, (i + 1) * 3072) as Uint8Array);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: lists expand; bad command lines exit 2", async () => {
  assertEquals(expandCorruptions("paper14").length, 14);
  assertEquals(expandCorruptions("noise,fog,fog"), [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "fog",
  ]);
  assertEquals(expandSeverities("1,3-5"), [1, 3, 4, 5]);
  const errors: string[] = [];
  const orig = console.error;
  console.error = (m: string) => errors.push(String(m));
  try {
    assertEquals(await main(["--in", "x.npy"]), 2);
    assertEquals(await main(["--in", "x", "--out", "y", "--corruptions", "rain"]), 2);
    assertEquals(await main(["--in", "x", "--out", "y", "--severities", "0"]), 2);
    assertEquals(await main(["--in", "x", "--out", "y", "--preset", "nope"]), 2);
    assertEquals(await main(["--in", "x", "--out", "y", "--seed", "-3"]), 2);
    assertEquals(await main(["--in", "/nonexistent/in.npy", "--out", "y"]), 2);
  } finally {
    console.error = orig;
  }
  assert(errors.some((e) => e.includes('--corruptions: unknown "rain"')), errors.join("\n"));
  assert(errors.some((e) => e.includes("--severities")), errors.join("\n"));
  assert(errors.some((e) => e.includes("--preset: unknown")), errors.join("\n"));
});
