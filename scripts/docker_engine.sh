#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the container tests and runners/container/build.sh:
# installs Debian's docker.io and debootstrap when missing (root), starts dockerd when no engine
# answers. Prints the pid of the dockerd it started (nothing when one was already running), so
# that the caller stops exactly that one:
#   pid=$(./scripts/docker_engine.sh); ...; [ -z "$pid" ] || kill "$pid"
# .ci/run does this; on a workstation with Docker already running it changes nothing.
set -euo pipefail
say() { echo "docker_engine.sh: $*" >&2; }
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { say "needs ${missing[*]} (apt-get install, as root)"; exit 2; }
  say "installing ${missing[*]} from Debian's packages ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if docker version >/dev/null 2>&1; then
  exit 0
fi
[ "$(id -u)" = 0 ] || { say "no Docker engine answers, and starting dockerd needs root"; exit 2; }
log="${TMPDIR:-/tmp}/segscale-dockerd.log"
nohup dockerd >"$log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 60); do
  if docker version >/dev/null 2>&1; then
    echo "$pid"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
say "dockerd did not come up; its log: $log"
tail -n 20 "$log" >&2 || true
kill "$pid" 2>/dev/null || true
exit 1
