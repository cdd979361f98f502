#!/bin/bash
# The cuda backend's device run (issue 10): run from the repository root on a `device` machine,
# with .devimg carried (gpu/device/prepare.sh makes it here: the agents and clients built here,
# the libraries the machine may lack, testbed guests' RAM images at rest and in fault states).
# Writes $OUT/gpu-results.json and logs. Steps: nvcc compiles the monitor there (cuda-check);
# the monitor's selftest on the GPU; on every image the cpu and cuda agents answer the same
# requests (compared byte for byte); on the image at rest, 100 000 heartbeats, process lists and
# reads through each, and the cuda agent's GPU-side reaction times (its watcher warp's record);
# the stand-in's floor (bare cudaMemcpyAsync round trip) and cudaMemcpy bandwidth.
set -u
OUT=${OUT:-/tmp/grass-device-out}
mkdir -p "$OUT"
IMG=.devimg
# The agents, clients and sources may come from another folder built by prepare.sh
# (GRASS_DEVIMG_OUT), so one call measures two revisions on the same card and the same images.
BIN=${GRASS_DEVICE_BIN:-$IMG}
W=/tmp/grass-devimg
R=$W/results  # every intermediate file; $OUT gets the JSON, the logs and one archive of these
rm -rf $R; mkdir -p $R /tmp/grass-lib
LOG=$OUT/run.log
exec > >(tee -a "$LOG") 2>&1
# Carried libraries only where the machine lacks them.
for lib in $BIN/lib/*; do ldconfig -p | grep -q "$(basename $lib) " || ln -sf "$PWD/$lib" /tmp/grass-lib/; done
export LD_LIBRARY_PATH=/tmp/grass-lib
nvidia-smi -L; nvcc --version | tail -1; echo "node: $(command -v node || echo none)"
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

BACKENDS=${GRASS_DEVICE_BACKENDS:-cpu cuda}  # "cpu" alone checks the images on a machine without a GPU
CHECK=skipped SELFTEST=skipped MEMCHECK=skipped RACECHECK=skipped
case " $BACKENDS " in *" cuda "*)
  t0=$(date +%s)
  # The sources the carried agents were built from (prepare.sh), not the travelling working tree.
  make -C $BIN/src/gpu cuda-check > $OUT/build.log 2>&1 && CHECK=ok || CHECK=failed
  # Bounded: a monitor that never answers must not take the call's whole time.
  timeout -k 5 120 make -C $BIN/src/gpu cuda-selftest >> $OUT/build.log 2>&1 && SELFTEST=ok || SELFTEST=failed
  grep -a '^{"heartbeatPathNs"' $OUT/build.log | tail -1 > $R/heartbeat-path.json
  # The selftest under compute-sanitizer's memcheck and racecheck, where the machine has it.
  SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
  if [ "${GRASS_DEVICE_SANITIZE:-1}" = 1 ] && [ -n "$SAN" ] && [ -x $BIN/src/gpu/build/cuda_selftest ]; then
    timeout -k 5 150 $SAN --tool memcheck --error-exitcode 9 $BIN/src/gpu/build/cuda_selftest > $R/memcheck.txt 2>&1 && MEMCHECK=clean || MEMCHECK=failed
    timeout -k 5 150 $SAN --tool racecheck --error-exitcode 9 $BIN/src/gpu/build/cuda_selftest > $R/racecheck.txt 2>&1 && RACECHECK=clean || RACECHECK=failed
    tail -2 $R/memcheck.txt $R/racecheck.txt
  fi
  tail -3 $OUT/build.log
  echo "build $CHECK selftest $SELFTEST memcheck $MEMCHECK racecheck $RACECHECK ($(( $(date +%s) - t0 )) s)";;
esac
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $W/key

# One RAM image (.devimg/img-NAME.ram.xz) in /dev/shm (tmpfs, as the testbed's guests keep theirs),
# its map pointed at it.
unpack() {  # $1: image name
  RAM=/dev/shm/grass-devimg-$1.ram
  if command -v xz >/dev/null; then xz -d -c -T4 $IMG/img-$1.ram.xz > $RAM
  else python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$IMG/img-$1.ram.xz'), open('$RAM','wb'), 1<<24)"; fi
  python3 -c "import json; m=json.load(open('$IMG/img-$1.map.json')); m['ramFile']='$RAM'; json.dump(m, open('$W/$1.map.json','w'))"
}

# $1: cpu|cuda; $2: the agent binary; $3: image name; $4: "bench" to measure as well as dump.
run_backend() {
  local shm=/dev/shm/grass-device-$1 tag=$1-$3
  # After one agent of a backend did not answer, the other images skip it (bounded call time).
  if [ -e $R/gave-up-$1 ]; then echo "$tag: skipped ($1 agent did not answer earlier)"; return; fi
  GRASS_CUDA_REACTION_FILE=$R/reaction-$tag.json \
  $2 --memory qemu-ram:$RAM --memory-map $W/$3.map.json --listen shm:$shm --key-file $W/key --backend $1 \
    > $R/ready-$tag.json 2> $R/agent-$tag.err &
  local pid=$!
  for i in $(seq 1 300); do [ -s $R/ready-$tag.json ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  head -c 300 $R/ready-$tag.json; echo; cat $R/agent-$tag.err
  if [ -s $R/ready-$tag.json ]; then
    local pob=$(python3 -c "import json;print(json.load(open('$R/ready-$tag.json'))['pageOffsetBase'])")
    timeout 90 $BIN/grass_probe $shm $W/key dump $W/$tag.dump $pob; local rc=$?; echo "dump $tag rc=$rc"
    [ $rc = 0 ] || { touch $R/gave-up-$1; set -- "$1" "$2" "$3" skipped; }  # not answering: not measured
    grep -a "^[A-Za-z0-9-]* lost=" $W/$tag.dump > $R/replies-$tag.txt
    if [ "${4:-}" = bench ]; then
      timeout 300 $BIN/grass_probe $shm $W/key bench 100000 > $R/bench-$1.json; echo "bench $1 rc=$?"; cat $R/bench-$1.json
      # The whole RAM by GRASS_OP_BULK_READ (what save-vmcore streams), kept to compare cpu with cuda.
      timeout 120 $BIN/grass_probe $shm $W/key bulk $W/bulk-$1.bin $(stat -c %s $RAM) > $R/bulk-$1.json; echo "bulk $1 rc=$?"; cat $R/bulk-$1.json
    fi
  fi
  kill $pid 2>/dev/null  # SIGTERM: the cuda agent writes its reaction record on stop
  # A monitor kernel that hangs keeps its process from leaving: give it 10 s, then SIGKILL.
  for i in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
}

IMAGES=${GRASS_DEVICE_IMAGES:-$(ls $IMG/img-*.ram.xz | sed 's|.*/img-||; s|\.ram\.xz$||' | sort)}  # e.g. "rest": one image only
echo "images: $IMAGES"
for img in $IMAGES; do
  unpack $img
  mode=; [ $img = rest ] && mode=bench  # the measurements run on the image at rest
  for b in $BACKENDS; do
    bin=$BIN/grass-agent; [ $b = cuda ] && bin=$BIN/grass-agent-cuda
    run_backend $b $bin $img $mode
  done
  if [ -s $W/cpu-$img.dump ] && cmp $W/cpu-$img.dump $W/cuda-$img.dump; then echo "$img: same" > $R/same-$img
  else echo "$img: DIFFERENT" > $R/same-$img; fi
  cat $R/same-$img
  if [ "$mode" = bench ]; then
    if [ -s $W/bulk-cpu.bin ] && cmp $W/bulk-cpu.bin $W/bulk-cuda.bin && cmp $W/bulk-cpu.bin $RAM; then echo same > $R/bulk-same
    else echo DIFFERENT > $R/bulk-same; fi
    echo "bulk of $img: cpu vs cuda vs the RAM file: $(cat $R/bulk-same)"; rm -f $W/bulk-*.bin
  fi
  rm -f $RAM
