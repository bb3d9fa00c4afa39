/* BPTT (tpprof/snn/bptt.py): surrogate gradient through all T steps, one update per mini-batch.
 * Forward, step t: u_l = α v_l + W_l a_{l−1} (+ R_l s_l^{t−1}),  s_l = [u_l ≥ v_th],  v_l ← u_l − v_th s_l,
 *   m += W_out s_L;  saved: x^t (T frames), s_{l−1}^t and s_L^t (T − 1 frames: s^T is the state s),
 *   u_l^t (T frames). A recurrent layer reads s_l^{t−1} from the frame its consumer saved at t − 1.
 * Backward at t = T (E = CE(m^T)), step-major t = T … 1, layers L … 1, reset in the graph:
 *   g_m = (softmax(m^T) − c)/B,  ∂W_out += g_mᵀ s_L^t,
 *   ∂E/∂s_l^t = W_{l+1}ᵀ δ_{l+1}^t (l = L: W_outᵀ g_m) [+ R_lᵀ δ_l^{t+1}], consumed as formed,
 *   δ_l^t = ∂E/∂u_l^t = g_v + Θ′(u_l^t)(∂E/∂s_l^t − v_th g_v),  g_v = ∂E/∂v_l^t = α δ_l^{t+1} (0 at t = T),
 *   ∂W_l += δ_l^tᵀ a_{l−1}^t,  ∂R_l += δ_l^tᵀ s_l^{t−1} (t ≥ 2);  the carried buffer holds δ_l (read as
 *   α δ one step earlier). A recurrent layer's R_lᵀ δ_l^t needs all of δ_l^t, which the carried buffer
 *   overwrites elementwise with δ_l^{t−1}: it is formed after δ_l^t into its own carried buffer (dr).
 * Then every parameter's optimiser step (phase update).
 * tbptt (WINDOW = K < T): the same over each window [w0, w1) of ≤ K steps, from the state the window
 * before left (its gradient is not carried back), and m summed onto in place; one optimiser step per
 * window. Saved frames are indexed by the step within the window (τ = t − w0). */
#include "tpt.h"
#include "model.h"
#include "bptt.h"

void rule_begin_batch(const int32_t *labels) { (void)labels; }

static float ce_of(const float *m, int label) {
    float mx = m[0], s = 0.0f;
    for (int c = 1; c < CLASSES; ++c) mx = m[c] > mx ? m[c] : mx;
    for (int c = 0; c < CLASSES; ++c) s += expf(m[c] - mx);
    return mx + logf(s) - m[label];
}

static int win_last;          /* τ of the current window's last step: min(K, T − w0) − 1 */
static uint32_t n_updates;    /* optimiser steps so far (Adam's t) */

/* the input of layer l (0-based) at window step τ: x, a saved spike frame, or (last τ) the state s */
static const float *input_at(int l, int tau) {
    const bptt_layer_t *L = &LAYERS[l];
    if (l == 0) return L->sin + (size_t)tau * BATCH * L->n_in;
    return tau == win_last ? LAYERS[l - 1].s : L->sin + (size_t)tau * BATCH * L->n_in;
}

/* s_l^{τ−1} of layer l (0-based), as its consumer saved it at τ − 1 (0: none, τ = 0; recurrent
 * layers run in plain BPTT only, where τ = 0 is t = 0 and s^{−1} = 0) */
static const float *prev_spikes(int l, int tau) {
    if (tau == 0) return 0;
    return l == NL - 1 ? NET.sL + (size_t)(tau - 1) * BATCH * LAYERS[l].n : input_at(l + 1, tau - 1);
}

