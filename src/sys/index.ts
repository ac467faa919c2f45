// src/sys: typed wrappers over Linux system calls (bun:ffi lives only here).
export { SyscallError } from "./libc.ts";
export { sdNotify } from "./notify.ts";
