#!/usr/bin/env bash
# Builds the segscale worker image from Debian's packages, PyPI and the Go module proxy alone,
# and prints the image reference as its last line.
#   runners/container/build.sh                  # -> localhost/segscale-worker:0.1.0
#   IMAGE=$(runners/container/build.sh | tail -n 1)
#   segscale infer --profile container --environment_config "$IMAGE" ...
#
# Needs root (debootstrap), a running Docker engine, debootstrap, Go and Python 3.11.
# Cached between runs on one machine (under ${SEGSCALE_CACHE:-~/.cache/segscale}/container):
#   - the Debian base image (kept by Docker as localhost/segscale-base:bookworm);
#   - the wheels of the pinned dependencies, rebuilt only when pyproject.toml changes;
#   - Beam's boot binary, per Beam version;
#   - Docker's layer cache: only the segscale layer is rebuilt when only our code changed.
#
# The name starts with localhost/ on purpose: Beam's Docker worker handler runs `docker pull
# IMAGE` before every container it starts (apache_beam/runners/portability/fn_api_runner/
# worker_handlers.py, DockerSdkWorkerHandler.start_worker, Beam 2.77). For a localhost/ name that
# attempt stays on this machine's loopback and fails at once, and the local image is used; a bare
# name would send it to Docker Hub. Retag (docker tag) when you push to your own registry.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/runners/container"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -n 1)"
beam_version="$(sed -n 's/.*"apache-beam\[[a-z,]*\]==\([0-9.]*\)".*/\1/p' "$root/pyproject.toml" | head -n 1)"
image="${IMAGE:-localhost/segscale-worker:$version}"
base="localhost/segscale-base:bookworm"
extras="${EXTRAS:-aws,gcp}"  # S3 (boto3) and GCS/Dataflow clients in the workers
cache="${SEGSCALE_CACHE:-$HOME/.cache/segscale}/container"
python="${PYTHON:-python3.11}"
export DOCKER_BUILDKIT=0  # the classic builder: no buildx plugin is needed (Debian's docker.io)

say() { echo "build.sh: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "needs $1 ($2)"; exit 2; }; }
need docker "apt-get install -y docker.io, then start dockerd"
need "$python" "Python 3.11, to build the wheels the image's Python 3.11 installs"
docker info >/dev/null 2>&1 || { say "no Docker engine answers (start dockerd)"; exit 2; }
mkdir -p "$cache"
start=$SECONDS

# 1. The base: Debian bookworm's minimal system with its Python 3.11, from Debian's packages.
if ! docker image inspect "$base" >/dev/null 2>&1; then
  need debootstrap "apt-get install -y debootstrap"
  mirror="${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
  [ -n "$mirror" ] || { say "set DEBIAN_MIRROR (no Debian mirror found in apt's sources)"; exit 2; }
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrap bookworm (python3.11) from $mirror ..."
  debootstrap --variant=minbase --include=python3.11,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { say "debootstrap failed; see $cache/debootstrap.log"; exit 1; }
  # What a worker never reads: package lists and caches, documentation, translations.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/info/*
  tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' - "$base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

# 2. Beam's SDK harness entrypoint (boot), built from the Go module proxy.
boot="$cache/boot-$beam_version"
if [ ! -x "$boot" ]; then
  need go "Go, to build Beam's boot"
  say "go install Beam's Python container boot @v$beam_version ..."
  gobin="$(mktemp -d)"
  GOBIN="$gobin" CGO_ENABLED=0 go install \
    "github.com/apache/beam/sdks/v2/python/container@v$beam_version"
  mv "$gobin/container" "$boot"
  rm -rf "$gobin"
fi

# 3. Wheels: every pinned dependency (once per pyproject.toml), and segscale itself.
# Keyed on pyproject.toml's dependency lists only (not on its tool settings).
key="$(sed -n '/^dependencies = \[/,/^\[tool/p' "$root/pyproject.toml" | sha256sum | cut -c1-16)"
deps="$cache/deps-$key-${extras//,/-}"
if [ ! -f "$deps/.complete" ]; then
  say "building the dependency wheelhouse (PyPI) ..."
  rm -rf "$cache"/deps-*  # an older wheelhouse (another pyproject.toml): about 0.5 GB each
  mkdir -p "$deps"
  "$python" -m pip wheel --quiet --disable-pip-version-check -w "$deps" "$root[$extras]"
  rm -f "$deps"/segscale-*.whl
  touch "$deps/.complete"
fi
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/segscale"
# The wheel from the tree's files as git sees them (tracked, or new and not ignored): building
# in the checkout would reuse its build/ folder, whose stale copies of deleted modules
# setuptools packs into the wheel.
source_tree="$(mktemp -d)"
trap 'rm -rf "$context" "$source_tree"' EXIT
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$source_tree"
else
  cp -r "$root"/. "$source_tree" && rm -rf "$source_tree/build"
fi
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$context/segscale" \
  "$source_tree"
mkdir -p "$context/deps"
cp -l "$deps"/*.whl "$context/deps/" 2>/dev/null || cp "$deps"/*.whl "$context/deps/"
cp "$boot" "$context/boot"
cp "$here/Dockerfile" "$context/Dockerfile"

# 4. The image.
say "docker build $image ..."
docker build --quiet --build-arg "BASE=$base" --label "org.opencontainers.image.version=$version" \
  --label "org.apache.beam.sdk.version=$beam_version" -t "$image" "$context" >/dev/null
# The image this tag named before is now untagged: drop such leftovers of earlier builds (only
# final images carry the label; the cached dependency stage does not and stays).
docker image prune --force --filter "label=org.apache.beam.sdk.version" >/dev/null
size="$(docker image inspect -f '{{.Size}}' "$image")"
say "built in $((SECONDS - start)) s, $((size / 1000000)) MB"
echo "$image"
