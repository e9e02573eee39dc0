/**
 * JSON-lines logging to stderr: one object per line with `ts`, `level`, `msg`, the logger's fixed
 * fields (service, method, request id) and the call's own fields. Machines parse it; `jq` reads it.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const log = createLogger({ service: "evaluator" });
 * log.info("listening", { port: 50054 });
 * // {"ts":"2026-11-28T10:00:00.000Z","level":"info","msg":"listening","service":"evaluator","port":50054}
 * ```
 * @module
 */

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A structured logger. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

/** Where lines go; tests swap it to capture output. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();
let sink: LogSink = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/** Replaces the sink of every logger (returns the previous one). */
export function setLogSink(next: LogSink): LogSink {
  const prev = sink;
  sink = next;
  return prev;
}

function levelFromEnv(): LogLevel {
  let v: string | undefined;
  try {
    v = Deno.env.get("COTRAIN_LOG_LEVEL");
  } catch {
    v = undefined;
  }
  return v && v in RANK ? v as LogLevel : "info";
}

function errorFields(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  return value;
}

/** Creates a logger with fixed `fields`; the level comes from COTRAIN_LOG_LEVEL unless given. */
export function createLogger(fields: Record<string, unknown> = {}, level?: LogLevel): Logger {
  const min = RANK[level ?? levelFromEnv()];
  const emit = (lvl: LogLevel, msg: string, extra?: Record<string, unknown>) => {
    if (RANK[lvl] < min) return;
    const record: Record<string, unknown> = { ts: new Date().toISOString(), level: lvl, msg };
    for (const [k, v] of Object.entries(fields)) record[k] = errorFields(v);
    if (extra) { for (const [k, v] of Object.entries(extra)) record[k] = errorFields(v); }
    let line: string;
    try {
      line = JSON.stringify(record, (_k, v) => typeof v === "bigint" ? v.toString() : v);
    } catch {
      line = JSON.stringify({ ts: record.ts, level: lvl, msg, note: "fields not serialisable" });
    }
    sink(line);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (more) => createLogger({ ...fields, ...more }, level),
  };
}
