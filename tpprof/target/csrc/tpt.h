/* tpprof target runtime: what every rule kernel shares (platform, output, PRNG, LIF, optimiser).
 *
 * Naming contract with the generator (tpprof/target/generate.py) and the runner, which reads the
 * ELF's symbols: arrays named m_* are the analytic model's terms (m_phase: the union of the
 * transients of every phase), d_* the data the model does not count (input frame, labels), every
 * other RAM symbol belongs to the C runtime. */
#ifndef TPT_H
#define TPT_H
#include <stddef.h>
#include <stdint.h>
#include <math.h>

/* ---- platform (startup_arm.c / host.c) ---- */
void plat_write(const char *s);           /* a NUL-terminated string to the output file */
void plat_exit(int code);                 /* never returns */
void tpt_marker(int k);                   /* step boundaries, seen by the instruction counter */
long tpt_stack_high_water(void);          /* painted stack bytes used, -1 when unknown (host) */

/* ---- output (text lines; floats as their IEEE bits, so nothing is lost) ---- */
void out_str(const char *s);
void out_u(uint32_t u);
void out_hex(uint32_t u);
void out_f(float f);                      /* " %08x" of the bits */
void out_nl(void);

/* ---- xorshift32: the same integer stream in tpprof/target/run.py ---- */
uint32_t rng_next(uint32_t *st);
float rng_uniform(uint32_t *st, float bound);   /* U(−bound, bound) from 24 bits */

/* ---- parameters: what is initialised, dumped and checksummed ---- */
typedef struct { const char *name; float *p; uint32_t n; uint32_t fan_in; } tpt_param_t;

/* Σ_k w[k] x[k] in index order (every kernel's products sum in this order, as the checksums expect) */
static inline __attribute__((always_inline)) float dot(const float *w, const float *x, int n) {
    float acc = 0.0f;
    for (int k = 0; k < n; ++k) acc += w[k] * x[k];
    return acc;
}

/* ---- LIF (reference sheet §2) and the ArcTan surrogate Θ′(u) = k / (1 + (π (u − v_th))²) ---- */
static inline float surrogate(float u, float vth, float k) {
    float x = (u - vth) * 3.14159265358979f;
    return k / (1.0f + x * x);
}
/* one neuron, code ordering, soft reset: u = α v + I, s = [u ≥ v_th], v ← u − v_th s.
 * u is recovered later as v + v_th s (the model keeps no u buffer). */
static inline void lif_code_soft(float *v, float *s, float cur, float alpha, float vth) {
    float u = cur + alpha * *v;
    float sp = u >= vth ? 1.0f : 0.0f;
    *s = sp;
    *v = u - vth * sp;
}
static inline float lif_u(float v, float s, float vth) { return v + vth * s; }

/* ---- optimiser steps, in place (torch.optim.SGD / Adam arithmetic); state = [m | v] for Adam ---- */
void opt_step(float *w, const float *g, float *state, uint32_t n, float lr, uint32_t t);

/* ---- weight gradients: ∂M[j, k] = Σ_terms Σ_r d[r·n + j] · x[r·ni + k] / div  (M is n × ni) ----
 * update buffered: into g (acc: added to what g holds), applied later by opt_step;
 * update in-loop (TPT_IN_LOOP): each element's optimiser step is applied to w as soon as its
 * gradient is summed, so no gradient buffer exists (state as opt_step's, t = the step count). */
typedef struct { const float *d, *x; int rows; } tpt_term_t;   /* at most two terms per call */
void grad_update(float *w, float *g, float *state, int n, int ni, const tpt_term_t *terms, int nterms, float div,
                 int acc, uint32_t t);

/* rows of softmax in place; returns log Σ exp of the row (before normalising) */
float softmax_row(float *x, int n);

/* ---- readout of one step, per row b: m_b += W_out a_b;  g_b = softmax(m_b) − onehot(label_b)
 * (÷ B when div_b: OTTT's g_m); returns Σ_b CE_b = Σ_b (log Σ exp m_b − m_b[label_b]).
 * W_out is C × n, a B × n, m and g B × C. Inlined so each kernel keeps its own code. ---- */
static inline __attribute__((always_inline)) float readout_step(const float *W_out, const float *a, float *m,
                                                                float *g, const int32_t *labels, int B, int C,
                                                                int n, int div_b) {
    float ce = 0.0f;
    for (int b = 0; b < B; ++b) {
        float *gb = g + b * C;
        for (int c = 0; c < C; ++c) {
            m[b * C + c] += dot(W_out + c * n, a + b * n, n);
            gb[c] = m[b * C + c];
        }
        float lse = softmax_row(gb, C);
        ce += lse - m[b * C + labels[b]];
        gb[labels[b]] -= 1.0f;
        if (div_b)
            for (int c = 0; c < C; ++c) gb[c] /= (float)B;
    }
    return ce;
}

/* ---- the rule's kernel (one of tp.c, ottt.c, ...) ---- */
void rule_begin_batch(const int32_t *labels);
void rule_step(int t, const float *x, const int32_t *labels, float *local_loss, float *readout_ce);
#endif
