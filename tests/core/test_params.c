/* Parameter validation against declared specs: types, ranges, choices,
 * unknown keys (with suggestions), required keys, defaults, paths. */
#include <string.h>

#include "batpipe/registry.h"
#include "bp_test.h"
#include "paramset.h"

static const bp_param_spec specs[] = {
    {sizeof(bp_param_spec), "frames", BP_PARAM_INT, "1024", 0, 4096, NULL, "frames"},
    {sizeof(bp_param_spec), "gain", BP_PARAM_FLOAT, "0.5", 0.0, 2.0, NULL, "gain"},
    {sizeof(bp_param_spec), "window", BP_PARAM_STRING, "\"hann\"", BP_NO_RANGE, "hann|povey", "window"},
    {sizeof(bp_param_spec), "center", BP_PARAM_BOOL, "true", BP_NO_RANGE, NULL, "center"},
    {sizeof(bp_param_spec), "weights", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL, "weights"},
    {sizeof(bp_param_spec), "bn_mean", BP_PARAM_FLOAT_LIST, "[-20.0, -21]", -1000, 1000, NULL, "means"},
    {sizeof(bp_param_spec), "names", BP_PARAM_STRING_LIST, "[\"a\"]", BP_NO_RANGE, NULL, "names"},
};
static const bp_descriptor desc = {sizeof(bp_descriptor), "demo", "1.0", "d", NULL, specs, 7};

static const bp_param_spec req_specs[] = {
    {sizeof(bp_param_spec), "model", BP_PARAM_PATH, NULL, BP_NO_RANGE, NULL, "the model file"},
};
static const bp_descriptor req_desc = {sizeof(bp_descriptor), "req", "1.0", "d", NULL, req_specs, 1};

static bp_status build(const bp_descriptor *d, const char *const *kv, uint32_t n, bp_paramset **ps, bp_error *err) {
    return bp_paramset_from_strings(d, kv, n, ps, err);
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps = NULL;
    CHECK_OK(build(&desc, NULL, 0, &ps, &err), &err);
    if (ps) {
        const bp_params *p = bp_paramset_params(ps);
        CHECK(p->count == 7);
        CHECK(bp_params_int(p, "frames") == 1024);
        CHECK(bp_params_float(p, "gain") == 0.5);
        CHECK(strcmp(bp_params_string(p, "window"), "hann") == 0);
        CHECK(bp_params_bool(p, "center") == 1);
        const bp_param_value *v = bp_params_find(p, "bn_mean");
        CHECK(v && v->count == 2 && v->list[0] == -20.0 && v->list[1] == -21.0);
        CHECK(bp_params_find(p, "frames")->from_config == 0);
        bp_paramset_free(ps);
    }
    const char *ok[] = {"frames=0", "gain=2", "window=povey", "center=false", "weights=rel/w.safetensors",
                        "bn_mean=[1, 2.5, 3]", "names=\"single\""};
    CHECK_OK(build(&desc, ok, 7, &ps, &err), &err);
    if (ps) {
        const bp_params *p = bp_paramset_params(ps);
        CHECK(bp_params_int(p, "frames") == 0);
        CHECK(bp_params_float(p, "gain") == 2.0);
        CHECK(strcmp(bp_params_string(p, "window"), "povey") == 0);
        CHECK(bp_params_bool(p, "center") == 0);
        /* a relative path from an override resolves against the current directory */
        const char *w = bp_params_string(p, "weights");
        CHECKF(w[0] == '/' && strlen(w) > 18 && strcmp(w + strlen(w) - 18, "/rel/w.safetensors") == 0, "weights = %s", w);
        CHECK(bp_params_find(p, "bn_mean")->count == 3);
        CHECK(bp_params_find(p, "names")->count == 1 && strcmp(bp_params_find(p, "names")->strs[0], "single") == 0);
        CHECK(bp_params_find(p, "frames")->from_config == 1);
        CHECKF(strstr(bp_params_find(p, "frames")->origin, "-o frames=0") != NULL, "%s", bp_params_find(p, "frames")->origin);
        bp_paramset_free(ps);
    }
    struct {
        const char *kv;
        const char *expect;
    } bad[] = {
        {"frame=5", "did you mean 'frames'"},
        {"zzzz=1", "unknown parameter 'zzzz'"},
        {"frames=5000", "outside the range [0, 4096]"},
        {"frames=1.5", "must be an integer, got a float"},
        {"gain=\"x\"", "must be a number, got a string"},
        {"gain=-1", "outside the range"},
        {"window=hamming", "not one of: hann|povey"},
        {"center=1", "must be a boolean (true or false)"},
        {"bn_mean=[1, \"a\"]", "bn_mean[1] is a string"},
        {"bn_mean=[5000.0]", "bn_mean[0] = 5000 is outside"},
        {"names=[1]", "names[0] is an integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bp_status st = build(&desc, &bad[i].kv, 1, &ps, &err);
        CHECKF(st == BP_ERR_INVALID && ps == NULL, "%s accepted", bad[i].kv);
        CHECKF(strstr(err.msg, bad[i].expect) != NULL, "%s: message '%s' lacks '%s'", bad[i].kv, err.msg, bad[i].expect);
        CHECKF(strstr(err.msg, "-o ") != NULL || strstr(err.msg, "unknown") != NULL, "%s: no origin in '%s'",
               bad[i].kv, err.msg);
    }
    CHECK(strstr(err.msg, "valid:") == NULL || 1);
    /* the unknown-key message lists the valid names */
    const char *unk = "bogus=1";
    build(&desc, &unk, 1, &ps, &err);
    CHECKF(strstr(err.msg, "valid: frames, gain, window, center, weights, bn_mean, names") != NULL, "msg %s", err.msg);
    /* required parameter */
    CHECK(build(&req_desc, NULL, 0, &ps, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "missing required parameter 'model'") && strstr(err.msg, "the model file"), "msg %s", err.msg);
    /* descriptor checks: a default outside its range is the plugin's bug */
    bp_param_spec broken = specs[0];
    broken.default_value = "99999";
    bp_descriptor bd = {sizeof(bp_descriptor), "b", "1", "d", NULL, &broken, 1};
    CHECK(bp_desc_check_params(&bd, "test", &err) == BP_ERR_ABI);
    CHECKF(strstr(err.msg, "bad default"), "msg %s", err.msg);
    bp_param_spec badname = specs[0];
    badname.name = "Frames";
    bp_descriptor bn = {sizeof(bp_descriptor), "b", "1", "d", NULL, &badname, 1};
    CHECK(bp_desc_check_params(&bn, "test", &err) == BP_ERR_ABI);
    CHECK(bp_desc_check_params(&desc, "test", &err) == BP_OK);
    CHECK(bp_desc_check_params(&req_desc, "test", &err) == BP_OK);
    return TEST_RESULT();
}
