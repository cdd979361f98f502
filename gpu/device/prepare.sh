#!/bin/bash
# Prepares .devimg (git-ignored; carried to the device machine) for gpu/device/run.sh: the agents
# (cpu build and cuda build), the C++ client, the floor program, the libraries the device image
# may lack, and a testbed guest's RAM image at rest (gpu/device/capture-image.ts).
set -euo pipefail
cd "$(dirname "$0")/../.."
make -C gpu all cuda-agent
mkdir -p .devimg/lib
cp gpu/build/grass-agent gpu/build/grass-agent-cuda .devimg/
g++ -O2 -std=c++17 -Igpu/include -pthread gpu/device/grass_probe.cpp -o .devimg/grass_probe
nvcc -O2 -gencode arch=compute_90,code=sm_90 gpu/device/floor.cu -o .devimg/floor
for l in libbpf.so.1 libelf.so.1 libnl-3.so.200 libnl-route-3.so.200 libibverbs.so.1 librdmacm.so.1; do
  cp -L "$(ldconfig -p | awk -v l=$l '$1 == l {print $NF; exit}')" .devimg/lib/
done
[ -f .devimg/guest.ram.zst ] || node --import tsx gpu/device/capture-image.ts
[ -f .devimg/guest.ram.xz ] || { zstd -d -c .devimg/guest.ram.zst | xz -T2 -6 > .devimg/guest.ram.xz; }
du -sh .devimg
