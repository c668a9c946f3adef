/* The plugin registry: search path, dlopen + ABI checks, the component
 * table, and instance creation. */
#include "batpipe/registry.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_internal.h"
#include "paramset.h"
#include "registry_internal.h"
#include "strbuf.h"

typedef struct plugin_rec {
    char *path;      /* as found */
    char *realpath;  /* for de-duplication */
    void *dl;
    const bp_plugin_entry *entry;
    bp_plugin_info info;
    int inited;
} plugin_rec;

typedef struct comp_rec {
    bp_component_info info;
    const bp_factory *factory;
} comp_rec;

typedef struct problem_rec {
    char *path;
    char *message;
} problem_rec;

struct bp_registry {
    bp_host host;            /* the host given to plugins' init */
    const bp_host *app_host; /* the application's, or NULL */
    plugin_rec **plugins;
    size_t n_plugins, cap_plugins;
    comp_rec *comps;
    size_t n_comps, cap_comps;
    problem_rec *problems;
    size_t n_problems, cap_problems;
    char **dirs;
    size_t n_dirs, cap_dirs;
    bp_host **hosts;         /* per-instance hosts (backend, threads), freed with the registry */
    size_t n_hosts, cap_hosts;
};

/* ----------------------------------------------------------- the host -- */

static void quiet_log(const bp_host *h, int32_t level, const char *source, const char *msg) {
    (void)h, (void)level, (void)source, (void)msg;
}
static int32_t never_cancelled(const bp_host *h) {
    (void)h;
    return 0;
}
static const void *no_extension(const bp_host *h, const char *id) {
    (void)h, (void)id;
    return NULL;
}

static int32_t online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int32_t)n : 1;
}

bp_status bp_registry_new(const bp_host *host, bp_registry **out, bp_error *err) {
    *out = NULL;
    bp_registry *r = calloc(1, sizeof *r);
    if (!r) return bp_error_set(err, BP_ERR_NOMEM, "registry: out of memory");
    r->app_host = host;
    if (host) {
        size_t n = host->struct_size < sizeof r->host ? host->struct_size : sizeof r->host;
        memcpy(&r->host, host, n);
    }
    r->host.struct_size = sizeof r->host;
    r->host.abi_major = BP_ABI_MAJOR;
    r->host.abi_minor = BP_ABI_MINOR;
    if (!r->host.name) r->host.name = "batpipe";
    if (!r->host.version) r->host.version = BP_VERSION_STRING;
    if (!r->host.log) r->host.log = quiet_log;
    if (!r->host.cancelled) r->host.cancelled = never_cancelled;
    if (!r->host.get_extension) r->host.get_extension = no_extension;
    if (r->host.n_threads <= 0) r->host.n_threads = online_cpus();
    *out = r;
    return BP_OK;
}

void bp_registry_free(bp_registry *r) {
    if (!r) return;
    for (size_t i = r->n_plugins; i-- > 0;) {
        plugin_rec *p = r->plugins[i];
        if (p->inited && p->entry->deinit) p->entry->deinit();
        if (p->dl) dlclose(p->dl);
        free(p->path);
        free(p->realpath);
        free(p);
    }
    free(r->plugins);
    free(r->comps);
    for (size_t i = 0; i < r->n_problems; i++) {
        free(r->problems[i].path);
        free(r->problems[i].message);
    }
    free(r->problems);
    for (size_t i = 0; i < r->n_dirs; i++) free(r->dirs[i]);
    free(r->dirs);
    for (size_t i = 0; i < r->n_hosts; i++) free(r->hosts[i]);
    free(r->hosts);
    free(r);
}

/* ------------------------------------------------------------- loading -- */

static void add_problem(bp_registry *r, const char *path, const char *msg) {
    if (bp_grow((void **)&r->problems, &r->cap_problems, r->n_problems + 1, sizeof(problem_rec)) != 0) return;
    r->problems[r->n_problems].path = bp_strdup(path);
    r->problems[r->n_problems].message = bp_strdup(msg);
    r->n_problems++;
}

