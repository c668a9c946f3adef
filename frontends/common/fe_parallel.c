/* frontends/common — static parallel-for (see fe_parallel.h). */
#include "fe_parallel.h"

#include <pthread.h>

#define MAX_THREADS 256

typedef struct task {
    bp_fe_range_fn fn;
    void *ctx;
    int32_t slot;
    int64_t begin, end;
} task;

static void *task_main(void *arg) {
    task *t = arg;
    t->fn(t->ctx, t->slot, t->begin, t->end);
    return NULL;
}

void bp_fe_parallel_for(int32_t n_threads, int64_t n, bp_fe_range_fn fn, void *ctx) {
    if (n <= 0) return;
    int64_t nt = n_threads < 1 ? 1 : (n_threads > MAX_THREADS ? MAX_THREADS : n_threads);
    if (nt > n) nt = n;
    if (nt == 1) {
        fn(ctx, 0, 0, n);
        return;
    }
    task tasks[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS];
    for (int64_t i = 0; i < nt; i++) {
        tasks[i] = (task){fn, ctx, (int32_t)i, n * i / nt, n * (i + 1) / nt};
        started[i] = i > 0 && pthread_create(&ids[i], NULL, task_main, &tasks[i]) == 0;
    }
    task_main(&tasks[0]);
    for (int64_t i = 1; i < nt; i++) {
        if (started[i]) pthread_join(ids[i], NULL);
        else task_main(&tasks[i]);
    }
}
