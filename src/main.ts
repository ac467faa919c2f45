#!/usr/bin/env bun
// The `crio` executable: the daemon and its subcommands (config, version, status, completion, man).
// No top-level await: the compiled binary is built with --bytecode, which loads as CommonJS.
import { runCli } from "./cli/index.ts";

// `crio --help | head` closes the pipe early: that is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
