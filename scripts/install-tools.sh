#!/usr/bin/env bash
# Installs, idempotently, every outside tool the tests and benchmarks use.
# Debian packages through apt; Go tools through the Go module proxy into
# $ARBITER_TOOLS/bin (default ~/.cache/arbiter-tools/bin), so a fresh clone on a
# machine that already built them reuses the binaries.
set -euo pipefail

TOOLS="${ARBITER_TOOLS:-$HOME/.cache/arbiter-tools}"
BIN="$TOOLS/bin"
mkdir -p "$BIN"
export GOBIN="$BIN"
export GOFLAGS="${GOFLAGS:-} -mod=mod"

OPA_VERSION="v1.22.3"
CRANE_VERSION="v0.22.1"
ORAS_VERSION="v1.3.6"
HELM_VERSION="v3.22.0"
SYFT_VERSION="v1.57.1"
# The OCI distribution conformance suite has no tags; this is the pseudo-version
# the Go module proxy serves for its main branch (built with `go test -c`).
OCI_CONFORMANCE_MODULE="github.com/opencontainers/distribution-spec/conformance"
OCI_CONFORMANCE_VERSION="v0.0.0-20260831232431-97274622c111"
REGAL_MODULE="github.com/open-policy-agent/regal"
REGAL_FALLBACK_MODULE="github.com/StyraInc/regal"
REGAL_VERSION="latest"

log() { printf '[install-tools] %s\n' "$*" >&2; }

apt_packages=()
need_apt() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ] || apt_packages+=("$3"); }
need_apt initdb /usr/lib/postgresql/15/bin/initdb postgresql
need_apt docker-registry /usr/bin/docker-registry docker-registry
need_apt skopeo /usr/bin/skopeo skopeo
need_apt umoci /usr/bin/umoci umoci
need_apt wrk /usr/bin/wrk wrk
need_apt podman /usr/bin/podman podman
if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages ${apt_packages[*]}: run 'sudo apt-get install ${apt_packages[*]}'"
    exit 1
  fi
  log "apt-get install ${apt_packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

go_tool() { # name module version: build once, rebuild when the version differs
  local name=$1 module=$2 version=$3 stamp="$BIN/.$1.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then return 0; fi
  log "go install $module@$version"
  go install "$module@$version" || return 1
  echo "$version" >"$stamp"
}

go_tool opa github.com/open-policy-agent/opa "$OPA_VERSION"

# OCI clients the registry's tests drive (skopeo and umoci come from Debian above).
go_tool crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
go_tool oras oras.land/oras/cmd/oras "$ORAS_VERSION"
go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"

oci_conformance() { # the suite is a test package: compile it into a binary once per version
  local binary="$BIN/oci-conformance.test" stamp="$BIN/.oci-conformance.version" work
  if [ -x "$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$OCI_CONFORMANCE_VERSION" ]; then
    return 0
  fi
  log "go test -c $OCI_CONFORMANCE_MODULE@$OCI_CONFORMANCE_VERSION"
  work="$(mktemp -d)"
  if ! (cd "$work" &&
    go mod init arbiter.local/oci-conformance >/dev/null 2>&1 &&
    go get "$OCI_CONFORMANCE_MODULE@$OCI_CONFORMANCE_VERSION" &&
    go test -c -o "$binary" "$OCI_CONFORMANCE_MODULE"); then
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work"
  echo "$OCI_CONFORMANCE_VERSION" >"$stamp"
}
oci_conformance

# Syft is the anchor of the supply-chain benchmark's accuracy comparison
# (bench/bench_supplychain.py), not a test dependency: a failed build is logged
# and the benchmark then says it made no comparison.
if ! go_tool syft github.com/anchore/syft/cmd/syft "$SYFT_VERSION"; then
  log "syft could not be installed; make bench skips the comparison with Syft"
fi

# Regal is optional: the Go module proxy this workplace reaches has answered
# "403 Forbidden / This module version is not available" for both of its
# module paths. scripts/check-policies.sh then says so and runs the strict
# checks opa itself offers; it never pretends regal ran.
if ! go_tool regal "$REGAL_MODULE" "$REGAL_VERSION" &&
  ! go_tool regal "$REGAL_FALLBACK_MODULE" "$REGAL_VERSION"; then
  log "regal could not be installed from $REGAL_MODULE or $REGAL_FALLBACK_MODULE; policy lint falls back to opa check --strict"
fi

log "tools ready in $BIN"
