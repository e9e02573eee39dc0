/**
 * Opens a page in Debian's headless Chromium over the DevTools protocol and reports what a
 * person would see go wrong: console errors, uncaught exceptions, failed loads, and the size of
 * every report figure (`figure.figure` holding an `<svg>`, or PNG `<img>`s: whether they decoded).
 * Tests use it on report.html; so can a
 * person: `deno run -A clients/ts/report/browser_check.ts runs/demo/report.html`.
 *
 * Chromium is `/usr/bin/chromium` (`apt-get install chromium`) unless `$CHROMIUM` names another.
 *
 * @example
 * ```ts ignore
 * import { openInChromium } from "./browser_check.ts";
 * const page = await openInChromium("file:///abs/runs/demo/report.html");
 * console.log(page.errors, page.figures.map((f) => f.id));
 * ```
 * @module
 */
/** A DevTools protocol message (its shape depends on the method). */
// deno-lint-ignore no-explicit-any
type Json = any;

/** The Chromium binary. */
export const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";

/** What the browser saw. */
export interface PageReport {
  errors: string[];
  /**
   * Every `figure.figure`: its SVGs and their marks, its images (and how many decoded); width
   * and height are the SVG's box, else the first decoded image's.
   */
  figures: {
    id: string;
    svgs: number;
    width: number;
    height: number;
    marks: number;
    imgs: number;
    imgsLoaded: number;
  }[];
  title: string;
}

/** Opens `url` in headless Chromium; returns console errors, exceptions and the figures' sizes. */
export async function openInChromium(url: string): Promise<PageReport> {
  const profile = await Deno.makeTempDir({ prefix: "cotrain-chromium-" });
  const child = new Deno.Command(CHROMIUM, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let ws: WebSocket | null = null;
  try {
    let buf = "";
    let wsUrl = "";
    while (!wsUrl) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`chromium exited before DevTools listened:\n${buf}`);
      buf += value;
      wsUrl = /DevTools listening on (ws:\/\/\S+)/.exec(buf)?.[1] ?? "";
    }
    // keep draining stderr so chromium never blocks on it
    (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })().catch(() => {});

    ws = new WebSocket(wsUrl);
    await new Promise((res, rej) => {
      ws!.onopen = res;
      ws!.onerror = rej;
    });
    let nextId = 1;
    const pending = new Map<number, (msg: Record<string, unknown>) => void>();
    const errors: string[] = [];
    let loaded: () => void = () => {};
    const loadFired = new Promise<void>((r) => (loaded = r));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data as string) as Json;
      if (msg.id && pending.has(msg.id)) {
        pending.get(msg.id)!(msg);
        pending.delete(msg.id);
        return;
      }
      if (
        msg.method === "Runtime.consoleAPICalled" && ["error", "assert"].includes(msg.params.type)
      ) {
        errors.push(
          `console.${msg.params.type}: ${
            msg.params.args.map((a: { value?: unknown; description?: string }) =>
              a.value ?? a.description
            ).join(" ")
          }`,
        );
      } else if (msg.method === "Runtime.exceptionThrown") {
        errors.push(
          `exception: ${
            msg.params.exceptionDetails.exception?.description ?? msg.params.exceptionDetails.text
          }`,
        );
      } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") {
        errors.push(`log: ${msg.params.entry.text} ${msg.params.entry.url ?? ""}`);
      } else if (msg.method === "Page.loadEventFired") {
        loaded();
      }
    };
    const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
      new Promise<Record<string, unknown>>((res, rej) => {
        const id = nextId++;
        pending.set(id, (msg) => msg.error ? rej(new Error(JSON.stringify(msg.error))) : res(msg));
        ws!.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
      });
    const created = (await send("Target.createTarget", { url: "about:blank" })) as Json;
    const attached = (await send("Target.attachToTarget", {
      targetId: created.result.targetId,
      flatten: true,
    })) as Json;
    const session = attached.result.sessionId as string;
    await send("Runtime.enable", {}, session);
    await send("Log.enable", {}, session);
    await send("Page.enable", {}, session);
    await send("Page.navigate", { url }, session);
    await loadFired;
    const evaluated = (await send("Runtime.evaluate", {
      expression: `JSON.stringify({
        title: document.title,
        figures: [...document.querySelectorAll("figure.figure")].map((f) => {
          const svg = f.querySelector("svg");
          const imgs = [...f.querySelectorAll("img")];
          const loaded = imgs.filter((i) => i.complete && i.naturalWidth > 0);
          const el = svg ?? loaded[0];
          const box = el ? el.getBoundingClientRect() : { width: 0, height: 0 };
          return { id: f.id, svgs: f.querySelectorAll("svg").length, width: box.width, height: box.height,
                   marks: svg ? svg.querySelectorAll("path, rect, line").length : 0,
                   imgs: imgs.length, imgsLoaded: loaded.length };
        }),
      })`,
      returnByValue: true,
    }, session)) as Json;
    // give late console messages a moment to arrive
    await new Promise((r) => setTimeout(r, 200));
    const page = JSON.parse(evaluated.result.result.value);
    return { errors, figures: page.figures, title: page.title };
  } finally {
    ws?.close();
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await reader.cancel().catch(() => {});
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const path = Deno.args[0];
  if (!path) {
    console.error("usage: deno run -A clients/ts/report/browser_check.ts <report.html>");
    Deno.exit(2);
  }
  const abs = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const page = await openInChromium(`file://${abs}`);
  console.log(JSON.stringify(page, null, 2));
  Deno.exit(page.errors.length ? 1 : 0);
}
