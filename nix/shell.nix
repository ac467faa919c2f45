# Development shell: `nix-shell nix/shell.nix` (or `nix develop ./nix`) gives the tools this
# project builds and tests with (Bun and Node.js for the build; conmon, runc, crun and the CNI
# plugins the daemon runs). Not exercised on the project's CI machines (Debian 12 without nix);
# flake.nix builds the release binaries and bundle (see README.md here).
{ pkgs ? import <nixpkgs> { } }:
pkgs.mkShell {
  packages = with pkgs; [ bun nodejs_20 conmon runc crun cni-plugins protobuf git ];
}
