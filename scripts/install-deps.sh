#!/usr/bin/env bash
# Install the Debian packages batpipe builds and tests with (Debian 12).
# The CUDA toolkit is optional and not installed here: the CUDA backend is
# built when nvcc is found.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libconfig-dev libsndfile1-dev libsamplerate0-dev libfftw3-dev libdnnl-dev
      libmysofa-dev libmysofa1 libjansson-dev
      valgrind clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}"; then
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
