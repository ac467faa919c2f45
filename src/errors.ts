// Typed errors. Handlers and modules throw these; one wrapper (src/server/instrument.ts) maps
// them to gRPC status codes, and the CLI maps ConfigError/UsageError to exit statuses.
// Numeric values are the gRPC status codes (grpc/doc/statuscodes.md), kept here so that this
// module does not depend on grpc-js.

export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/** Base class: every error the daemon raises on purpose carries a gRPC code. */
export class CrioError extends Error {
  readonly code: GrpcCode;
  constructor(code: GrpcCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class NotFoundError extends CrioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.NOT_FOUND, message, options);
  }
}
export class InvalidArgumentError extends CrioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.INVALID_ARGUMENT, message, options);
  }
}
export class AlreadyExistsError extends CrioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.ALREADY_EXISTS, message, options);
  }
}
export class FailedPreconditionError extends CrioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.FAILED_PRECONDITION, message, options);
  }
}
export class UnavailableError extends CrioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.UNAVAILABLE, message, options);
  }
}
export class UnimplementedError extends CrioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.UNIMPLEMENTED, message, options);
  }
}
export class InternalError extends CrioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.INTERNAL, message, options);
  }
}
export class DeadlineExceededError extends CrioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.DEADLINE_EXCEEDED, message, options);
  }
}

/**
 * A configuration problem: an unparseable file, a wrong type, an invalid value. `source` names
 * the file (or "flag --x" / "env CONTAINER_X"), `key` the dotted TOML key, `line` when known.
 * The CLI prints it and exits 1.
 */
export class ConfigError extends Error {
  readonly source: string | undefined;
  readonly key: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, where: { source?: string; key?: string; line?: number } = {}) {
    const prefix = [where.source, where.line !== undefined ? `line ${where.line}` : undefined, where.key]
      .filter((p) => p !== undefined && p !== "")
      .join(": ");
    super(prefix ? `${prefix}: ${message}` : message);
    this.name = "ConfigError";
    this.source = where.source;
    this.key = where.key;
    this.line = where.line;
  }
}

/** A command-line usage error: the CLI prints usage and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The gRPC code for any thrown value: typed errors keep theirs; a full disk or quota anywhere
 * (node's fs errors and src/sys's SyscallError carry the errno name in `code`) is
 * RESOURCE_EXHAUSTED; everything else is INTERNAL.
 */
export function grpcCodeOf(err: unknown): GrpcCode {
  if (err instanceof CrioError) return err.code;
  if (err instanceof ConfigError) return GrpcCode.INVALID_ARGUMENT;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (code === "ENOSPC" || code === "EDQUOT") return GrpcCode.RESOURCE_EXHAUSTED;
  }
  return GrpcCode.INTERNAL;
}
