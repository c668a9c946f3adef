/* batpipe ask CONFIG.cfg "QUESTION" [-o key=value ...] [--template chat|bat|none] ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batpipe/generate.h"
#include "batpipe/llm_config.h"
#include "batpipe/prompt.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: batpipe ask CONFIG.cfg \"QUESTION\" [-o key.path=value ...] [--template chat|bat|none]\n"
            "                   [--no-chat-template] [--system TEXT] [-v] [--audio FILE]\n"
            "\n"
            "Answers a question with the LLM of CONFIG.cfg (e.g. configs/llm/smollm2.cfg; the\n"
            "`llm` and `generate` sections are described in docs/config.md), streaming the\n"
            "answer to the terminal.\n"
            "  -o key.path=value   override a setting: -o generate.temperature=0.7,\n"
            "                      -o generate.max_tokens=64, -o llm.n_ctx=1024, -o threads=1\n"
            "  --template T        chat: the model's chat template (ChatML or LLaMA-2 [INST]);\n"
            "                      bat: the BAT paper's instruction prompt (Appendix G);\n"
            "                      none: the question as it is (default: generate.template)\n"
            "  --no-chat-template  the same as --template none (for models whose chat template\n"
            "                      batpipe does not recognise)\n"
            "  --system TEXT       system message for the chat template\n"
            "  -v                  print load time, prompt and answer tokens/s at the end\n"
            "  --audio FILE        NOT YET AVAILABLE: text-only for now; spatial-audio questions\n"
            "                      arrive when BAT (encoder + projector + LLM) is assembled\n");
}

typedef struct ask_args {
    const char *cfg, *question, *tmpl, *system;
    const char **ov;
    uint32_t n_ov;
    int verbose;
} ask_args;

/* 0 ok, 1 help printed, 2 usage error */
static int parse_args(int argc, char **argv, ask_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int has_next = i + 1 < argc;
        if ((strcmp(s, "-o") == 0 || strcmp(s, "--set") == 0) && has_next) {
            a->ov[a->n_ov++] = argv[++i];
        } else if (strncmp(s, "-o", 2) == 0 && s[2] && s[2] != '-') {
            a->ov[a->n_ov++] = s + 2;
        } else if (strcmp(s, "--template") == 0 && has_next) {
            a->tmpl = argv[++i];
            if (strcmp(a->tmpl, "chat") && strcmp(a->tmpl, "bat") && strcmp(a->tmpl, "none")) {
                fprintf(stderr, "batpipe ask: --template must be chat, bat or none (got '%s')\n", a->tmpl);
                return 2;
            }
        } else if (strcmp(s, "--no-chat-template") == 0) {
            a->tmpl = "none";
        } else if (strcmp(s, "--system") == 0 && has_next) {
            a->system = argv[++i];
        } else if (strcmp(s, "-v") == 0 || strcmp(s, "--verbose") == 0) {
            a->verbose = 1;
        } else if (strcmp(s, "--audio") == 0) {
            fprintf(stderr, "batpipe ask: --audio is not available yet: `ask` is text-only until BAT (spatial "
                            "audio encoder + projector + LLM) is assembled\n");
            return 2;
        } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            usage(stdout);
            return 1;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "batpipe ask: unknown option or missing value: '%s'\n", s);
            usage(stderr);
            return 2;
        } else if (!a->cfg) {
            a->cfg = s;
        } else if (!a->question) {
            a->question = s;
        } else {
            fprintf(stderr, "batpipe ask: too many arguments ('%s'); quote the question\n", s);
            return 2;
        }
    }
    if (!a->cfg || !a->question) {
        usage(stderr);
        return 2;
    }
    return 0;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The text of token `id` (for BOS/EOS in the llama2 template); "" when none. */
static void piece_text(bp_llm *llm, int32_t id, char *buf, int32_t cap) {
    int32_t n = 0;
    bp_error e = BP_ERROR_INIT;
    buf[0] = '\0';
    if (id >= 0 && llm->token_piece(llm, id, buf, cap - 1, &n, &e) == BP_OK && n < cap) buf[n] = '\0';
}

