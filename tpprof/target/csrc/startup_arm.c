/* Bare-metal Cortex-M start-up for QEMU: vector table, .data/.bss set-up, FPU on, stack painted,
 * ARM semihosting for output (SYS_WRITE0) and exit (SYS_EXIT_EXTENDED). A fault prints FAULT and
 * exits with status 3, so a crashing kernel ends the run instead of hanging it. */
#include <stdint.h>
#include "tpt.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _stack_bottom[], _stack_top[];
int main(void);

#define PAINT 0xC5C5C5C5u

static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void plat_write(const char *s) { semihost(0x04, s); }

void plat_exit(int code) {
    uint32_t blk[2] = {0x20026u, (uint32_t)code};   /* ADP_Stopped_ApplicationExit, status */
    semihost(0x20, blk);
    for (;;) { }
}

__attribute__((noinline)) void tpt_marker(int k) { __asm__ volatile("" : : "r"(k) : "memory"); }

long tpt_stack_high_water(void) {
    const uint32_t *p = _stack_bottom;
    while (p < _stack_top && *p == PAINT) ++p;
    return (long)((const char *)_stack_top - (const char *)p);
}

__attribute__((noreturn)) void Reset_Handler(void) {
    uint32_t *s = _sidata, *d = _sdata;
    while (d < _edata) *d++ = *s++;
    for (d = _sbss; d < _ebss;) *d++ = 0;
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (d = _stack_bottom; d < sp - 16;) *d++ = PAINT;   /* below this frame: unused so far */
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;   /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    plat_exit(main());
    for (;;) { }
}

void Fault_Handler(void) {
    semihost(0x04, "FAULT\n");
    plat_exit(3);
}

__attribute__((section(".vectors"), used)) const void *const tpt_vectors[16] = {
    _stack_top, (const void *)Reset_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler,
    (const void *)Fault_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler, 0, 0, 0, 0,
    (const void *)Fault_Handler, (const void *)Fault_Handler, 0, (const void *)Fault_Handler,
    (const void *)Fault_Handler,
};
