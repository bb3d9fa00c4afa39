/* Traces Propagation (tpprof/snn/tp.py, the reference sheet §3–8): one time step, all layers.
 *
 * Per layer l, in the order of the learner (phase loss:l of the analytic model):
 *   input path  u = α v + W a_{l−1} (+ R s_l^{t−1}),  s = [u ≥ v_th],  v ← u − v_th s,  ε ← β ε + s
 *   target path the same on K rows (layer 1: S c = column S[:, label]),  ε̃ ← β ε̃ + s̃
 *   y  = softmax_k(f(ε̃_{l−1}) + log n)  (layer 1: f = κ√2 [same label]; else −‖ε̃_{l−1,k} − ε̃_{l−1,k′}‖)
 *   z  = ε ε̃ᵀ + log n,  E_l = −(1/B) Σ y (log softmax z − log n),  G = (softmax z − y) / B
 *   δ  = (G ε̃) ⊙ Θ′(u),  δ̃ = (Gᵀ ε) ⊙ Θ′(ũ),  ∂W = δᵀ a + δ̃ᵀ ã (l ≥ 2),  ∂R = δᵀ s^{t−1} + δ̃ᵀ s̃^{t−1}
 *   W_l's optimiser step ends the phase (W_l is read by no later phase of this step); update in-loop
 *   applies each element's step as its gradient is summed (grad_update: no gradient buffer).
 * Readout (phase readout): m += W_out a_L,  e = softmax(m) − c,  ∂W_out = eᵀ ε_L / B.
 * Target rows: "batch" K = B, row b = sample b, n = 1 (log n = 0); "classes" one row per class
 * present, n_k samples of class k (tpprof/snn/tp.py, ClassRows). */
#include "tpt.h"
#include "model.h"
#include "tp.h"

int32_t d_rowlab[KT];          /* the label of each target row (data) */
int32_t d_inv[BATCH];          /* k(b): the target row of sample b (data) */
float d_logn[KT];              /* log n_k (data) */
static int tp_K;               /* target rows in use (≤ KT) */
static float tp_kappa;         /* ε̃_0 = κ_t c: the layer-0 target trace as one number */
static uint32_t tp_opt_t;      /* optimiser steps taken (Adam's bias correction) */

void rule_begin_batch(const int32_t *labels) {
#if TP_DEDUP
    int K = 0;
    for (int c = 0; c < CLASSES; ++c) {          /* sorted classes present, as torch.unique */
        int n = 0;
        for (int b = 0; b < BATCH; ++b) n += labels[b] == c;
        if (!n) continue;
        for (int b = 0; b < BATCH; ++b) if (labels[b] == c) d_inv[b] = K;
        d_rowlab[K] = c; d_logn[K] = logf((float)n); ++K;
    }
    tp_K = K;
#else
    for (int b = 0; b < BATCH; ++b) { d_inv[b] = b; d_rowlab[b] = labels[b]; d_logn[b] = 0.0f; }
    tp_K = BATCH;
#endif
    tp_kappa = 0.0f;
}

/* LIF over rows × n neurons: cur = W a (+ R s^{t−1}); layer-1 target path: column of S. */
static void forward(const tp_layer_t *L, int rows, const float *a, const int32_t *lab, float *v, float *s,
                    float *sprev) {
    const int n = L->n, ni = L->n_in;
    if (L->rec) for (int i = 0; i < rows * n; ++i) sprev[i] = s[i];
    for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < n; ++j) {
            float acc = lab ? NET.S[j * CLASSES + lab[r]] : dot(L->W + j * ni, a + r * ni, ni);
            if (L->rec) acc += dot(L->R + j * n, sprev + r * n, n);
            lif_code_soft(&v[r * n + j], &s[r * n + j], acc, ALPHA, VTH);
        }
    }
}

static void trace(float *e, const float *s, int count) { for (int i = 0; i < count; ++i) e[i] = BETA * e[i] + s[i]; }

