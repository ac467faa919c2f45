// Public option types of the registry client.

/** Where a registry is: registries.conf's `location` and `insecure` of a [[registry]] or mirror. */
export interface Endpoint {
  /** "host[:port][/path-prefix]"; "docker.io" means registry-1.docker.io. */
  location: string;
  /** Skip TLS verification, and fall back to plain HTTP when HTTPS does not answer. */
  insecure: boolean;
}

/** What a credentials callback returns for a registry (auth.json's fields, or CRI's AuthConfig). */
export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token: exchanged at the token endpoint (grant_type=refresh_token). */
  identityToken?: string;
  /** A bearer token sent as is, with no token exchange. */
  registryToken?: string;
}

/**
 * Credentials for `registryHost` (the location's host[:port], "docker.io" for Docker Hub) and
 * `repository` (the full path on that registry, prefix included, for auth.json's per-repository
 * entries). Called whenever credentials are needed; undefined means anonymous.
 */
export type CredentialsProvider = (
  registryHost: string,
  repository: string,
) => Credentials | undefined | Promise<Credentials | undefined>;

export interface RetryOptions {
  /** Attempts per request, the first included (default 3). */
  attempts?: number;
  /** Delay before the second attempt; doubles each time (default 1000 ms). */
  initialDelayMs?: number;
  /** Upper bound of one delay, Retry-After included (default 30 s). */
  maxDelayMs?: number;
}

export interface RegistryClientOptions {
  endpoint: Endpoint;
  credentials?: CredentialsProvider;
  /** Per-registry certificate directories, first existing <dir>/<host:port> wins. */
  certsDirs?: string[];
  /** The system CA bundle (default /etc/ssl/certs/ca-certificates.crt, else Bun's built-in list). */
  systemCaFile?: string;
  userAgent?: string;
  retry?: RetryOptions;
  /** How long one attempt waits for the response head (connect, TLS, headers); default 60 s. */
  responseHeaderTimeoutMs?: number;
}
