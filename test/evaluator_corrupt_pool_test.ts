/**
 * The evaluator's corruption pool (services/evaluator/corrupt_pool.ts) on real Web Workers: every
 * corruption (and clean) gives bit for bit the float32 values of the same call on the main thread,
 * batches spread over two workers come back to their callers, the caller's images stay untouched,
 * a bad request fails with the corruption library's status while the pool keeps working, and a
 * closed pool answers UNAVAILABLE.
 */
import { assert, assertEquals, assertRejectsCode } from "./assert.ts";
import { CORRUPTIONS } from "../core/corruptions/mod.ts";
import { rngFor } from "../core/random.ts";
import { corruptAndNormalize, CorruptPool } from "../services/evaluator/corrupt_pool.ts";

function images(n: number, h: number, w: number, seed: number): Uint8Array {
  const rng = rngFor(seed, "evaluator-corrupt-pool-test");
  const out = new Uint8Array(n * h * w);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rng.next() * 256);
  return out;
}

const bits = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

Deno.test("corrupt pool: workers give the main thread's values for every corruption; errors keep their status", async () => {
  const pool = new CorruptPool(2);
  try {
    const shape: [number, number, number] = [3, 32, 32];
    const data = images(3, 32, 32, 7);
    const copy = data.slice();
    const jobs = ["clean", ...CORRUPTIONS].map((corruption, i) => ({
      shape,
      data,
      corruption,
      severity: corruption === "clean" ? 0 : 1 + (i % 5),
      seed: 11,
      preset: corruption === "clean" ? "" : "imagecorruptions",
      indexOffset: 5,
    }));
    // all at once: two workers, each with a queue
    const got = await Promise.all(jobs.map((j) => pool.run(j)));
    for (const [i, j] of jobs.entries()) {
      const want = corruptAndNormalize(j);
      assertEquals(got[i].length, 3 * 32 * 32, j.corruption);
      assertEquals(bits(got[i]), bits(want), `${j.corruption} ${j.severity}`);
    }
    assertEquals(data, copy); // the caller's images are copied, not handed over
    // another index offset is another random stream
    const shifted = await pool.run({ ...jobs[1], indexOffset: 6 });
    assert(bits(shifted).some((b, k) => b !== bits(got[1])[k]), "index offset ignored");

    const bad = await assertRejectsCode(
      pool.run({ ...jobs[1], corruption: "no_such_corruption" }),
      "INVALID_ARGUMENT",
    );
    assert(bad.message.includes("no_such_corruption"), bad.message);
    assertEquals(bits(await pool.run(jobs[3])), bits(got[3]));
  } finally {
    pool.close();
  }
  await assertRejectsCode(
    pool.run({
      shape: [1, 8, 8],
      data: new Uint8Array(64),
      corruption: "clean",
      severity: 0,
      seed: 0,
      preset: "",
      indexOffset: 0,
    }),
    "UNAVAILABLE",
  );
});

Deno.test("corrupt pool: zero workers corrupts on the calling thread; a bad size is INVALID_ARGUMENT", async () => {
  const pool = new CorruptPool(0);
  const job = {
    shape: [2, 32, 32] as [number, number, number],
    data: images(2, 32, 32, 3),
    corruption: "fog",
    severity: 2,
    seed: 1,
    preset: "imagecorruptions",
    indexOffset: 0,
  };
  assertEquals(bits(await pool.run(job)), bits(corruptAndNormalize(job)));
  await assertRejectsCode(pool.run({ ...job, severity: 9 }), "INVALID_ARGUMENT");
  pool.close();
  for (const size of [-1, 1.5]) {
    let code = "";
    try {
      new CorruptPool(size);
    } catch (err) {
      code = (err as { code: string }).code;
    }
    assertEquals(code, "INVALID_ARGUMENT");
  }
});
