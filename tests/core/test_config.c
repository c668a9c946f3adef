/* Config files: includes relative to the including file, cycles, depth,
 * syntax errors mapped to file:line, overrides at any depth. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bp_test.h"
#include "config.h"

static char root[256];

static void write_file(const char *rel, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    if (system(cmd) != 0) abort();
    *slash = '/';
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

static char *pth(const char *rel) {
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static void test_includes(void) {
    /* top.cfg includes sub/a.cfg, which includes b.cfg from ITS directory (sub/). */
    write_file("top.cfg", "x = 1;\n@include \"sub/a.cfg\"\nz = \"top\";\n");
    write_file("sub/a.cfg", "# a comment\ny = 2;\n  @include \"b.cfg\"\n");
    write_file("sub/b.cfg", "w = { path = \"data.txt\"; };\n");
    bp_config *c;
    bp_error err = BP_ERROR_INIT;
    /* run from another directory: resolution must not depend on the cwd */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir("/") == 0);
    CHECK_OK(bp_config_load_file(pth("top.cfg"), &c, &err), &err);
    CHECK(chdir(cwd) == 0);
    if (!c) return;
    config_setting_t *r = bp_config_root(c);
    CHECK(config_setting_get_int(config_setting_get_member(r, "x")) == 1);
    CHECK(config_setting_get_int(config_setting_get_member(r, "y")) == 2);
    config_setting_t *w = config_setting_get_member(r, "w");
    CHECK(w != NULL);
    char where[512];
    if (w) {
        config_setting_t *p = config_setting_get_member(w, "path");
        bp_config_where(c, p, where, sizeof where);
        CHECKF(strstr(where, "sub/b.cfg:1") != NULL, "where = %s", where);
        CHECKF(strstr(bp_config_base_dir(c, p), "/sub") != NULL, "base dir %s", bp_config_base_dir(c, p));
    }
    bp_config_where(c, config_setting_get_member(r, "z"), where, sizeof where);
    CHECKF(strstr(where, "top.cfg:3") != NULL, "where = %s", where);
    bp_config_where(c, config_setting_get_member(r, "y"), where, sizeof where);
    CHECKF(strstr(where, "sub/a.cfg:2") != NULL, "where = %s", where);
    bp_config_free(c);
}

static void test_errors(void) {
    bp_config *c = NULL;
    bp_error err = BP_ERROR_INIT;
    /* a syntax error inside an included file is reported at that file's line */
    write_file("e1.cfg", "a = 1;\n@include \"e1inc.cfg\"\n");
    write_file("e1inc.cfg", "ok = 2;\n\nbad = ;\n");
    CHECK(bp_config_load_file(pth("e1.cfg"), &c, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "e1inc.cfg:3") != NULL, "msg: %s", err.msg);
    /* cycle */
    write_file("c1.cfg", "@include \"c2.cfg\"\n");
    write_file("c2.cfg", "@include \"c1.cfg\"\n");
    CHECK(bp_config_load_file(pth("c1.cfg"), &c, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "include cycle") && strstr(err.msg, "c2.cfg:1"), "msg: %s", err.msg);
    /* missing include names the including line */
    write_file("m.cfg", "a = 1;\n@include \"nope.cfg\"\n");
    CHECK(bp_config_load_file(pth("m.cfg"), &c, &err) == BP_ERR_IO);
    CHECKF(strstr(err.msg, "m.cfg:2") && strstr(err.msg, "nope.cfg"), "msg: %s", err.msg);
    /* malformed directive */
    write_file("mf.cfg", "@include nope.cfg\n");
    CHECK(bp_config_load_file(pth("mf.cfg"), &c, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "mf.cfg:1") && strstr(err.msg, "malformed"), "msg: %s", err.msg);
    /* depth: a chain of 12 includes */
    for (int i = 0; i < 12; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "d%d.cfg", i);
        snprintf(text, sizeof text, "@include \"d%d.cfg\"\n", i + 1);
        write_file(name, text);
    }
    write_file("d12.cfg", "end = 1;\n");
    CHECK(bp_config_load_file(pth("d0.cfg"), &c, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "deeper than 10"), "msg: %s", err.msg);
    /* missing file, binary file */
    CHECK(bp_config_load_file(pth("absent.cfg"), &c, &err) == BP_ERR_IO);
    CHECKF(strstr(err.msg, "absent.cfg") && strstr(err.msg, "cannot open"), "msg: %s", err.msg);
    FILE *f = fopen(pth("bin.cfg"), "wb");
    fwrite("a = 1;\0\1\2", 1, 9, f);
    fclose(f);
    CHECK(bp_config_load_file(pth("bin.cfg"), &c, &err) == BP_ERR_FORMAT);
    CHECK(c == NULL);
}

