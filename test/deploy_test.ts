/**
 * deploy/: the Kubernetes manifests, rendered by a real kustomize (.ci/run builds it; $KUSTOMIZE_BIN
 * or $(go env GOPATH)/bin/kustomize), agree with the code: every service folder has a Deployment
 * and a headless Service on the port its main.ts serves, with gRPC health probes, the shared
 * configuration and the S3 secret; the orchestrator Job runs an experiment that exists; the MinIO
 * overlay brings the secret MinIO and the services read; the GPU overlay gives the compute services
 * the GPU image, one nvidia.com/gpu and the tensorflow backend, and 4 evaluator replicas. The
 * Dockerfiles' entry points and the ConfigMap's variables exist too.
 */
import { parseAllDocuments } from "yaml";
import { assert, assertEquals } from "./assert.ts";
import { ENV_VARS } from "../platform/config/config.ts";

const ROOT = new URL("../", import.meta.url);

// deno-lint-ignore no-explicit-any
type Doc = any;

function kustomizeBin(): string {
  const fromEnv = Deno.env.get("KUSTOMIZE_BIN");
  if (fromEnv) return fromEnv;
  const gopath = new TextDecoder().decode(
    new Deno.Command("go", { args: ["env", "GOPATH"], stdout: "piped" }).outputSync().stdout,
  ).trim();
  return `${gopath}/bin/kustomize`;
}

async function render(dir: string): Promise<Doc[]> {
  const out = await new Deno.Command(kustomizeBin(), {
    args: ["build", new URL(dir, ROOT).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, `kustomize build ${dir}: ${new TextDecoder().decode(out.stderr)}`);
  return parseAllDocuments(new TextDecoder().decode(out.stdout)).map((d) => d.toJS());
}

function find(docs: Doc[], kind: string, name: string): Doc {
  const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
  assert(d, `no ${kind} ${name}`);
  return d;
}

/** Every service folder with its default port, read from its main.ts. */
async function servicePorts(): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  for await (const e of Deno.readDir(new URL("services/", ROOT))) {
    if (!e.isDirectory) continue;
    const main = await Deno.readTextFile(new URL(`services/${e.name}/main.ts`, ROOT));
    const m = main.match(/export const DEFAULT_PORT = (\d+);/);
    assert(m, `services/${e.name}/main.ts exports no DEFAULT_PORT`);
    ports.set(e.name, Number(m[1]));
  }
  return ports;
}

Deno.test("deploy: base has a Deployment and a headless Service per service, on its port", async () => {
  const docs = await render("deploy/k8s/base");
  const ports = await servicePorts();
  assert(ports.size >= 4, `services: ${[...ports.keys()]}`);
  for (const [name, port] of ports) {
    const dep = find(docs, "Deployment", name);
    assertEquals(dep.metadata.namespace, "cotrain");
    const c = dep.spec.template.spec.containers[0];
    assertEquals(c.image, "cotrain:cpu");
    assertEquals(c.args, [`services/${name}/main.ts`]);
    assertEquals(c.ports[0].containerPort, port);
    assertEquals(c.env.find((e: Doc) => e.name === "COTRAIN_PORT").value, String(port));
    assertEquals(c.readinessProbe.grpc.port, port);
    assertEquals(c.livenessProbe.grpc.port, port);
    assertEquals(c.envFrom.map((e: Doc) => e.configMapRef?.name ?? e.secretRef?.name), [
      "cotrain-config",
      "cotrain-s3",
    ]);
    const svc = find(docs, "Service", name);
    assertEquals(svc.spec.clusterIP, "None", `${name}: headless, for dns:/// round_robin`);
    assertEquals(svc.spec.ports[0].port, port);
    assertEquals(svc.spec.selector, dep.spec.selector.matchLabels);
  }
  const deployments = docs.filter((d) => d.kind === "Deployment").map((d) => d.metadata.name);
  for (const d of deployments) assert(ports.has(d), `Deployment ${d} has no services/${d}`);
  // the ConfigMap sets only variables cotrain reads, and points the orchestrator at the services
  const cm = find(docs, "ConfigMap", "cotrain-config").data as Record<string, string>;
  for (const k of Object.keys(cm)) {
    assert(
      ENV_VARS.includes(k) || /^COTRAIN_[A-Z_]+_ADDR$/.test(k) || k.startsWith("OTEL_"),
      `ConfigMap sets ${k}, which nothing reads`,
    );
  }
  assertEquals(cm.COTRAIN_HOST, "0.0.0.0");
  assert(cm.COTRAIN_STORE.startsWith("s3://"), cm.COTRAIN_STORE);
  assertEquals(cm.COTRAIN_EVALUATOR_ADDR, `dns:///evaluator:${ports.get("evaluator")}`);
  // the orchestrator Job runs an experiment file that exists
  const job = find(docs, "Job", "cotrain-pipeline");
  const [script, experiment] = job.spec.template.spec.containers[0].args;
  await Deno.stat(new URL(script, ROOT));
  await Deno.stat(new URL(experiment, ROOT));
});

Deno.test("deploy: the minio overlay adds MinIO with the secret the services read", async () => {
  const docs = await render("deploy/k8s/overlays/minio");
  const secret = find(docs, "Secret", "cotrain-s3");
  assert(secret.data.S3_ACCESS_KEY && secret.data.S3_SECRET_KEY, "secret keys");
  const minio = find(docs, "StatefulSet", "minio");
  const env = minio.spec.template.spec.containers[0].env;
  assertEquals(env.map((e: Doc) => e.valueFrom.secretKeyRef.name), ["cotrain-s3", "cotrain-s3"]);
  const svc = find(docs, "Service", "minio");
  const cm = find(docs, "ConfigMap", "cotrain-config").data;
  assertEquals(cm.S3_ENDPOINT, `http://minio:${svc.spec.ports[0].port}`);
});

Deno.test("deploy: the gpu overlay puts the compute services on GPUs", async () => {
  const docs = await render("deploy/k8s/overlays/gpu");
  for (const name of ["neural-predictor", "classifier-trainer", "reconstructor", "evaluator"]) {
    const spec = find(docs, "Deployment", name).spec.template.spec;
    const c = spec.containers[0];
    assertEquals(c.image, "cotrain:gpu", name);
    assertEquals(c.resources.limits["nvidia.com/gpu"], 1, name);
    assertEquals(c.env.find((e: Doc) => e.name === "COTRAIN_BACKEND").value, "tensorflow");
    assertEquals(c.env.find((e: Doc) => e.name === "COTRAIN_TRAIN_ENGINE").value, "tfjs");
    assertEquals(spec.nodeSelector["nvidia.com/gpu.present"], "true");
  }
  const cpu = find(docs, "Deployment", "corruption-generator").spec.template.spec.containers[0];
  assertEquals(cpu.image, "cotrain:cpu");
  assertEquals(cpu.resources.limits["nvidia.com/gpu"], undefined);
  assertEquals(find(docs, "Deployment", "evaluator").spec.replicas, 4);
});

Deno.test("deploy: the Dockerfiles run Deno 2.9 on the locked dependencies", async () => {
  for (const f of ["Dockerfile", "Dockerfile.gpu"]) {
    const text = await Deno.readTextFile(new URL(`deploy/docker/${f}`, ROOT));
    assert(/denoland\/deno:(bin-)?2\.9\.\d/.test(text), `${f}: Deno 2.9 base`);
    assert(text.includes("deno install --frozen"), `${f}: installs from deno.lock`);
    assert(text.includes("COTRAIN_HOST=0.0.0.0"), `${f}: binds all interfaces`);
  }
});
