/**
 * The cotrain side of the transport benchmark's server, run by bench/transport.ts in a process of
 * its own (as the Python peer's server is): the test service of test/fixtures on loopback, once
 * over a file store and once over an S3 store, with a 160 MiB message limit so a 64 MiB tensor
 * fits inline. Prints `{"file":PORT,"s3":PORT}` on stdout when both listen, then serves until its
 * stdin closes or it gets SIGTERM.
 *
 * @example
 * ```sh
 * deno run -A bench/transport_server.ts --file file:///tmp/store --s3 s3://bench/transport
 * ```
 * @module
 */
import { openStore } from "../platform/store/mod.ts";
import { startTestServer } from "../test/fixtures/test_service.ts";

/** The message limit of the benchmark's servers and clients. */
export const BENCH_MAX_MESSAGE_BYTES = 160 * 1024 * 1024;

async function main(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const fileUrl = opt("--file");
  const s3Url = opt("--s3");
  if (!fileUrl || !s3Url) throw new Error("usage: transport_server.ts --file URL --s3 URL");
  const config = { maxMessageBytes: BENCH_MAX_MESSAGE_BYTES, deadlineMs: 600_000 };
  const fileStore = openStore(fileUrl);
  const s3Store = openStore(s3Url);
  const servers = [
    await startTestServer({ config, store: fileStore }),
    await startTestServer({ config, store: s3Store }),
  ];
  console.log(JSON.stringify({ file: servers[0].port, s3: servers[1].port }));
  const stop = async () => {
    await Promise.all(servers.map((s) => s.shutdown(500)));
    await fileStore.close();
    await s3Store.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  // Serve until the parent closes our stdin (or dies, which closes it too).
  for await (const _ of Deno.stdin.readable) { /* ignore input */ }
  await stop();
}

if (import.meta.main) await main(Deno.args);
