/* BPTT on the target: one hidden layer's arrays (pointers into the model's named arrays). */
#ifndef BPTT_H
#define BPTT_H
#include "tpt.h"
typedef struct {
    int n_in, n, rec;
    float *W, *R, *gW, *gR, *oW, *oR;   /* weights, gradients, optimiser state */
    float *v, *s;                       /* LIF state */
    float *sin, *su, *dl;               /* saved inputs (T or T − 1 frames), saved u (T), carried adjoint */
    float *dr;                          /* recurrent layers: R_lᵀ δ_l carried to the step before */
} bptt_layer_t;
typedef struct { float *W_out, *gW_out, *oW_out, *m, *sL, *gm; } bptt_net_t;
extern const bptt_layer_t LAYERS[NL];
extern const bptt_net_t NET;
#endif
