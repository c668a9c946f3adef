/* Minimal test harness: CHECK records a failure and continues; the test's
 * exit status is the number of failures (0 = pass, 77 = skipped). */
#ifndef BP_TEST_H
#define BP_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int bp_test_failures = 0;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            bp_test_failures++;                                                \
        }                                                                      \
    } while (0)

#define CHECKF(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            bp_test_failures++;                                                \
        }                                                                      \
    } while (0)

/* Check a bp_status call; prints the error message on failure. */
#define CHECK_OK(call, errp)                                                   \
    do {                                                                       \
        bp_status st__ = (call);                                               \
        if (st__ != BP_OK) {                                                   \
            fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #call, \
                    (errp)->msg, bp_status_name(st__));                        \
            bp_test_failures++;                                                \
        }                                                                      \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                  \
    CHECKF(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), (double)(b), (double)(tol))

#define BP_TEST_SKIP 77
#define TEST_SKIP(...)                                                         \
    do {                                                                       \
        fprintf(stderr, "SKIP: " __VA_ARGS__);                                 \
        fputc('\n', stderr);                                                   \
        return BP_TEST_SKIP;                                                   \
    } while (0)

#define TEST_RESULT()                                                          \
    (bp_test_failures ? (fprintf(stderr, "%d check(s) failed\n", bp_test_failures), 1) : 0)

#endif
