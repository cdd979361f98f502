// The agent's detectors: the one list. A detector is a folder llview-plugins/detect/<name>/ whose
// header defines grass_detect_<symbol>(ps, st, metrics) and its figures; registering it here gives
// it its kind (its record's place in GRASS_OP_DETECT replies and the background area: kind - 1, its
// bit in GRASS_DETECT_SET_MODES: kind - 1), GRASS_DETECTORS, the monitor's call and the remote's
// name (src/rdma/protocol/wire.generated.ts). Kinds are wire values: never renumber one. The
// recipe, and the limits protocol.h checks: llview-plugins/README.md, "How to add a detector".
//   X(NAME, symbol, kind, "remote-name"), in evaluation order (a detector may use the records of
//   those before it: the hang explains busy CPUs, so it runs before cpu-high-load).
#ifndef GRASS_DETECTORS_H
#define GRASS_DETECTORS_H

#define GRASS_DETECTOR_LIST(X)                          \
  X(HANG, hang, 3, "hang")                              \
  X(CPU_HIGH_LOAD, cpu_high_load, 1, "cpu-high-load")   \
  X(MEMORY_LEAK, memory_leak, 2, "memory-leak")

#define GRASS_DETECTOR_KIND_(NAME, symbol, kind, name) GRASS_DETECT_##NAME = kind,
enum grass_detector_kind { GRASS_DETECTOR_LIST(GRASS_DETECTOR_KIND_) };
#define GRASS_DETECTOR_COUNT_(NAME, symbol, kind, name) +1u
#define GRASS_DETECTORS (0u GRASS_DETECTOR_LIST(GRASS_DETECTOR_COUNT_))

#endif
