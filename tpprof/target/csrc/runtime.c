/* tpprof target runtime: output, PRNG, optimiser, softmax (see tpt.h). */
#include "tpt.h"
#include "model.h"

static char rt_line[96];   /* one output line (C runtime, not modelled) */
static int rt_len;

static void flush(void) { rt_line[rt_len] = 0; plat_write(rt_line); rt_len = 0; }
static void put(char c) { if (rt_len >= (int)sizeof(rt_line) - 2) flush(); rt_line[rt_len++] = c; }
void out_str(const char *s) { while (*s) put(*s++); }
void out_nl(void) { put('\n'); flush(); }
void out_u(uint32_t u) {
    char b[11]; int i = 10; b[i] = 0;
    do { b[--i] = (char)('0' + u % 10u); u /= 10u; } while (u);
    out_str(b + i);
}
void out_hex(uint32_t u) {
    static const char H[] = "0123456789abcdef";
    for (int i = 7; i >= 0; --i) put(H[(u >> (4 * i)) & 15u]);
}
void out_f(float f) { union { float f; uint32_t u; } c; c.f = f; put(' '); out_hex(c.u); }

uint32_t rng_next(uint32_t *st) {
    uint32_t x = *st;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    return *st = x;
}
float rng_uniform(uint32_t *st, float bound) {
    float r = (float)(rng_next(st) >> 8) * (1.0f / 16777216.0f);   /* [0, 1), 24 bits: exact */
    return (2.0f * r - 1.0f) * bound;
}

#if TPT_OPT_ADAM
static const float ADAM_B1 = 0.9f, ADAM_B2 = 0.999f, ADAM_EPS = 1e-8f;
/* one element: m ← m + (g − m)(1 − β1), v ← β2 v + (1 − β2) g², w ← w − step · m / (√v / bc2s + ε) */
static inline void adam1(float *w, float *m, float *v, float g, float step, float bc2s) {
    *m += (g - *m) * (1.0f - ADAM_B1);
    *v = *v * ADAM_B2 + (1.0f - ADAM_B2) * g * g;
    *w -= step * *m / (sqrtf(*v) / bc2s + ADAM_EPS);
}
static void adam_consts(uint32_t t, float lr, float *step, float *bc2s) {
    *step = lr / (1.0f - powf(ADAM_B1, (float)t));
    *bc2s = sqrtf(1.0f - powf(ADAM_B2, (float)t));
}
#endif

void opt_step(float *w, const float *g, float *state, uint32_t n, float lr, uint32_t t) {
#if TPT_OPT_ADAM
    float step, bc2s;
    adam_consts(t, lr, &step, &bc2s);
    for (uint32_t i = 0; i < n; ++i) adam1(&w[i], &state[i], &state[n + i], g[i], step, bc2s);
#else
    (void)state; (void)t;
    for (uint32_t i = 0; i < n; ++i) w[i] -= lr * g[i];
#endif
}

/* the loop of grad_update, specialised by the compiler for each (two terms, scaled, acc) */
static inline __attribute__((always_inline)) void grad_core(float *w, float *g, float *state, int n, int ni,
                                                            const float *d0, const float *x0, int r0, const float *d1,
                                                            const float *x1, int r1, float div, const int two,
                                                            const int scaled, const int acc, float step, float bc2s) {
    (void)w; (void)g; (void)state; (void)acc; (void)step; (void)bc2s;
    for (int j = 0; j < n; ++j) {
        float *wr = w + j * ni, *gr = g ? g + j * ni : 0;
        for (int k = 0; k < ni; ++k) {
            float s = 0.0f;
            for (int r = 0; r < r0; ++r) s += d0[r * n + j] * x0[r * ni + k];
            if (two) {
                float p = 0.0f;
                for (int r = 0; r < r1; ++r) p += d1[r * n + j] * x1[r * ni + k];
                s += p;
            }
            if (scaled) s /= div;
#if TPT_IN_LOOP
#if TPT_OPT_ADAM
            const int i = j * ni + k;
            adam1(&wr[k], &state[i], &state[n * ni + i], s, step, bc2s);
#else
            wr[k] -= LR * s;
#endif
#else
            gr[k] = acc ? gr[k] + s : s;
#endif
        }
    }
}

void grad_update(float *w, float *g, float *state, int n, int ni, const tpt_term_t *terms, int nterms, float div,
                 int acc, uint32_t t) {
    float step = 0.0f, bc2s = 0.0f;
#if TPT_IN_LOOP && TPT_OPT_ADAM
    adam_consts(t, LR, &step, &bc2s);
#endif
    (void)t;
    /* at most two terms (TP: input and target path; TESS: causal and non-causal) */
    const float *d0 = nterms > 0 ? terms[0].d : 0, *x0 = nterms > 0 ? terms[0].x : 0;
    const float *d1 = nterms > 1 ? terms[1].d : 0, *x1 = nterms > 1 ? terms[1].x : 0;
    const int r0 = nterms > 0 ? terms[0].rows : 0, r1 = nterms > 1 ? terms[1].rows : 0;
    const int two = nterms > 1, scaled = div != 1.0f;
#define TPT_GC(T, S, A) grad_core(w, g, state, n, ni, d0, x0, r0, d1, x1, r1, div, T, S, A, step, bc2s)
    if (two && scaled) {
        if (acc) TPT_GC(1, 1, 1); else TPT_GC(1, 1, 0);
    } else if (two) {
        if (acc) TPT_GC(1, 0, 1); else TPT_GC(1, 0, 0);
    } else if (scaled) {
        if (acc) TPT_GC(0, 1, 1); else TPT_GC(0, 1, 0);
    } else {
        if (acc) TPT_GC(0, 0, 1); else TPT_GC(0, 0, 0);
    }
#undef TPT_GC
}

float softmax_row(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    float s = 0.0f;
    for (int i = 0; i < n; ++i) { x[i] = expf(x[i] - mx); s += x[i]; }
    float inv = 1.0f / s;
    for (int i = 0; i < n; ++i) x[i] *= inv;
    return mx + logf(s);
}
