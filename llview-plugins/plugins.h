// The agent's plugins: the one list. A plugin is a folder of llview-plugins/ with up to three
// entry points, registered here in the order the monitor runs them:
//   resolve: host, before the monitor starts: void grass::NAME(grass::PluginSetup&) reads what the
//     plugin needs from the target's BTF and symbols into the monitor (gpu/src/server/buffer_setup.h);
//   tick: monitor code, once per monitor pass after the slots: void NAME(grass_monitor*, uint64_t now_ns);
//   OPS(Y): the plugin's opcodes, Y(opcode, handler(mon, slot, request, outcome)); the monitor's
//     dispatch (gpu/src/server/monitor.h) is generated from them.
// grass::resolve_nothing and grass_plugin_no_tick stand for an entry point a plugin has not.
//   X(Y, name, resolve, tick, OPS); Y is passed through to the rows for the lists nested in them.
// Included by monitor.h after grass_monitor; the detectors are a list of their own (grass/detectors.h).
// The recipe: llview-plugins/README.md, "How to add an agent plugin".
#ifndef GRASS_PLUGINS_H
#define GRASS_PLUGINS_H

#include "process-list/process_list_plugin.h"
#include "metrics/metrics_plugin.h"
#include "detect/detect_plugin.h"
#include "bulk/bulk.h"

// The detectors read the metrics plugin's samples of this pass: metrics before detect.
#define GRASS_PLUGIN_LIST(X, Y)                                                                            \
  X(Y, process_list, resolve_process_list_plugin, grass_plugin_no_tick, GRASS_PROCESS_LIST_OPS)           \
  X(Y, metrics, resolve_metrics_plugin, grass_metrics_plugin_tick, GRASS_METRICS_OPS)                      \
  X(Y, detect, resolve_detect_plugin, grass_detect_plugin_tick, GRASS_DETECT_OPS)                          \
  X(Y, bulk, resolve_nothing, grass_plugin_no_tick, GRASS_BULK_OPS)

namespace grass {
struct PluginSetup;
inline void resolve_nothing(PluginSetup&) {}
#define GRASS_PLUGIN_RESOLVE_DECLARE_(Y, name, resolve, tick, ops) void resolve(PluginSetup&);
GRASS_PLUGIN_LIST(GRASS_PLUGIN_RESOLVE_DECLARE_, )
#undef GRASS_PLUGIN_RESOLVE_DECLARE_
}  // namespace grass

GRASS_HD void grass_plugin_no_tick(grass_monitor*, uint64_t) {}

// Every plugin's opcodes as one list of Y(opcode, handler).
#define GRASS_PLUGIN_OPS_(Y, name, resolve, tick, ops) ops(Y)
#define GRASS_PLUGIN_OPCODE_LIST(Y) GRASS_PLUGIN_LIST(GRASS_PLUGIN_OPS_, Y)

// One monitor pass's plugin work, in list order.
GRASS_HD_CALL void grass_plugins_tick(grass_monitor* mon, uint64_t now_ns) {
#define GRASS_PLUGIN_TICK_(Y, name, resolve, tick, ops) tick(mon, now_ns);
  GRASS_PLUGIN_LIST(GRASS_PLUGIN_TICK_, )
#undef GRASS_PLUGIN_TICK_
}

#endif
