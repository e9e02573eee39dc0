/**
 * `deno task demo`: will start every service on loopback, run experiments/demo.json through the
 * orchestrator against a file store and write runs/demo/report.html (issue 7). Until the services
 * exist it says so and exits with status 2, rather than pretending.
 * @module
 */
if (import.meta.main) {
  console.error(
    "cotrain demo: the study services are not built yet (see the open issues 3-8). " +
      "The foundation is in place: run `deno task test` to exercise it.",
  );
  Deno.exit(2);
}
