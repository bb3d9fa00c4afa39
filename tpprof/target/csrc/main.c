/* One mini-batch of STEPS time steps of the rule, with the output the runner parses:
 *   BEGIN <rule>        PH <phase> <bytes>     (sizeof of each phase's struct in the union)
 *   L <t> <local loss bits> <readout CE bits>  (per step)
 *   W <name> <bits>...  (parameters, TPT_DUMP builds only: initial and after every step)
 *   CK <fnv1a of the parameter bits> <Σ parameters bits>   STACK <bytes>   END
 * Input spikes and labels come from xorshift32 (seed TPT_DATA_SEED), one frame per step: a device
 * streams its input, so only B × n_in floats (d_x) are held. */
#include "tpt.h"
#include "model.h"

float d_x[BATCH * N_IN];      /* the current input frame (data: not modelled) */
int32_t d_labels[BATCH];       /* labels (data: not modelled) */

static void dump_params(void) {
    for (uint32_t i = 0; i < TPT_N_PARAMS; ++i) {
        const tpt_param_t *p = &TPT_PARAMS[i];
        out_str("W "); out_str(p->name);
        for (uint32_t k = 0; k < p->n; ++k) {
            out_f(p->p[k]);
            if ((k & 7u) == 7u && k + 1 < p->n) { out_nl(); out_str("W+"); }
        }
        out_nl();
    }
}

static void checksum(void) {
    uint32_t h = 2166136261u; float sum = 0.0f;
    for (uint32_t i = 0; i < TPT_N_PARAMS; ++i) {
        const tpt_param_t *p = &TPT_PARAMS[i];
        for (uint32_t k = 0; k < p->n; ++k) {
            union { float f; uint32_t u; } c; c.f = p->p[k];
            for (int j = 0; j < 4; ++j) { h ^= (c.u >> (8 * j)) & 255u; h *= 16777619u; }
            sum += p->p[k];
        }
    }
    out_str("CK "); out_hex(h); out_f(sum); out_nl();
}

int main(void) {
    uint32_t wseed = TPT_WEIGHT_SEED, dseed = TPT_DATA_SEED;
    out_str("BEGIN " TPT_RULE); out_nl();
    tpt_print_phases();
    for (uint32_t i = 0; i < TPT_N_PARAMS; ++i) {   /* U(±1/√fan_in), PyTorch's default init scale */
        const tpt_param_t *p = &TPT_PARAMS[i];
        float bound = 1.0f / sqrtf((float)p->fan_in);
        for (uint32_t k = 0; k < p->n; ++k) p->p[k] = rng_uniform(&wseed, bound);
    }
#if TPT_DUMP
    dump_params();
#endif
    for (int b = 0; b < BATCH; ++b) d_labels[b] = (int32_t)(rng_next(&dseed) % CLASSES);
    rule_begin_batch(d_labels);
#if TPT_FAULT_TEST   /* the tests' crashing kernel: a write to unmapped memory */
    *(volatile uint32_t *)0xF0000000u = 1u;
#endif
#if TPT_HANG_TEST    /* the tests' kernel that never exits */
    for (volatile int spin = 1; spin;) { }
#endif
    for (int t = 0; t < STEPS; ++t) {
        for (int i = 0; i < BATCH * N_IN; ++i) d_x[i] = (rng_next(&dseed) >> 8) < TPT_DENSITY24 ? 1.0f : 0.0f;
        float local = 0.0f, ce = 0.0f;
        tpt_marker(1);
        rule_step(t, d_x, d_labels, &local, &ce);
        tpt_marker(2);
        out_str("L "); out_u((uint32_t)t); out_f(local); out_f(ce); out_nl();
#if TPT_DUMP
        dump_params();
#endif
    }
    checksum();
    long hw = tpt_stack_high_water();
    out_str("STACK "); if (hw < 0) out_str("-1"); else out_u((uint32_t)hw); out_nl();
    out_str("END"); out_nl();
    return 0;
}
