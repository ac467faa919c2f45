# Release builds with Nix, from this repository's package-lock.json and Bun from nixpkgs:
#   nix build ./nix#crio      the crio executable for this system ($out/bin/crio; runs on Nix hosts)
#   nix build ./nix#bundle    crio.<arch>.v<version>.tar.gz + .sha256sum + .spdx.json, made by
#                             scripts/bundle from a build of the same sources
#   nix develop ./nix         the development shell (shell.nix)
# (from inside nix/: `nix build .#crio`.) For x86_64-linux and aarch64-linux, each built natively.
# Written without a Nix installation at hand and never run on the project's machines (Debian 12,
# no Nix): README.md in this folder says what is expected to work and what is not verified.
{
  description = "crio: a Kubernetes container runtime compatible with CRI-O, compiled by Bun";

  # Pinned to one nixpkgs revision (flake.lock, written by the first `nix flake lock`, adds its
  # hash). Its Bun must be the lockfile's (package.json devDependencies.bun) for the binaries to
  # be byte-identical to scripts/build's; default.nix warns when it is not.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/a7573543c77332af0a2c574b4df970af5f28777e";

  outputs =
    { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # The build stamps scripts/build takes from git, here from the flake's source info.
      d = self.lastModifiedDate or "19700101000000";
      stamps = {
        rev = self.rev or self.dirtyRev or "unknown";
        treeState = if self ? rev then "clean" else "dirty";
        # git's %cI; equal to scripts/build's stamp when the commit was made in UTC.
        commitDate = "${builtins.substring 0 4 d}-${builtins.substring 4 2 d}-${builtins.substring 6 2 d}T${builtins.substring 8 2 d}:${builtins.substring 10 2 d}:${builtins.substring 12 2 d}+00:00";
        sourceDateEpoch = self.lastModified or 0;
      };
    in
    {
      packages = forAll (
        pkgs:
        let
          crio = pkgs.callPackage ./default.nix ({ src = ./..; } // stamps);
        in
        {
          inherit crio;
          inherit (crio) bundle;
          default = crio;
        }
      );
      devShells = forAll (pkgs: {
        default = import ./shell.nix { inherit pkgs; };
      });
    };
}
