/* OTTT (tpprof/snn/ottt.py; Xiao et al. 2022): one time step, no temporal graph.
 *   forward   u_l = α v_l + W_l a_{l−1} (+ R_l s_l^{t−1}),  s_l = [u_l ≥ v_th],  v_l ← u_l − v_th s_l
 *   traces    â_{l−1} ← λ â_{l−1} + a_{l−1},  r̂_l ← λ r̂_l + s_l^{t−1}  (λ = α),  ε_L ← ε_L + a_L
 *   readout   m += W_out a_L,  g_m = (softmax(m) − c)/B,  ∂L/∂a_L = g_m W_out,  ∂W_out = g_mᵀ ε_L
 *   backward  δ_l = ∂L/∂a_l ⊙ Θ′(u_l),  ∂W_l = δ_lᵀ â_{l−1},  ∂R_l = δ_lᵀ r̂_l,  ∂L/∂a_{l−1} = δ_l W_l
 * The phases of the analytic model (readout, backward:l, backward:l:input): each weight is updated
 * once nothing of this step reads it any more (W_out after ∂L/∂a_L, W_l after ∂L/∂a_{l−1}).
 * Recurrent layers: u holds the currents, so s^{t−1} is read (R s^{t−1}, r̂) before s^t replaces it. */
#include "tpt.h"
#include "model.h"
#include "ottt.h"

static uint32_t ottt_opt_t;

void rule_begin_batch(const int32_t *labels) { (void)labels; }

void rule_step(int t, const float *x, const int32_t *labels, float *local_loss, float *readout_ce) {
    const int B = BATCH, seq = TPT_CADENCE_SEQ, update = !seq || t == STEPS - 1, acc = seq && t > 0;
    if (update) ++ottt_opt_t;
    const float *a = x;
    for (int l = 0; l < NL; ++l) {
        const ottt_layer_t *L = &LAYERS[l];
        const int n = L->n, ni = L->n_in;
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < n; ++j) {
                float cur = dot(L->W + j * ni, a + b * ni, ni);
                if (L->rec) cur += dot(L->R + j * n, L->s + b * n, n);
                L->u[b * n + j] = cur + ALPHA * L->v[b * n + j];
            }
        if (L->rec) for (int i = 0; i < B * n; ++i) L->trr[i] = ALPHA * L->trr[i] + L->s[i];
        for (int i = 0; i < B * n; ++i) {
            float sp = L->u[i] >= VTH ? 1.0f : 0.0f;
            L->s[i] = sp; L->v[i] = L->u[i] - VTH * sp;
        }
        for (int i = 0; i < B * ni; ++i) L->tr[i] = ALPHA * L->tr[i] + a[i];
        a = L->s;
    }
    const int nL = LAYERS[NL - 1].n;
    for (int i = 0; i < B * nL; ++i) NET.epsL[i] += a[i];
    /* readout: m, g_m, ∂L/∂a_L (old W_out), ∂W_out, W_out's update */
    float ce = readout_step(NET.W_out, a, NET.m, NET.gm, labels, B, CLASSES, nL, 1);
    const ottt_layer_t *Ll = &LAYERS[NL - 1];
    for (int b = 0; b < B; ++b)
        for (int k = 0; k < nL; ++k) {
            float s = 0.0f;
            for (int c = 0; c < CLASSES; ++c) s += NET.gm[b * CLASSES + c] * NET.W_out[c * nL + k];
            Ll->adj[b * nL + k] = s;
        }
    const tpt_term_t to = {NET.gm, NET.epsL, B};
    grad_update(NET.W_out, NET.gW_out, NET.oW_out, CLASSES, nL, &to, 1, 1.0f, acc, ottt_opt_t);
    if (update && !TPT_IN_LOOP) opt_step(NET.W_out, NET.gW_out, NET.oW_out, (uint32_t)(CLASSES * nL), LR, ottt_opt_t);
    /* backward through this step, layer L … 1 */
    for (int l = NL - 1; l >= 0; --l) {
        const ottt_layer_t *L = &LAYERS[l];
        const int n = L->n, ni = L->n_in;
        for (int i = 0; i < B * n; ++i) L->adj[i] *= surrogate(L->u[i], VTH, SURR_K);   /* δ_l, in place */
        if (l > 0) {   /* ∂L/∂a_{l−1} = δ_l W_l, before W_l changes */
            float *prev = LAYERS[l - 1].adj;
            for (int b = 0; b < B; ++b)
                for (int k = 0; k < ni; ++k) {
                    float s = 0.0f;
                    for (int j = 0; j < n; ++j) s += L->adj[b * n + j] * L->W[j * ni + k];
                    prev[b * ni + k] = s;
                }
        }
        const tpt_term_t tw = {L->adj, L->tr, B};
        grad_update(L->W, L->gW, L->oW, n, ni, &tw, 1, 1.0f, acc, ottt_opt_t);
        if (L->rec) {
            const tpt_term_t tr = {L->adj, L->trr, B};
            grad_update(L->R, L->gR, L->oR, n, n, &tr, 1, 1.0f, acc, ottt_opt_t);
        }
        if (update && !TPT_IN_LOOP) {
            opt_step(L->W, L->gW, L->oW, (uint32_t)(n * ni), LR, ottt_opt_t);
            if (L->rec) opt_step(L->R, L->gR, L->oR, (uint32_t)(n * n), LR, ottt_opt_t);
        }
    }
    *local_loss = 0.0f;
    *readout_ce = ce / (float)B;
}
