// Host side of the metrics plugin: names what it reads and resolves it for one target.
#ifndef GRASS_PLUGIN_METRICS_LAYOUT_H
#define GRASS_PLUGIN_METRICS_LAYOUT_H

#include <string>

#include "metrics.h"
#include "discovery/btf_types.h"
#include "discovery/discovery.h"

namespace grass {

// Never throws. Each part resolves on its own: *why names, per part that did not resolve, the
// struct, field, enumerator or symbol that is missing ("" when every part resolved). parts == 0
// (the core did not resolve) turns the plugin off; a missing optional part leaves only it out.
grass_metrics_layout resolve_metrics_layout(const BtfTypes& btf, const Target& target, std::string* why);

}  // namespace grass

#endif
