#!/bin/bash
# Prepares .devimg (git-ignored; carried to the device machine) for gpu/device/run.sh: the agents
# (cpu build and cuda build, stripped), the C++ client, the floor program, the libraries the device
# image may lack, the revision they were built from, and testbed guests' RAM images
# (gpu/device/capture-image.ts: at rest, after a sysrq panic, in an F1 hang), xz-compressed so
# that everything travels within the 64 MiB a device call carries. Everything is built from the
# committed revision (git archive of HEAD's gpu/ and llview-plugins/ into .devimg/src, which travels too and which the
# device run's own nvcc steps compile), not from the shared working tree's uncommitted edits.
# GRASS_DEVIMG_REV (default HEAD) and GRASS_DEVIMG_OUT (default .devimg): the binaries of another
# revision into another folder, for run.sh's GRASS_DEVICE_BIN; the images stay in .devimg.
set -euo pipefail
cd "$(dirname "$0")/../.."
REV=${GRASS_DEVIMG_REV:-HEAD}
D=${GRASS_DEVIMG_OUT:-.devimg}
rm -rf $D/src && mkdir -p $D/src $D/lib
git archive $REV gpu llview-plugins | tar -x -C $D/src
S=$D/src/gpu
make -C $S build/grass-agent cuda-agent  # not `all`: its wire-layout step needs the repository's scripts/, which do not travel
strip -o $D/grass-agent $S/build/grass-agent
strip -o $D/grass-agent-cuda $S/build/grass-agent-cuda
# The include roots of gpu/Makefile (the probe includes the monitor code, which includes the plugins).
g++ -O2 -std=c++17 -I$S/include -I$S/src -I$D/src/llview-plugins -I$S/build/gen -pthread $S/device/grass_probe.cpp -o $D/grass_probe
nvcc -O2 -gencode arch=compute_90,code=sm_90 $S/device/floor.cu -o $D/floor
rm -rf $S/build
for l in libbpf.so.1 libelf.so.1 libnl-3.so.200 libnl-route-3.so.200 libibverbs.so.1 librdmacm.so.1 liblzo2.so.2 libsnappy.so.1 libzstd.so.1; do
  cp -L "$(ldconfig -p | awk -v l=$l '$1 == l {print $NF; exit}')" $D/lib/
done
git rev-parse --short=12 $REV > $D/revision
[ "$D" = .devimg ] && for state in rest panic f1; do
  [ -f $D/img-$state.ram.xz ] || node --import tsx gpu/device/capture-image.ts --state $state
done
rm -f $D/guest.ram.zst $D/guest.ram.xz $D/guest.map.json  # the single image of earlier runs
du -sh $D
