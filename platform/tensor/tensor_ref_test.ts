import { assert, assertEquals, assertRejectsCode } from "../../test/assert.ts";
import { FileStore } from "../store/file_store.ts";
import { encodeTensor, resolveTensor, storeTensor, tensorOrRef } from "./tensor.ts";

async function withStore(fn: (store: FileStore, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-tensor-" });
  const store = new FileStore(`file://${dir}`);
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("tensor ref: stored tensors resolve with their sha256 verified", async () => {
  await withStore(async (store) => {
    const data = new Float32Array(1000).map((_, i) => Math.sin(i));
    const ref = await storeTensor({ dtype: "float32", shape: [10, 100], data }, store, "t/a.bin");
    assertEquals(ref.uri, store.uri("t/a.bin"));
    assert(/^[0-9a-f]{64}$/.test(ref.sha256));
    const t = await resolveTensor({ ref, kind: "ref" }, store, { field: "x" });
    assertEquals(t.shape, [10, 100]);
    assertEquals(Array.from(t.data as Float32Array), Array.from(data));
    // inline below the limit, reference above it
    const small = await tensorOrRef(
      { dtype: "float32", shape: [4], data: data.subarray(0, 4) },
      store,
      "t/s.bin",
      64,
    );
    assert(small.inline && !small.ref);
    const big = await tensorOrRef({ dtype: "float32", shape: [1000], data }, store, "t/b.bin", 64);
    assert(big.ref && !big.inline);
  });
});

Deno.test("tensor ref: bad references get clear codes", async () => {
  await withStore(async (store, dir) => {
    const data = new Float32Array([1, 2, 3, 4]);
    const ref = await storeTensor({ dtype: "float32", shape: [4], data }, store, "t/a.bin");
    // a URI outside the store
    const outside = await assertRejectsCode(
      resolveTensor({ ref: { ...ref, uri: "file:///etc/passwd" } }, store, { field: "x" }),
      "INVALID_ARGUMENT",
    );
    assert(outside.message.length > 0);
    await assertRejectsCode(
      resolveTensor({ ref: { ...ref, uri: `${store.url}/t/../../x.bin` } }, store),
      "INVALID_ARGUMENT",
    );
    // a URI inside the store that does not exist
    await assertRejectsCode(
      resolveTensor({ ref: { ...ref, uri: store.uri("t/missing.bin") } }, store),
      "NOT_FOUND",
    );
    // the sha256 in the reference disagrees with the object
    const wrong = await assertRejectsCode(
      resolveTensor({ ref: { ...ref, sha256: "0".repeat(64) } }, store, { field: "x" }),
      "DATA_LOSS",
    );
    assert(wrong.message.includes("x.ref"), wrong.message);
    // shape that does not fit the stored bytes
    const shape = await assertRejectsCode(
      resolveTensor({ ref: { ...ref, shape: [5] } }, store, { field: "x" }),
      "INVALID_ARGUMENT",
    );
    assert(shape.message.includes("x.ref.data: 16 bytes, expected 20"), shape.message);
    // the stored bytes changed behind the store's back
    await Deno.writeFile(`${dir}/t/a.bin`, new Uint8Array(16).fill(7));
    await assertRejectsCode(resolveTensor({ ref }, store), "DATA_LOSS");
    // neither inline nor ref
    await assertRejectsCode(resolveTensor({}, store, { field: "x" }), "INVALID_ARGUMENT");
    // inline works through the same entry point
    const t = await resolveTensor(
      { inline: encodeTensor({ dtype: "uint8", shape: [2], data: new Uint8Array([3, 4]) }) },
      store,
    );
    assertEquals(Array.from(t.data as Uint8Array), [3, 4]);
  });
});