static float loss_and_grad(const tp_layer_t *L, int l, const float *prev_t, int n_prev) {
    const int B = BATCH, K = tp_K, n = L->n;
    float *y = L->y, *z = L->z, *sm = L->sm;
    /* y_K (K × K) in sm's rows, then row k(b) per sample into y (B × K) */
    for (int k = 0; k < K; ++k) {
        float *row = sm + k * K;
        for (int q = 0; q < K; ++q) {
            float f;
            if (l == 0) f = d_rowlab[k] == d_rowlab[q] ? tp_kappa * 1.41421356237f : 0.0f;
            else {
                float d2 = 0.0f; const float *a = prev_t + k * n_prev, *b = prev_t + q * n_prev;
                for (int i = 0; i < n_prev; ++i) { float df = a[i] - b[i]; d2 += df * df; }
                f = -sqrtf(d2);
            }
            row[q] = f + d_logn[q];
        }
        softmax_row(row, K);
    }
    for (int b = 0; b < B; ++b) for (int q = 0; q < K; ++q) y[b * K + q] = sm[d_inv[b] * K + q];
    float loss = 0.0f;
    for (int b = 0; b < B; ++b) {
        float *zr = z + b * K, *sr = sm + b * K; const float *yr = y + b * K;
        for (int q = 0; q < K; ++q) {
            float acc = 0.0f; const float *e = L->eps + b * n, *et = L->epst + q * n;
            for (int j = 0; j < n; ++j) acc += e[j] * et[j];
            zr[q] = acc + d_logn[q];
            sr[q] = zr[q];
        }
        float lse = softmax_row(sr, K);
        for (int q = 0; q < K; ++q) loss -= yr[q] * (zr[q] - lse - d_logn[q]);
        for (int q = 0; q < K; ++q) sr[q] = (sr[q] - yr[q]) / (float)B;   /* G, in place */
    }
    /* δ = (G ε̃) ⊙ Θ′(u)  (B × n) */
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < n; ++j) {
            float acc = 0.0f;
            for (int q = 0; q < K; ++q) acc += sm[b * K + q] * L->epst[q * n + j];
            L->d[b * n + j] = acc * surrogate(lif_u(L->v[b * n + j], L->s[b * n + j], VTH), VTH, SURR_K);
        }
    /* δ̃ = (Gᵀ ε) ⊙ Θ′(ũ)  (K × n) */
    if (L->two_terms)
        for (int q = 0; q < K; ++q)
            for (int j = 0; j < n; ++j) {
                float acc = 0.0f;
                for (int b = 0; b < B; ++b) acc += sm[b * K + q] * L->eps[b * n + j];
                L->dt[q * n + j] = acc * surrogate(lif_u(L->vt[q * n + j], L->st[q * n + j], VTH), VTH, SURR_K);
            }
    return loss / (float)B;
}

void rule_step(int t, const float *x, const int32_t *labels, float *local_loss, float *readout_ce) {
    const int B = BATCH, K = tp_K;
    const int seq = TPT_CADENCE_SEQ, update = !seq || t == STEPS - 1;
    if (update) ++tp_opt_t;
    tp_kappa = BETA * tp_kappa + 1.0f;
    const float *a = x, *at = 0, *prev_t = 0;
    int n_prev = CLASSES;
    float total = 0.0f;
    for (int l = 0; l < NL; ++l) {
        const tp_layer_t *L = &LAYERS[l];
        forward(L, B, a, 0, L->v, L->s, L->sp);
        trace(L->eps, L->s, B * L->n);
        forward(L, K, at, l == 0 ? d_rowlab : 0, L->vt, L->st, L->spt);
        trace(L->epst, L->st, K * L->n);
        total += loss_and_grad(L, l, prev_t, n_prev);
        const int acc = seq && t > 0;
        const tpt_term_t tw[2] = {{L->d, a, B}, {L->dt, at, K}};
        grad_update(L->W, L->gW, L->oW, L->n, L->n_in, tw, l > 0 ? 2 : 1, 1.0f, acc, tp_opt_t);
        if (L->rec) {
            const tpt_term_t tr[2] = {{L->d, L->sp, B}, {L->dt, L->spt, K}};
            grad_update(L->R, L->gR, L->oR, L->n, L->n, tr, 2, 1.0f, acc, tp_opt_t);
        }
        if (update && !TPT_IN_LOOP) {
            opt_step(L->W, L->gW, L->oW, (uint32_t)(L->n * L->n_in), LR, tp_opt_t);
            if (L->rec) opt_step(L->R, L->gR, L->oR, (uint32_t)(L->n * L->n), LR, tp_opt_t);
        }
        a = L->s; at = L->st; prev_t = L->epst; n_prev = L->n;
    }
    /* readout: m += W_out a_L;  e = softmax(m) − c;  ∂W_out = eᵀ ε_L / B */
    const tp_layer_t *Ll = &LAYERS[NL - 1];
    const int nL = Ll->n;
    float ce = readout_step(NET.W_out, a, NET.m, NET.err, labels, B, CLASSES, nL, 0);
    const tpt_term_t to = {NET.err, Ll->eps, B};
    grad_update(NET.W_out, NET.gW_out, NET.oW_out, CLASSES, nL, &to, 1, (float)B, seq && t > 0, tp_opt_t);
    if (update && !TPT_IN_LOOP) opt_step(NET.W_out, NET.gW_out, NET.oW_out, (uint32_t)(CLASSES * nL), LR, tp_opt_t);
    *local_loss = total;
    *readout_ce = ce / (float)B;
}
