/* Test-only broken plugins; which one is chosen by -DBAD_<KIND>. */
#include <string.h>

#include "batpipe/plugin.h"

#if defined(BAD_NO_ENTRY)
BP_PLUGIN_EXPORT int bp_not_the_entry = 42;
#else

static const bp_param_spec params[] = {
#if defined(BAD_DEFAULT)
    {sizeof(bp_param_spec), "size", BP_PARAM_INT, "100", 0, 10, NULL, "a default outside its own range"},
#else
    {sizeof(bp_param_spec), "size", BP_PARAM_INT, "5", 0, 10, NULL, "a size"},
#endif
};
static const bp_descriptor desc = {sizeof(bp_descriptor), "broken", "0.0.1", "a deliberately broken plugin", NULL,
                                   params, 1};
static const bp_descriptor *const descs[] = {&desc};
static bp_status create(const bp_host *h, uint32_t i, const bp_params *p, void **inst, bp_error *err) {
    (void)h, (void)i, (void)p, (void)inst;
    return bp_error_set(err, BP_ERR_UNSUPPORTED, "not creatable");
}
static const bp_factory factory = {sizeof(bp_factory), 1, descs, create};
static const bp_factory *get_factory(const char *id) {
    return strcmp(id, BP_KIND_METRIC_ID) == 0 ? &factory : NULL;
}

#if defined(BAD_MAJOR)
#define MAJOR (BP_ABI_MAJOR + 1)
#define MINOR 0
#elif defined(BAD_MINOR)
#define MAJOR BP_ABI_MAJOR
#define MINOR (BP_ABI_MINOR + 1)
#else
#define MAJOR BP_ABI_MAJOR
#define MINOR BP_ABI_MINOR
#endif

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    sizeof(bp_plugin_entry), MAJOR, MINOR, "broken", "0.0.1", "MIT", NULL, NULL, NULL, get_factory,
};
#if defined(BAD_EXPORTS)
BP_PLUGIN_EXPORT int bp_leaked_helper(int x) { return x + 1; }
#endif
#endif
