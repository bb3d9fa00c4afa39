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

void grad_update(float *w, float *g, float *state, int n, int ni, const tpt_term_t *terms, int nterms, float div,
                 int acc, uint32_t t) {
#if TPT_IN_LOOP && TPT_OPT_ADAM
    float step, bc2s;
    adam_consts(t, LR, &step, &bc2s);
#endif
    (void)w; (void)g; (void)state; (void)acc; (void)t;
    for (int j = 0; j < n; ++j)
        for (int k = 0; k < ni; ++k) {
            float s = 0.0f;
            for (int q = 0; q < nterms; ++q) {
                const tpt_term_t *tm = &terms[q];
                float part = 0.0f;
                for (int r = 0; r < tm->rows; ++r) part += tm->d[r * n + j] * tm->x[r * ni + k];
                s = q ? s + part : part;
            }
            if (div != 1.0f) s /= div;
            const int i = j * ni + k;
#if TPT_IN_LOOP
#if TPT_OPT_ADAM
            adam1(&w[i], &state[i], &state[n * ni + i], s, step, bc2s);
#else
            w[i] -= LR * s;
#endif
#else
            g[i] = acc ? g[i] + s : s;
#endif
        }
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
