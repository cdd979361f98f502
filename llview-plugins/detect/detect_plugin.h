// The detectors plugin's entry points (plugins.h): the background detectors on every new
// metrics sample, published to the header's background area, and GRASS_OP_DETECT. Each detector
// is its own folder, listed in grass/detectors.h (detect.h evaluates them). Monitor code, included
// by the plugin list.
#ifndef GRASS_PLUGIN_DETECT_PLUGIN_H
#define GRASS_PLUGIN_DETECT_PLUGIN_H

GRASS_HD_CALL void grass_detect_plugin_tick(grass_monitor* mon, uint64_t) {
  if (!mon->detect) return;
  grass_fault f = {0, 0};
  grass_ps_ctx ps = {&mon->mem, &mon->paging, &mon->ps, &f};
  if (grass_detect_tick(&ps, mon->detect, &mon->metrics_state)) grass_detect_publish(mon->buffer, &mon->crc, mon->detect);
}

GRASS_HD_CALL void grass_op_detect(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) {
  if (!mon->detect) { o->status = GRASS_E_UNSUPPORTED; return; }
  if (q->args[0] == GRASS_DETECT_SET_MODES) grass_detect_set_modes(mon->detect, (uint32_t)q->args[1]);
  else if (q->args[0] != 0) { o->status = GRASS_E_MALFORMED; o->detail = q->args[0]; return; }
  grass_fault f = {GRASS_OK, 0};
  grass_ps_ctx ps = {&mon->mem, &mon->paging, &mon->ps, &f};
  grass_detect_inline(&ps, mon->detect, &mon->metrics_state);
  grass_copy(grass_slot_data(mon, i), mon->detect->results, sizeof mon->detect->results);
  o->inline_bytes = sizeof mon->detect->results;
}

#define GRASS_DETECT_OPS(Y) Y(GRASS_OP_DETECT, grass_op_detect)

#endif
