// The single-use tokens in streaming URLs (kubelet's streaming requestCache): the
// Exec/Attach/PortForward RPC stores its request under a random token and returns a URL with
// it; the first HTTP request for the URL consumes the token. Tokens live one minute and at most
// 1000 are outstanding, so a client that never follows its URLs cannot grow the cache.

import { randomBytes } from "node:crypto";
import { CrioError, GrpcCode } from "../errors.ts";
import type { AttachRequest, ExecRequest, PortForwardRequest } from "./types.ts";

export type StreamRequest =
  | { kind: "exec"; request: ExecRequest }
  | { kind: "attach"; request: AttachRequest }
  | { kind: "portforward"; request: PortForwardRequest };

export const TOKEN_TTL_MS = 60_000;
export const MAX_IN_FLIGHT = 1000;
const TOKEN_LENGTH = 8;

export interface TokenCacheOptions {
  ttlMs?: number;
  maxInFlight?: number;
  now?: () => number;
}

export class TokenCache {
  // Insertion order is expiry order: every entry gets the same TTL.
  private readonly entries = new Map<string, { req: StreamRequest; expires: number }>();
  private readonly ttlMs: number;
  private readonly maxInFlight: number;
  private readonly now: () => number;

  constructor(options: TokenCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? TOKEN_TTL_MS;
    this.maxInFlight = options.maxInFlight ?? MAX_IN_FLIGHT;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Stores a request; returns its token. Throws RESOURCE_EXHAUSTED when the cache is full. */
  insert(req: StreamRequest): string {
    this.evictExpired();
    if (this.entries.size >= this.maxInFlight) {
      throw new CrioError(GrpcCode.RESOURCE_EXHAUSTED, "maximum number of in-flight requests exceeded");
    }
    for (let attempt = 0; attempt < 10; attempt++) {
      // 6 random bytes are exactly 8 characters of unpadded URL-safe base64.
      const token = randomBytes((TOKEN_LENGTH * 6) / 8).toString("base64url");
      if (this.entries.has(token)) continue;
      this.entries.set(token, { req, expires: this.now() + this.ttlMs });
      return token;
    }
    throw new CrioError(GrpcCode.INTERNAL, "failed to generate unique token");
  }

  /** Removes and returns the request of a live token; undefined for unknown or expired ones. */
  consume(token: string): StreamRequest | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    if (this.now() > entry.expires) return undefined;
    return entry.req;
  }

  private evictExpired(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) {
      if (now <= entry.expires) break;
      this.entries.delete(token);
    }
  }
}