static bp_status build_prompt(bp_llm *llm, const bp_llm_info *info, const char *tmpl, const char *system,
                              const char *question, char **out, bp_error *err) {
    if (strcmp(tmpl, "bat") == 0) return bp_prompt_bat(question, out, err);
    if (strcmp(tmpl, "none") == 0) {
        *out = strdup(question);
        return *out ? BP_OK : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    bp_chat_message msgs[2];
    int32_t n = 0;
    if (system) msgs[n++] = (bp_chat_message){"system", system};
    msgs[n++] = (bp_chat_message){"user", question};
    char bos[64], eos[64];
    piece_text(llm, info->bos_id, bos, sizeof bos);
    piece_text(llm, info->eos_id, eos, sizeof eos);
    bp_status st = bp_chat_render(info->chat_template, msgs, n, 1, bos, eos, out, err);
    if (st == BP_ERR_UNSUPPORTED) {
        size_t l = strlen(err->msg);
        snprintf(err->msg + l, sizeof err->msg - l, "; use --no-chat-template or --template bat|none");
    }
    return st;
}

static bp_status tokenize(bp_llm *llm, const char *text, int32_t add_bos, int32_t **ids, int32_t *n, bp_error *err) {
    int32_t cap = 256;
    for (;;) {
        int32_t *v = realloc(*ids, (size_t)cap * sizeof *v);
        if (!v) return bp_error_set(err, BP_ERR_NOMEM, "out of memory for %d prompt tokens", cap);
        *ids = v;
        bp_status st = llm->tokenize(llm, text, add_bos, *ids, cap, n, err);
        if (st != BP_OK || *n <= cap) return st;
        cap = *n;
    }
}

/* End-of-turn tokens of the chat template, as single special tokens. */
static int32_t turn_stops(bp_llm *llm, int32_t *stops) {
    static const char *const names[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"};
    int32_t n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t id[4], m = 0;
        bp_error e = BP_ERROR_INIT;
        if (llm->tokenize(llm, names[i], 0, id, 4, &m, &e) == BP_OK && m == 1) stops[n++] = id[0];
    }
    return n;
}

static int32_t on_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return cli_cancelled();
}

static int ask(cli_ctx *c, const ask_args *a) {
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg;
    bp_llm_config *cfg = NULL;
    bp_llm *llm = NULL;
    bp_generator *gen = NULL;
    char *prompt = NULL;
    int32_t *ids = NULL, n_ids = 0;
    bp_generate_result res;
    memset(&res, 0, sizeof res);
    bp_status st = cli_registry(c, &reg, &err);
    if (st == BP_OK) st = bp_llm_config_load(reg, a->cfg, a->ov, a->n_ov, &cfg, &err);
    double t0 = seconds(), t_load = 0;
    if (st == BP_OK) st = bp_llm_config_create(cfg, &llm, &err);
    t_load = seconds() - t0;
    bp_llm_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (st == BP_OK) st = llm->info(llm, &info, &err);
    const char *tmpl = a->tmpl ? a->tmpl : (cfg ? bp_llm_config_template(cfg) : "chat");
    const char *system = a->system ? a->system : (cfg ? bp_llm_config_system(cfg) : NULL);
    if (st == BP_OK) st = build_prompt(llm, &info, tmpl, system, a->question, &prompt, &err);
    if (st == BP_OK) st = tokenize(llm, prompt, bp_llm_config_add_bos(cfg), &ids, &n_ids, &err);
    if (st == BP_OK && n_ids > info.n_ctx)
        st = bp_error_set(&err, BP_ERR_INVALID, "%s: prompt of %d tokens exceeds the model's context of %d",
                          a->cfg, n_ids, info.n_ctx);
    if (st == BP_OK) st = bp_generator_new(llm, &gen, &err);
    if (st == BP_OK) {
        bp_generate_params p;
        bp_llm_config_generate_params(cfg, &p);
        int32_t stops[8];
        if (strcmp(tmpl, "chat") == 0) {
            p.n_stop_tokens = turn_stops(llm, stops);
            p.stop_tokens = stops;
        }
        p.on_text = on_text;
        cli_install_signals();
        st = bp_generator_run(gen, ids, n_ids, &p, &res, &err);
        printf("\n");
        fflush(stdout);
        if (st == BP_OK && res.stop_reason == BP_STOP_CALLBACK)
            st = bp_error_set(&err, BP_ERR_CANCELLED, "interrupted");
    }
    if (st == BP_OK && (a->verbose || c->verbosity >= 2)) {
        double pt = res.prefill_seconds, dt = res.decode_seconds;
        int32_t n_eval = res.n_prompt - res.n_reused;
        fprintf(stderr,
                "[%s: %s, template %s] load %.2f s | prompt %d tokens in %.3f s (%.1f tok/s) | answer %d tokens in "
                "%.3f s (%.1f tok/s) | stop: %s\n",
                a->cfg, bp_llm_config_plugin(cfg), tmpl, t_load, n_eval, pt, pt > 0 ? n_eval / pt : 0.0,
                res.n_tokens, dt, dt > 0 ? res.n_tokens / dt : 0.0, bp_stop_reason_name(res.stop_reason));
    }
    int rc = st == BP_OK ? 0 : cli_fail("ask", st, &err);
    bp_generate_result_free(&res);
    bp_generator_free(gen);
    free(ids);
    free(prompt);
    if (llm) llm->destroy(llm);
    bp_llm_config_free(cfg);
    return rc;
}

int cmd_ask(cli_ctx *c, int argc, char **argv) {
    ask_args a;
    memset(&a, 0, sizeof a);
    a.ov = calloc((size_t)argc + 1, sizeof *a.ov);
    if (!a.ov) return 1;
    int r = parse_args(argc, argv, &a);
    int rc = r == 1 ? 0 : r == 2 ? 2 : ask(c, &a);
    free(a.ov);
    return rc;
}
