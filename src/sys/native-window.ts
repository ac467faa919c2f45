// A "native window": a small C function compiled once with bun:ffi's cc (TinyCC), from a memfd
// so nothing is written to disk, that runs a syscall sequence no JS or runtime thread may
// interleave with (setns and back, say). It calls libc through a table of addresses resolved
// with dlsym, since it is compiled with -nostdlib.
import { closeSync, writeSync } from "node:fs";
import { cc, dlopen, FFIType, type Pointer } from "bun:ffi";
import { bindLibc, check, ptr } from "./libc.ts";

const fns = bindLibc({ memfd_create: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 } });

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

export interface NativeWindow {
  /** The compiled function: (libc table, arguments, report) → its return value. */
  run: (fn: Pointer, args: Pointer, report: Pointer) => number;
  /** Addresses of `libcFns`, in order: pass ptr(fnTable) as the first argument. */
  fnTable: BigInt64Array;
}

/**
 * Compiles `source`, whose entry point `symbol` takes (long *fn, long *args, long *report), and
 * resolves `libcFns` for it. `what` names the user in errors.
 */
export function compileNativeWindow(what: string, source: string, symbol: string, libcFns: readonly string[]): NativeWindow {
  // dlsym lives in libdl.so.2 on every glibc (a compatibility stub from 2.34 on).
  const dl = dlopen("libdl.so.2", { dlsym: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr } });
  const fnTable = new BigInt64Array(libcFns.length);
  libcFns.forEach((name, i) => {
    const addr = dl.symbols.dlsym(null, ptr(cstr(name))); // RTLD_DEFAULT
    if (addr === null) throw new Error(`dlsym ${name}: not found`);
    fnTable[i] = BigInt(addr);
  });
  const memfd = check("memfd_create", fns.memfd_create(ptr(cstr(`crio-${symbol}.c`)), 1 /* MFD_CLOEXEC */));
  let lib;
  try {
    writeSync(memfd, source);
    lib = cc({
      source: `/proc/self/fd/${memfd}`,
      flags: ["-nostdlib"],
      symbols: { [symbol]: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } },
    });
  } catch (err) {
    throw new Error(`${what}: compiling its native window with bun:ffi cc failed: ${String(err)}`, { cause: err });
  } finally {
    closeSync(memfd);
  }
  return { run: lib.symbols[symbol] as NativeWindow["run"], fnTable };
}
