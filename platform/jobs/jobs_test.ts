import { assert, assertEquals } from "../../test/assert.ts";
import { FileStore } from "../store/file_store.ts";
import { canonicalJson, type JobEvent, JobRunner, requestKey } from "./jobs.ts";

async function withRunner(fn: (jobs: JobRunner, store: FileStore) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-jobs-" });
  const store = new FileStore(`file://${dir}`);
  try {
    await fn(new JobRunner(store, "train"), store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function collect<P, R>(it: AsyncGenerator<JobEvent<P, R>>) {
  const out: JobEvent<P, R>[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}

Deno.test("jobs: keys are content hashes independent of key order", async () => {
  assertEquals(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }), '{"a":[2,{"c":4,"d":3}],"b":1}');
  assertEquals(await requestKey({ x: 1, y: 2 }), await requestKey({ y: 2, x: 1 }));
  assert((await requestKey({ x: 1 })) !== (await requestKey({ x: 2 })));
  const k1 = await requestKey({ data: new Uint8Array([1, 2, 3]) });
  assert(k1 !== (await requestKey({ data: new Uint8Array([1, 2, 4]) })));
});

Deno.test("jobs: a finished job is returned from the store without running again", async () => {
  await withRunner(async (jobs) => {
    let runs = 0;
    const work = async function* () {
      runs++;
      yield 1;
      yield 2;
      return { answer: 42 };
    };
    const first = await collect(jobs.run("aaaaaaaaaaaaaaaa", {}, work));
    assertEquals(first.map((e) => e.kind), ["progress", "progress", "result"]);
    const again = await collect(jobs.run("aaaaaaaaaaaaaaaa", {}, work));
    assertEquals(again, [{ kind: "result", result: { answer: 42 }, cached: true, resumed: false }]);
    assertEquals(runs, 1);
  });
});

Deno.test("jobs: a run that died resumes from its saved state", async () => {
  await withRunner(async (jobs) => {
    const seen: number[] = [];
    const work = (failAt: number | null) =>
      async function* (
        job: { state: { epoch: number } | null; save(s: { epoch: number }): Promise<void> },
      ) {
        let epoch = job.state?.epoch ?? 0;
        while (epoch < 5) {
          epoch++;
          if (epoch === failAt) throw new Error("killed");
          seen.push(epoch);
          await job.save({ epoch });
          yield epoch;
        }
        return { epochs: epoch };
      };
    let failed = false;
    try {
      await collect(jobs.run("bbbbbbbbbbbbbbbb", {}, work(3)));
    } catch {
      failed = true;
    }
    assert(failed);
    const resumed = await collect(jobs.run("bbbbbbbbbbbbbbbb", {}, work(null)));
    assertEquals(seen, [1, 2, 3, 4, 5]);
    const last = resumed.at(-1)!;
    assertEquals(last, { kind: "result", result: { epochs: 5 }, cached: false, resumed: true });
  });
});

Deno.test("jobs: a second caller joins the running job and sees the same events", async () => {
  await withRunner(async (jobs) => {
    let runs = 0;
    const work = async function* () {
      runs++;
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 20));
        yield i;
      }
      return "ok";
    };
    const a = collect(jobs.run("cccccccccccccccc", {}, work));
    await new Promise((r) => setTimeout(r, 5));
    const b = collect(jobs.run("cccccccccccccccc", {}, work));
    const [ea, eb] = await Promise.all([a, b]);
    assertEquals(runs, 1);
    assertEquals(ea.at(-1), eb.at(-1));
    assert(eb.length >= 2, "the joiner saw progress and the result");
  });
});
