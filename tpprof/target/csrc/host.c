/* Host platform (cc): the same kernels, output to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include "tpt.h"
void plat_write(const char *s) { fputs(s, stdout); }
void plat_exit(int code) { fflush(stdout); exit(code); }
void tpt_marker(int k) { (void)k; }
long tpt_stack_high_water(void) { return -1; }
