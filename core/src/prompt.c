/* batpipe — prompt templates: the BAT instruction prompt and the chat
 * template families batpipe renders without a Jinja interpreter. */
#include "batpipe/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static bp_status finish(bp_sbuf *b, char **out, bp_error *err) {
    if (b->failed || !b->s) {
        bp_sbuf_free(b);
        return bp_error_set(err, BP_ERR_NOMEM, "prompt: out of memory");
    }
    *out = b->s;
    return BP_OK;
}

bp_status bp_prompt_bat(const char *instruction, char **out, bp_error *err) {
    *out = NULL;
    if (!instruction) return bp_error_set(err, BP_ERR_INVALID, "prompt: NULL instruction");
    static const char tmpl[] = BP_PROMPT_BAT_TEMPLATE;
    const char *at = strstr(tmpl, "{instruction}");
    bp_sbuf b = {0};
    bp_sbuf_printf(&b, "%.*s%s%s", (int)(at - tmpl), tmpl, instruction, at + strlen("{instruction}"));
    return finish(&b, out, err);
}

bp_chat_format bp_chat_format_detect(const char *jinja) {
    if (!jinja) return BP_CHAT_UNKNOWN;
    if (strstr(jinja, "<|im_start|>") && strstr(jinja, "<|im_end|>")) return BP_CHAT_CHATML;
    if (strstr(jinja, "[INST]") && strstr(jinja, "[/INST]")) return BP_CHAT_LLAMA2;
    return BP_CHAT_UNKNOWN;
}

const char *bp_chat_format_name(int32_t format) {
    switch (format) {
    case BP_CHAT_CHATML: return "chatml";
    case BP_CHAT_LLAMA2: return "llama2";
    default: return "unknown";
    }
}

/* The default system message of a ChatML template: the text of a literal
 * '<|im_start|>system\n...<|im_end|>' in it, Jinja escapes undone; NULL
 * when there is none. Caller frees. */
static char *chatml_default_system(const char *jinja) {
    static const char head[] = "<|im_start|>system";
    const char *p = strstr(jinja, head);
    if (!p) return NULL;
    p += strlen(head);
    if (p[0] == '\n')
        p++;
    else if (p[0] == '\\' && p[1] == 'n')
        p += 2;
    else
        return NULL; /* "<|im_start|>system" + variable: no literal default */
    const char *end = strstr(p, "<|im_end|>");
    if (!end) return NULL;
    char *s = malloc((size_t)(end - p) + 1);
    if (!s) return NULL;
    size_t n = 0;
    for (const char *q = p; q < end; q++) {
        if (*q == '\\' && q + 1 < end) {
            q++;
            s[n++] = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q;
        } else {
            if (*q == '\'' || *q == '"' || *q == '{' || *q == '}') { /* the literal was split: not a plain default */
                free(s);
                return NULL;
            }
            s[n++] = *q;
        }
    }
    s[n] = '\0';
    return s;
}

static void render_chatml(const char *jinja, const bp_chat_message *m, int32_t n, int32_t gen, bp_sbuf *b) {
    if (n == 0 || strcmp(m[0].role, "system") != 0) {
        char *sys = chatml_default_system(jinja);
        if (sys) bp_sbuf_printf(b, "<|im_start|>system\n%s<|im_end|>\n", sys);
        free(sys);
    }
    for (int32_t i = 0; i < n; i++) bp_sbuf_printf(b, "<|im_start|>%s\n%s<|im_end|>\n", m[i].role, m[i].content);
    if (gen) bp_sbuf_printf(b, "<|im_start|>assistant\n");
}

/* Jinja's str.strip(): leading and trailing whitespace. */
static void put_stripped(bp_sbuf *b, const char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    bp_sbuf_printf(b, "%.*s", (int)n, s);
}

/* LLaMA-2-Chat: <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] ... */
static bp_status render_llama2(const bp_chat_message *m, int32_t n, const char *bos, const char *eos, bp_sbuf *b,
                               bp_error *err) {
    const char *sys = NULL;
    int32_t i = 0;
    if (n > 0 && strcmp(m[0].role, "system") == 0) sys = m[i++].content;
    for (int first = 1; i < n; i++, first = 0) {
        if (strcmp(m[i].role, "user") == 0) {
            bp_sbuf_printf(b, "%s[INST] ", bos ? bos : "");
            if (first && sys) {
                bp_sbuf_printf(b, "<<SYS>>\n");
                put_stripped(b, sys);
                bp_sbuf_printf(b, "\n<</SYS>>\n\n");
            }
            put_stripped(b, m[i].content);
            bp_sbuf_printf(b, " [/INST]");
        } else if (strcmp(m[i].role, "assistant") == 0) {
            bp_sbuf_printf(b, " ");
            put_stripped(b, m[i].content);
            bp_sbuf_printf(b, " %s", eos ? eos : "");
        } else {
            return bp_error_set(err, BP_ERR_INVALID,
                                "prompt: llama2 chat template: message %d has role '%s' (user/assistant after one "
                                "optional system message)", i, m[i].role);
        }
    }
    return BP_OK;
}

bp_status bp_chat_render(const char *jinja, const bp_chat_message *msgs, int32_t n_msgs, int32_t add_generation_prompt,
                         const char *bos, const char *eos, char **out, bp_error *err) {
    *out = NULL;
    if (n_msgs < 0 || (n_msgs > 0 && !msgs)) return bp_error_set(err, BP_ERR_INVALID, "prompt: invalid messages");
    for (int32_t i = 0; i < n_msgs; i++)
        if (!msgs[i].role || !msgs[i].content)
            return bp_error_set(err, BP_ERR_INVALID, "prompt: message %d lacks a role or content", i);
    bp_chat_format f = bp_chat_format_detect(jinja);
    bp_sbuf b = {0};
    bp_sbuf_printf(&b, "%s", "");
    switch (f) {
    case BP_CHAT_CHATML: render_chatml(jinja, msgs, n_msgs, add_generation_prompt, &b); break;
    case BP_CHAT_LLAMA2: {
        bp_status st = render_llama2(msgs, n_msgs, bos, eos, &b, err);
        if (st != BP_OK) {
            bp_sbuf_free(&b);
            return st;
        }
        break;
    }
    default:
        bp_sbuf_free(&b);
        if (!jinja) return bp_error_set(err, BP_ERR_UNSUPPORTED, "prompt: the model has no chat template");
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "prompt: the model's chat template is not one batpipe recognises (supported: chatml, "
                            "llama2); template starts: \"%.80s\"", jinja);
    }
    return finish(&b, out, err);
}
