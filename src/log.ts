// Logging through consola, formatted as CRI-O (logrus) formats it so existing log pipelines keep
// parsing: text `time="…" level=info msg="…" key=value` or JSON `{"level":…,"msg":…,"time":…}`.
import { openSync, writeSync } from "node:fs";
import { createConsola, type ConsolaInstance, type ConsolaReporter, type LogObject } from "consola/core";

/** CRI-O's log_level values and the consola level each maps to. */
export const LOG_LEVELS = {
  fatal: 0,
  panic: 0,
  error: 0,
  warn: 1,
  warning: 1,
  info: 3,
  debug: 4,
  trace: 5,
} as const;
export type LogLevelName = keyof typeof LOG_LEVELS;
export type LogFormat = "text" | "json";

const consolaTypeToLevel: Record<string, string> = {
  fatal: "fatal",
  error: "error",
  warn: "warning",
  log: "info",
  info: "info",
  success: "info",
  ready: "info",
  start: "info",
  box: "info",
  debug: "debug",
  trace: "trace",
  verbose: "trace",
  fail: "error",
};

export type Fields = Record<string, unknown>;

function isFields(v: unknown): v is Fields {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Error);
}

function quoteText(v: string): string {
  return /^[A-Za-z0-9_./:@+-]+$/.test(v) ? v : JSON.stringify(v);
}

function fieldValue(v: unknown): string {
  if (v instanceof Error) return v.message;
  if (typeof v === "string") return v;
  if (typeof v === "bigint") return v.toString();
  return JSON.stringify(v) ?? String(v);
}

/** Splits consola's args into the message and trailing structured fields. */
function messageAndFields(args: unknown[]): { msg: string; fields: Fields } {
  const parts: string[] = [];
  const fields: Fields = {};
  for (const a of args) {
    if (isFields(a)) Object.assign(fields, a);
    else if (a instanceof Error) {
      parts.push(a.message);
    } else parts.push(fieldValue(a));
  }
  return { msg: parts.join(" "), fields };
}

export function formatLine(format: LogFormat, date: Date, level: string, msg: string, fields: Fields): string {
  const time = date.toISOString();
  if (format === "json") {
    const obj: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) obj[k] = typeof v === "bigint" ? v.toString() : v instanceof Error ? v.message : v;
    obj.level = level;
    obj.msg = msg;
    obj.time = time;
    return JSON.stringify(obj);
  }
  let line = `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
  for (const [k, v] of Object.entries(fields)) line += ` ${k}=${quoteText(fieldValue(v))}`;
  return line;
}

class CrioReporter implements ConsolaReporter {
  format: LogFormat = "text";
  filter: RegExp | undefined;
  write: (line: string) => void = (line) => process.stderr.write(line + "\n");
  log(obj: LogObject): void {
    const { msg, fields } = messageAndFields(obj.args);
    // log_filter selects messages, as CRI-O's does (fields are not matched).
    if (this.filter && !this.filter.test(msg)) return;
    const level = consolaTypeToLevel[obj.type] ?? "info";
    this.write(formatLine(this.format, obj.date, level, msg, fields));
  }
}

const reporter = new CrioReporter();

/** The process-wide logger. `log.info("msg", { field: 1 })`. */
export const log: ConsolaInstance = createConsola({ level: LOG_LEVELS.info, reporters: [reporter] });

/** A writer that appends lines to `path` (crio --log FILE), created 0600 when missing. */
export function fileWriter(path: string): (line: string) => void {
  const fd = openSync(path, "a", 0o600);
  return (line) => writeSync(fd, line + "\n");
}

/**
 * Applies log_level, log_format and log_filter ("" clears it); throws on an unknown level name
 * or an invalid filter.
 */
export function configureLogging(opts: { level?: string; format?: LogFormat; filter?: string; write?: (line: string) => void }): void {
  if (opts.filter !== undefined) reporter.filter = opts.filter === "" ? undefined : new RegExp(opts.filter);
  if (opts.level !== undefined) {
    const lvl = LOG_LEVELS[opts.level.toLowerCase() as LogLevelName];
    if (lvl === undefined) {
      throw new Error(`unknown log level ${JSON.stringify(opts.level)}: want one of ${Object.keys(LOG_LEVELS).join(", ")}`);
    }
    log.level = lvl;
  }
  if (opts.format !== undefined) reporter.format = opts.format;
  if (opts.write !== undefined) reporter.write = opts.write;
}