static int valid_component_name(const char *n) {
    if (!n || !n[0] || strlen(n) > 63) return 0;
    for (const char *p = n; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')) return 0;
    return 1;
}

#define ENTRY_MIN_SIZE (offsetof(bp_plugin_entry, get_factory) + sizeof(void *))
#define FACTORY_MIN_SIZE (offsetof(bp_factory, create) + sizeof(void *))
#define DESC_MIN_SIZE (offsetof(bp_descriptor, n_params) + sizeof(uint32_t))

/* Check one factory's table; fills err on the first problem. */
static bp_status check_factory(const char *path, int32_t kind, const bp_factory *f, bp_error *err) {
    if (f->struct_size < FACTORY_MIN_SIZE)
        return bp_error_set(err, BP_ERR_ABI, "%s: %s factory struct_size %u is smaller than ABI 1.0's %zu", path,
                            bp_kind_name(kind), f->struct_size, FACTORY_MIN_SIZE);
    if (!f->create) return bp_error_set(err, BP_ERR_ABI, "%s: %s factory has no create function", path, bp_kind_name(kind));
    if (f->count > 1024) return bp_error_set(err, BP_ERR_ABI, "%s: %s factory claims %u components", path, bp_kind_name(kind), f->count);
    if (f->count && !f->descriptors)
        return bp_error_set(err, BP_ERR_ABI, "%s: %s factory has no descriptor array", path, bp_kind_name(kind));
    for (uint32_t i = 0; i < f->count; i++) {
        const bp_descriptor *d = f->descriptors[i];
        if (!d) return bp_error_set(err, BP_ERR_ABI, "%s: %s descriptor %u is NULL", path, bp_kind_name(kind), i);
        if (d->struct_size < DESC_MIN_SIZE)
            return bp_error_set(err, BP_ERR_ABI, "%s: %s descriptor %u: struct_size %u is smaller than ABI 1.0's %zu",
                                path, bp_kind_name(kind), i, d->struct_size, DESC_MIN_SIZE);
        if (!valid_component_name(d->name))
            return bp_error_set(err, BP_ERR_ABI, "%s: %s descriptor %u: invalid name '%s' (want [a-z0-9_]+)", path,
                                bp_kind_name(kind), i, d->name ? d->name : "(null)");
        if (!d->version || !d->version[0])
            return bp_error_set(err, BP_ERR_ABI, "%s: %s '%s' has no version", path, bp_kind_name(kind), d->name);
        char label[160];
        snprintf(label, sizeof label, "%s %s (%s)", bp_kind_name(kind), d->name, path);
        bp_status st = bp_desc_check_params(d, label, err);
        if (st != BP_OK) return st;
    }
    return BP_OK;
}

static bp_status load_file(bp_registry *r, const char *path, bp_error *err) {
    char *real = realpath(path, NULL);
    if (!real) return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: no such plugin file", path);
    for (size_t i = 0; i < r->n_plugins; i++)
        if (strcmp(r->plugins[i]->realpath, real) == 0) {
            free(real);
            return BP_OK; /* already loaded through another path entry */
        }
    dlerror();
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        free(real);
        return bp_error_set(err, BP_ERR_FORMAT, "%s: cannot load: %s", path, why ? why : "unknown dlopen error");
    }
    const bp_plugin_entry *e = (const bp_plugin_entry *)dlsym(dl, BP_ENTRY_SYMBOL);
    bp_status st = BP_OK;
    if (!e) {
        st = bp_error_set(err, BP_ERR_ABI,
                          "%s: not a batpipe plugin: it exports no '%s' symbol (a plugin must define "
                          "BP_PLUGIN_EXPORT const bp_plugin_entry %s)",
                          path, BP_ENTRY_SYMBOL, BP_ENTRY_SYMBOL);
    } else if (e->struct_size < ENTRY_MIN_SIZE) {
        st = bp_error_set(err, BP_ERR_ABI, "%s: entry struct_size %u is smaller than ABI 1.0's %zu", path,
                          e->struct_size, ENTRY_MIN_SIZE);
    } else if (e->abi_major != BP_ABI_MAJOR) {
        st = bp_error_set(err, BP_ERR_ABI,
                          "%s: built for plugin ABI %u.%u, but this batpipe (%s) implements ABI %d.%d: major "
                          "versions differ; rebuild the plugin against this batpipe",
                          path, e->abi_major, e->abi_minor, BP_VERSION_STRING, BP_ABI_MAJOR, BP_ABI_MINOR);
    } else if (e->abi_minor > BP_ABI_MINOR) {
        st = bp_error_set(err, BP_ERR_ABI,
                          "%s: built against plugin ABI %u.%u, newer than this batpipe's ABI %d.%d (%s); upgrade "
                          "batpipe or rebuild the plugin against it",
                          path, e->abi_major, e->abi_minor, BP_ABI_MAJOR, BP_ABI_MINOR, BP_VERSION_STRING);
    } else if (!e->get_factory) {
        st = bp_error_set(err, BP_ERR_ABI, "%s: entry has no get_factory function", path);
    } else if (!e->plugin_name || !e->plugin_version) {
        st = bp_error_set(err, BP_ERR_ABI, "%s: entry has no plugin name or version", path);
    }
    if (st != BP_OK) {
        dlclose(dl);
        free(real);
        return st;
    }
    plugin_rec *p = calloc(1, sizeof *p);
    if (!p || bp_grow((void **)&r->plugins, &r->cap_plugins, r->n_plugins + 1, sizeof(plugin_rec *)) != 0) {
        free(p);
        dlclose(dl);
        free(real);
        return bp_error_set(err, BP_ERR_NOMEM, "registry: out of memory");
    }
    p->path = bp_strdup(path);
    p->realpath = real;
    p->dl = dl;
    p->entry = e;
    p->info.path = p->path;
    p->info.plugin_name = e->plugin_name;
    p->info.plugin_version = e->plugin_version;
    p->info.license = e->license ? e->license : "unknown";
    p->info.abi_major = e->abi_major;
    p->info.abi_minor = e->abi_minor;
    p->info.score = e->score ? e->score() : 1;
    if (p->info.score < 0) p->info.score = 0;
    if (e->init) {
        bp_error ierr = BP_ERROR_INIT;
        st = e->init(&r->host, &ierr);
        if (st != BP_OK) {
            bp_error_set(err, st, "%s: init failed: %s", path, ierr.msg[0] ? ierr.msg : bp_status_name(st));
            goto fail;
        }
    }
    p->inited = 1;
    /* Check every factory before registering anything. */
    const bp_factory *factories[BP_KIND_COUNT];
    for (int32_t k = 0; k < BP_KIND_COUNT; k++) {
        factories[k] = e->get_factory(bp_kind_id(k));
        if (factories[k] && (st = check_factory(path, k, factories[k], err)) != BP_OK) goto fail;
    }
    for (int32_t k = 0; k < BP_KIND_COUNT; k++) {
        const bp_factory *f = factories[k];
        if (!f) continue;
        for (uint32_t i = 0; i < f->count; i++) {
            if (bp_grow((void **)&r->comps, &r->cap_comps, r->n_comps + 1, sizeof(comp_rec)) != 0) {
                st = bp_error_set(err, BP_ERR_NOMEM, "registry: out of memory");
                goto fail_registered;
            }
            comp_rec *c = &r->comps[r->n_comps];
            memset(c, 0, sizeof *c);
            c->info.kind = k;
            c->info.desc = f->descriptors[i];
            c->info.index = i;
            c->factory = f;
            for (size_t j = 0; j < r->n_comps; j++)
                if (r->comps[j].info.kind == k && strcmp(r->comps[j].info.desc->name, c->info.desc->name) == 0 &&
                    !r->comps[j].info.shadowed)
                    c->info.shadowed = 1;
            r->n_comps++;
        }
    }
    r->plugins[r->n_plugins++] = p;
    /* plugin pointers are stable (array of pointers); fix up the infos */
    for (size_t j = 0; j < r->n_comps; j++)
        if (!r->comps[j].info.plugin) r->comps[j].info.plugin = &p->info;
    return BP_OK;
fail_registered:
    while (r->n_comps > 0 && !r->comps[r->n_comps - 1].info.plugin) r->n_comps--;
fail:
    if (p->inited && e->deinit) e->deinit();
    dlclose(dl);
    free(p->path);
    free(p->realpath);
    free(p);
    return st;
}

