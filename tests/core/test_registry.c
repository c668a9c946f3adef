/* The registry: loading, ABI checks with clear messages, problems recorded
 * per file, component lookup, creation, and the plugin validator.
 * argv[1] = directory of good test plugins, argv[2] = directory of broken ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/frontend.h"
#include "batpipe/registry.h"
#include "bp_test.h"

static char *path_in(const char *dir, const char *file) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, file);
    return buf[k];
}

typedef struct counts {
    int ok, fail;
    char last_fail[1024];
} counts;

static void count_report(void *user, int ok, const char *line) {
    counts *c = user;
    if (ok) c->ok++;
    else {
        c->fail++;
        snprintf(c->last_fail, sizeof c->last_fail, "%s", line);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_registry GOOD_DIR BAD_DIR\n");
        return 2;
    }
    const char *good = argv[1], *bad = argv[2];
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_dir(reg, good, &err), &err);
    const bp_component_info *tf = bp_registry_find(reg, BP_KIND_FRONTEND, "tfeat");
    const bp_component_info *tp = bp_registry_find(reg, BP_KIND_ENCODER, "tpool");
    CHECK(tf && tp);
    CHECK(bp_registry_find(reg, BP_KIND_ENCODER, "tfeat") == NULL); /* kind matters */
    char choices[256];
    CHECK(strcmp(bp_registry_choices(reg, BP_KIND_FRONTEND, choices, sizeof choices), "tfeat") == 0);
    CHECK(strcmp(bp_registry_choices(reg, BP_KIND_LLM, choices, sizeof choices), "(none installed)") == 0);
    /* loading the same file twice (another path spelling) is a no-op */
    uint32_t before = bp_registry_count(reg);
    char twice[1100];
    snprintf(twice, sizeof twice, "%s/./bp-test-good.so", good);
    CHECK_OK(bp_registry_load_file(reg, twice, &err), &err);
    CHECK(bp_registry_count(reg) == before);

    /* create + negotiate directly */
    if (tf) {
        const char *kv[] = {"channels_out=3", "rate=8000"};
        bp_paramset *ps;
        CHECK_OK(bp_paramset_from_strings(tf->desc, kv, 2, &ps, &err), &err);
        void *inst = NULL;
        CHECK_OK(bp_registry_create(reg, tf, bp_paramset_params(ps), NULL, &inst, &err), &err);
        if (inst) {
            bp_frontend *fe = inst;
            bp_spec want = bp_spec_any();
            CHECK_OK(fe->input_spec(fe, &want, &err), &err);
            CHECK(want.rate == 8000 && want.ndim == 2 && want.shape[0] == 2);
            int64_t s[2] = {2, 1600};
            bp_spec in = bp_spec_f32(2, s, 8000, "channels,samples");
            bp_port ports[BP_MAX_OUTPUTS];
            uint32_t n = BP_MAX_OUTPUTS;
            CHECK_OK(fe->prepare(fe, &in, ports, &n, &err), &err);
            CHECK(n == 2 && strcmp(ports[0].name, "features") == 0 && ports[0].spec.shape[0] == 3 &&
                  ports[0].spec.shape[1] == 10 && ports[1].optional);
            fe->destroy(fe);
        }
        bp_paramset_free(ps);
        /* invalid params are rejected before create, naming the key */
        const char *badkv[] = {"channels_out=12"};
        CHECK(bp_paramset_from_strings(tf->desc, badkv, 1, &ps, &err) == BP_ERR_INVALID);
        CHECKF(strstr(err.msg, "channels_out = 12 is outside the range [1, 8]"), "msg %s", err.msg);
        /* a create-time error from the plugin comes back with its message */
        const char *ckv[] = {"frame=100", "bins=7"};
        CHECK_OK(bp_paramset_from_strings(tf->desc, ckv, 2, &ps, &err), &err);
        CHECK(bp_registry_create(reg, tf, bp_paramset_params(ps), NULL, &inst, &err) == BP_ERR_INVALID);
        CHECKF(strstr(err.msg, "frontend tfeat: frame (100) must be a multiple of bins (7)"), "msg %s", err.msg);
        bp_paramset_free(ps);
    }

    /* broken plugins: each refused with a message naming the file and the problem */
    CHECK(bp_registry_load_file(reg, path_in(bad, "bp-bad-major.so"), &err) == BP_ERR_ABI);
    char host_abi[16], newer_abi[16];
    snprintf(host_abi, sizeof host_abi, "ABI %d.%d", BP_ABI_MAJOR, BP_ABI_MINOR);
    snprintf(newer_abi, sizeof newer_abi, "ABI %d.%d", BP_ABI_MAJOR, BP_ABI_MINOR + 1);
    CHECKF(strstr(err.msg, "bp-bad-major.so") && strstr(err.msg, "ABI 2.0") && strstr(err.msg, host_abi) &&
               strstr(err.msg, "major"),
           "msg %s", err.msg);
    CHECK(bp_registry_load_file(reg, path_in(bad, "bp-bad-minor.so"), &err) == BP_ERR_ABI);
    CHECKF(strstr(err.msg, "bp-bad-minor.so") && strstr(err.msg, newer_abi) && strstr(err.msg, host_abi) &&
               strstr(err.msg, "newer"),
           "msg %s", err.msg);
    CHECK(bp_registry_load_file(reg, path_in(bad, "bp-bad-no_entry.so"), &err) == BP_ERR_ABI);
    CHECKF(strstr(err.msg, "bp-bad-no_entry.so") && strstr(err.msg, "not a batpipe plugin"), "msg %s", err.msg);
    CHECK(bp_registry_load_file(reg, path_in(bad, "bp-bad-default.so"), &err) == BP_ERR_ABI);
    CHECKF(strstr(err.msg, "bp-bad-default.so") && strstr(err.msg, "bad default") &&
               strstr(err.msg, "outside the range [0, 10]"),
           "msg %s", err.msg);
    CHECK(bp_registry_load_file(reg, path_in(bad, "does-not-exist.so"), &err) == BP_ERR_NOT_FOUND);
    /* a file that is not a shared object at all */
    char junk[64];
    snprintf(junk, sizeof junk, "/tmp/bp_junk_%d.so", (int)getpid());
    FILE *f = fopen(junk, "w");
    fputs("not an ELF file\n", f);
    fclose(f);
    CHECK(bp_registry_load_file(reg, junk, &err) == BP_ERR_FORMAT);
    CHECKF(strstr(err.msg, junk) && strstr(err.msg, "cannot load"), "msg %s", err.msg);
    unlink(junk);
    CHECK(bp_registry_problem_count(reg) == 6);
    bp_registry_free(reg);

    /* scanning a directory records problems and keeps going */
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_dir(reg, bad, &err), &err);
    CHECK(bp_registry_problem_count(reg) == 4);
    CHECK(bp_registry_find(reg, BP_KIND_METRIC, "broken") != NULL); /* bp-bad-exports loads */
    bp_registry_free(reg);

    /* the validator */
    counts c = {0, 0, ""};
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    int32_t problems = bp_registry_validate_file(reg, path_in(good, "bp-test-good.so"), count_report, &c);
    CHECKF(problems == 0 && c.fail == 0, "good plugin: %d problems, last: %s", problems, c.last_fail);
    CHECK(c.ok > 10);
    bp_registry_free(reg);
    memset(&c, 0, sizeof c);
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    problems = bp_registry_validate_file(reg, path_in(bad, "bp-bad-exports.so"), count_report, &c);
    CHECKF(problems >= 1, "leaky plugin: %d problems", problems);
    bp_registry_free(reg);
    memset(&c, 0, sizeof c);
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    problems = bp_registry_validate_file(reg, path_in(bad, "bp-bad-major.so"), count_report, &c);
    CHECK(problems < 0);
    CHECKF(strstr(c.last_fail, "ABI 2.0"), "last %s", c.last_fail);
    bp_registry_free(reg);
    return TEST_RESULT();
}
