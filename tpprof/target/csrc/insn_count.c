/* QEMU TCG plugin: counts guest instructions and records the count each time the guest enters
 * tpt_marker (address given as marker=0x...). At exit it writes one line per marker hit,
 * "M <instructions so far>", to the file given as out=PATH.
 *
 * Debian's QEMU is built with plugin support but ships no qemu-plugin.h: the few API functions
 * used here are declared below, as in QEMU 7.2's include/qemu/qemu-plugin.h (API version 1). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

static uint64_t insns, marker;
static uint64_t *hits;
static size_t n_hits, cap_hits;
static char out_path[4096];

static void on_marker(unsigned int vcpu, void *ud) {
    (void)vcpu; (void)ud;
    if (n_hits == cap_hits) {
        cap_hits = cap_hits ? 2 * cap_hits : 1024;
        hits = realloc(hits, cap_hits * sizeof *hits);
        if (!hits) abort();
    }
    hits[n_hits++] = insns;
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    /* the marker's callback first: the count then excludes the marker's own block */
    if (marker && qemu_plugin_tb_vaddr(tb) == marker)
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_marker, QEMU_PLUGIN_CB_NO_REGS, 0);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, qemu_plugin_tb_n_insns(tb));
}

static void on_exit_cb(qemu_plugin_id_t id, void *ud) {
    (void)id; (void)ud;
    FILE *f = fopen(out_path, "w");
    if (!f) return;
    for (size_t i = 0; i < n_hits; ++i) fprintf(f, "M %llu\n", (unsigned long long)hits[i]);
    fprintf(f, "T %llu\n", (unsigned long long)insns);
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; ++i) {
        if (!strncmp(argv[i], "marker=", 7)) marker = strtoull(argv[i] + 7, 0, 0) & ~1ull;
        else if (!strncmp(argv[i], "out=", 4)) snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
    }
    if (!out_path[0]) return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, 0);
    return 0;
}
