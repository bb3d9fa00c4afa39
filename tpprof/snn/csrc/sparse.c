/* The sparse input path's kernels (tpprof/snn/native.py loads them; tpprof/snn/sparse.py uses them).
 *
 * Layer 1 reads the input frame x^t (B, n_in) through its non-zero entries, kept in two orders
 * (SpikeFrames): by sample, bags (t, b) of inputs j (cols); by input, bags (t, j) of samples b
 * (grows); values only for graded (non-binary) input.
 *
 *   wgrad:    gT[j] = β gT[j] + Σ_{e ∈ bag j} v_e · d[rows[e]]     ∂W_1ᵀ ← β ∂W_1ᵀ + x^tᵀ δ   (n_in, H)
 *   count:    entries per bag (t, b) and (t, j) of x (B, T, n), whether every entry is 1; nnz
 *   fill:     the two lists (and values), x read once in memory order; a bag (t, j) is filled
 *             in increasing b because b is the outer loop
 *
 * Bags start at offs[k] (relative to the step's first entry); the last bag ends at n. v_e = 1
 * when vals is NULL. Rows of gT and d are contiguous, H apart. Same sums as torch's embedding_bag
 * (the forward stays on it: fbgemm's gather was as fast or faster, bench/native_sparse.py) up to
 * summation order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(TPPROF_NO_CLONES)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* whether the 16 bytes at p are all ±0 (mask clears the sign bits of the 2 words' elements) */
static inline int zero16(const void* p, uint64_t mask) {
    uint64_t w[2];
    memcpy(w, p, sizeof w);
    return ((w[0] | w[1]) & mask) == 0;
}

#define SPARSE_KERNELS(SUF, TYPE, PER16, MASK)                                                                  \
VECTOR_CLONES void wgrad_##SUF(TYPE* gT, int64_t H, const int64_t* rows, const TYPE* vals,    \
                                 const int64_t* offs, int64_t n_in, int64_t n, const TYPE* d,   \
                                 double beta) {                                                  \
    for (int64_t j = 0; j < n_in; j++) {                                                         \
        TYPE* restrict g = gT + j * H;                                                           \
        int64_t e1 = j + 1 < n_in ? offs[j + 1] : n;                                             \
        int64_t e = offs[j];                                                                     \
        if (beta == 0.0) {                                                                       \
            if (e == e1) { memset(g, 0, (size_t)H * sizeof(TYPE)); continue; }                   \
            const TYPE* restrict r0 = d + rows[e] * H; /* assigned: no pass to clear g */        \
            TYPE v0 = vals ? vals[e] : (TYPE)1;                                                  \
            for (int64_t h = 0; h < H; h++) g[h] = v0 * r0[h];                                   \
            e++;                                                                                 \
        } else if (beta != 1.0) {                                                                \
            for (int64_t h = 0; h < H; h++) g[h] *= (TYPE)beta;                                  \
        }                                                                                        \
        for (; e < e1; e++) {                                                                    \
            const TYPE* restrict r = d + rows[e] * H;                                            \
            if (vals) {                                                                          \
                TYPE v = vals[e];                                                                \
                for (int64_t h = 0; h < H; h++) g[h] += v * r[h];                                \
            } else {                                                                             \
                for (int64_t h = 0; h < H; h++) g[h] += r[h];                                    \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
                                                                                                 \
int64_t count_##SUF(const TYPE* x, int64_t B, int64_t T, int64_t n, int64_t* fcount,            \
                    int64_t* gcount, int32_t* binary) {                                          \
    int64_t nnz = 0;                                                                             \
    int32_t bin = 1;                                                                             \
    if (gcount) memset(gcount, 0, (size_t)(T * n) * sizeof(int64_t));                            \
    for (int64_t b = 0; b < B; b++)                                                              \
        for (int64_t t = 0; t < T; t++) {                                                        \
            const TYPE* row = x + (b * T + t) * n;                                               \
            int64_t* gc = gcount ? gcount + t * n : NULL;                                        \
            int64_t c = 0;                                                                       \
            int32_t ok = 1; /* branch-free, so the scan does not stall on random spikes */        \
            if (gc) {                                                                            \
                for (int64_t j = 0; j < n; j++) {                                                \
                    TYPE v = row[j];                                                             \
                    int64_t nz = v != 0;                                                         \
                    c += nz;                                                                     \
                    gc[j] += nz;                                                                 \
                    ok &= (v == 0) | (v == 1);                                                   \
                }                                                                                \
            } else {                                                                             \
                for (int64_t j = 0; j < n; j++) {                                                \
                    TYPE v = row[j];                                                             \
                    c += v != 0;                                                                 \
                    ok &= (v == 0) | (v == 1);                                                   \
                }                                                                                \
            }                                                                                    \
            bin &= ok;                                                                           \
            fcount[t * B + b] = c;                                                               \
            nnz += c;                                                                            \
        }                                                                                        \
    *binary = bin;                                                                               \
    return nnz;                                                                                  \
}                                                                                                \
                                                                                                 \
int fill_##SUF(const TYPE* x, int64_t B, int64_t T, int64_t n, const int64_t* fcount,           \
               const int64_t* gcount, int64_t* cols, TYPE* vals, int64_t* grows, TYPE* gvals) {  \
    int64_t* fnext = (int64_t*)malloc((size_t)(T * B > 0 ? T * B : 1) * sizeof(int64_t));       \
    int64_t* gnext = grows ? (int64_t*)malloc((size_t)(T * n > 0 ? T * n : 1) * sizeof(int64_t)) \
                           : NULL;                                                               \
    if (!fnext || (grows && !gnext)) {                                                           \
        free(fnext);                                                                             \
        free(gnext);                                                                             \
        return 1;                                                                                \
    }                                                                                            \
    int64_t s = 0;                                                                               \
    for (int64_t i = 0; i < T * B; i++) { fnext[i] = s; s += fcount[i]; }                        \
    if (grows) {                                                                                 \
        s = 0;                                                                                   \
        for (int64_t i = 0; i < T * n; i++) { gnext[i] = s; s += gcount[i]; }                    \
    }                                                                                            \
    for (int64_t b = 0; b < B; b++)                                                              \
        for (int64_t t = 0; t < T; t++) {                                                        \
            const TYPE* row = x + (b * T + t) * n;                                               \
            int64_t e = fnext[t * B + b];                                                        \
            int64_t* gn = grows ? gnext + t * n : NULL;                                          \
            for (int64_t j = 0; j < n; j++) {                                                    \
                if ((j & (PER16 - 1)) == 0 && j + PER16 <= n && zero16(row + j, MASK)) {        \
                    j += PER16 - 1; /* 16 bytes of zeros (±0) skipped at once */                  \
                    continue;                                                                    \
                }                                                                                \
                TYPE v = row[j];                                                                 \
                if (v == 0) continue;                                                            \
                cols[e] = j;                                                                     \
                if (vals) vals[e] = v;                                                           \
                e++;                                                                             \
                if (gn) {                                                                        \
                    int64_t g = gn[j]++;                                                         \
                    grows[g] = b;                                                                \
                    if (gvals) gvals[g] = v;                                                     \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    free(fnext);                                                                                 \
    free(gnext);                                                                                 \
    return 0;                                                                                    \
}

SPARSE_KERNELS(f32, float, 4, 0x7fffffff7fffffffULL)
SPARSE_KERNELS(f64, double, 2, 0x7fffffffffffffffULL)