void rule_step(int t, const float *x, const int32_t *labels, float *local_loss, float *readout_ce) {
    const int B = BATCH, w0 = t - t % WINDOW, tau = t - w0;
    win_last = (w0 + WINDOW < STEPS ? WINDOW : STEPS - w0) - 1;
    const float *a = x;
    for (int l = 0; l < NL; ++l) {
        const bptt_layer_t *L = &LAYERS[l];
        const int n = L->n, ni = L->n_in;
        if (l == 0 || tau < win_last) {   /* save the layer's input frame */
            float *dst = L->sin + (size_t)tau * B * ni;
            for (int i = 0; i < B * ni; ++i) dst[i] = a[i];
        }
        float *u = L->su + (size_t)tau * B * n;
        const float *sp = L->rec ? prev_spikes(l, tau) : 0;
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < n; ++j) {
                float cur = dot(L->W + j * ni, a + b * ni, ni);
                if (sp) cur += dot(L->R + j * n, sp + b * n, n);
                float uu = cur + ALPHA * L->v[b * n + j];
                float sp = uu >= VTH ? 1.0f : 0.0f;
                u[b * n + j] = uu; L->s[b * n + j] = sp; L->v[b * n + j] = uu - VTH * sp;
            }
        a = L->s;
    }
    const int nL = LAYERS[NL - 1].n;
    if (tau < win_last) for (int i = 0; i < B * nL; ++i) NET.sL[(size_t)tau * B * nL + i] = a[i];
    float ce = 0.0f;
    for (int b = 0; b < B; ++b) {
        for (int c = 0; c < CLASSES; ++c) {
            float s = 0.0f; const float *w = NET.W_out + c * nL, *ab = a + b * nL;
            for (int k = 0; k < nL; ++k) s += w[k] * ab[k];
            NET.m[b * CLASSES + c] += s;
        }
        ce += ce_of(NET.m + b * CLASSES, labels[b]);
    }
    *local_loss = 0.0f;
    *readout_ce = ce / (float)B;
    if (tau < win_last) return;

    /* ---- backward through the window's steps (phase backward) ---- */
    for (int b = 0; b < B; ++b) {
        float *g = NET.gm + b * CLASSES;
        for (int c = 0; c < CLASSES; ++c) g[c] = NET.m[b * CLASSES + c];
        softmax_row(g, CLASSES);
        g[labels[b]] -= 1.0f;
        for (int c = 0; c < CLASSES; ++c) g[c] /= (float)B;
    }
    for (int tt = win_last; tt >= 0; --tt) {
        const float *sLt = tt == win_last ? LAYERS[NL - 1].s : NET.sL + (size_t)tt * B * nL;
        for (int c = 0; c < CLASSES; ++c)
            for (int k = 0; k < nL; ++k) {
                float s = 0.0f;
                for (int b = 0; b < B; ++b) s += NET.gm[b * CLASSES + c] * sLt[b * nL + k];
                NET.gW_out[c * nL + k] = tt == win_last ? s : NET.gW_out[c * nL + k] + s;
            }
        for (int l = NL - 1; l >= 0; --l) {
            const bptt_layer_t *L = &LAYERS[l];
            const int n = L->n, ni = L->n_in;
            const float *u = L->su + (size_t)tt * B * n;
            const int n_up = l == NL - 1 ? CLASSES : LAYERS[l + 1].n;
            const float *up = l == NL - 1 ? NET.gm : LAYERS[l + 1].dl, *Wup = l == NL - 1 ? NET.W_out : LAYERS[l + 1].W;
            for (int b = 0; b < B; ++b)
                for (int j = 0; j < n; ++j) {
                    float gs = 0.0f;
                    for (int k = 0; k < n_up; ++k) gs += up[b * n_up + k] * Wup[k * n + j];
                    if (L->rec && tt < win_last) gs += L->dr[b * n + j];
                    float gv = tt == win_last ? 0.0f : ALPHA * L->dl[b * n + j];
                    L->dl[b * n + j] = gv + surrogate(u[b * n + j], VTH, SURR_K) * (gs - VTH * gv);
                }
            const float *in = input_at(l, tt);
            for (int j = 0; j < n; ++j)
                for (int k = 0; k < ni; ++k) {
                    float s = 0.0f;
                    for (int b = 0; b < B; ++b) s += L->dl[b * n + j] * in[b * ni + k];
                    L->gW[j * ni + k] = tt == win_last ? s : L->gW[j * ni + k] + s;
                }
            if (!L->rec) continue;
            const float *sp = prev_spikes(l, tt);   /* ∂R_l += δ_l^tᵀ s_l^{t−1} (s^0 = 0) */
            for (int j = 0; j < n; ++j)
                for (int k = 0; k < n; ++k) {
                    float s = 0.0f;
                    if (sp) for (int b = 0; b < B; ++b) s += L->dl[b * n + j] * sp[b * n + k];
                    L->gR[j * n + k] = tt == win_last ? s : L->gR[j * n + k] + s;
                }
            if (tt > 0)   /* R_lᵀ δ_l^t, read at t − 1 */
                for (int b = 0; b < B; ++b)
                    for (int j = 0; j < n; ++j) {
                        float s = 0.0f;
                        for (int k = 0; k < n; ++k) s += L->dl[b * n + k] * L->R[k * n + j];
                        L->dr[b * n + j] = s;
                    }
        }
    }
    /* ---- one optimiser step per mini-batch / window (phase update) ---- */
    ++n_updates;
    for (int l = 0; l < NL; ++l) {
        const bptt_layer_t *L = &LAYERS[l];
        opt_step(L->W, L->gW, L->oW, (uint32_t)(L->n * L->n_in), LR, n_updates);
        if (L->rec) opt_step(L->R, L->gR, L->oR, (uint32_t)(L->n * L->n), LR, n_updates);
    }
    opt_step(NET.W_out, NET.gW_out, NET.oW_out, (uint32_t)(CLASSES * nL), LR, n_updates);
}
