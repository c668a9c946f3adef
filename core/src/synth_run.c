/* synth: the public API (batpipe/synth.h): loading a generator
 * configuration, rendering scenes on worker threads (shards, resume, stop
 * after k scenes), and merging shard directories into the final files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batpipe/audio.h"
#include "batpipe/npy.h"
#include "synth_internal.h"

struct bp_synth {
    bp_registry *reg;
    bp_config *config;
    synth_cfg cfg;
    synth_corpus corpus;
    const bp_component_info *sim;
    bp_paramset *sim_params;
    bp_simulator *sim0; /* created at load time (so that a bad simulator setting fails early) */
    json_t *manifest;
    char *config_text;
    char *plan;
};

/* ------------------------------------------------------------------ load -- */

static json_t *params_json(const bp_params *p) {
    json_t *j = json_object();
    for (uint32_t i = 0; p && i < p->count; i++) {
        const bp_param_value *v = &p->values[i];
        json_t *x = NULL;
        switch (v->type) {
        case BP_PARAM_BOOL: x = json_boolean(v->i); break;
        case BP_PARAM_INT: x = json_integer(v->i); break;
        case BP_PARAM_FLOAT: x = json_real(v->f); break;
        case BP_PARAM_STRING:
        case BP_PARAM_PATH: x = json_string(v->s ? v->s : ""); break;
        case BP_PARAM_FLOAT_LIST:
            x = json_array();
            for (uint32_t k = 0; k < v->count; k++) json_array_append_new(x, json_real(v->list[k]));
            break;
        case BP_PARAM_STRING_LIST:
            x = json_array();
            for (uint32_t k = 0; k < v->count; k++) json_array_append_new(x, json_string(v->strs[k]));
            break;
        default: x = json_null();
        }
        json_object_set_new(j, v->name, x);
    }
    return j;
}

static void build_plan(bp_synth *s) {
    const synth_cfg *c = &s->cfg;
    bp_sbuf b = {0};
    int64_t total = 0;
    for (int sp = 0; sp < SYNTH_SPLITS; sp++)
        for (int k = 0; k < SYNTH_KINDS; k++) total += c->counts[sp][k];
    bp_sbuf_printf(&b, "synth '%s' (seed %llu, fingerprint %s)\n", c->name, (unsigned long long)c->seed,
                   synth_manifest_fingerprint(s->manifest));
    bp_sbuf_printf(&b, "  scenes     train %lld single + %lld two-source, eval %lld + %lld (%lld in all)\n",
                   (long long)c->counts[0][0], (long long)c->counts[0][1], (long long)c->counts[1][0],
                   (long long)c->counts[1][1], (long long)total);
    bp_sbuf_printf(&b, "  questions  per single-source scene A %d, B %d; per two-source scene C %d, D %d, E %d\n",
                   c->qa_count[0], c->qa_count[1], c->qa_count[2], c->qa_count[3], c->qa_count[4]);
    bp_sbuf_printf(&b, "  corpus     %s: %u rows, %u classes, %u file%s skipped\n", s->corpus.path, s->corpus.n_rows,
                   s->corpus.n_classes, s->corpus.n_skipped, s->corpus.n_skipped == 1 ? "" : "s");
    bp_sbuf_printf(&b, "  classes    ");
    for (uint32_t i = 0; i < s->corpus.n_classes; i++) {
        const synth_pool *tr = synth_corpus_pool(&s->corpus, SYNTH_TRAIN, (int32_t)i);
        const synth_pool *ev = synth_corpus_pool(&s->corpus, SYNTH_EVAL, (int32_t)i);
        bp_sbuf_printf(&b, "%s%s (%u/%u)", i ? ", " : "", s->corpus.classes[i], tr->n_recordings, ev->n_recordings);
    }
    bp_sbuf_printf(&b, "  [recordings train/eval]\n  rooms      ");
    for (uint32_t i = 0; i < c->n_rooms; i++)
        bp_sbuf_printf(&b, "%s%s %.1f–%.1f × %.1f–%.1f × %.1f–%.1f m, T60 %.2f–%.2f s", i ? "; " : "", c->rooms[i].name,
                       c->rooms[i].size_min[0], c->rooms[i].size_max[0], c->rooms[i].size_min[1],
                       c->rooms[i].size_max[1], c->rooms[i].size_min[2], c->rooms[i].size_max[2], c->rooms[i].t60_min,
                       c->rooms[i].t60_max);
    bp_sbuf_printf(&b, "\n  geometry   %u distance classes (%d..%d), listener %.2f–%.2f m, elevation below %g° %s\n",
                   c->n_distance_classes, c->distance_classes[0], c->distance_classes[c->n_distance_classes - 1],
                   c->listener_height[0], c->listener_height[1], c->min_elevation,
                   c->keep_low_elevation ? "kept and flagged" : "rejected");
    bp_sbuf_printf(&b, "  simulator  %s %s (%s)\n", c->sim_type, s->sim->desc->version, s->sim->plugin->path);
    bp_sbuf_printf(&b, "  audio      %.0f Hz, %.2f s, RMS %g dBFS, placement %s, RIR %.2f s, FLAC %s, gain %g dB\n",
                   c->sample_rate, (double)c->clip_samples / c->sample_rate, c->rms_dbfs,
                   c->placement == SYNTH_PLACEMENT_CORPUS   ? "per corpus row"
                   : c->placement == SYNTH_PLACEMENT_REPEAT ? "repeat"
                   : c->placement == SYNTH_PLACEMENT_LOOP   ? "loop"
                                                            : "once",
                   c->rir_seconds, c->subtype, c->gain_db);
    bp_sbuf_printf(&b, "  output     %s\n", c->out_dir ? c->out_dir : "(not set: pass --out DIR or -o output.dir=DIR)");
    s->plan = b.s;
}

