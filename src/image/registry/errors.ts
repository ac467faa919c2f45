// The errors of the registry client, one class per kind a caller acts on. Each extends a typed
// error of src/errors.ts, so the gRPC code follows from the class, and carries `kind` for code
// that switches on it. Messages name the registry, repository and digest involved, never a
// credential or a token: they end up in kubelet events and in the daemon log.
import {
  CrioError,
  DeadlineExceededError,
  FailedPreconditionError,
  GrpcCode,
  NotFoundError,
  UnavailableError,
  UnimplementedError,
} from "../../errors.ts";

/** 404 on a manifest: the tag or digest does not exist in the repository (or the repository does not). */
export class ManifestNotFoundError extends NotFoundError {
  readonly kind = "ManifestNotFound";
  readonly registry: string;
  readonly repository: string;
  readonly reference: string;
  constructor(registry: string, repository: string, reference: string, detail?: string) {
    super(
      `manifest for ${registry}/${repository}${reference.includes(":") ? "@" : ":"}${reference} not found` +
        (detail ? `: ${detail}` : ""),
    );
    this.registry = registry;
    this.repository = repository;
    this.reference = reference;
  }
}

/** 404 on a blob that a manifest references. */
export class BlobNotFoundError extends NotFoundError {
  readonly kind = "BlobNotFound";
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  constructor(registry: string, repository: string, digest: string, detail?: string) {
    super(`blob ${digest} not found in ${registry}/${repository}` + (detail ? `: ${detail}` : ""));
    this.registry = registry;
    this.repository = repository;
    this.digest = digest;
  }
}

/**
 * The registry refused the request after authentication was attempted: 401 (UNAUTHENTICATED: no
 * or wrong credentials) or 403 (PERMISSION_DENIED: the credentials do not grant the access).
 */
export class UnauthorizedError extends CrioError {
  readonly kind = "Unauthorized";
  readonly registry: string;
  readonly status: number;
  constructor(registry: string, status: number, message: string, options?: { cause?: unknown }) {
    super(status === 403 ? GrpcCode.PERMISSION_DENIED : GrpcCode.UNAUTHENTICATED, message, options);
    this.registry = registry;
    this.status = status;
  }
}

/** 429 after the bounded retries: the registry is rate-limiting this client. */
export class TooManyRequestsError extends CrioError {
  readonly kind = "TooManyRequests";
  readonly registry: string;
  constructor(registry: string, message: string) {
    super(GrpcCode.RESOURCE_EXHAUSTED, message);
    this.registry = registry;
  }
}

/** 5xx or connection failures after the bounded retries, or a registry that does not speak v2. */
export class RegistryUnavailableError extends UnavailableError {
  readonly kind = "RegistryUnavailable";
  readonly registry: string;
  readonly status: number | undefined;
  constructor(registry: string, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options);
    this.registry = registry;
    this.status = options?.status;
  }
}

/** An answer the client cannot use: an unexpected status, or a body that is not what it claims. */
export class RegistryResponseError extends FailedPreconditionError {
  readonly kind = "RegistryResponse";
  readonly registry: string;
  readonly status: number | undefined;
  constructor(registry: string, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options);
    this.registry = registry;
    this.status = options?.status;
  }
}

/**
 * Content whose digest or length differs from what was asked for. The stream that carried it
 * errors with this instead of ending, so no consumer takes the bad bytes for a layer.
 */
export class DigestMismatchError extends CrioError {
  readonly kind = "DigestMismatch";
  readonly expected: string;
  readonly actual: string | undefined;
  readonly expectedSize: number | undefined;
  readonly actualSize: number | undefined;
  constructor(
    what: string,
    d: { expected: string; actual?: string; expectedSize?: number; actualSize?: number; tooLong?: boolean },
  ) {
    const sizePart =
      d.expectedSize !== undefined && d.actualSize !== undefined && d.expectedSize !== d.actualSize
        ? d.tooLong
          ? `: more than the ${d.expectedSize} bytes expected`
          : `: got ${d.actualSize} bytes, expected ${d.expectedSize}`
        : "";
    const digestPart = d.actual !== undefined && d.actual !== d.expected ? `: got ${d.actual}` : "";
    super(GrpcCode.DATA_LOSS, `digest mismatch for ${what}: expected ${d.expected}${digestPart}${sizePart}`);
    this.expected = d.expected;
    this.actual = d.actual;
    this.expectedSize = d.expectedSize;
    this.actualSize = d.actualSize;
  }
}

/** A manifest that does not parse or misses required fields. */
export class InvalidManifestError extends CrioError {
  readonly kind = "InvalidManifest";
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.DATA_LOSS, message, options);
  }
}

/** Schema 1 manifests, encrypted layers, layers only at foreign URLs, non-image artifacts. */
export class UnsupportedMediaTypeError extends UnimplementedError {
  readonly kind = "UnsupportedMediaType";
  readonly mediaType: string;
  constructor(mediaType: string, message: string) {
    super(message);
    this.mediaType = mediaType;
  }
}

/** An image index without an entry for the wanted platform; names it and what is there. */
export class NoMatchingPlatformError extends NotFoundError {
  readonly kind = "NoMatchingPlatform";
  readonly wanted: string;
  readonly available: string[];
  constructor(image: string, wanted: string, available: string[]) {
    super(
      `no image found in manifest list ${image} for platform ${wanted}` +
        ` (available: ${available.length ? available.join(", ") : "none"})`,
    );
    this.wanted = wanted;
    this.available = available;
  }
}

/** The caller's AbortSignal fired. */
export class CancelledError extends CrioError {
  readonly kind = "Cancelled";
  constructor(message: string, options?: { cause?: unknown }) {
    super(GrpcCode.CANCELLED, message, options);
  }
}

/** The error to throw for an aborted signal: DEADLINE_EXCEEDED for a timeout, CANCELLED otherwise. */
export function abortError(signal: AbortSignal, what: string): CrioError {
  const reason: unknown = signal.reason;
  if (reason instanceof CrioError) return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return new DeadlineExceededError(`${what}: timed out`, { cause: reason });
  }
  return new CancelledError(`${what}: cancelled`, { cause: reason });
}
