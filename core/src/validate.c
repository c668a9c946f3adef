/* `batpipe plugins --validate`: exercise a plugin file the way the host
 * does and report every check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/backend.h"
#include "batpipe/dataset.h"
#include "batpipe/llm.h"
#include "batpipe/metric.h"
#include "batpipe/simulator.h"
#include "batpipe/stage.h"
#include "elf_exports.h"
#include "paramset.h"
#include "registry_internal.h"
#include "strbuf.h"

typedef struct vctx {
    bp_validate_report_fn report;
    void *user;
    int32_t problems;
} vctx;

static BP_PRINTF(3, 4) void say(vctx *v, int ok, const char *fmt, ...) {
    char line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!ok) v->problems++;
    if (v->report) v->report(v->user, ok, line);
}

typedef struct exports {
    bp_sbuf extra;
    int n_extra;
    int has_entry;
} exports;

static void on_export(void *user, const char *name) {
    exports *e = user;
    if (strcmp(name, BP_ENTRY_SYMBOL) == 0) {
        e->has_entry = 1;
        return;
    }
    if (!strcmp(name, "_init") || !strcmp(name, "_fini") || !strcmp(name, "_edata") || !strcmp(name, "_end") ||
        !strcmp(name, "__bss_start"))
        return;
    if (e->n_extra < 8) bp_sbuf_printf(&e->extra, "%s%s", e->n_extra ? ", " : "", name);
    e->n_extra++;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A concrete input from a stage's wanted spec (wildcards filled in). */
static bp_status concrete_input(const bp_spec *want, bp_tensor **out, bp_spec *spec, bp_error *err) {
    *spec = *want;
    if (spec->dtype < 0) spec->dtype = BP_DTYPE_F32;
    if (spec->ndim < 0) spec->ndim = 2;
    for (int32_t d = 0; d < spec->ndim; d++)
        if (spec->shape[d] == BP_DIM_ANY) {
            /* the last dim of rank-2 audio-like input: one second of samples */
            if (d == spec->ndim - 1 && spec->rate > 0 && spec->ndim == 2) spec->shape[d] = (int64_t)spec->rate;
            else spec->shape[d] = d == 0 ? 1 : 16;
        }
    if (spec->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "only F32 inputs are synthesised (stage wants %s)",
                            bp_dtype_name(spec->dtype));
    bp_status st = bp_tensor_new(NULL, spec->dtype, spec->ndim, spec->shape, out, err);
    if (st != BP_OK) return st;
    uint64_t s = 0x243f6a8885a308d3ull;
    float *x = (*out)->data;
    for (int64_t i = 0; i < bp_tensor_numel(*out); i++)
        x[i] = (float)((double)(rng_next(&s) >> 11) / 9007199254740992.0 - 0.5) * 0.5f;
    return BP_OK;
}

static void check_stage(vctx *v, const char *label, bp_stage *st) {
    bp_error err = BP_ERROR_INIT;
    if (st->struct_size < offsetof(bp_stage, destroy) + sizeof(void *) || !st->input_spec || !st->prepare ||
        !st->process || !st->destroy) {
        say(v, 0, "%s: instance table incomplete (struct_size %u, a required function is NULL)", label, st->struct_size);
        return;
    }
    bp_spec want = bp_spec_any(), in_spec;
    if (st->input_spec(st, &want, &err) != BP_OK) {
        say(v, 0, "%s: input_spec failed: %s", label, err.msg);
        return;
    }
    char d1[256], d2[256];
    say(v, 1, "%s: input_spec: %s", label, bp_spec_describe(&want, d1, sizeof d1));
    bp_tensor *in = NULL;
    if (concrete_input(&want, &in, &in_spec, &err) != BP_OK) {
        say(v, 0, "%s: cannot build a test input: %s", label, err.msg);
        return;
    }
    bp_port ports[BP_MAX_OUTPUTS];
    memset(ports, 0, sizeof ports);
    uint32_t n = BP_MAX_OUTPUTS;
    if (st->prepare(st, &in_spec, ports, &n, &err) != BP_OK || n < 1 || n > BP_MAX_OUTPUTS) {
        say(v, 0, "%s: prepare(%s) failed: %s", label, bp_spec_describe(&in_spec, d1, sizeof d1),
            n < 1 || n > BP_MAX_OUTPUTS ? "bad output count" : err.msg);
        bp_tensor_free(in);
        return;
    }
    int ok = 1;
    for (uint32_t i = 0; i < n; i++) {
        int concrete = ports[i].spec.ndim >= 0 && ports[i].spec.dtype >= 0;
        for (int32_t d = 0; concrete && d < ports[i].spec.ndim; d++) concrete = ports[i].spec.shape[d] >= 0;
        int name_ok = ports[i].name[0] != '\0';
        for (uint32_t j = 0; j < i; j++) name_ok &= strcmp(ports[i].name, ports[j].name) != 0;
        if (!concrete || !name_ok || (i == 0 && ports[0].optional)) {
            say(v, 0, "%s: output %u ('%s', %s) %s", label, i, ports[i].name,
                bp_spec_describe(&ports[i].spec, d1, sizeof d1),
                !name_ok ? "has an empty or duplicate name"
                         : !concrete ? "has no concrete shape for a concrete input" : "is the main output but optional");
            ok = 0;
        }
    }
    if (ok) say(v, 1, "%s: prepare(%s) → %u output%s, main '%s' %s", label, bp_spec_describe(&in_spec, d1, sizeof d1),
                n, n == 1 ? "" : "s", ports[0].name, bp_spec_describe(&ports[0].spec, d2, sizeof d2));
    bp_tensor *outs[2][BP_MAX_OUTPUTS];
    memset(outs, 0, sizeof outs);
    int ran = ok;
    for (int rep = 0; rep < 2 && ran; rep++) {
        for (uint32_t i = 0; i < n && ran; i++)
            if (bp_tensor_new(NULL, ports[i].spec.dtype, ports[i].spec.ndim, ports[i].spec.shape, &outs[rep][i], &err) !=
                BP_OK)
                ran = 0;
        if (ran && st->process(st, in, outs[rep], n, &err) != BP_OK) {
            say(v, 0, "%s: process on a random input failed: %s", label, err.msg);
            ran = 0;
        }
    }
    if (ran) {
        int finite = 1, same = 1;
        for (uint32_t i = 0; i < n; i++) {
            if (bp_tensor_check_finite(outs[0][i], ports[i].name, &err) != BP_OK) finite = 0;
            if (memcmp(outs[0][i]->data, outs[1][i]->data, bp_tensor_nbytes(outs[0][i])) != 0) same = 0;
        }
        say(v, finite, "%s: process: every output finite%s", label, finite ? "" : " — NOT: ");
        if (!finite) say(v, 0, "%s: %s", label, err.msg);
        say(v, same, "%s: process is deterministic (two runs on the same input give the same bytes)", label);
    }
    for (int rep = 0; rep < 2; rep++)
        for (uint32_t i = 0; i < n; i++) bp_tensor_free(outs[rep][i]);
    bp_tensor_free(in);
}

