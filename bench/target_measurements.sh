#!/usr/bin/env bash
# Regenerates the shipped target measurements (measurements/target_*.csv): every point built with
# arm-none-eabi-gcc and run under qemu-system-arm (~3 min on one core). Needs:
#   apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
# Usage: bench/target_measurements.sh [tp|rules]   (default both files; one name: only that file)
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-all}"
case "$WHICH" in all|tp|rules) ;; *) echo "target_measurements.sh: which file: tp, rules or nothing (both), not '$WHICH'" >&2; exit 2;; esac
M="python -m tpprof measure --quiet"
tp_file() {
OUT=measurements/target_tp.csv
rm -f "$OUT"
# the FSDD net on an STM32H743 budget (1060 KiB SRAM, buffers ≤ its 512 KiB AXI block), SGD, T = 50
$M --backend qemu:cortex-m7 --device stm32h743 --net fsdd --rule tp --batch 1,2,4,8,32,64 --steps 50 --optimizer sgd --out "$OUT" || true
$M --backend qemu:cortex-m7 --device stm32h743 --net fsdd --rule tp --target-rows classes --batch 32,64 --steps 50 --optimizer sgd --out "$OUT" || true
# B × C × depth on two cores with an nRF52840's 256 KiB
$M --backend qemu:cortex-m4f,qemu:cortex-m33 --device nrf52840 --net 40-64-10,40-64-64-10,40-128-128-128-10 --rule tp --batch 1,4,16 --classes 10,20 --steps 10 --optimizer sgd --out "$OUT" || true
# Adam, the class-deduplicated target path, a recurrent net (Cortex-M3, soft float)
$M --backend qemu:cortex-m3 --device nrf52840 --net 40-64r-10,40-64-64r-10 --rule tp --batch 1,8 --steps 10 --optimizer adam --out "$OUT" || true
$M --backend qemu:cortex-m4f --device rp2040 --net 40-64-64-10 --rule tp --target-rows classes --batch 16,64 --steps 10 --optimizer adam --out "$OUT" || true
# the micro:bit's Cortex-M0 (16 KiB RAM, soft float): what fits and what does not
$M --backend qemu:cortex-m0 --net 40-16-10,40-32-10,40-64-10 --rule tp --batch 1,4 --steps 5 --optimizer sgd --out "$OUT" || true
}
rules_file() {
# the other rules: OTTT, TESS (paper flavour), BPTT on the FSDD net and small nets, B × depth × core
OUT=measurements/target_rules.csv
rm -f "$OUT"
$M --backend qemu:cortex-m7 --device stm32h743 --net fsdd --rule ottt,tess,bptt --batch 1,8 --steps 50 --optimizer sgd --out "$OUT" || true
$M --backend qemu:cortex-m4f,qemu:cortex-m33 --device nrf52840 --net 40-64-10,40-64-64-10 --rule ottt,tess,bptt --batch 1,8 --steps 10 --optimizer sgd --out "$OUT" || true
$M --backend qemu:cortex-m3 --device nrf52840 --net 40-64r-10 --rule ottt,tess,bptt --batch 1,8 --steps 10 --optimizer adam --out "$OUT" || true
# recurrent BPTT (R_lᵀ δ carried to the step before), one and two layers
$M --backend qemu:cortex-m4f --device nrf52840 --net 40-64r-10,40-64-64r-10 --rule bptt --batch 1,8 --steps 10 --optimizer sgd --out "$OUT" || true
$M --backend qemu:cortex-m0 --net 40-16-10 --rule ottt,tess,bptt --batch 1,4 --steps 5 --optimizer sgd --out "$OUT" || true
# truncated BPTT (one update per window of K steps): the FSDD net fits where plain BPTT does not
$M --backend qemu:cortex-m7 --device stm32h743 --net fsdd --rule tbptt --window 10 --batch 1,8 --steps 50 --optimizer sgd --out "$OUT" || true
$M --backend qemu:cortex-m4f --device nrf52840 --net 40-64-10,40-64-64-10 --rule tbptt --window 4 --batch 1,8 --steps 10 --optimizer sgd --out "$OUT" || true
# the in-loop update (no gradient buffer), SGD and Adam
$M --backend qemu:cortex-m7 --device stm32h743 --net fsdd --rule tp,ottt,tess --update in-loop --batch 1,8 --steps 50 --optimizer sgd --out "$OUT" || true
$M --backend qemu:cortex-m4f --device nrf52840 --net 40-64-64-10 --rule tp,ottt,tess --update in-loop --batch 4 --steps 10 --optimizer adam --out "$OUT" || true
}
if [ "$WHICH" != rules ]; then tp_file; python -m tpprof validate --measurements measurements/target_tp.csv; fi
if [ "$WHICH" != tp ]; then rules_file; python -m tpprof validate --measurements measurements/target_rules.csv; fi
