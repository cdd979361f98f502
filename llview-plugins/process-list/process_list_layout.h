// Host side of the process-list plugin: names what it reads and resolves it for one target.
#ifndef GRASS_PLUGIN_PROCESS_LIST_LAYOUT_H
#define GRASS_PLUGIN_PROCESS_LIST_LAYOUT_H

#include "process_list.h"
#include "discovery/btf_types.h"
#include "discovery/discovery.h"

namespace grass {

// Throws naming the struct, field or symbol the target lacks.
grass_ps_layout resolve_process_list_layout(const BtfTypes& btf, const Target& target);

}  // namespace grass

#endif
