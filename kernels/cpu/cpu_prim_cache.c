/* cpu backend — a per-instance LRU cache of oneDNN primitives, keyed by
 * everything that shapes them, so that repeated calls with the same shapes
 * create nothing. Also the shared execute step (data handles, user
 * scratchpad, thread count). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

static const char *dnnl_status_str(dnnl_status_t s) {
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation for these shapes/types";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown oneDNN status";
    }
}

bp_status bp_cpu_dnnl_error(dnnl_status_t s, const char *what, const char *call, bp_error *err) {
    bp_status code = s == dnnl_unimplemented ? BP_ERR_UNSUPPORTED
                   : s == dnnl_out_of_memory ? BP_ERR_NOMEM
                                             : BP_ERR_DEVICE;
    return bp_error_set(err, code, "cpu %s: oneDNN %s failed: %s", what, call, dnnl_status_str(s));
}

void bp_cpu_cache_init(bp_cpu_prim_cache *c, uint32_t capacity) {
    memset(c, 0, sizeof *c);
    c->capacity = capacity;
}

void bp_cpu_prim_release(bp_cpu_prim *p) {
    if (!p) return;
    for (int32_t i = 0; i < p->n_args; i++)
        if (p->args[i]) dnnl_memory_destroy(p->args[i]);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    memset(p, 0, sizeof *p);
}

void bp_cpu_cache_free(bp_cpu_prim_cache *c) {
    if (c->slots)
        for (uint32_t i = 0; i < c->capacity; i++) bp_cpu_prim_release(&c->slots[i]);
    free(c->slots);
    memset(c, 0, sizeof *c);
}

bp_cpu_prim *bp_cpu_cache_find(bp_cpu_prim_cache *c, const bp_cpu_prim_key *key) {
    if (!c->slots) return NULL;
    for (uint32_t i = 0; i < c->capacity; i++) {
        bp_cpu_prim *p = &c->slots[i];
        if (p->last_use && memcmp(&p->key, key, sizeof *key) == 0) {
            p->last_use = ++c->tick;
            c->hits++;
            return p;
        }
    }
    return NULL;
}

/* An empty slot, or the least recently used one emptied. NULL only when
 * the slot array cannot be allocated. */
static bp_cpu_prim *cache_slot(bp_cpu_prim_cache *c) {
    if (!c->slots) {
        c->slots = calloc(c->capacity, sizeof *c->slots);
        if (!c->slots) return NULL;
    }
    bp_cpu_prim *victim = &c->slots[0];
    for (uint32_t i = 0; i < c->capacity; i++) {
        bp_cpu_prim *p = &c->slots[i];
        if (!p->last_use) return p;
        if (p->last_use < victim->last_use) victim = p;
    }
    bp_cpu_prim_release(victim);
    c->evictions++;
    return victim;
}

