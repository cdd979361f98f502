// The process-list plugin's entry points (plugins.h): GRASS_OP_PROCESS_COUNT and
// GRASS_OP_PROCESS_LIST over the walk of process_list.h. Monitor code, included by the plugin list.
#ifndef GRASS_PLUGIN_PROCESS_LIST_PLUGIN_H
#define GRASS_PLUGIN_PROCESS_LIST_PLUGIN_H

GRASS_HD_CALL void grass_op_process(grass_monitor* mon, uint32_t i, const grass_request* q, bool list, grass_outcome* o) {
  grass_fault f = {0, 0};
  grass_ps_ctx c = {&mon->mem, &mon->paging, &mon->ps, &f};
  grass_result_arena* arena = &mon->arenas[i];
  uint64_t count = 0;
  uint32_t flags = (uint32_t)q->args[0];
  if (!list) {
    if (!grass_ps_walk(&c, flags, 0, 0, &count)) { grass_fault_outcome(o, &f); return; }
    grass_copy(grass_slot_data(mon, i), &count, 8);
    o->inline_bytes = 8;
    return;
  }
  uint64_t capacity = arena->capacity / sizeof(grass_task_record);
  arena->id = 0;  // the arena is being overwritten
  if (!grass_ps_walk(&c, flags, (grass_task_record*)arena->data, capacity, &count)) { grass_fault_outcome(o, &f); return; }
  arena->id = grass_result_id(mon, i);
  arena->bytes = count * sizeof(grass_task_record);
  o->arena = arena;
}

GRASS_HD_CALL void grass_op_process_count(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) { grass_op_process(mon, i, q, false, o); }
GRASS_HD_CALL void grass_op_process_list(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) { grass_op_process(mon, i, q, true, o); }

#define GRASS_PROCESS_LIST_OPS(Y)                   \
  Y(GRASS_OP_PROCESS_COUNT, grass_op_process_count) \
  Y(GRASS_OP_PROCESS_LIST, grass_op_process_list)

#endif