done
case " $BACKENDS " in *" cuda "*) timeout 120 $BIN/floor > $R/floor.json; echo "floor rc=$?"; cat $R/floor.json;; esac

python3 - "$R" "$CARD" "$CHECK" "$SELFTEST" "$BIN" "$MEMCHECK" "$RACECHECK" $IMAGES <<'PY'
import json, sys, os, subprocess
out, card, check, selftest, img, memcheck, racecheck = sys.argv[1:8]
images = sys.argv[8:]
def load(name):
    try: return json.load(open(os.path.join(out, name)))
    except Exception as e: return {"error": str(e)}
def lines(name):
    try: return open(os.path.join(out, name)).read().splitlines()
    except Exception: return []
def first_line(cmd):
    try: return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception: return None
checked = []
for name in images:
    cuda, cpu = lines(f"replies-cuda-{name}.txt"), lines(f"replies-cpu-{name}.txt")
    ready = load(f"ready-cpu-{name}.json")
    checked.append({"image": name, "release": ready.get("release"), "sameReplies": bool(cpu) and lines(f"same-{name}") == [f"{name}: same"],
                    "requests": len(cpu), "replies": cuda, "repliesCpu": cpu})
r = {"card": card,
     "driver": first_line("nvidia-smi --query-gpu=driver_version --format=csv,noheader"),
     "cudaRelease": first_line("nvcc --version | tail -1"),
     "revision": open(os.path.join(img, "revision")).read().strip() if os.path.exists(os.path.join(img, "revision")) else None,
     "cudaCheck": check, "cudaSelftest": selftest, "sanitizer": {"memcheck": memcheck, "racecheck": racecheck},
     "heartbeatPath": load("heartbeat-path.json").get("heartbeatPathNs"),
     "sameReplies": bool(checked) and all(c["sameReplies"] for c in checked), "images": checked,
     "readyCuda": load("ready-cuda-rest.json"), "cuda": load("bench-cuda.json"), "cpu": load("bench-cpu.json"),
     "floor": load("floor.json"), "reaction": load("reaction-cuda-rest.json"),
     "bulk": {"cuda": load("bulk-cuda.json").get("bulk"), "cpu": load("bulk-cpu.json").get("bulk"),
              "sameAsCpuAndRam": lines("bulk-same") == ["same"]}}
json.dump(r, open(os.path.join(out, "gpu-results.json"), "w"), indent=1)
print(json.dumps({k: r[k] for k in ("card", "sameReplies", "cuda", "floor", "reaction")})[:4000])
PY
cp $R/gpu-results.json $OUT/
tar -C $R -czf $OUT/intermediates.tar.gz .
