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

void opt_step(float *w, const float *g, float *state, uint32_t n, float lr, uint32_t t) {
#if TPT_OPT_ADAM
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float *m = state, *v = state + n;
    float bc1 = 1.0f - powf(b1, (float)t), bc2s = sqrtf(1.0f - powf(b2, (float)t));
    float step = lr / bc1;
    for (uint32_t i = 0; i < n; ++i) {
        m[i] += (g[i] - m[i]) * (1.0f - b1);
        v[i] = v[i] * b2 + (1.0f - b2) * g[i] * g[i];
        w[i] -= step * m[i] / (sqrtf(v[i]) / bc2s + eps);
    }
#else
    (void)state; (void)t;
    for (uint32_t i = 0; i < n; ++i) w[i] -= lr * g[i];
#endif
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
