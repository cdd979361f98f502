#!/bin/bash
# The cuda backend's device run (issue 10): run from the repository root on a `device` machine,
# with .devimg carried (gpu/device/prepare.sh makes it here: the agents and clients built here,
# the libraries the machine may lack, a testbed guest's RAM image captured at rest).
# Writes $OUT/gpu-results.json and logs. Steps: nvcc compiles the monitor there (cuda-check);
# the monitor's selftest on the GPU; the cpu and cuda agents on the same image answer the same
# requests (compared byte for byte); 100 000 heartbeats, process list and reads through each;
# the stand-in's floor (bare cudaMemcpyAsync round trip) and cudaMemcpy bandwidth.
set -u
OUT=${OUT:-/tmp/grass-device-out}
mkdir -p "$OUT"
IMG=.devimg
W=/tmp/grass-devimg
mkdir -p $W /tmp/grass-lib
LOG=$OUT/run.log
exec > >(tee -a "$LOG") 2>&1
# Carried libraries only where the machine lacks them.
for lib in $IMG/lib/*; do ldconfig -p | grep -q "$(basename $lib) " || ln -sf "$PWD/$lib" /tmp/grass-lib/; done
export LD_LIBRARY_PATH=/tmp/grass-lib
nvidia-smi -L; nvcc --version | tail -1; echo "node: $(command -v node || echo none)"
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

t0=$(date +%s)
make -C gpu cuda-check > $OUT/build.log 2>&1 && CHECK=ok || CHECK=failed
make -C gpu cuda-selftest >> $OUT/build.log 2>&1 && SELFTEST=ok || SELFTEST=failed
tail -3 $OUT/build.log
echo "build $CHECK selftest $SELFTEST ($(( $(date +%s) - t0 )) s)"

# The RAM image in /dev/shm (tmpfs, as the testbed's guests keep theirs), its map pointed at it.
RAM=/dev/shm/grass-devimg-guest.ram
if command -v zstd >/dev/null; then zstd -q -d -f $IMG/guest.ram.zst -o $RAM
else python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$IMG/guest.ram.xz'), open('$RAM','wb'), 1<<24)"; fi
python3 -c "import json; m=json.load(open('$IMG/guest.map.json')); m['ramFile']='$RAM'; json.dump(m, open('$W/guest.map.json','w'))"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $W/key

run_backend() {  # $1: cpu|cuda; $2: the agent binary
  local shm=/dev/shm/grass-device-$1
  $2 --memory qemu-ram:$RAM --memory-map $W/guest.map.json --listen shm:$shm --key-file $W/key --backend $1 \
    > $OUT/ready-$1.json 2> $OUT/agent-$1.err &
  local pid=$!
  for i in $(seq 1 300); do [ -s $OUT/ready-$1.json ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  cat $OUT/ready-$1.json $OUT/agent-$1.err
  if [ -s $OUT/ready-$1.json ]; then
    local pob=$(python3 -c "import json;print(json.load(open('$OUT/ready-$1.json'))['pageOffsetBase'])")
    timeout 120 $IMG/grass_probe $shm $W/key dump $W/$1.dump $pob; echo "dump $1 rc=$?"
    timeout 300 $IMG/grass_probe $shm $W/key bench 100000 > $OUT/bench-$1.json; echo "bench $1 rc=$?"; cat $OUT/bench-$1.json
  fi
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
}
run_backend cpu $IMG/grass-agent
run_backend cuda $IMG/grass-agent-cuda
if [ -s $W/cpu.dump ] && cmp $W/cpu.dump $W/cuda.dump; then SAME=true; else SAME=false; fi
grep -a "^[A-Za-z0-9-]* lost=" $W/cuda.dump > $OUT/replies-cuda.txt 2>/dev/null
grep -a "^[A-Za-z0-9-]* lost=" $W/cpu.dump > $OUT/replies-cpu.txt 2>/dev/null
timeout 120 $IMG/floor > $OUT/floor.json; echo "floor rc=$?"; cat $OUT/floor.json

python3 - "$OUT" "$CARD" "$CHECK" "$SELFTEST" "$SAME" <<'PY'
import json, sys, os
out, card, check, selftest, same = sys.argv[1:6]
def load(name):
    try: return json.load(open(os.path.join(out, name)))
    except Exception as e: return {"error": str(e)}
def lines(name):
    try: return open(os.path.join(out, name)).read().splitlines()
    except Exception: return []
r = {"card": card, "cudaCheck": check, "cudaSelftest": selftest,
     "sameReplies": same == "true", "replies": lines("replies-cuda.txt"), "repliesCpu": lines("replies-cpu.txt"),
     "readyCuda": load("ready-cuda.json"), "cuda": load("bench-cuda.json"), "cpu": load("bench-cpu.json"), "floor": load("floor.json")}
json.dump(r, open(os.path.join(out, "gpu-results.json"), "w"), indent=1)
print(json.dumps(r)[:3000])
PY
rm -f $RAM
