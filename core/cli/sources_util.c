/* `batpipe sources`: small string, path and file helpers. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources.h"

int sources_grow(void **ptr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > ((size_t)-1) / 2 / elem) return -1;
        nc *= 2;
    }
    void *p = realloc(*ptr, nc * elem);
    if (!p) return -1;
    *ptr = p;
    *cap = nc;
    return 0;
}

char *sources_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *sources_strdupf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

char *sources_trim(char *s) {
    char *b = s;
    while (*b && is_blank(*b)) b++;
    size_t n = strlen(b);
    while (n > 0 && is_blank(b[n - 1])) n--;
    memmove(s, b, n);
    s[n] = '\0';
    return s;
}

int sources_edit_distance(const char *a, const char *b) {
    /* optimal string alignment: insertions, deletions, substitutions, adjacent transpositions */
    enum { CAP = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la > CAP) la = CAP;
    if (lb > CAP) lb = CAP;
    int d[CAP + 1][CAP + 1];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
            int v = d[i - 1][j - 1] + (ai != bj);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == bj &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

static int safe_byte(unsigned char c) { return isalnum(c) || c == '.' || c == '_' || c == '-'; }

char *sources_clip_name(const char *package, const char *source_path) {
    size_t lp = strlen(package), ls = strlen(source_path);
    /* "clips/" + package + "/" + path + ".flac" and room for "_" per component */
    char *out = malloc(6 + lp + 1 + 2 * ls + 8);
    if (!out) return NULL;
    size_t o = 0;
    memcpy(out, "clips/", 6);
    o = 6;
    for (size_t i = 0; i < lp; i++) out[o++] = safe_byte((unsigned char)package[i]) ? package[i] : '_';
    if (lp == 0) out[o++] = '_';
    size_t body = o; /* start of "/<path>" */
    const char *s = source_path;
    while (*s == '/') s++;
    /* components separated by '/' or ':' */
    while (*s) {
        const char *e = s;
        while (*e && *e != '/' && *e != ':') e++;
        if (e > s) {
            out[o++] = '/';
            size_t len = (size_t)(e - s);
            if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
                out[o++] = '_';
            } else {
                for (size_t i = 0; i < len; i++) out[o++] = safe_byte((unsigned char)s[i]) ? s[i] : '_';
            }
        }
        s = *e ? e + 1 : e;
    }
    if (o == body) {
        out[o++] = '/';
        out[o++] = '_';
    }
    out[o] = '\0';
    /* replace the extension of the last component */
    char *last = strrchr(out + body, '/');
    char *dot = strrchr(last, '.');
    if (dot && dot > last + 1) o = (size_t)(dot - out);
    memcpy(out + o, ".flac", 6);
    return out;
}

char *sources_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return sources_strdup(".");
    if (slash == path) return sources_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

bp_status sources_read_text(const char *path, char **out, size_t *len, bp_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return bp_error_set(err, errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO, "%s: cannot open: %s", path,
                                strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (sources_grow((void **)&buf, &cap, n + 65536 + 1, 1) != 0) {
            free(buf);
            fclose(f);
            return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
        }
        size_t got = fread(buf + n, 1, 65536, f);
        n += got;
        if (got < 65536) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return bp_error_set(err, BP_ERR_IO, "%s: read error", path);
    }
    if (memchr(buf, '\0', n)) {
        free(buf);
        return bp_error_set(err, BP_ERR_FORMAT, "%s: not a text file (contains NUL bytes)", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return BP_OK;
}

char *sources_next_line(char **cursor) {
    char *s = *cursor;
    if (!s || !*s) return NULL;
    char *e = strchr(s, '\n');
    if (e) {
        *e = '\0';
        *cursor = e + 1;
    } else {
        *cursor = s + strlen(s);
    }
    size_t n = strlen(s);
    if (n && s[n - 1] == '\r') s[n - 1] = '\0';
    return s;
}

void sources_path_normalize(char *path) {
    /* lexical: drop "." components and fold "dir/.." pairs (not across a leading ".." or "/") */
    int abs = path[0] == '/';
    char *comp[512];
    size_t n = 0;
    char *save = NULL;
    char *copy = sources_strdup(path);
    if (!copy) return;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0) continue;
        if (strcmp(c, "..") == 0 && n > 0 && strcmp(comp[n - 1], "..") != 0) {
            n--;
            continue;
        }
        if (strcmp(c, "..") == 0 && n == 0 && abs) continue;
        if (n == sizeof comp / sizeof comp[0]) {
            free(copy);
            return; /* too deep: leave it as it is */
        }
        comp[n++] = c;
    }
    size_t o = 0;
    if (abs) path[o++] = '/';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(comp[i]);
        if (i) path[o++] = '/';
        memmove(path + o, comp[i], l);
        o += l;
    }
    if (o == 0) path[o++] = '.';
    path[o] = '\0';
    free(copy);
}
