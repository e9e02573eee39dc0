/**
 * Loading of cotrain's .proto contracts (protos/) with the options every service and client uses:
 * field names exactly as in the .proto (snake_case), enums as their names, int64 as JS numbers,
 * bytes as Uint8Array-compatible Buffers, defaults filled in, oneof names set.
 *
 * @example
 * ```ts
 * import { loadProtos } from "./protos.ts";
 * const defs = loadProtos(["cotrain/v1/tensor.proto"]);
 * console.log(Object.keys(defs));
 * ```
 * @module
 */
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

/** Absolute path of the protos/ folder. */
export const PROTO_ROOT: string = fileURLToPath(new URL("../../protos/", import.meta.url));

/** The proto-loader options of cotrain (the same everywhere, so messages look the same). */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

const cache = new Map<string, protoLoader.PackageDefinition>();

/**
 * Loads .proto files; relative paths are taken under protos/, absolute ones (tests) as they are.
 * The result is cached per file list.
 */
export function loadProtos(
  files: string[],
  extraIncludeDirs: string[] = [],
): protoLoader.PackageDefinition {
  const key = [...files, "|", ...extraIncludeDirs].join(",");
  let def = cache.get(key);
  if (!def) {
    def = protoLoader.loadSync(files, {
      ...LOADER_OPTIONS,
      includeDirs: [PROTO_ROOT, ...extraIncludeDirs],
    });
    cache.set(key, def);
  }
  return def;
}

/** The service definition named `fqName` (e.g. `cotrain.v1.Evaluator`) in `def`, or throws. */
export function serviceDefinition(
  def: protoLoader.PackageDefinition,
  fqName: string,
): protoLoader.ServiceDefinition {
  const svc = def[fqName];
  if (!svc || !isService(svc)) {
    const known = Object.keys(def).filter((k) => isService(def[k])).join(", ");
    throw new Error(`no service ${fqName} in the loaded protos (known: ${known})`);
  }
  return svc as protoLoader.ServiceDefinition;
}

function isService(x: unknown): boolean {
  if (typeof x !== "object" || x === null) return false;
  if ("format" in x) return false; // a message or enum type definition
  const first = Object.values(x)[0] as { path?: unknown } | undefined;
  return typeof first?.path === "string";
}

/**
 * A proto3 `optional` field's value when the caller set it, else undefined (proto-loader with
 * `oneofs: true` marks a set optional field in `_<name>`).
 *
 * @example
 * ```ts
 * import { optionalField } from "./protos.ts";
 * console.log(optionalField<number>({ lr: 0.1, _lr: "lr" }, "lr")); // 0.1
 * console.log(optionalField<number>({ lr: 0 }, "steps")); // undefined
 * ```
 */
export function optionalField<T>(req: Record<string, unknown>, name: string): T | undefined {
  const v = req[name];
  if (v === undefined || v === null) return undefined;
  if (`_${name}` in req && req[`_${name}`] !== name) return undefined;
  return v as T;
}