static const dnnl_memory_desc_t *arg_md(const_dnnl_primitive_desc_t pd, int32_t arg) {
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

bp_status bp_cpu_prim_create(bp_cpu *cpu, const bp_cpu_prim_key *key, dnnl_primitive_desc_t pd,
                             const int32_t *arg_ids, int32_t n, bp_cpu_prim *tmp, bp_cpu_prim **out,
                             const char *what, bp_error *err) {
    *out = NULL;
    bp_cpu_prim_cache *c = &cpu->cache;
    bp_cpu_prim *p = tmp;
    if (c->capacity > 0) {
        p = cache_slot(c);
        if (!p) {
            dnnl_primitive_desc_destroy(pd);
            return bp_error_set(err, BP_ERR_NOMEM, "cpu %s: cannot allocate the primitive cache", what);
        }
    }
    memset(p, 0, sizeof *p);
    if (n > BP_CPU_PRIM_MAX_ARGS) {
        dnnl_primitive_desc_destroy(pd);
        return bp_error_set(err, BP_ERR_INTERNAL, "cpu %s: %d primitive arguments (max %d)", what, (int)n,
                            BP_CPU_PRIM_MAX_ARGS);
    }
    /* oneDNN sizes work (and keys its global primitive cache) by the thread
     * count active at creation: make it the instance's */
    int saved = omp_get_max_threads();
    omp_set_num_threads(cpu->n_threads);
    dnnl_status_t s = dnnl_primitive_create(&p->prim, pd);
    omp_set_num_threads(saved);
    const char *call = "primitive_create";
    /* the primitive's own descriptor (it may come from oneDNN's cache) */
    const_dnnl_primitive_desc_t ppd = NULL;
    if (s == dnnl_success) {
        s = dnnl_primitive_get_primitive_desc(p->prim, &ppd);
        call = "primitive_get_primitive_desc";
    }
    for (int32_t i = 0; s == dnnl_success && i < n; i++) {
        p->arg_ids[i] = arg_ids[i];
        s = dnnl_memory_create(&p->args[i], arg_md(ppd, arg_ids[i]), cpu->engine, DNNL_MEMORY_NONE);
        p->n_args = i + 1;
        call = "memory_create";
    }
    if (s == dnnl_success) {
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(ppd, dnnl_query_scratchpad_md, 0);
        p->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
        if (p->scratch_bytes > 0) {
            s = dnnl_memory_create(&p->scratch, smd, cpu->engine, DNNL_MEMORY_NONE);
            call = "memory_create (scratchpad)";
        }
    }
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) {
        bp_cpu_prim_release(p);
        return bp_cpu_dnnl_error(s, what, call, err);
    }
    p->key = *key;
    p->last_use = ++c->tick;
    c->misses++;
    *out = p;
    return BP_OK;
}

static bp_status scratch_reserve(bp_cpu *cpu, size_t bytes, const char *what, bp_error *err) {
    if (bytes <= cpu->scratch_cap) return BP_OK;
    size_t cap = (bytes + 4095) & ~(size_t)4095;
    void *p = aligned_alloc(64, cap);
    if (!p) return bp_error_set(err, BP_ERR_NOMEM, "cpu %s: cannot allocate %zu bytes of scratchpad", what, cap);
    free(cpu->scratch);
    cpu->scratch = p;
    cpu->scratch_cap = cap;
    return BP_OK;
}

bp_status bp_cpu_prim_execute(bp_cpu *cpu, bp_cpu_prim *p, void *const *ptrs, const char *what, bp_error *err) {
    bp_status st = scratch_reserve(cpu, p->scratch_bytes, what, err);
    dnnl_exec_arg_t args[BP_CPU_PRIM_MAX_ARGS + 1];
    int nargs = 0;
    dnnl_status_t s = dnnl_success;
    const char *call = "memory_set_data_handle";
    for (int32_t i = 0; st == BP_OK && s == dnnl_success && i < p->n_args; i++) {
        s = dnnl_memory_set_data_handle(p->args[i], ptrs[i]);
        args[nargs].arg = p->arg_ids[i];
        args[nargs].memory = p->args[i];
        nargs++;
    }
    if (st == BP_OK && s == dnnl_success && p->scratch) {
        s = dnnl_memory_set_data_handle(p->scratch, cpu->scratch);
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = p->scratch;
        nargs++;
    }
    if (st == BP_OK && s == dnnl_success) {
        /* oneDNN's OpenMP runtime uses the calling thread's team size */
        int saved = omp_get_max_threads();
        omp_set_num_threads(cpu->n_threads);
        call = "primitive_execute";
        s = dnnl_primitive_execute(p->prim, cpu->stream, nargs, args);
        if (s == dnnl_success) {
            call = "stream_wait";
            s = dnnl_stream_wait(cpu->stream);
        }
        omp_set_num_threads(saved);
    }
    if (cpu->cache.capacity == 0) bp_cpu_prim_release(p);
    if (st != BP_OK) return st;
    if (s != dnnl_success) return bp_cpu_dnnl_error(s, what, call, err);
    return BP_OK;
}
