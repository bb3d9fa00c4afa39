/* TESS (paper flavour) on the target: one hidden layer's arrays. */
#ifndef TESS_H
#define TESS_H
#include "tpt.h"
typedef struct {
    int n_in, n, rec;
    float *W, *R, *gW, *gR, *oW, *oR;   /* weights, gradients, optimiser state */
    float *v, *s, *tri, *tro, *Bl;      /* LIF state, traces (pre, post), the fixed LSG matrix (C × n) */
    float *pe, *dc, *dnc;               /* p − t* (B × C), δ causal, δ non-causal (B × n) */
    float *trr, *sp;                    /* recurrent layers: trace of s^{t−1} (causal), s^{t−1} itself */
} tess_layer_t;
typedef struct { float *W_out, *gW_out, *oW_out, *m, *epsL, *err; } tess_net_t;
extern const tess_layer_t LAYERS[NL];
extern const tess_net_t NET;
#endif