static void check_backend(vctx *v, const char *label, bp_backend_impl *impl) {
    bp_error err = BP_ERROR_INIT;
    bp_backend *be;
    if (bp_backend_wrap(impl, &be, &err) != BP_OK) {
        say(v, 0, "%s: %s", label, err.msg);
        return;
    }
    say(v, 1, "%s: device '%s', %d threads", label, bp_backend_device(be), bp_backend_threads(be));
    int64_t shape[2] = {4, 8};
    bp_tensor *t;
    float host[32];
    int ok = bp_tensor_new(be, BP_DTYPE_F32, 2, shape, &t, &err) == BP_OK;
    if (ok) {
        ok = bp_op_fill(be, t, 1.5f, &err) == BP_OK && bp_tensor_read(t, host, sizeof host, &err) == BP_OK;
        for (int i = 0; ok && i < 32; i++) ok = host[i] == 1.5f;
        bp_tensor_free(t);
    }
    say(v, ok, "%s: alloc, fill, read back, free%s%s", label, ok ? "" : ": ", ok ? "" : err.msg);
    bp_backend_free(be);
}

static void check_component(vctx *v, bp_registry *reg, const bp_component_info *c) {
    char label[160];
    snprintf(label, sizeof label, "%s %s", bp_kind_name(c->kind), c->desc->name);
    say(v, 1, "%s %s: descriptor, %u parameter%s declared, defaults valid", label, c->desc->version, c->desc->n_params,
        c->desc->n_params == 1 ? "" : "s");
    if (!c->desc->description || !c->desc->description[0]) say(v, 0, "%s: descriptor has no description", label);
    for (uint32_t i = 0; i < c->desc->n_params; i++)
        if (!bp_desc_param(c->desc, i)->default_value) {
            say(v, 1, "%s: create not exercised: parameter '%s' has no default", label, bp_desc_param(c->desc, i)->name);
            return;
        }
    if (c->plugin->score <= 0) {
        say(v, 1, "%s: create not exercised: the plugin cannot run on this machine", label);
        return;
    }
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps;
    if (bp_paramset_build(c->desc, label, NULL, NULL, NULL, &ps, &err) != BP_OK) {
        say(v, 0, "%s: %s", label, err.msg);
        return;
    }
    /* Encoders and projectors compute through a backend: lend them the cpu
     * backend from the default search path when there is one. */
    bp_registry *aux = NULL;
    bp_backend *be = NULL;
    if (c->kind == BP_KIND_ENCODER || c->kind == BP_KIND_PROJECTOR) {
        bp_error e3 = BP_ERROR_INIT;
        if (bp_registry_new(bp_registry_host(reg), &aux, &e3) == BP_OK &&
            bp_registry_scan_default(aux, NULL, &e3) == BP_OK &&
            bp_registry_create_backend(aux, "cpu", NULL, &be, &e3) == BP_OK)
            say(v, 1, "%s: using the cpu backend (%s)", label, bp_backend_device(be));
        else
            say(v, 1, "%s: no cpu backend found on the search path: the stage gets none", label);
    }
    void *inst = NULL;
    bp_status st = bp_registry_create(reg, c, bp_paramset_params(ps), be, &inst, &err);
    if (st != BP_OK) {
        int needs_backend = c->kind == BP_KIND_ENCODER || c->kind == BP_KIND_PROJECTOR;
        say(v, needs_backend && !be, "%s: create with defaults %s: %s", label,
            needs_backend && !be ? "not exercised (needs a compute backend)" : "failed", err.msg);
        bp_paramset_free(ps);
        bp_backend_free(be);
        bp_registry_free(aux);
        return;
    }
    say(v, 1, "%s: create with default parameters", label);
    switch (c->kind) {
    case BP_KIND_FRONTEND:
    case BP_KIND_ENCODER:
    case BP_KIND_PROJECTOR:
        if (c->kind != BP_KIND_FRONTEND && !be)
            say(v, 1, "%s: negotiation and process not exercised: no compute backend to run it on", label);
        else
            check_stage(v, label, inst);
        if (((bp_stage *)inst)->destroy) ((bp_stage *)inst)->destroy(inst);
        break;
    case BP_KIND_BACKEND: check_backend(v, label, inst); break; /* the handle destroys it */
    case BP_KIND_METRIC: {
        bp_metric *m = inst;
        const char *const *names = NULL;
        uint32_t n = 0;
        int ok = m->inputs && m->inputs(m, &names, &n, &err) == BP_OK && n > 0 && names;
        say(v, ok, "%s: declares %u input tensor%s", label, n, n == 1 ? "" : "s");
        if (m->reset) say(v, m->reset(m, &err) == BP_OK, "%s: reset", label);
        if (m->destroy) m->destroy(m);
        break;
    }
    case BP_KIND_LLM: {
        bp_llm *l = inst;
        bp_llm_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (l->info) say(v, l->info(l, &info, &err) == BP_OK, "%s: info (vocab %d, dim %d)", label, info.vocab_size, info.n_embd);
        if (l->destroy) l->destroy(l);
        break;
    }
    case BP_KIND_DATASET: {
        bp_dataset *d = inst;
        if (d->count) say(v, d->count(d) >= 0, "%s: %lld items", label, (long long)d->count(d));
        if (d->destroy) d->destroy(d);
        break;
    }
    case BP_KIND_SIMULATOR: {
        bp_simulator *s = inst;
        if (s->destroy) s->destroy(s);
        break;
    }
    default: break;
    }
    say(v, 1, "%s: destroy", label);
    bp_paramset_free(ps);
    bp_backend_free(be);
    bp_registry_free(aux);
}