static void test_overrides(void) {
    bp_config *c;
    bp_error err = BP_ERROR_INIT;
    const char *text = "a = { b = { c = 1; f = 0.5; }; list = [1.0, 2.0]; }; s = \"x\"; l = ( { k = 1; } );\n";
    CHECK_OK(bp_config_load_text(text, "t.cfg", ".", &c, &err), &err);
    if (!c) return;
    CHECK_OK(bp_config_apply_override(c, "a.b.c=7", &err), &err);
    CHECK_OK(bp_config_apply_override(c, "a.b.f=2", &err), &err);             /* int into a float key */
    CHECK_OK(bp_config_apply_override(c, "new.deep.key=\"v\"", &err), &err);  /* creates groups */
    CHECK_OK(bp_config_apply_override(c, "a.list.[1]=5", &err), &err);       /* element of an array */
    CHECK_OK(bp_config_apply_override(c, "l.0.k=3", &err), &err);            /* inside a list of groups */
    CHECK_OK(bp_config_apply_override(c, "s=out/dir", &err), &err);          /* bare word → string */
    CHECK_OK(bp_config_apply_override(c, "a.arr=[1.5, 2.5, 3.5]", &err), &err);
    config_t *cfg_dummy = NULL;
    (void)cfg_dummy;
    config_setting_t *r = bp_config_root(c);
    config_setting_t *b = config_setting_get_member(config_setting_get_member(r, "a"), "b");
    CHECK(config_setting_get_int(config_setting_get_member(b, "c")) == 7);
    CHECK(config_setting_get_float(config_setting_get_member(b, "f")) == 2.0);
    config_setting_t *nd = config_setting_get_member(config_setting_get_member(r, "new"), "deep");
    CHECK(nd && strcmp(config_setting_get_string(config_setting_get_member(nd, "key")), "v") == 0);
    CHECK(config_setting_get_float_elem(config_setting_get_member(config_setting_get_member(r, "a"), "list"), 1) == 5.0);
    CHECK(config_setting_get_int(config_setting_get_member(config_setting_get_elem(config_setting_get_member(r, "l"), 0), "k")) == 3);
    CHECK(strcmp(config_setting_get_string(config_setting_get_member(r, "s")), "out/dir") == 0);
    CHECK(config_setting_length(config_setting_get_member(config_setting_get_member(r, "a"), "arr")) == 3);
    char where[256];
    bp_config_where(c, config_setting_get_member(b, "c"), where, sizeof where);
    CHECKF(strcmp(where, "-o a.b.c=7") == 0, "where = %s", where);
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(bp_config_base_dir(c, config_setting_get_member(b, "c")), cwd) == 0);
    /* errors */
    CHECK(bp_config_apply_override(c, "nokey", &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "path.to.key=value"), "msg %s", err.msg);
    CHECK(bp_config_apply_override(c, "a=3", &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "'a' is a group"), "msg %s", err.msg);
    CHECK(bp_config_apply_override(c, "a.list.[9]=1", &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "out of range"), "msg %s", err.msg);
    CHECK(bp_config_apply_override(c, "a.list.x=1", &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "use an index"), "msg %s", err.msg);
    CHECK(bp_config_apply_override(c, "s.x=1", &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "has no keys"), "msg %s", err.msg);
    CHECK(bp_config_apply_override(c, "a.list.[0]=\"str\"", &err) == BP_ERR_INVALID);
    CHECK(bp_config_apply_override(c, "x=[1, 2", &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "cannot parse"), "msg %s", err.msg);
    /* the tree serialises and parses back */
    bp_sbuf out = {0};
    CHECK_OK(bp_config_to_text(c, &out, &err), &err);
    bp_config *c2;
    CHECK_OK(bp_config_load_text(out.s, "round", ".", &c2, &err), &err);
    if (c2) {
        config_setting_t *b2 = config_setting_get_member(config_setting_get_member(bp_config_root(c2), "a"), "b");
        CHECK(config_setting_get_int(config_setting_get_member(b2, "c")) == 7);
        bp_config_free(c2);
    }
    bp_sbuf_free(&out);
    bp_config_free(c);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/bp_test_config_%d", (int)getpid());
    test_includes();
    test_errors();
    test_overrides();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) return 1;
    return TEST_RESULT();
}
