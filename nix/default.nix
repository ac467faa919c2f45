# The crio executable and its release bundle, from package-lock.json and Bun from nixpkgs.
# Called by flake.nix (which passes the git stamps); see README.md in this folder.
{
  lib,
  stdenv,
  stdenvNoCC,
  runCommand,
  bun,
  nodejs,
  unzip,
  binutils,
  # This repository (a path), and the stamps scripts/build would take from git.
  src,
  rev ? "unknown",
  treeState ? "dirty",
  commitDate ? "unknown",
  sourceDateEpoch ? 0,
  # The hash of the npm dependencies: replace with the one the first build prints, and again
  # whenever package-lock.json changes (as buildNpmPackage's npmDepsHash).
  npmDepsHash ? lib.fakeHash,
}:
let
  pkg = lib.importJSON (src + "/package.json");
  version = pkg.version;
  system = stdenv.hostPlatform.system;
  arch = { x86_64-linux = "amd64"; aarch64-linux = "arm64"; }.${system} or (throw "crio: no build for ${system}");
  bunTarget = { amd64 = "bun-linux-x64"; arm64 = "bun-linux-arm64"; }.${arch};
  wantBun = pkg.devDependencies.bun;
  bun' = lib.warnIf (bun.version != wantBun)
    "crio: nixpkgs' Bun is ${bun.version}, the lockfile's ${wantBun}: the binaries will differ from scripts/build's"
    bun;

  # What is built from: the sources, without tests and docs (a change there rebuilds nothing).
  source = lib.fileset.toSource {
    root = src;
    fileset = lib.fileset.unions (map (p: src + "/${p}") [ "package.json" "package-lock.json" "bunfig.toml" "tsconfig.json" "src" "proto" "scripts" ]);
  };

  # The npm dependencies exactly as package-lock.json pins them (npm ci checks each integrity
  # hash). A fixed-output derivation, the only step that reaches the network.
  nodeModules = stdenvNoCC.mkDerivation {
    pname = "crio-node-modules";
    inherit version;
    src = lib.fileset.toSource {
      root = src;
      fileset = lib.fileset.unions [ (src + "/package.json") (src + "/package-lock.json") ];
    };
    nativeBuildInputs = [ nodejs ];
    dontConfigure = true;
    buildPhase = ''
      export HOME=$TMPDIR
      npm ci --omit=dev --ignore-scripts --no-audit --no-fund
    '';
    installPhase = "mv node_modules $out";
    dontFixup = true;
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = npmDepsHash;
  };

  # Bun as released (not patched for the Nix store): the runtime a portable executable is made
  # from, as scripts/build's is.
  bunRelease = runCommand "bun-release-${bun'.version}" { nativeBuildInputs = [ unzip ]; } ''
    unzip -q ${bun'.src}
    install -Dm755 bun-linux-*/bun $out/bin/bun
  '';

  # scripts/build's command line, with node_modules from the lockfile.
  build =
    { portable }:
    stdenvNoCC.mkDerivation {
      pname = if portable then "crio-portable" else "crio";
      inherit version;
      src = source;
      nativeBuildInputs = [ bun' ];
      dontConfigure = true;
      # A Bun executable carries its program inside the file: strip and patchelf would break it.
      dontStrip = true;
      dontPatchELF = true;
      buildPhase = ''
        runHook preBuild
        export HOME=$TMPDIR
        cp -r ${nodeModules} node_modules
        chmod -R u+w node_modules
        build_date=$(date -u -d @${toString sourceDateEpoch} +%Y-%m-%dT%H:%M:%SZ)
        bun build src/main.ts --compile --minify --bytecode --target=${bunTarget} --outfile crio \
          ${lib.optionalString portable "--compile-executable-path ${bunRelease}/bin/bun"} \
          --define CRIO_BUILD_VERSION='"${version}"' \
          --define CRIO_BUILD_GIT_COMMIT='"${rev}"' \
          --define CRIO_BUILD_GIT_COMMIT_DATE='"${commitDate}"' \
          --define CRIO_BUILD_GIT_TREE_STATE='"${treeState}"' \
          --define CRIO_BUILD_DATE="\"$build_date\""
        runHook postBuild
      '';
      installPhase = "install -Dm755 crio $out/bin/crio";
      meta = {
        description = "Kubernetes container runtime compatible with CRI-O, compiled by Bun";
        license = lib.licenses.asl20;
        mainProgram = "crio";
        platforms = [ "x86_64-linux" "aarch64-linux" ];
      };
    };

  crio = build { portable = false; };
  portable = build { portable = true; };

  # The release files, by scripts/bundle itself: the portable binary goes into the tarball, the
  # Nix one (same program and stamps) runs here for the version file, man pages and completions.
  bundle = stdenvNoCC.mkDerivation {
    pname = "crio-bundle";
    inherit version;
    src = source;
    nativeBuildInputs = [ bun' nodejs binutils ];
    dontConfigure = true;
    dontFixup = true;
    buildPhase = ''
      runHook preBuild
      export HOME=$TMPDIR SOURCE_DATE_EPOCH=${toString sourceDateEpoch}
      cp -r ${nodeModules} node_modules
      chmod -R u+w node_modules
      mkdir -p node_modules/.bin bins
      ln -s ${bun'}/bin/bun node_modules/.bin/bun
      cp ${portable}/bin/crio bins/crio-linux-${arch}
      patchShebangs scripts
      scripts/bundle -a ${arch} -t v${version} -o $out -B bins -R ${crio}/bin/crio
      runHook postBuild
    '';
    dontInstall = true;
  };
in
crio.overrideAttrs (old: {
  passthru = (old.passthru or { }) // { inherit bundle portable nodeModules; };
})
