/* OTTT on the target: one hidden layer's arrays (pointers into the model's named arrays). */
#ifndef OTTT_H
#define OTTT_H
#include "tpt.h"
typedef struct {
    int n_in, n, rec;
    float *W, *R, *gW, *gR, *oW, *oR;   /* weights, gradients, optimiser state */
    float *v, *s, *tr, *trr;            /* LIF state, presynaptic traces (input, recurrent) */
    float *u, *adj;                     /* this step's pre-reset potential, spike adjoint / δ */
} ottt_layer_t;
typedef struct { float *W_out, *gW_out, *oW_out, *m, *epsL, *gm; } ottt_net_t;
extern const ottt_layer_t LAYERS[NL];
extern const ottt_net_t NET;
#endif
