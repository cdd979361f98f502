// The metrics plugin's entry points (plugins.h): a sample of the kernel's counters on every
// pass (kept when a second has gone by, metrics.h) and GRASS_OP_METRICS. Monitor code, included by
// the plugin list.
#ifndef GRASS_PLUGIN_METRICS_PLUGIN_H
#define GRASS_PLUGIN_METRICS_PLUGIN_H

GRASS_HD_CALL void grass_metrics_plugin_tick(grass_monitor* mon, uint64_t now_ns) {
  grass_fault f = {0, 0};
  grass_metrics_ctx c = {&mon->mem, &mon->paging, &mon->metrics, &f};
  grass_metrics_tick(&c, &mon->metrics_state, now_ns);
}

GRASS_HD_CALL void grass_op_metrics(grass_monitor* mon, uint32_t i, const grass_request*, grass_outcome* o) {
  grass_result_arena* arena = &mon->arenas[i];
  if (!mon->metrics.parts) { o->status = GRASS_E_UNSUPPORTED; return; }
  arena->id = 0;  // the arena is being overwritten
  uint64_t bytes = grass_metrics_reply(&mon->metrics_state, mon->metrics.cpu_count, arena->data, arena->capacity);
  if (!bytes) { o->status = GRASS_E_UNSUPPORTED; o->detail = mon->metrics.cpu_count; return; }
  arena->id = grass_result_id(mon, i);
  arena->bytes = bytes;
  o->arena = arena;
}

#define GRASS_METRICS_OPS(Y) Y(GRASS_OP_METRICS, grass_op_metrics)

#endif
