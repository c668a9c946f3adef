/* llama plugin — a barrier for the threads of one parallel region
 * (internal).
 *
 * The forward pass separates its steps with barriers (~9 per layer).
 * OpenMP's own barrier spins for a long time before it sleeps, which is
 * right on an idle machine but wastes the CPU when the cores are shared:
 * a thread spins for milliseconds while the thread it waits for is not
 * running. This one spins briefly (a few microseconds, longer than the
 * usual imbalance between threads) and then yields the CPU on every check.
 * Release/acquire ordering makes every write before a thread's arrival
 * visible to every thread after the barrier. */
#ifndef BP_LLAMA_BARRIER_H
#define BP_LLAMA_BARRIER_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LM_CPU_RELAX() _mm_pause()
#else
#define LM_CPU_RELAX() ((void)0)
#endif

#define LM_BARRIER_SPINS 2048

typedef struct lm_barrier {
    atomic_int count; /* threads arrived in this round */
    atomic_int gen;   /* rounds completed */
    int n;            /* threads in the team */
} lm_barrier;

static inline void lm_barrier_init(lm_barrier *b, int n) {
    atomic_init(&b->count, 0);
    atomic_init(&b->gen, 0);
    b->n = n;
}

static inline void lm_barrier_wait(lm_barrier *b) {
    if (b->n <= 1) return;
    const int gen = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == b->n - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->gen, 1, memory_order_release);
        return;
    }
    for (int spins = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == gen; spins++) {
        if (spins < LM_BARRIER_SPINS) LM_CPU_RELAX();
        else sched_yield();
    }
}

#endif /* BP_LLAMA_BARRIER_H */
