/* bp-metrics: the plugin entry. One library, three metric components (map,
 * doa, distance) behind one factory of kind "batpipe.metric/1". */
#include <string.h>

#include "metrics.h"

static const bp_descriptor *const descriptors[] = {&mx_map_descriptor, &mx_doa_descriptor, &mx_distance_descriptor};

static bp_status metrics_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                                bp_error *err) {
    (void)host;
    bp_metric *m = NULL;
    bp_status st;
    switch (index) {
    case 0: st = mx_map_create(params, &m, err); break;
    case 1: st = mx_doa_create(params, &m, err); break;
    case 2: st = mx_distance_create(params, &m, err); break;
    default: return bp_error_set(err, BP_ERR_INVALID, "metrics: no component %u", index);
    }
    if (st == BP_OK) *instance = m;
    return st;
}

static const bp_factory metric_factory = {sizeof(bp_factory), sizeof descriptors / sizeof descriptors[0], descriptors,
                                          metrics_create};

static const bp_factory *get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_METRIC_ID) == 0 ? &metric_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "metrics", "1.0.0", "MIT", NULL, NULL, NULL, get_factory,
};
