// Host side of the metrics plugin: names what it reads and resolves it for one target.
#ifndef GRASS_PLUGIN_METRICS_LAYOUT_H
#define GRASS_PLUGIN_METRICS_LAYOUT_H

#include <string>

#include "metrics.h"
#include "../../gpu/src/discovery/btf_types.h"
#include "../../gpu/src/discovery/discovery.h"

namespace grass {

// Never throws: a target the plugin cannot serve gives resolved = 0 and *why names the struct,
// field, enumerator or symbol that is missing (the other plugins keep running).
grass_metrics_layout resolve_metrics_layout(const BtfTypes& btf, const Target& target, std::string* why);

}  // namespace grass

#endif
