# Development shell: `nix-shell nix/shell.nix` gives the tools this project builds and tests
# with (Bun and Node.js for the build; conmon, runc, crun and the CNI plugins the daemon runs).
# Not exercised on the project's CI machines (Debian 12 without nix); the release flake that
# builds the binaries comes with the distribution issue.
{ pkgs ? import <nixpkgs> { } }:
pkgs.mkShell {
  packages = with pkgs; [ bun nodejs_20 conmon runc crun cni-plugins protobuf git ];
}