int32_t bp_registry_validate_file(bp_registry *reg, const char *path, bp_validate_report_fn report, void *user) {
    vctx v = {report, user, 0};
    bp_error err = BP_ERROR_INIT;
    exports ex = {{0}, 0, 0};
    if (bp_elf_exports(path, on_export, &ex, &err) != BP_OK) {
        say(&v, 0, "%s", err.msg);
        return -1;
    }
    say(&v, ex.has_entry, "exports the entry symbol '%s'", BP_ENTRY_SYMBOL);
    if (ex.n_extra)
        say(&v, 0, "exports %d other symbol%s (%s%s): build with -fvisibility=hidden and a version script", ex.n_extra,
            ex.n_extra == 1 ? "" : "s", ex.extra.s ? ex.extra.s : "", ex.n_extra > 8 ? ", ..." : "");
    else
        say(&v, 1, "exports nothing else");
    bp_sbuf_free(&ex.extra);
    const bp_plugin_entry *e;
    const bp_plugin_info *info;
    if (bp_registry_load_entry(reg, path, &e, &info, &err) != BP_OK) {
        say(&v, 0, "%s", err.msg);
        return -1;
    }
    say(&v, 1, "loads (dlopen RTLD_NOW), ABI %u.%u accepted by this batpipe (ABI %d.%d)", e->abi_major, e->abi_minor,
        BP_ABI_MAJOR, BP_ABI_MINOR);
    say(&v, 1, "plugin '%s' %s, licence %s", info->plugin_name, info->plugin_version, info->license);
    say(&v, 1, "score %d%s", info->score, info->score > 0 ? "" : " (cannot run on this machine: listed, not used)");
    say(&v, e->get_factory("batpipe.no-such-kind/1") == NULL, "get_factory returns NULL for an unknown kind id");
    uint32_t found = 0;
    for (uint32_t i = 0; i < bp_registry_count(reg); i++) {
        const bp_component_info *c = bp_registry_at(reg, i);
        if (c->plugin != info) continue;
        found++;
        check_component(&v, reg, c);
    }
    say(&v, found > 0, "offers %u component%s", found, found == 1 ? "" : "s");
    return v.problems;
}
