import { assert } from "../test/assert.ts";
import { yieldTurn } from "./event_loop.ts";

Deno.test("yieldTurn lets I/O and timers run between the steps of a busy loop", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { port: 0, onListen() {}, signal: ac.signal },
    () => new Response("ok"),
  );
  try {
    let body = "";
    const got = fetch(`http://127.0.0.1:${server.addr.port}/`).then((r) => r.text()).then((t) => {
      body = t;
    });
    let fired = false;
    setTimeout(() => (fired = true), 5);
    let turns = 0;
    while ((!body || !fired) && turns < 100_000) {
      let x = 0;
      for (let i = 0; i < 10_000; i++) x += i; // a step's busy work
      assert(x > 0);
      await yieldTurn();
      turns++;
    }
    await got;
    assert(body === "ok" && fired, `after ${turns} turns: body ${body}, timer ${fired}`);
  } finally {
    ac.abort();
    await server.finished;
  }
});
