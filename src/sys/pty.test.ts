import { afterEach, describe, expect, test } from "bun:test";
import { writeSync } from "node:fs";
import { closePtyFd, ECHO, getWindowSize, ICANON, localModeFlags, makeRaw, openPty, setWindowSize, type Pty } from "./pty.ts";

const open: number[] = [];
function track(p: Pty): Pty {
  open.push(p.master, p.slave);
  return p;
}
afterEach(() => {
  for (const fd of open.splice(0)) {
    try {
      closePtyFd(fd);
    } catch { /* closed by the test */ }
  }
});

async function readAll(fd: number): Promise<string> {
  let out = "";
  try {
    for await (const chunk of Bun.file(fd).stream()) out += Buffer.from(chunk).toString();
  } catch (err) {
    // The master reads EIO once no slave fd is open any more: that is its end of file.
    if ((err as NodeJS.ErrnoException).code !== "EIO") throw err;
  }
  return out;
}

describe("pty", () => {
  test("a new pair: /dev/pts slave, size set on the master is seen on the slave", () => {
    const p = track(openPty());
    expect(p.slavePath).toMatch(/^\/dev\/pts\/\d+$/);
    setWindowSize(p.master, { rows: 33, cols: 77 });
    expect(getWindowSize(p.slave)).toEqual({ rows: 33, cols: 77 });
    setWindowSize(p.master, { rows: -1, cols: 1e9 });
    expect(getWindowSize(p.slave)).toEqual({ rows: 0, cols: 0xffff });
  });

  test("makeRaw turns off echo and line editing", () => {
    const p = track(openPty());
    expect(localModeFlags(p.slave) & (ECHO | ICANON)).toBe(ECHO | ICANON);
    makeRaw(p.slave);
    expect(localModeFlags(p.slave) & (ECHO | ICANON)).toBe(0);
  });

  test("a child on the slave: sees a terminal of the set size; raw input arrives unechoed; EOF after exit", async () => {
    const p = track(openPty());
    makeRaw(p.slave);
    setWindowSize(p.master, { rows: 12, cols: 34 });
    const proc = Bun.spawn(["sh", "-c", "stty size; head -c 5; echo; echo done"], { stdio: [p.slave, p.slave, p.slave] });
    closePtyFd(p.slave);
    writeSync(p.master, "hello");
    const out = await readAll(p.master);
    expect(await proc.exited).toBe(0);
    // Raw mode: no echo of "hello" before the command reads it, and no \n → \r\n translation.
    expect(out).toBe("12 34\nhello\ndone\n");
  });
});
