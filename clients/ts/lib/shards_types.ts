/**
 * The contract of the shard dispatcher (clients/ts/lib/shards.ts) and the wire shapes of
 * `cotrain.v1.Evaluator` (protos/cotrain/v1/evaluator.proto) as the orchestrator sees them
 * (proto-loader with keepCase: snake_case fields, enums as names, int64 as numbers).
 *
 * @example
 * ```ts ignore
 * import { runShards } from "./shards.ts";
 * import type { EvaluateShardRequest } from "./shards_types.ts";
 * const shards: EvaluateShardRequest[] = [
 *   { model_id: "abc…", dataset_uri: "builtin:image-set?classes=4", corruption: "clean", severity: 0, seed: 0 },
 *   { model_id: "abc…", dataset_uri: "builtin:image-set?classes=4", corruption: "fog", severity: 3, seed: 0 },
 * ];
 * const results = await runShards(["127.0.0.1:50054", "127.0.0.1:50064"], shards, {
 *   concurrency: 2,
 *   onProgress: (done, total) => console.log(`${done}/${total}`),
 * });
 * ```
 * @module
 */

/** The evaluator's fully qualified service name. */
export const EVALUATOR_SERVICE = "cotrain.v1.Evaluator";
/** The evaluator's .proto (relative to protos/). */
export const EVALUATOR_PROTO = "cotrain/v1/evaluator.proto";
/** The evaluator's default port. */
export const EVALUATOR_DEFAULT_PORT = 50054;

/** One shard: a classifier on one corruption x severity x seed of an image set's test split. */
export interface EvaluateShardRequest {
  /** A classifier-trainer Train result's model_id, or its checkpoint artifact URI. */
  model_id: string;
  /** "builtin:image-set?.." or "file:///abs/tiny-imagenet-200" (TrainClassifierRequest syntax). */
  dataset_uri: string;
  /** A corruption name (core/corruptions) or "clean". */
  corruption: string;
  /** 1..5; 0 with "clean". */
  severity: number;
  /** Seed of the corruption's randomness. */
  seed?: number;
  /** "imagecorruptions" (default) or "tiny-imagenet-c". */
  preset?: string;
  /** Only the first `limit` test images (0 = all). */
  limit?: number;
  /** Images per inference call (default 64). */
  batch_size?: number;
}

/** A TensorRef as it arrives. */
export interface TensorRefMsg {
  uri: string;
  sha256: string;
  dtype: string;
  shape: number[];
}

/** The result of one shard. */
export interface EvaluateShardResponse {
  /** Content key of the shard: what Score takes in `shard_keys`. */
  key: string;
  /** uint8 [N] per-image correctness in the store. */
  correct: TensorRefMsg;
  n: number;
  n_correct: number;
  accuracy: number;
  /** "JOB_STATE_STARTED" or "JOB_STATE_CACHED". */
  state: string;
  /** "host:pid" of the replica that computed it. */
  replica: string;
  /** "host:pid" of the replica that answered. */
  served_by: string;
  model_id: string;
  dataset_uri: string;
  corruption: string;
  severity: number;
  seed: number;
  preset: string;
  /** "onnxruntime" or "tfjs". */
  engine: string;
  /** "in-process" or "service:<addr>". */
  corrupted_by: string;
  elapsed_s: number;
}

/** Options of `runShards`. */
export interface RunShardsOptions {
  /**
   * Shards in flight per replica at once (default 3, or COTRAIN_SHARDS_INFLIGHT): one shard's
   * corruption overlaps another's inference and a third's store writes and round trip.
   */
  concurrency?: number;
  /**
   * How many times one shard is re-sent after its replica failed (UNAVAILABLE, connection lost),
   * each time to another replica when there is one (default 3 per replica).
   */
  retries?: number;
  /** Called when a shard is handed back after its replica failed (the shard's index, the target). */
  onRetry?: (index: number, target: string, error: Error) => void;
  /** Called after every finished shard with (done, total). */
  onProgress?: (done: number, total: number, result: EvaluateShardResponse) => void;
  /** Stops sending new shards and cancels those in flight. */
  signal?: AbortSignal;
  /**
   * With one `dns:///` target (round_robin inside one channel): how many replicas to assume when
   * sizing the number of shards in flight (concurrency x replicas; default 2).
   */
  replicas?: number;
  /** Give up (UNAVAILABLE) when no replica was reachable for this long (ms, default 60 000). */
  unavailableMs?: number;
  /** Deadline of one shard call in ms (default none). */
  deadlineMs?: number;
}

/**
 * The dispatcher's signature: spreads `shards` over evaluator replicas (a list of host:port, one
 * per replica, or one `dns:///name:port` target balanced round_robin) and resolves with the results in
 * the order of `shards`. Rejects with the first non-retryable error (INVALID_ARGUMENT, NOT_FOUND,
 * ...) or when a shard ran out of retries.
 */
export type RunShards = (
  targets: string[] | string,
  shards: EvaluateShardRequest[],
  opts?: RunShardsOptions,
) => Promise<EvaluateShardResponse[]>;

/** A model's shards for Score. */
export interface ScoreModelMsg {
  name: string;
  shard_keys: string[];
  fev?: number;
}

/** A Score request. */
export interface ScoreRequest {
  models: ScoreModelMsg[];
  /** Reference model name (default "Baseline"). */
  baseline?: string;
  /** Default: the paper's 14 corruptions. */
  corruptions?: string[];
  /** Resamples (default 250) and their seed. */
  bootstrap?: number;
  bootstrap_seed?: number;
  /** Default 0.95. */
  confidence?: number;
}

/** A value with its bootstrap interval. */
export interface EstimateMsg {
  value: number;
  lo: number;
  hi: number;
}

/** Scores of one model. */
export interface ModelScoreMsg {
  name: string;
  clean_accuracy: EstimateMsg;
  accuracy: { corruption: string; severity: number; accuracy: number; seeds: number }[];
  corruption_accuracy: Record<string, number>;
  /** Per category: "noise", "blur", "weather", "digital" (in %). */
  robustness: Record<string, EstimateMsg>;
  robustness_total: EstimateMsg;
  mce: EstimateMsg;
  relative_mce: EstimateMsg;
  ce: Record<string, number>;
  fev: number;
  n: number;
}

/** A Score response. */
export interface ScoreResponse {
  models: ModelScoreMsg[];
  baseline: string;
  corruptions: string[];
  bootstrap: number;
  confidence: number;
}
