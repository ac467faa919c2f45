// What the error stream of an exec/attach session carries when the command is done. Protocol
// v4 (and v5) send a JSON metav1.Status, which carries the exit code; older protocols send the
// failure message as plain text, and nothing on success (kubelet's remotecommand
// v4WriteStatusFunc / v1WriteStatusFunc).

/** The fields of metav1.Status that remotecommand uses, in Go's marshalling order. */
export interface Status {
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: { causes: Array<{ reason?: string; message?: string }> };
  code?: number;
}

export function successStatus(): Status {
  return { metadata: {}, status: "Success" };
}

/**
 * A command that exited with a non-zero code. The message mirrors what kubelet builds from the
 * runtime's exec.ExitError ("exit status N"); clients read the code from the cause.
 */
export function exitCodeStatus(exitCode: number): Status {
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  };
}

/** apierrors.NewInternalError(err). */
export function internalErrorStatus(message: string): Status {
  return {
    metadata: {},
    status: "Failure",
    message: `Internal error occurred: ${message}`,
    reason: "InternalError",
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** JSON as Go's encoding/json writes it (HTML-sensitive characters escaped). */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const utf8 = new TextEncoder();

/** The bytes written to the error stream for a status, or undefined for nothing. */
export function encodeStatus(status: Status, jsonStatus: boolean): Uint8Array | undefined {
  if (jsonStatus) return utf8.encode(goJson(status));
  if (status.status === "Success") return undefined;
  return utf8.encode(status.message ?? "");
}

/**
 * The message port-forward writes on a connection's error stream when forwarding failed
 * (kubelet's portForwardErrResponse, newline-terminated by json.Encoder). closeConnection tells
 * the client to give up the whole session; EPIPE and ECONNRESET only end this connection.
 */
export function portForwardError(port: number, podSandboxId: string, err: unknown): Uint8Array {
  const code = (err as { code?: unknown } | null)?.code;
  const keep = code === "EPIPE" || code === "ECONNRESET";
  const reason = err instanceof Error ? err.message : String(err);
  const body: { closeConnection?: boolean; message: string } = {
    message: `error forwarding port ${port} to pod ${podSandboxId}, uid : ${reason}`,
  };
  if (!keep) body.closeConnection = true;
  // Field order of the Go struct: closeConnection, then message.
  const ordered = body.closeConnection ? { closeConnection: true, message: body.message } : { message: body.message };
  return utf8.encode(goJson(ordered) + "\n");
}