bp_status bp_registry_load_file(bp_registry *r, const char *path, bp_error *err) {
    bp_status st = load_file(r, path, err);
    if (st != BP_OK) add_problem(r, path, err ? err->msg : bp_status_name(st));
    return st;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

bp_status bp_registry_scan_dir(bp_registry *r, const char *dir, bp_error *err) {
    DIR *d = opendir(dir);
    if (!d) return BP_OK; /* a missing directory on the search path is not an error */
    char *real = realpath(dir, NULL);
    int seen = 0;
    for (size_t i = 0; real && i < r->n_dirs; i++)
        if (strcmp(r->dirs[i], real) == 0) seen = 1;
    const char *base = dir;
    if (!seen && real && bp_grow((void **)&r->dirs, &r->cap_dirs, r->n_dirs + 1, sizeof(char *)) == 0) {
        r->dirs[r->n_dirs++] = real;
        base = real; /* the canonical directory */
    } else {
        free(real);
    }
    if (seen) {
        closedir(d);
        return BP_OK;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0) continue;
        if (bp_grow((void **)&names, &cap, n + 1, sizeof(char *)) != 0) break;
        names[n] = bp_strdup(de->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    qsort(names, n, sizeof(char *), name_cmp); /* deterministic order */
    for (size_t i = 0; i < n; i++) {
        char *path = bp_path_join(base, names[i]);
        bp_error e2 = BP_ERROR_INIT;
        if (path) bp_registry_load_file(r, path, &e2); /* problems are recorded, scanning goes on */
        free(path);
        free(names[i]);
    }
    free(names);
    (void)err;
    return BP_OK;
}

bp_status bp_registry_scan_default(bp_registry *r, const char *exe_path, bp_error *err) {
    const char *env = getenv("BATPIPE_PLUGIN_PATH");
    if (env && *env) {
        char *copy = bp_strdup(env);
        char *save = NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
            if (*dir) bp_registry_scan_dir(r, dir, err);
        free(copy);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
    } else if (exe_path && strlen(exe_path) < sizeof exe && realpath(exe_path, exe)) {
        /* resolved into exe */
    } else {
        exe[0] = '\0';
    }
    if (exe[0]) {
        char *bindir = bp_dirname(exe);
        char *dir = bindir ? bp_path_join(bindir, BP_PLUGIN_RELDIR) : NULL;
        if (dir) bp_registry_scan_dir(r, dir, err);
        free(dir);
        free(bindir);
    }
    bp_registry_scan_dir(r, BP_PLUGIN_INSTALL_DIR, err);
    return BP_OK;
}

void bp_registry_set_threads(bp_registry *r, int32_t n) { r->host.n_threads = n > 0 ? n : online_cpus(); }
int32_t bp_registry_threads(const bp_registry *r) { return r->host.n_threads; }
const bp_host *bp_registry_host(const bp_registry *r) { return &r->host; }

/* ------------------------------------------------------------- queries -- */

uint32_t bp_registry_count(const bp_registry *r) { return (uint32_t)r->n_comps; }
const bp_component_info *bp_registry_at(const bp_registry *r, uint32_t i) {
    return i < r->n_comps ? &r->comps[i].info : NULL;
}
uint32_t bp_registry_problem_count(const bp_registry *r) { return (uint32_t)r->n_problems; }
bp_plugin_problem bp_registry_problem_at(const bp_registry *r, uint32_t i) {
    bp_plugin_problem p = {NULL, NULL};
    if (i < r->n_problems) {
        p.path = r->problems[i].path;
        p.message = r->problems[i].message;
    }
    return p;
}
uint32_t bp_registry_dir_count(const bp_registry *r) { return (uint32_t)r->n_dirs; }
const char *bp_registry_dir_at(const bp_registry *r, uint32_t i) { return i < r->n_dirs ? r->dirs[i] : NULL; }

const bp_component_info *bp_registry_find(const bp_registry *r, int32_t kind, const char *name) {
    for (size_t i = 0; i < r->n_comps; i++) {
        const bp_component_info *c = &r->comps[i].info;
        if (c->kind == kind && !c->shadowed && c->plugin->score > 0 && strcmp(c->desc->name, name) == 0) return c;
    }
    return NULL;
}

const char *bp_registry_choices(const bp_registry *r, int32_t kind, char *buf, size_t cap) {
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_comps && off < cap; i++) {
        const bp_component_info *c = &r->comps[i].info;
        if (c->kind != kind || c->shadowed || c->plugin->score <= 0) continue;
        int w = snprintf(buf + off, cap - off, "%s%s", off ? ", " : "", c->desc->name);
        if (w > 0) off += (size_t)w;
    }
    if (!buf[0]) snprintf(buf, cap, "(none installed)");
    return buf;
}

static const comp_rec *rec_of(const bp_registry *r, const bp_component_info *c) {
    for (size_t i = 0; i < r->n_comps; i++)
        if (&r->comps[i].info == c) return &r->comps[i];
    return NULL;
}

/* ------------------------------------------------------------ creation -- */

bp_status bp_registry_create(bp_registry *r, const bp_component_info *c, const bp_params *params, bp_backend *backend,
                             void **instance, bp_error *err) {
    *instance = NULL;
    const comp_rec *rec = rec_of(r, c);
    if (!rec) return bp_error_set(err, BP_ERR_INVALID, "registry: unknown component");
    if (c->plugin->score <= 0)
        return bp_error_set(err, BP_ERR_DEVICE, "%s %s (%s) cannot run on this machine (its plugin scored 0)",
                            bp_kind_name(c->kind), c->desc->name, c->plugin->path);
    bp_host *h = malloc(sizeof *h);
    if (!h || bp_grow((void **)&r->hosts, &r->cap_hosts, r->n_hosts + 1, sizeof(bp_host *)) != 0) {
        free(h);
        return bp_error_set(err, BP_ERR_NOMEM, "registry: out of memory");
    }
    *h = r->host;
    h->backend = backend;
    r->hosts[r->n_hosts++] = h;
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = rec->factory->create(h, c->index, params, instance, &e2);
    if (st != BP_OK) {
        *instance = NULL;
        return bp_error_set(err, st, "%s %s: %s", bp_kind_name(c->kind), c->desc->name,
                            e2.msg[0] ? e2.msg : bp_status_name(st));
    }
    if (!*instance)
        return bp_error_set(err, BP_ERR_INTERNAL, "%s %s (%s): create returned success but no instance",
                            bp_kind_name(c->kind), c->desc->name, c->plugin->path);
    return BP_OK;
}

bp_status bp_registry_create_backend(bp_registry *r, const char *name, const bp_params *params, bp_backend **out,
                                     bp_error *err) {
    *out = NULL;
    const bp_component_info *c = bp_registry_find(r, BP_KIND_BACKEND, name);
    if (!c) {
        char choices[512];
        for (size_t i = 0; i < r->n_comps; i++) {
            const bp_component_info *x = &r->comps[i].info;
            if (x->kind == BP_KIND_BACKEND && strcmp(x->desc->name, name) == 0 && x->plugin->score <= 0)
                return bp_error_set(err, BP_ERR_DEVICE, "backend '%s' (%s) cannot run on this machine", name,
                                    x->plugin->path);
        }
        return bp_error_set(err, BP_ERR_NOT_FOUND, "unknown backend '%s'; available: %s", name,
                            bp_registry_choices(r, BP_KIND_BACKEND, choices, sizeof choices));
    }
    bp_paramset *own = NULL;
    if (!params) {
        bp_status st = bp_paramset_build(c->desc, name, NULL, NULL, NULL, &own, err);
        if (st != BP_OK) return st;
        params = bp_paramset_params(own);
    }
    void *inst = NULL;
    bp_status st = bp_registry_create(r, c, params, NULL, &inst, err);
    if (st == BP_OK) st = bp_backend_wrap((bp_backend_impl *)inst, out, err);
    if (st == BP_OK && own) (*out)->owned_params = own;
    else bp_paramset_free(own);
    return st;
}

bp_status bp_registry_load_entry(bp_registry *r, const char *path, const bp_plugin_entry **entry,
                                 const bp_plugin_info **info, bp_error *err) {
    bp_status st = load_file(r, path, err);
    if (st != BP_OK) return st;
    char *real = realpath(path, NULL);
    for (size_t i = 0; real && i < r->n_plugins; i++)
        if (strcmp(r->plugins[i]->realpath, real) == 0) {
            *entry = r->plugins[i]->entry;
            *info = &r->plugins[i]->info;
            free(real);
            return BP_OK;
        }
    free(real);
    return bp_error_set(err, BP_ERR_INTERNAL, "%s: loaded but not found in the registry", path);
}
