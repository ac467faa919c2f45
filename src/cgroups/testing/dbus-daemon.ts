// The reference D-Bus bus daemon (Debian's dbus-daemon) on a temp socket, for tests that check
// our wire format against independent implementations.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const haveDbusDaemon = ["/usr/bin/dbus-daemon", "/bin/dbus-daemon"].some((p) => existsSync(p));
export const haveBusctl = ["/usr/bin/busctl", "/bin/busctl"].some((p) => existsSync(p));

/** Throws naming the packages when the reference tools are missing (tests never skip silently). */
export function requireDbusTools(opts: { busctl?: boolean } = {}): void {
  if (!haveDbusDaemon) throw new Error("dbus-daemon is missing: apt-get install dbus-daemon dbus-bin");
  if (opts.busctl && !haveBusctl) throw new Error("busctl is missing: apt-get install systemd");
}

/** Runs the reference bus daemon on a temp socket for `fn`; kills it by pid afterwards. */
export async function withDbusDaemon<T>(fn: (socket: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "dbus-daemon-"));
  const socket = join(dir, "bus.sock");
  writeFileSync(
    join(dir, "bus.conf"),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`,
  );
  const daemon = Bun.spawn(["dbus-daemon", `--config-file=${join(dir, "bus.conf")}`, "--nofork", "--print-address"], { stdout: "pipe", stderr: "ignore" });
  try {
    const reader = daemon.stdout.getReader();
    let printed = "";
    while (!printed.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("dbus-daemon exited before printing its address");
      printed += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    return await fn(socket);
  } finally {
    daemon.kill("SIGTERM");
    await daemon.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

