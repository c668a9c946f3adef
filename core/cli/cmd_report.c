/* batpipe report DIR... [-o table.md|table.csv|table.html] [--format md|csv|html]
 *
 * Merges the report.json files of several evaluation runs (their output
 * directories) into one table: rows = runs, columns = metrics, as the BAT
 * paper's Table 3. Without -o the table goes to stdout (Markdown unless
 * --format says otherwise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/report.h"
#include "batpipe/util.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: batpipe report DIR... [-o FILE.md|FILE.csv|FILE.html] [--format md|csv|html]\n"
            "\n"
            "Merges the reports of evaluation runs (each DIR is the output.dir of a run with metrics,\n"
            "holding report.json, or a report.json file) into one table: one row per run, one column\n"
            "per metric (mAP, ER20, MAE, DER first, as the BAT paper's Table 3). The best value of\n"
            "each of those columns is marked. See docs/metrics.md.\n"
            "  -o FILE         write the table to FILE; the format follows its extension\n"
            "  --format F      md (default), csv or html, for stdout or to override the extension\n");
}

int cmd_report(cli_ctx *c, int argc, char **argv) {
    (void)c;
    const char *out = NULL, *fmt_name = NULL;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    uint32_t n = 0;
    if (!dirs) return 1;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            fmt_name = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            free(dirs);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "batpipe report: unknown option or missing value: '%s'\n", argv[i]);
            usage(stderr);
            free(dirs);
            return 2;
        } else {
            dirs[n++] = argv[i];
        }
    }
    if (n == 0) {
        usage(stderr);
        free(dirs);
        return 2;
    }
    int32_t fmt = BP_TABLE_MARKDOWN;
    if (fmt_name) {
        fmt = strcmp(fmt_name, "md") == 0 || strcmp(fmt_name, "markdown") == 0 ? BP_TABLE_MARKDOWN
              : strcmp(fmt_name, "csv") == 0                                   ? BP_TABLE_CSV
              : strcmp(fmt_name, "html") == 0                                  ? BP_TABLE_HTML
                                                                               : -1;
        if (fmt < 0) {
            fprintf(stderr, "batpipe report: --format %s: use md, csv or html\n", fmt_name);
            free(dirs);
            return 2;
        }
    } else if (out) {
        fmt = bp_table_format_for_path(out);
        if (fmt < 0) {
            fprintf(stderr, "batpipe report: -o %s: the name must end in .md, .csv or .html (or give --format)\n", out);
            free(dirs);
            return 2;
        }
    }
    bp_error err = BP_ERROR_INIT;
    char *text = NULL;
    bp_status st = bp_report_merge(dirs, n, fmt, &text, &err);
    free(dirs);
    if (st == BP_OK && out) {
        st = bp_write_file_atomic(out, text, strlen(text), &err);
        if (st == BP_OK) fprintf(stderr, "batpipe report: %u run%s → %s\n", n, n == 1 ? "" : "s", out);
    } else if (st == BP_OK) {
        fputs(text, stdout);
    }
    bp_report_text_free(text);
    return st == BP_OK ? 0 : cli_fail("report", st, &err);
}
