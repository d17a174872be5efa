#!/usr/bin/env bash
# Install the Debian 12 packages raftstore builds and tests with.  Safe to
# run again: it only calls apt-get when something is missing.  Needs root
# (or sudo) the first time.
set -euo pipefail

PACKAGES=(build-essential autoconf automake libtool pkg-config
	libraft-dev libuv1-dev liblz4-dev libjansson-dev check python3 procps valgrind curl iproute2
	python3-prometheus-client)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
