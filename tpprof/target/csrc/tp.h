/* Traces Propagation on the target: one hidden layer's arrays (pointers into the model's named
 * arrays, see the generated model.c) and its sizes. */
#ifndef TP_H
#define TP_H
#include "tpt.h"
typedef struct {
    int n_in, n;                 /* fan-in, neurons (dense / recurrent: n_out = n) */
    int rec;                     /* 1: recurrent layer (R_l, previous spikes kept) */
    int two_terms;               /* 1: δ̃ is needed (W_l for l ≥ 2, R_l, trained S) */
    float *W, *R, *gW, *gR, *oW, *oR;            /* weights, gradients, optimiser state */
    float *v, *s, *vt, *st, *eps, *epst;         /* both paths' LIF state, both traces */
    float *sp, *spt;                             /* s_l^{t−1} of both paths (recurrent only) */
    float *z, *y, *sm, *d, *dt;                  /* the local loss's transients (phase loss:l) */
} tp_layer_t;
typedef struct {
    float *S, *W_out, *gW_out, *oW_out, *m, *err;
} tp_net_t;
extern const tp_layer_t LAYERS[NL];
extern const tp_net_t NET;
#endif
