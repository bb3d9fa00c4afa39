/* TESS, paper flavour (tpprof/snn/tess.py; Apolinario, Roy, Frenkel), dense and recurrent layers.
 * Per layer l (phase loss:l), with the factors (λ_post, λ_pre, α_post, α_pre); a recurrent layer adds
 * R_l s^{t−1} to the current, r̂ ← s^{t−1} + λ_pre r̂ and ∂R_l = δ_cᵀ r̂ + δ_ncᵀ s^{t−1} (s^{t−1}: a copy):
 *   u = α v + W a_{l−1},  s = [u ≥ v_th],  v ← u − v_th s,  Ψ = Θ′(u)  (u = v + v_th s)
 *   p − t* = softmax(s B_lᵀ) − c  (B × C),   m = (p − t*) B_l / B
 *   causal      x̄ ← a_{l−1} + λ_pre x̄,   δ_c = m Ψ α_pre
 *   non-causal  q = λ_post e,  δ_nc = m q α_post,  e ← q + Ψ
 *   ∂W_l = δ_cᵀ x̄ + δ_ncᵀ a_{l−1};  W_l's optimiser step ends the phase
 * Readout (phase readout): ε_L ← a_L + β ε_L,  m_r += W_out a_L,  ∂W_out = (softmax(m_r) − c)ᵀ ε_L / B.
 * B_l[c, j] = sign(sin(f_c j)) / n, f_c = linspace(50, 512, C), is drawn once (aux stored). */
#include "tpt.h"
#include "model.h"
#include "tess.h"

static uint32_t tess_opt_t;

void rule_begin_batch(const int32_t *labels) {
    (void)labels;
    for (int l = 0; l < NL; ++l) {   /* the square-wave LSG matrix, in double as the learner draws it */
        const tess_layer_t *L = &LAYERS[l];
        for (int c = 0; c < CLASSES; ++c) {
            double f = CLASSES > 1 ? 50.0 + (512.0 - 50.0) * c / (CLASSES - 1) : 50.0;
            for (int j = 0; j < L->n; ++j) {
                double v = sin(f * j);
                L->Bl[c * L->n + j] = (float)((v > 0.0 ? 1.0 : v < 0.0 ? -1.0 : 0.0) / L->n);
            }
        }
    }
}

/* ∂M = δ_cᵀ x_c + δ_ncᵀ x_nc (the terms the factors keep; M is n × ni), then M's optimiser step */
static inline void tess_update(const tess_layer_t *L, float *w, float *g, float *o, int ni, const float *xc,
                               const float *xnc, int acc, int update) {
    tpt_term_t tw[2];
    int nt = 0;
#if TESS_CAUSAL
    tw[nt].d = L->dc; tw[nt].x = xc; tw[nt].rows = BATCH; ++nt;
#endif
#if TESS_NONCAUSAL
    tw[nt].d = L->dnc; tw[nt].x = xnc; tw[nt].rows = BATCH; ++nt;
#endif
    (void)xc; (void)xnc;
    grad_update(w, g, o, L->n, ni, tw, nt, 1.0f, acc, tess_opt_t);
    if (update && !TPT_IN_LOOP) opt_step(w, g, o, (uint32_t)(L->n * ni), LR, tess_opt_t);
}

void rule_step(int t, const float *x, const int32_t *labels, float *local_loss, float *readout_ce) {
    const int B = BATCH, seq = TPT_CADENCE_SEQ, update = !seq || t == STEPS - 1, acc = seq && t > 0;
    if (update) ++tess_opt_t;
    const float *a = x;
    for (int l = 0; l < NL; ++l) {
        const tess_layer_t *L = &LAYERS[l];
        const int n = L->n, ni = L->n_in;
        if (L->rec) for (int i = 0; i < B * n; ++i) L->sp[i] = L->s[i];   /* s^{t−1} */
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < n; ++j) {
                float cur = dot(L->W + j * ni, a + b * ni, ni);
                if (L->rec) cur += dot(L->R + j * n, L->sp + b * n, n);
                lif_code_soft(&L->v[b * n + j], &L->s[b * n + j], cur, ALPHA, VTH);
            }
        for (int b = 0; b < B; ++b) {   /* p − t* */
            float *pe = L->pe + b * CLASSES;
            for (int c = 0; c < CLASSES; ++c) {
                float z = 0.0f;
                for (int j = 0; j < n; ++j) z += L->s[b * n + j] * L->Bl[c * n + j];
                pe[c] = z;
            }
            softmax_row(pe, CLASSES);
            pe[labels[b]] -= 1.0f;
        }
#if TESS_CAUSAL
        for (int i = 0; i < B * ni; ++i) L->tri[i] = a[i] + TESS_LAM_PRE * L->tri[i];
        if (L->rec) for (int i = 0; i < B * n; ++i) L->trr[i] = L->sp[i] + TESS_LAM_PRE * L->trr[i];
#endif
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < n; ++j) {
                float m = 0.0f;
                for (int c = 0; c < CLASSES; ++c) m += L->pe[b * CLASSES + c] * L->Bl[c * n + j];
                m /= (float)B;
                float psi = surrogate(lif_u(L->v[b * n + j], L->s[b * n + j], VTH), VTH, SURR_K);
#if TESS_CAUSAL
                L->dc[b * n + j] = m * psi * TESS_A_PRE;
#endif
#if TESS_NONCAUSAL
                float q = TESS_LAM_POST * L->tro[b * n + j];
                L->dnc[b * n + j] = m * q * TESS_A_POST;
                L->tro[b * n + j] = q + psi;
#endif
                (void)psi;
            }
        tess_update(L, L->W, L->gW, L->oW, ni, L->tri, a, acc, update);   /* W_l: δ_cᵀ x̄ + δ_ncᵀ a_{l−1} */
        if (L->rec) tess_update(L, L->R, L->gR, L->oR, n, L->trr, L->sp, acc, update);   /* R_l: δ_cᵀ r̂ + δ_ncᵀ s^{t−1} */
        a = L->s;
    }
    const int nL = LAYERS[NL - 1].n;
    for (int i = 0; i < B * nL; ++i) NET.epsL[i] = a[i] + BETA * NET.epsL[i];
    float ce = readout_step(NET.W_out, a, NET.m, NET.err, labels, B, CLASSES, nL, 0);
    const tpt_term_t to = {NET.err, NET.epsL, B};
    grad_update(NET.W_out, NET.gW_out, NET.oW_out, CLASSES, nL, &to, 1, (float)B, acc, tess_opt_t);
    if (update && !TPT_IN_LOOP) opt_step(NET.W_out, NET.gW_out, NET.oW_out, (uint32_t)(CLASSES * nL), LR, tess_opt_t);
    *local_loss = 0.0f;
    *readout_ce = ce / (float)B;
}
