import { assertEquals } from "../../test/assert.ts";
import { PlateauSchedule } from "./schedule.ts";

Deno.test("schedule: drops after patience, at most maxDrops times, then stops", () => {
  const s = new PlateauSchedule({ lr: 0.1, factor: 0.4, patience: 2, maxDrops: 2, minLr: 1e-4 });
  assertEquals(s.observe(0.5).improved, true);
  assertEquals(s.observe(0.6).improved, true);
  assertEquals(s.observe(0.6), { improved: false, decayed: false, stop: false, lr: 0.1 });
  assertEquals(s.observe(0.59).decayed, false);
  const d1 = s.observe(0.58);
  assertEquals(d1.decayed, true);
  assertEquals(Math.abs(d1.lr - 0.04) < 1e-12, true);
  assertEquals(s.observe(0.7).improved, true);
  s.observe(0.6);
  s.observe(0.6);
  const d2 = s.observe(0.6);
  assertEquals(d2.decayed, true);
  s.observe(0.6);
  s.observe(0.6);
  assertEquals(s.observe(0.6).stop, true);
  assertEquals(s.state.drops, 2);
  assertEquals(s.state.best, 0.7);
});

Deno.test("schedule: the lr never goes below minLr and the state restores", () => {
  const s = new PlateauSchedule({ lr: 2e-4, factor: 0.5, patience: 0, minLr: 1e-4 });
  s.observe(1);
  assertEquals(s.observe(0.5).lr, 1e-4);
  assertEquals(s.observe(0.5).stop, true);
  const r = new PlateauSchedule({ lr: 2e-4, factor: 0.5, patience: 0 }, s.state);
  assertEquals(r.state, s.state);
});
