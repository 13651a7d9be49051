# Shared by scripts/demo, scripts/build and scripts/test. Every ensure_* step is
# idempotent: it checks first and installs only what is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
# One target directory for every build, native and wasm, so nothing is built twice.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

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

# Release wasm (SIMD from .cargo/config.toml) and the npm package in pkg/.
build_wasm() {
  log "building the wasm module (release)"
  cargo build --release --lib --target wasm32-unknown-unknown
  log "generating pkg/ with wasm-bindgen"
  wasm-bindgen --target web --out-dir pkg --out-name latentlab \
    --remove-producers-section \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/latentlab.wasm"
}

build_site() {
  log "building the site into www/dist"
  npx vite build --config www/vite.config.js --logLevel warn
}

build_all() {
  ensure_rust
  ensure_wasm_bindgen
  ensure_node_modules
  build_wasm
  build_site
}
