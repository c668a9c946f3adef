/* cpu backend — the plugin: entry point, the "cpu" backend descriptor and
 * its parameters, instance creation (CPU/ISA detection, oneDNN engine and
 * stream, the op table) and destruction. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "batpipe/plugin.h"
#include "cpu_internal.h"

/* ------------------------------------------------------------ descriptor -- */

static const bp_param_spec cpu_params[] = {
    {sizeof(bp_param_spec), "threads", BP_PARAM_INT, "0", 0, 4096, NULL,
     "worker threads for ops (0 = the host's thread count: every core unless the application sets fewer)"},
    {sizeof(bp_param_spec), "primitive_cache", BP_PARAM_INT, "64", 0, 4096, NULL,
     "oneDNN matmul/conv primitives kept per instance, least recently used evicted (0 = create one per call)"},
    {sizeof(bp_param_spec), "bf16_upconvert", BP_PARAM_BOOL, "false", BP_NO_RANGE, NULL,
     "run BF16 matmuls by widening a and b to F32 first (automatic when the CPU has no native BF16)"},
};

static const bp_descriptor cpu_descriptor = {
    sizeof(bp_descriptor),
    "cpu",
    "1.0.0",
    "CPU compute backend: oneDNN matmul/conv2d (forward and backward), vectorised C for every other op",
    "ops checked against float64 references by tests/backend_ops",
    cpu_params,
    sizeof cpu_params / sizeof cpu_params[0],
};

static const bp_descriptor *const cpu_descriptors[] = {&cpu_descriptor};

/* ------------------------------------------------------ machine details -- */

/* The CPU's brand string ("AMD EPYC 9R14 96-Core Processor"), trimmed. */
static void cpu_model(char *buf, size_t cap) {
    snprintf(buf, cap, "CPU");
#if defined(__x86_64__) || defined(__i386__)
    unsigned int max = __get_cpuid_max(0x80000000u, NULL);
    if (max < 0x80000004u) return;
    unsigned int regs[12];
    for (unsigned int i = 0; i < 3; i++)
        __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    char brand[49];
    memcpy(brand, regs, 48);
    brand[48] = '\0';
    char *s = brand;
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ') s[--n] = '\0';
    if (n > 0) snprintf(buf, cap, "%s", s);
#endif
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse4.1";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "baseline";
    }
}

static int64_t param_int(const bp_params *p, const char *name, int64_t dflt) {
    const bp_param_value *v = bp_params_find(p, name);
    return v ? v->i : dflt;
}

/* -------------------------------------------------------------- instance -- */

static void cpu_destroy(bp_backend_impl *impl) {
    if (!impl) return;
    bp_cpu *cpu = bp_cpu_of(impl);
    bp_cpu_cache_free(&cpu->cache);
    if (cpu->stream) dnnl_stream_destroy(cpu->stream);
    if (cpu->engine) dnnl_engine_destroy(cpu->engine);
    free(cpu->scratch);
    free(cpu->widen);
    free(cpu->partials);
    free(cpu);
}

static void cpu_fill_table(bp_backend_impl *t) {
    t->alloc = bp_cpu_alloc;
    t->free = bp_cpu_free;
    t->write = bp_cpu_write;
    t->read = bp_cpu_read;
    t->copy = bp_cpu_copy;
    t->synchronize = bp_cpu_synchronize;
    t->matmul = bp_cpu_matmul;
    t->conv2d = bp_cpu_conv2d;
    t->unary = bp_cpu_unary;
    t->binary = bp_cpu_binary;
    t->affine = bp_cpu_affine;
    t->softmax = bp_cpu_softmax;
    t->layernorm = bp_cpu_layernorm;
    t->rmsnorm = bp_cpu_rmsnorm;
    t->reduce = bp_cpu_reduce;
    t->convert = bp_cpu_convert;
    t->permute = bp_cpu_permute;
    t->get_rows = bp_cpu_get_rows;
    t->fill = bp_cpu_fill;
    t->destroy = cpu_destroy;
    /* ABI 1.1: training ops */
    t->unary_backward = bp_cpu_unary_backward;
    t->softmax_backward = bp_cpu_softmax_backward;
    t->layernorm_backward = bp_cpu_layernorm_backward;
    t->conv2d_backward = bp_cpu_conv2d_backward;
    t->sum_to = bp_cpu_sum_to;
    t->batchnorm = bp_cpu_batchnorm;
    t->batchnorm_backward = bp_cpu_batchnorm_backward;
    t->maxpool2d = bp_cpu_maxpool2d;
    t->maxpool2d_backward = bp_cpu_maxpool2d_backward;
    t->add_rows = bp_cpu_add_rows;
    t->adamw = bp_cpu_adamw;
}

static bp_status cpu_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                            bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, "cpu: no backend component #%u", index);
    bp_cpu *cpu = calloc(1, sizeof *cpu);
    if (!cpu) return bp_error_set(err, BP_ERR_NOMEM, "cpu: out of memory");
    cpu->host = host;

    int64_t threads = param_int(params, "threads", 0);
    if (threads <= 0) threads = (host && host->n_threads > 0) ? host->n_threads : omp_get_num_procs();
    cpu->n_threads = (int32_t)(threads < 1 ? 1 : threads > 4096 ? 4096 : threads);
    bp_cpu_cache_init(&cpu->cache, (uint32_t)param_int(params, "primitive_cache", 64));
    cpu->bf16_upconvert = (int32_t)param_int(params, "bf16_upconvert", 0) != 0;

    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    cpu->bf16_native = ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
                       (unsigned)dnnl_cpu_isa_avx512_core_bf16;

    dnnl_status_t s = dnnl_engine_create(&cpu->engine, dnnl_cpu, 0);
    if (s == dnnl_success) s = dnnl_stream_create(&cpu->stream, cpu->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        bp_backend_impl *impl = &cpu->impl;
        impl->self = cpu;
        cpu_destroy(impl);
        return bp_cpu_dnnl_error(s, "backend", "engine/stream creation", err);
    }

    bp_backend_impl *t = &cpu->impl;
    t->struct_size = sizeof *t;
    t->self = cpu;
    t->name = "cpu";
    char model[64];
    cpu_model(model, sizeof model);
    snprintf(t->device, sizeof t->device, "%s (%d thread%s, %s)", model, (int)cpu->n_threads,
             cpu->n_threads == 1 ? "" : "s", isa_name(isa));
    t->device_type = BP_DEVICE_CPU;
    t->host_memory = 1;
    t->has_bf16 = cpu->bf16_native && !cpu->bf16_upconvert;
    t->n_threads = cpu->n_threads;
    cpu_fill_table(t);
    bp_logf(host, BP_LOG_DEBUG, "cpu", "backend on %s, primitive cache %u, BF16 matmul %s", t->device,
            cpu->cache.capacity, t->has_bf16 ? "native" : "widened to F32");
    *instance = t;
    return BP_OK;
}

/* ----------------------------------------------------------------- entry -- */

static const bp_factory cpu_factory = {
    sizeof(bp_factory),
    1,
    cpu_descriptors,
    cpu_create,
};

static const bp_factory *cpu_get_factory(const char *kind_id) {
    return (kind_id && strcmp(kind_id, BP_KIND_BACKEND_ID) == 0) ? &cpu_factory : NULL;
}

static int32_t cpu_score(void) { return 1; }

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "cpu", "1.0.0", "MIT", cpu_score, NULL, NULL, cpu_get_factory,
};