bp_status bp_synth_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n, bp_synth **out,
                        bp_error *err) {
    *out = NULL;
    bp_synth *s = calloc(1, sizeof *s);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    s->reg = reg;
    bp_status st = bp_config_load_file(path, &s->config, err);
    for (uint32_t i = 0; i < n && st == BP_OK; i++) st = bp_config_apply_override(s->config, overrides[i], err);
    if (st == BP_OK) st = synth_config_parse(s->config, &s->cfg, err);
    if (st == BP_OK) st = synth_rooms_check(&s->cfg, err);
    if (st == BP_OK) {
        bp_sbuf b = {0};
        st = bp_config_to_text(s->config, &b, err);
        s->config_text = b.s;
    }
    if (st == BP_OK) st = synth_corpus_load(&s->cfg, &s->corpus, err);
    if (st == BP_OK) {
        s->sim = bp_registry_find(reg, BP_KIND_SIMULATOR, s->cfg.sim_type);
        if (!s->sim) {
            char choices[512];
            bp_registry_choices(reg, BP_KIND_SIMULATOR, choices, sizeof choices);
            st = bp_error_set(err, BP_ERR_NOT_FOUND, "%s: simulator.type: no simulator plugin '%s' (available: %s)",
                              s->cfg.sim_where, s->cfg.sim_type, *choices ? choices : "none found");
        }
    }
    if (st == BP_OK) {
        static const char *const reserved[] = {"type", NULL};
        char label[128];
        snprintf(label, sizeof label, "simulator (%s)", s->cfg.sim_type);
        st = bp_paramset_build(s->sim->desc, label, s->config, synth_config_sim_group(s->config), reserved,
                               &s->sim_params, err);
    }
    if (st == BP_OK) {
        int32_t threads = bp_registry_threads(reg);
        bp_registry_set_threads(reg, 1); /* scenes run in parallel, one simulator per worker */
        void *inst = NULL;
        st = bp_registry_create(reg, s->sim, bp_paramset_params(s->sim_params), NULL, &inst, err);
        bp_registry_set_threads(reg, threads);
        if (st == BP_OK)
            s->sim0 = inst;
        else
            bp_error_prefix(err, "%s: ", s->cfg.sim_where);
    }
    if (st == BP_OK) {
        s->manifest = synth_manifest_build(&s->cfg, &s->corpus, s->sim->desc->version,
                                           params_json(bp_paramset_params(s->sim_params)));
        if (!s->manifest) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    if (st == BP_OK) {
        build_plan(s);
        const bp_host *h = bp_registry_host(reg);
        for (uint32_t i = 0; i < s->corpus.n_skipped && i < 20; i++)
            bp_logf(h, BP_LOG_WARN, "synth", "skipping corpus file %s", s->corpus.skipped[i]);
        if (s->corpus.n_skipped > 20)
            bp_logf(h, BP_LOG_WARN, "synth", "... and %u more skipped corpus files (see skipped_sources.tsv)",
                    s->corpus.n_skipped - 20);
    }
    if (st != BP_OK) {
        bp_synth_free(s);
        return st;
    }
    *out = s;
    return BP_OK;
}

void bp_synth_free(bp_synth *s) {
    if (!s) return;
    if (s->sim0 && s->sim0->destroy) s->sim0->destroy(s->sim0);
    bp_paramset_free(s->sim_params);
    synth_corpus_free(&s->corpus);
    synth_config_free(&s->cfg);
    bp_config_free(s->config);
    json_decref(s->manifest);
    free(s->config_text);
    free(s->plan);
    free(s);
}

const char *bp_synth_plan(const bp_synth *s) { return s->plan ? s->plan : ""; }
uint32_t bp_synth_skipped_count(const bp_synth *s) { return s->corpus.n_skipped; }
const char *bp_synth_skipped_at(const bp_synth *s, uint32_t i) {
    return i < s->corpus.n_skipped ? s->corpus.skipped[i] : NULL;
}

/* ---------------------------------------------------------- output dir -- */

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bp_status write_text(const char *path, const char *text, bp_error *err) {
    return bp_write_file_atomic(path, text, strlen(text), err);
}

/* Create the layout; adopt or check the manifest. */
static bp_status prepare_dir(bp_synth *s, const char *dir, bp_error *err) {
    bp_status st = bp_mkdir_p(dir, err);
    for (int sp = 0; sp < SYNTH_SPLITS && st == BP_OK; sp++) {
        char *a = bp_strdupf("%s/audio/%s", dir, synth_split_name(sp));
        char *r = bp_strdupf("%s/scenes/%s", dir, synth_split_name(sp));
        char *q = s->cfg.save_rirs ? bp_strdupf("%s/rirs/%s", dir, synth_split_name(sp)) : NULL;
        if (!a || !r || (s->cfg.save_rirs && !q)) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        if (st == BP_OK) st = bp_mkdir_p(a, err);
        if (st == BP_OK) st = bp_mkdir_p(r, err);
        if (st == BP_OK && q) st = bp_mkdir_p(q, err);
        free(a);
        free(r);
        free(q);
    }
    if (st != BP_OK) return st;
    char *mpath = bp_strdupf("%s/synth.json", dir);
    if (!mpath) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    if (file_exists(mpath)) {
        json_t *old;
        st = synth_json_read(mpath, &old, err);
        if (st == BP_OK) {
            const char *a = synth_manifest_fingerprint(old), *b = synth_manifest_fingerprint(s->manifest);
            if (!a || !b || strcmp(a, b) != 0)
                st =
                    bp_error_set(err, BP_ERR_INVALID,
                                 "%s holds a set made with another configuration, corpus or simulator (fingerprint %s, "
                                 "this one %s); use another output directory, or delete that one to start over",
                                 dir, a ? a : "?", b ? b : "?");
            json_decref(old);
        }
    } else {
        st = synth_json_write(mpath, s->manifest, 0, err);
    }
    free(mpath);
    if (st != BP_OK) return st;
    char *cpath = bp_strdupf("%s/synth.cfg", dir), *kpath = bp_strdupf("%s/skipped_sources.tsv", dir);
    if (!cpath || !kpath) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    if (st == BP_OK && !file_exists(cpath) && s->config_text) st = write_text(cpath, s->config_text, err);
    if (st == BP_OK) {
        bp_sbuf b = {0};
        bp_sbuf_printf(&b, "file\treason\n");
        for (uint32_t i = 0; i < s->corpus.n_skipped; i++) {
            const char *e = s->corpus.skipped[i], *colon = strstr(e, ": ");
            bp_sbuf_printf(&b, "%.*s\t%s\n", (int)(colon ? colon - e : (long)strlen(e)), e, colon ? colon + 2 : "");
        }
        st = b.failed ? bp_error_set(err, BP_ERR_NOMEM, "out of memory") : write_text(kpath, b.s, err);
        bp_sbuf_free(&b);
    }
    free(cpath);
    free(kpath);
    return st;
}

static int scene_done(const char *dir, const char *id, int32_t split) {
    char rel[160], p[1400];
    synth_record_rel(id, split, rel, sizeof rel);
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    if (!file_exists(p)) return 0;
    synth_audio_rel(id, split, rel, sizeof rel);
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return file_exists(p);
}

typedef struct task {
    int32_t split, kind;
    int64_t index;
} task;

/* Global scene numbering used by shards: train single, train two, eval single, eval two. */
static int in_shard(int64_t g, uint32_t i, uint32_t n) { return n <= 1 || (uint64_t)g % n == i; }

/* Remove temporary files a killed run of this shard left behind
 * (".<scene>.flac.XXXXXX" beside the audio, ".<scene>.json.XXXXXX" beside
 * the records). Other shards' temporaries are left alone. */
static void clean_stale(const bp_synth *s, const char *dir, uint32_t shard, uint32_t n_shards) {
    static const char *const subs[] = {"audio", "scenes", "rirs"};
    for (int sp = 0; sp < SYNTH_SPLITS; sp++)
        for (int k = 0; k < 3; k++) {
            char *d = bp_strdupf("%s/%s/%s", dir, subs[k], synth_split_name(sp));
            DIR *dd = d ? opendir(d) : NULL;
            struct dirent *e;
            while (dd && (e = readdir(dd))) {
                if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                char id[96];
                snprintf(id, sizeof id, "%s", e->d_name + 1);
                char *dot = strchr(id, '.');
                if (dot) *dot = '\0';
                char *us = strrchr(id, '_'); /* rirs: <scene>_<k> */
                if (k == 2 && us) *us = '\0';
                int32_t split, kind;
                int64_t index;
                if (synth_scene_id_parse(id, &split, &kind, &index) != 0) continue;
                int64_t g = 0;
                for (int32_t a = 0; a < SYNTH_SPLITS; a++)
                    for (int32_t b = 0; b < SYNTH_KINDS; b++)
                        if (a < split || (a == split && b < kind)) g += s->cfg.counts[a][b];
                if (!in_shard(g + index, shard, n_shards)) continue;
                char *p = bp_strdupf("%s/%s", d, e->d_name);
                if (p) unlink(p);
                free(p);
            }
            if (dd) closedir(dd);
            free(d);
        }
}

/* ------------------------------------------------------------------ run -- */

typedef struct run_ctx run_ctx;

typedef struct worker {
    run_ctx *run;
    bp_simulator *sim;
    int own_sim;
    synth_render *render;
    pthread_t thread;
    int started;
} worker;

struct run_ctx {
    bp_synth *s;
    synth_ctx x;
    const char *dir;
    task *tasks;
    int64_t n_tasks, next, taken, done, scaled, replaced;
    int32_t active; /* workers still running */
    int64_t max_scenes;
    int stop, failed;
    bp_error err;
    char last[64];
    const bp_host *host;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* The simulator's mid-band reverberation time, if it reports one. */
static double sim_rt60(const synth_src *src) {
    double v500 = NAN, v1k = NAN, any = NAN;
    for (uint32_t i = 0; i < src->n_stats; i++) {
        const char *n = src->stat_names[i];
        if (!strstr(n, "t60") && !strstr(n, "T60") && !strstr(n, "rt60")) continue;
        if (strstr(n, "sabine")) continue;
        if (strstr(n, "_500"))
            v500 = src->stat_values[i];
        else if (strstr(n, "_1000") || strstr(n, "_1k"))
            v1k = src->stat_values[i];
        else if (!strstr(n, "hz") && !strstr(n, "Hz"))
            any = src->stat_values[i];
    }
    if (isfinite(v500) && isfinite(v1k)) return 0.5 * (v500 + v1k);
    if (isfinite(v500)) return v500;
    return any;
}

static bp_status process_scene(worker *w, const task *t, synth_scene *sc, bp_error *err) {
    run_ctx *run = w->run;
    const synth_cfg *cfg = &run->s->cfg;
    bp_status st = synth_scene_sample(&run->x, t->split, t->kind, t->index, sc, err);
    if (st != BP_OK) return st;
    synth_render_clear_mix(w->render);
    bp_sim_room room;
    synth_room_to_sim(cfg, &sc->room, &room);
    for (uint32_t k = 0; k < sc->n_src && st == BP_OK; k++) {
        st = synth_render_source(w->render, &run->x, sc, k, err);
        if (st != BP_OK) break;
        bp_sim_request req;
        memset(&req, 0, sizeof req);
        req.struct_size = sizeof req;
        req.room = &room;
        memcpy(req.source, sc->src[k].pos, sizeof req.source);
        memcpy(req.listener, sc->listener, sizeof req.listener);
        req.sample_rate = cfg->sample_rate;
        req.max_seconds = cfg->rir_seconds;
        req.seed = synth_seed(cfg->seed, t->split, t->kind, t->index, SYNTH_STREAM_SIM0 + k);
        const bp_tensor *rir = NULL;
        st = w->sim->render(w->sim, &req, &rir, err);
        if (st != BP_OK) {
            bp_error_prefix(err, "scene %s, source %u: simulator %s: ", sc->id, k, cfg->sim_type);
            break;
        }
        if (!rir) {
            st = bp_error_set(err, BP_ERR_INTERNAL, "scene %s: simulator %s returned no response", sc->id,
                              cfg->sim_type);
            break;
        }
        if (w->sim->last_stats) {
            const char *names[SYNTH_MAX_STATS];
            double values[SYNTH_MAX_STATS];
            uint32_t n = 0;
            bp_error e2 = BP_ERROR_INIT;
            if (w->sim->last_stats(w->sim, names, values, SYNTH_MAX_STATS, &n, &e2) == BP_OK) {
                sc->src[k].n_stats = n < SYNTH_MAX_STATS ? n : SYNTH_MAX_STATS;
                for (uint32_t i = 0; i < sc->src[k].n_stats; i++) {
                    snprintf(sc->src[k].stat_names[i], sizeof sc->src[k].stat_names[i], "%s",
                             names[i] ? names[i] : "?");
                    sc->src[k].stat_values[i] = values[i];
                }
            }
        }
        if (cfg->save_rirs) {
            char *p = bp_strdupf("%s/rirs/%s/%s_%u.npy", run->dir, synth_split_name(sc->split), sc->id, k);
            st = p ? bp_npy_write(p, rir, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            free(p);
            if (st != BP_OK) break;
        }
        st = synth_render_convolve_add(w->render, rir, sc->n_src == 2 ? 0.5f : 1.0f, err);
        if (st != BP_OK) bp_error_prefix(err, "scene %s: ", sc->id);
    }
    if (st != BP_OK) return st;
    double rt = sim_rt60(&sc->src[0]);
    sc->rt60 = isfinite(rt) && rt > 0 ? rt : synth_mid_t60(sc->room.eyring_t60);
    bp_tensor mix;
    st = synth_render_finish(w->render, cfg, sc, &mix, err);
    if (st != BP_OK) return st;
    synth_qa qa[SYNTH_MAX_QA];
    uint32_t n_qa = 0;
    st = synth_qa_generate(&run->x, sc, qa, SYNTH_MAX_QA, &n_qa, err);
    if (st != BP_OK) return st;
    json_t *rec = synth_record_build(&run->x, sc, qa, n_qa);
    synth_qa_free(qa, n_qa);
    if (!rec) return bp_error_set(err, BP_ERR_NOMEM, "scene %s: out of memory", sc->id);
    char rel[160], path[1400];
    synth_audio_rel(sc->id, sc->split, rel, sizeof rel);
    snprintf(path, sizeof path, "%s/%s", run->dir, rel);
    st = bp_audio_write(path, &mix, cfg->sample_rate, cfg->subtype, err);
    if (st == BP_OK) {
        synth_record_rel(sc->id, sc->split, rel, sizeof rel);
        snprintf(path, sizeof path, "%s/%s", run->dir, rel);
        st = synth_json_write(path, rec, 0, err);
    }
    json_decref(rec);
    if (st != BP_OK) bp_error_prefix(err, "scene %s: ", sc->id);
    return st;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    run_ctx *run = w->run;
    for (;;) {
        pthread_mutex_lock(&run->mu);
        if (run->host && run->host->cancelled && run->host->cancelled(run->host)) run->stop = 1;
        if (run->max_scenes > 0 && run->taken >= run->max_scenes) run->stop = 1;
        if (run->stop || run->next >= run->n_tasks) {
            pthread_mutex_unlock(&run->mu);
            break;
        }
        task t = run->tasks[run->next++];
        run->taken++;
        pthread_mutex_unlock(&run->mu);
        bp_error err = BP_ERROR_INIT;
        synth_scene sc;
        bp_status st = process_scene(w, &t, &sc, &err);
        pthread_mutex_lock(&run->mu);
        if (st != BP_OK) {
            if (!run->failed) {
                run->failed = 1;
                run->err = err;
                run->err.code = st;
            }
            run->stop = 1;
        } else {
            run->done++;
            run->scaled += sc.scaled;
            for (uint32_t k = 0; k < sc.n_src; k++) run->replaced += (int64_t)json_array_size(sc.src[k].replaced);
            snprintf(run->last, sizeof run->last, "%s", sc.id);
        }
        pthread_cond_signal(&run->cv);
        pthread_mutex_unlock(&run->mu);
        synth_scene_clear(&sc);
    }
    pthread_mutex_lock(&run->mu);
    run->active--;
    pthread_cond_signal(&run->cv);
    pthread_mutex_unlock(&run->mu);
    return NULL;
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 4096 ? (int)n : 1;
}

static bp_status render_tasks(bp_synth *s, run_ctx *run, int32_t n_threads, const bp_synth_options *opt,
                              bp_synth_report *rep, bp_error *err) {
    synth_fft *fft = NULL;
    int64_t rir_samples = (int64_t)ceil(s->cfg.rir_seconds * s->cfg.sample_rate);
    bp_status st = synth_fft_new(s->cfg.clip_samples, rir_samples, &fft, err);
    if (st != BP_OK) return st;
    worker *ws = calloc((size_t)n_threads, sizeof *ws);
    if (!ws) {
        synth_fft_free(fft);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    int32_t threads = bp_registry_threads(s->reg);
    bp_registry_set_threads(s->reg, 1);
    for (int32_t i = 0; i < n_threads && st == BP_OK; i++) {
        ws[i].run = run;
        st = synth_render_new(fft, &ws[i].render, err);
        if (st != BP_OK) break;
        if (i == 0) {
            ws[i].sim = s->sim0;
        } else {
            void *inst = NULL;
            st = bp_registry_create(s->reg, s->sim, bp_paramset_params(s->sim_params), NULL, &inst, err);
            if (st != BP_OK) bp_error_prefix(err, "%s: ", s->cfg.sim_where);
            ws[i].sim = inst;
            ws[i].own_sim = 1;
        }
    }
    bp_registry_set_threads(s->reg, threads);
    double t0 = bp_now();
    for (int32_t i = 0; i < n_threads && st == BP_OK; i++) {
        pthread_mutex_lock(&run->mu);
        run->active++;
        pthread_mutex_unlock(&run->mu);
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            st = bp_error_set(err, BP_ERR_NOMEM, "synth: cannot start worker thread %d", (int)i);
            pthread_mutex_lock(&run->mu);
            run->active--;
            run->stop = 1;
            pthread_mutex_unlock(&run->mu);
            break;
        }
        ws[i].started = 1;
    }
    /* progress on the calling thread, until every worker has left */
    pthread_mutex_lock(&run->mu);
    int64_t reported = -1;
    for (;;) {
        if (run->host && run->host->cancelled && run->host->cancelled(run->host)) run->stop = 1;
        if (opt->progress && run->done != reported) {
            int64_t d = run->done;
            char last[64];
            snprintf(last, sizeof last, "%s", run->last);
            pthread_mutex_unlock(&run->mu);
            opt->progress(opt->progress_user, (uint64_t)d, (uint64_t)run->n_tasks, last, bp_now() - t0);
            pthread_mutex_lock(&run->mu);
            reported = d;
            continue;
        }
        if (run->active == 0) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&run->cv, &run->mu, &ts);
    }
    pthread_mutex_unlock(&run->mu);
    for (int32_t i = 0; i < n_threads; i++)
        if (ws[i].started) pthread_join(ws[i].thread, NULL);
    for (int32_t i = 0; i < n_threads; i++) {
        synth_render_free(ws[i].render);
        if (ws[i].own_sim && ws[i].sim && ws[i].sim->destroy) ws[i].sim->destroy(ws[i].sim);
    }
    free(ws);
    synth_fft_free(fft);
    rep->scenes_rendered = run->done;
    rep->scenes_scaled = run->scaled;
    rep->sources_replaced = run->replaced;
    if (st != BP_OK) return st;
    if (run->failed) {
        *err = run->err;
        return (bp_status)run->err.code;
    }
    return BP_OK;
}

bp_status bp_synth_run(bp_synth *s, const bp_synth_options *opt_in, bp_synth_report *rep_out, bp_error *err) {
    bp_synth_options opt = bp_synth_options_default();
    if (opt_in) memcpy(&opt, opt_in, opt_in->struct_size < sizeof opt ? opt_in->struct_size : sizeof opt);
    bp_synth_report rep;
    memset(&rep, 0, sizeof rep);
    rep.struct_size = sizeof rep;
    double t0 = bp_now();
    const char *dir = opt.out_dir ? opt.out_dir : s->cfg.out_dir;
    bp_status st = BP_OK;
    if (!dir)
        st = bp_error_set(err, BP_ERR_INVALID,
                          "synth: no output directory: set output.dir in the configuration or pass one");
    uint32_t n_shards = opt.shard_count ? opt.shard_count : 1;
    if (st == BP_OK && opt.shard_index >= n_shards)
        st = bp_error_set(err, BP_ERR_INVALID, "synth: shard %u/%u: the index must be below the count", opt.shard_index,
                          n_shards);
    if (st == BP_OK) {
        snprintf(rep.out_dir, sizeof rep.out_dir, "%s", dir);
        st = prepare_dir(s, dir, err);
    }
    run_ctx run;
    memset(&run, 0, sizeof run);
    if (st == BP_OK) {
        int64_t total = 0;
        for (int sp = 0; sp < SYNTH_SPLITS; sp++)
            for (int k = 0; k < SYNTH_KINDS; k++) total += s->cfg.counts[sp][k];
        rep.scenes_total = total;
        run.tasks = malloc((size_t)(total ? total : 1) * sizeof *run.tasks);
        if (!run.tasks) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        int64_t g = 0;
        for (int32_t sp = 0; sp < SYNTH_SPLITS && st == BP_OK; sp++)
            for (int32_t k = 0; k < SYNTH_KINDS; k++)
                for (int64_t i = 0; i < s->cfg.counts[sp][k]; i++, g++) {
                    if (!in_shard(g, opt.shard_index, n_shards)) continue;
                    rep.scenes_in_shard++;
                    char id[64];
                    synth_scene_id(sp, k, i, id, sizeof id);
                    if (scene_done(dir, id, sp)) {
                        rep.scenes_existing++;
                        continue;
                    }
                    run.tasks[run.n_tasks++] = (task){sp, k, i};
                }
    }
    if (st == BP_OK && run.n_tasks > 0) {
        clean_stale(s, dir, opt.shard_index, n_shards);
        run.s = s;
        run.x.cfg = &s->cfg;
        run.x.corpus = &s->corpus;
        run.dir = dir;
        run.max_scenes = opt.max_scenes;
        run.host = bp_registry_host(s->reg);
        pthread_mutex_init(&run.mu, NULL);
        pthread_cond_init(&run.cv, NULL);
        int32_t n = opt.n_threads > 0 ? opt.n_threads : s->cfg.threads > 0 ? s->cfg.threads : online_cpus();
        if (n > run.n_tasks) n = (int32_t)run.n_tasks;
        st = render_tasks(s, &run, n, &opt, &rep, err);
        pthread_mutex_destroy(&run.mu);
        pthread_cond_destroy(&run.cv);
        if (st == BP_OK && run.stop && run.done < run.n_tasks) {
            int cancelled = run.host && run.host->cancelled && run.host->cancelled(run.host);
            st = bp_error_set(
                err, BP_ERR_CANCELLED,
                "synth: %s after %lld of %lld scenes; finished scenes are kept: run the same command again "
                "to resume",
                cancelled ? "cancelled" : "stopped (max_scenes reached)", (long long)run.done, (long long)run.n_tasks);
        }
    }
    free(run.tasks);
    if (st == BP_OK && opt.finalize && n_shards <= 1) {
        st = synth_final_write(dir, s->manifest, &rep, err);
    } else if (st == BP_OK) {
        /* count what the whole set still lacks */
        int64_t missing = 0;
        for (int32_t sp = 0; sp < SYNTH_SPLITS; sp++)
            for (int32_t k = 0; k < SYNTH_KINDS; k++)
                for (int64_t i = 0; i < s->cfg.counts[sp][k]; i++) {
                    char id[64];
                    synth_scene_id(sp, k, i, id, sizeof id);
                    missing += !scene_done(dir, id, sp);
                }
        rep.scenes_missing = missing;
    }
    rep.seconds = bp_now() - t0;
    if (rep_out) *rep_out = rep;
    return st;
}

/* ---------------------------------------------------------------- merge -- */

/* Hard-link src to dst, or copy it atomically (another file system). */
static bp_status link_or_copy(const char *src, const char *dst, bp_error *err) {
    if (link(src, dst) == 0 || errno == EEXIST) return BP_OK;
    FILE *f = fopen(src, "rb");
    if (!f) return bp_error_set(err, BP_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
    bp_sbuf b = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        size_t need = b.len + n + 1;
        if (bp_grow((void **)&b.s, &b.cap, need, 1) != 0) {
            b.failed = 1;
            break;
        }
        memcpy(b.s + b.len, buf, n);
        b.len += n;
    }
    int bad = ferror(f);
    fclose(f);
    bp_status st = bad        ? bp_error_set(err, BP_ERR_IO, "%s: cannot read", src)
                   : b.failed ? bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", src)
                              : bp_write_file_atomic(dst, b.s ? b.s : "", b.len, err);
    bp_sbuf_free(&b);
    return st;
}

static int64_t manifest_count(const json_t *m, int32_t sp, int32_t k) {
    const json_t *sc = json_object_get(json_object_get(m, "settings"), "scenes");
    return json_integer_value(json_object_get(json_object_get(sc, synth_split_name(sp)), synth_kind_name(k)));
}

bp_status bp_synth_merge(const char *out_dir, const char *const *shard_dirs, uint32_t n_shard_dirs,
                         bp_synth_report *rep_out, bp_error *err) {
    bp_synth_report rep;
    memset(&rep, 0, sizeof rep);
    rep.struct_size = sizeof rep;
    snprintf(rep.out_dir, sizeof rep.out_dir, "%s", out_dir);
    double t0 = bp_now();
    char *mpath = bp_strdupf("%s/synth.json", out_dir);
    if (!mpath) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    json_t *m = NULL;
    bp_status st = BP_OK;
    if (file_exists(mpath)) {
        st = synth_json_read(mpath, &m, err);
    } else if (n_shard_dirs > 0) {
        /* adopt the first shard's manifest and provenance files */
        st = bp_mkdir_p(out_dir, err);
        char *src = bp_strdupf("%s/synth.json", shard_dirs[0]);
        if (st == BP_OK) st = src ? synth_json_read(src, &m, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        free(src);
        if (st == BP_OK) st = synth_json_write(mpath, m, 0, err);
        static const char *const extra[] = {"synth.cfg", "skipped_sources.tsv"};
        for (int i = 0; i < 2 && st == BP_OK; i++) {
            char *a = bp_strdupf("%s/%s", shard_dirs[0], extra[i]), *b = bp_strdupf("%s/%s", out_dir, extra[i]);
            if (a && b && file_exists(a) && !file_exists(b)) st = link_or_copy(a, b, err);
            free(a);
            free(b);
        }
    } else {
        st = bp_error_set(err, BP_ERR_NOT_FOUND, "%s: no synth.json: not a batpipe synth output directory", out_dir);
    }
    free(mpath);
    for (int32_t sp = 0; sp < SYNTH_SPLITS && st == BP_OK; sp++) {
        static const char *const subs[] = {"audio", "scenes"};
        for (int k = 0; k < 2 && st == BP_OK; k++) {
            char *d = bp_strdupf("%s/%s/%s", out_dir, subs[k], synth_split_name(sp));
            st = d ? bp_mkdir_p(d, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            free(d);
        }
    }
    for (uint32_t sd = 0; sd < n_shard_dirs && st == BP_OK; sd++) {
        char *p = bp_strdupf("%s/synth.json", shard_dirs[sd]);
        json_t *om = NULL;
        st = p ? synth_json_read(p, &om, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        free(p);
        if (st != BP_OK) break;
        const char *a = synth_manifest_fingerprint(m), *b = synth_manifest_fingerprint(om);
        if (!a || !b || strcmp(a, b) != 0)
            st = bp_error_set(err, BP_ERR_INVALID,
                              "%s was made with another configuration (fingerprint %s) than %s (%s)", shard_dirs[sd],
                              b ? b : "?", out_dir, a ? a : "?");
        json_decref(om);
        for (int32_t sp = 0; sp < SYNTH_SPLITS && st == BP_OK; sp++)
            for (int32_t k = 0; k < SYNTH_KINDS && st == BP_OK; k++)
                for (int64_t i = 0; i < manifest_count(m, sp, k) && st == BP_OK; i++) {
                    char id[64];
                    synth_scene_id(sp, k, i, id, sizeof id);
                    if (scene_done(out_dir, id, sp) || !scene_done(shard_dirs[sd], id, sp)) continue;
                    char rel[160], *src, *dst;
                    /* audio first, the record (which marks the scene done) last */
                    synth_audio_rel(id, sp, rel, sizeof rel);
                    src = bp_strdupf("%s/%s", shard_dirs[sd], rel);
                    dst = bp_strdupf("%s/%s", out_dir, rel);
                    st = src && dst ? link_or_copy(src, dst, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                    free(src);
                    free(dst);
                    if (st != BP_OK) break;
                    synth_record_rel(id, sp, rel, sizeof rel);
                    src = bp_strdupf("%s/%s", shard_dirs[sd], rel);
                    dst = bp_strdupf("%s/%s", out_dir, rel);
                    st = src && dst ? link_or_copy(src, dst, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                    free(src);
                    free(dst);
                    rep.scenes_existing++;
                }
    }
    if (st == BP_OK) {
        for (int32_t sp = 0; sp < SYNTH_SPLITS; sp++)
            for (int32_t k = 0; k < SYNTH_KINDS; k++) rep.scenes_total += manifest_count(m, sp, k);
        st = synth_final_write(out_dir, m, &rep, err);
    }
    json_decref(m);
    rep.seconds = bp_now() - t0;
    if (rep_out) *rep_out = rep;
    return st;
}
