/* train: the JSONL log (one JSON object per line, flushed after each).
 * A resumed run first cuts the log back to the steps its checkpoint holds, so
 * that the log of a killed-and-resumed run lists each step once. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* Keep the complete lines whose "step" ≤ keep_until. */
static bp_status cut_log(const char *path, int64_t keep_until, bp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? BP_OK : bp_error_set(err, BP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    bp_sbuf out = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') break; /* an unfinished last line: dropped */
        json_t *j = json_loadb(line, (size_t)n, 0, NULL);
        json_t *s = j ? json_object_get(j, "step") : NULL;
        if (s && json_is_integer(s) && json_integer_value(s) <= keep_until) bp_sbuf_printf(&out, "%s", line);
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (out.failed) {
        bp_sbuf_free(&out);
        return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    }
    bp_status st = bp_write_file_atomic(path, out.s ? out.s : "", out.len, err);
    bp_sbuf_free(&out);
    return st;
}

bp_status train_log_open(train_log *l, const char *out_dir, int64_t keep_until, bp_error *err) {
    memset(l, 0, sizeof *l);
    l->path = bp_strdupf("%s/train.jsonl", out_dir);
    if (!l->path) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    bp_status st = keep_until >= 0 ? cut_log(l->path, keep_until, err) : BP_OK;
    if (st != BP_OK) return st;
    l->f = fopen(l->path, keep_until >= 0 ? "ab" : "wb");
    if (!l->f) return bp_error_set(err, BP_ERR_IO, "%s: cannot open for writing: %s", l->path, strerror(errno));
    return BP_OK;
}

void train_log_close(train_log *l) {
    if (!l) return;
    if (l->f) fclose(l->f);
    free(l->path);
    memset(l, 0, sizeof *l);
}

bp_status train_log_line(train_log *l, const char *json, bp_error *err) {
    if (!l->f) return BP_OK;
    if (fputs(json, l->f) < 0 || fputc('\n', l->f) == EOF || fflush(l->f) != 0)
        return bp_error_set(err, BP_ERR_IO, "%s: write failed: %s", l->path, strerror(errno));
    return BP_OK;
}
