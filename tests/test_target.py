"""tpprof.target: the C kernels against the analytic model (bytes) and the learners (numbers)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tpprof.analytic import estimate
from tpprof.config import Device, make_config
from tpprof.errors import UserError
from tpprof.target import get_core, host_run, parse_backend, target_run
from tpprof.target.account import account
from tpprof.target.build import have_toolchain
from tpprof.target.generate import STACK_RESERVE, layout

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc)")
needs_arm = pytest.mark.skipif(not have_toolchain(), reason="gcc-arm-none-eabi / qemu-system-arm not installed")


def _cfg(net="40-64-10", B=4, T=3, opt="sgd", rule="tp", **kw):
    # SGD at lr 0.1: an update ΔW = W_t − W_{t−1} carries ±½ ulp(W) from each side's float32
    # subtraction (torch fuses w + (−lr)·g, C rounds lr·g first), relative ulp(W) / |lr g|
    return make_config(net, rule, batch=B, steps=T, optimizer=opt, lr=0.1 if opt == "sgd" else 1e-2, **kw)


@pytest.mark.parametrize("net,B,rows", [("40-64-10", 1, "batch"), ("40-64-10", 8, "batch"),
                                        ("40-64-64-10", 32, "batch"), ("40-64-64-10", 32, "classes"),
                                        ("40-64r-64-10", 8, "batch")])
def test_layout_is_the_model(net, B, rows):
    """One array per term; persistent arrays + the largest phase = peak_bytes (no compiler needed)."""
    for cfg in (_cfg(net, B, target_rows=rows), _cfg(net, B, rule="ottt"), _cfg(net, B, rule="bptt"),
                _cfg(net, B, rule="tess")):
        lay = layout(cfg)
        bd = estimate(cfg, "algorithm")
        assert sorted(a.term for a in lay.arrays) == sorted(t.name for t in bd.terms)
        assert sum(a.bytes for a in lay.persistent) + lay.transient_bytes() == bd.peak_bytes
        for a in lay.transient:  # packed: no two terms live in one phase overlap
            for b in lay.transient:
                if a is not b and set(a.phases) & set(b.phases) and lay.arena:
                    assert a.offset + a.count <= b.offset or b.offset + b.count <= a.offset


def test_unsupported_configs_are_one_line_errors():
    for cfg, field in [(make_config("1x8x8-c4-10", "tp", batch=2, steps=2), "net"),
                       (_cfg(opt="momentum"), "optimizer"), (_cfg().with_(dtype="fp16"), "dtype"),
                       (_cfg(rule="eprop"), "rule"), (_cfg("40-32r-10", rule="tbptt", window=2), "net"),
                       (_cfg(rule="tbptt", compact=True), "compact")]:
        with pytest.raises(UserError) as e:
            layout(cfg)
        assert e.value.field == field and "\n" not in str(e.value)
    with pytest.raises(UserError, match="qemu:cortex-m4f"):
        parse_backend("qemu:cortex-m99")
    assert parse_backend("cpu") is None and parse_backend("qemu:Cortex-M7").machine == "mps2-an500"


@needs_cc
@pytest.mark.parametrize("net,B,opt", [("40-64-10", 1, "sgd"), ("40-32-48-10", 4, "adam"), ("40-32-32r-10", 4, "adam")])
def test_host_ottt_kernel_matches_the_learner(net, B, opt):
    from tpprof.measure.target_reference import max_update_difference

    cfg = _cfg(net, B, T=5, opt=opt, rule="ottt")
    run = host_run(cfg, dump=True)
    assert run.status == "ok", run.message
    assert max_update_difference(cfg, run) <= 1e-5


@needs_cc
@pytest.mark.parametrize("net,B,factors", [("40-64-10", 8, None), ("40-32r-48-10", 4, (0.2, 0.5, 0.0, 1.0)),
                                           ("40-32-48r-10", 4, (0.2, 0.5, 1.0, 0.0)), ("40-32r-10", 8, None)])
def test_host_tess_kernel_matches_the_learner(net, B, factors):
    """SGD only: with Adam a weight whose TESS gradient is ~0 (the square-wave signal cancels) gets
    lr·g/(|g| + ε), whose sign follows rounding (measured: 3e-4 relative over a 32×48 tensor)."""
    from tpprof.measure.target_reference import max_update_difference

    kw = {} if factors is None else {"tess_factors": factors}
    cfg = _cfg(net, B, T=5, rule="tess", **kw)
    run = host_run(cfg, dump=True)
    assert run.status == "ok", run.message
    assert max_update_difference(cfg, run) <= 1e-5


@needs_cc
@pytest.mark.parametrize("net,B,T,opt", [("40-64-10", 1, 5, "sgd"), ("40-32-48-10", 4, 6, "adam"),
                                         ("40-32-10", 4, 1, "sgd"), ("40-32r-10", 4, 5, "sgd"),
                                         ("40-32r-48-10", 4, 6, "adam")])
def test_host_bptt_kernel_matches_the_learner(net, B, T, opt):
    """Recurrent layer 1, last (R_lᵀ δ from W_outᵀ g_m) or below a dense layer: R_1's update moves."""
    from tpprof.measure.target_reference import max_update_difference

    cfg = _cfg(net, B, T=T, opt=opt, rule="bptt")
    run = host_run(cfg, dump=True)
    assert run.status == "ok", run.message
    if "r" in net:  # a zero update would pass the relative check trivially
        assert run.params[-1]["layer1.R"] != run.params[0]["layer1.R"]
    assert max_update_difference(cfg, run) <= 1e-5


@needs_cc
@pytest.mark.parametrize("net,B,T,K,opt", [("40-32-10", 4, 10, 4, "sgd"), ("40-32-48-10", 4, 9, 3, "adam")])
def test_host_tbptt_kernel_matches_the_learner(net, B, T, K, opt):
    """tbptt = the BPTT kernel over windows of K steps (a shorter last one), one update per window."""
    from tpprof.measure.target_reference import max_update_difference

    cfg = _cfg(net, B, T=T, opt=opt, rule="tbptt", window=K)
    lay = layout(cfg)
    assert sum(a.bytes for a in lay.persistent) + lay.transient_bytes() == estimate(cfg, "algorithm").peak_bytes
    run = host_run(cfg, dump=True)
    assert run.status == "ok", run.message
    moved = [run.params[t]["layer1.W"] != run.params[t - 1]["layer1.W"] for t in range(1, T + 1)]
    assert moved == [t % K == 0 or t == T for t in range(1, T + 1)]  # updates at window ends only
    assert max_update_difference(cfg, run) <= 1e-5


@needs_cc
@pytest.mark.parametrize("net,B,opt,rows", [("40-64-10", 1, "sgd", "batch"), ("40-32-32-10", 16, "adam", "classes"),
                                            ("40-32r-32-10", 8, "sgd", "batch"), ("40-32-32r-10", 16, "adam", "classes")])
def test_host_kernel_matches_the_learner(net, B, opt, rows):
    """The C step (host cc) vs tpprof.snn's TP learner on the same weights and data: per-step
    updates within 1e-5 relative (float32 both)."""
    from tpprof.measure.target_reference import max_update_difference

    cfg = _cfg(net, B, T=5, opt=opt, target_rows=rows)
    run = host_run(cfg, dump=True)
    assert run.status == "ok", run.message
    if B == 1:  # TP's local loss is identically zero at B = 1 (a 1×1 softmax)
        assert all(v == 0.0 for v in run.local_loss)
    assert max_update_difference(cfg, run) <= 1e-5


@pytest.fixture(scope="module")
def m4f():
    return get_core("cortex-m4f")


@needs_arm
@pytest.mark.parametrize("rule,net,B", [("tp", "40-64-10", 1), ("tp", "40-64-10", 2), ("tp", "40-64-64-10", 8),
                                        ("tp", "40-32r-10", 8),
                                        ("ottt", "40-64-64-10", 4), ("ottt", "40-32r-48-10", 8),
                                        ("bptt", "40-32-48-10", 4), ("bptt", "40-32r-48-10", 4), ("tbptt", "40-32-48-10", 4),
                                        ("tess", "40-32r-48-10", 4),
                                        ("tp-in-loop", "40-32r-48-10", 4), ("ottt-in-loop", "40-32-48-10", 4)])
def test_qemu_ram_is_the_algorithmic_peak(m4f, rule, net, B):
    """On the Cortex-M4F the m_* arrays (.bss minus data and runtime) are exactly peak_bytes."""
    rule, _, mode = rule.partition("-")
    cfg = _cfg(net, B, T=2, rule=rule, update="in-loop" if mode else "buffered",
               **({"window": 1} if rule == "tbptt" else {}))
    built, run = target_run(cfg, m4f, count=False)
    assert run.status == "ok", run.message
    acc = account(built, run)
    assert acc.modelled_bytes == estimate(cfg, "algorithm").peak_bytes
    assert acc.section_bss == acc.modelled_bytes + acc.data_bytes + acc.runtime_bss_bytes
    assert 0 < run.stack_bytes < STACK_RESERVE
    if rule == "tp":  # a union of one struct per phase: the compiler's sizeof of each
        assert sum(run.phases.values()) >= acc.arrays["m_phase"] == max(run.phases.values())


@needs_arm
def test_qemu_kernel_matches_the_learner_and_counts_deterministically(m4f, tmp_path):
    from tpprof.measure.target_reference import max_update_difference

    cfg = _cfg("40-32-32-10", 8, T=4, opt="adam")
    built, run = target_run(cfg, m4f, dump=True, workdir=tmp_path)
    assert run.status == "ok", run.message
    assert max_update_difference(cfg, run) <= 1e-5
    from tpprof.target.run import qemu_run

    again = qemu_run(built, m4f)
    assert len(run.insns_per_step) == 4 and min(run.insns_per_step) > 0
    assert again.insns_per_step == run.insns_per_step and again.checksum == run.checksum


@needs_arm
@pytest.mark.parametrize("rule,net,kw", [("bptt", "40-32r-10", {}), ("tbptt", "40-32-10", {"window": 2})])
def test_qemu_bptt_kernels_match_the_learner(m4f, tmp_path, rule, net, kw):
    """Under QEMU (M4F, FPv4-SP) as on the host: recurrent BPTT's and tbptt's updates are the learner's."""
    from tpprof.measure.target_reference import max_update_difference

    cfg = _cfg(net, 4, T=5, rule=rule, **kw)
    _, run = target_run(cfg, m4f, dump=True, count=False, workdir=tmp_path)
    assert run.status == "ok", run.message
    name = "layer1.R" if "r" in net else "layer1.W"
    assert run.params[-1][name] != run.params[0][name]
    assert max_update_difference(cfg, run) <= 1e-5


@needs_arm
def test_does_not_fit_crash_and_timeout_are_results(tmp_path):
    cfg = _cfg("40-64-10", 8, T=2)
    small = Device("tiny", 16 * 1024)
    built, run = target_run(cfg, get_core("cortex-m4f"), small, count=False)
    assert run.status == "does-not-fit" and built.overflow_bytes > 0
    big, _ = target_run(cfg, get_core("cortex-m4f"), None, count=False)
    need = big.sections[".data"] + big.sections[".bss"] + STACK_RESERVE
    assert abs(need - 16 * 1024 - built.overflow_bytes) <= 8  # alignment of the stack only
    _, run = target_run(cfg, get_core("cortex-m3"), count=False, extra_cflags=("-DTPT_FAULT_TEST=1",))
    assert run.status == "crash" and "fault" in run.message.lower()
    _, run = target_run(cfg, get_core("cortex-m3"), count=False, timeout=1.0, extra_cflags=("-DTPT_HANG_TEST=1",))
    assert run.status == "timeout"
    assert not _qemu_children()


def _qemu_children() -> list[int]:
    """QEMU processes whose parent is this test process."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if "qemu-system" in stat and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                out.append(int(d.name))
    return out


@needs_arm
def test_measure_backend_qemu_writes_rows_that_validate_to_the_byte(tmp_path, capsys):
    from tpprof.cli import main
    from tpprof.store import load
    from tpprof.validate import render, validate_rows

    out = tmp_path / "target.csv"
    rc = main(["measure", "--backend", "qemu:cortex-m4f", "--device", "nrf52840", "--net", "40-32-10,40-400-400-10",
               "--rule", "tp", "--batch", "4", "--steps", "3", "--optimizer", "sgd", "--out", str(out), "--quiet"])
    assert rc == 0
    rows = load(out).rows
    st = {r["net"]: r for r in rows}
    assert st["40-32-10"]["status"] == "ok" and st["40-400-400-10"]["status"] == "does-not-fit"
    assert st["40-400-400-10"]["overflow_bytes"] > 0
    ok = st["40-32-10"]
    assert ok["device"] == "qemu:cortex-m4f" and ok["target_device"] == "nrf52840" and ok["insns_per_step"] > 0
    assert ok["peak_bytes"] == ok["static_bytes"] + ok["stack_bytes"]
    assert ok["peak_bytes"] == sum(ok[f"bytes_{c}"] for c in ("weights", "gradients", "optimizer", "neuron_state",
                                                               "traces", "aux", "loss_buffers", "saved",
                                                               "implementation")) + ok["bytes_other"]
    v = validate_rows(rows)
    assert v.summary()["target_points"] == 1 and v.summary()["target_max_abs_difference_bytes"] == 0
    text = render(v)
    assert "C runtime .data" in text and "stack" in text and "does-not-fit" in text
    # a rerun skips the points already in the file
    assert main(["measure", "--backend", "qemu:cortex-m4f", "--device", "nrf52840", "--net", "40-32-10", "--rule",
                 "tp", "--batch", "4", "--steps", "3", "--optimizer", "sgd", "--out", str(out), "--quiet"]) == 0
    assert len(load(out).rows) == 2


def test_measure_backend_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    from tpprof.cli import main

    assert main(["measure", "--backend", "qemu:cortex-m99", "--net", "40-32-10", "--batch", "2", "--steps", "2",
                 "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cortex-m4f" in err[0]
    monkeypatch.setenv("PATH", str(tmp_path))  # no toolchain on PATH
    assert main(["measure", "--backend", "qemu:cortex-m4f", "--net", "40-32-10", "--batch", "2", "--steps", "2",
                 "--optimizer", "sgd", "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gcc-arm-none-eabi" in err[0]
    assert not (tmp_path / "x.csv").exists()


def test_instructions_per_mac_model_from_target_rows():
    from tpprof.analytic.target_timing import calibrate_target, core_of, cycles_per_step, insn_model

    rows = [{"status": "ok", "counter": "static+stack", "core": "cortex-m7", "rule": "tp", "macs_per_step": m,
             "insns_per_step": 1000 + 8 * m} for m in (1e4, 5e4, 2e5)]
    rows.append({"status": "does-not-fit", "counter": "static+stack", "core": "cortex-m7", "rule": "tp"})
    models = calibrate_target(rows)
    tp = models[("cortex-m7", "tp")]
    assert tp.insns_per_mac == pytest.approx(8.0) and tp.base_insns == pytest.approx(1000.0)
    assert insn_model("cortex-m7", "ottt", models) is models[("cortex-m7", "*")]  # the core's pooled model
    assert core_of("stm32h743") == "cortex-m7" and core_of("k210") is None
    c, m = cycles_per_step("k210", "tp", 1e5)
    assert m is None and c != c
    assert "stated CPI" in tp.describe(1.5) and tp.cycles(1e5, 1.5) == pytest.approx(1.5 * (1000 + 8e5))


@pytest.mark.parametrize("rule", ["tp", "ottt", "tess", "eprop"])
def test_in_loop_update_drops_every_gradient_buffer(rule):
    """update in-loop: no gradient term, so the peak is the buffered one less the gradients live at
    the buffered peak phase (for these nets: the largest grad W, 64 × 64 floats)."""
    from tpprof.config import ConfigError

    buf = estimate(make_config("40-64-64-10", rule, batch=8, steps=5, optimizer="adam"), "algorithm")
    loop = estimate(make_config("40-64-64-10", rule, batch=8, steps=5, optimizer="adam", update="in-loop"), "algorithm")
    assert not [t for t in loop.terms if t.category == "gradients"]
    assert buf.peak_bytes - loop.peak_bytes == 64 * 64 * 4
    full = estimate(make_config("40-64-64-10", rule, batch=8, steps=5, optimizer="adam", update="in-loop"), "full")
    assert any("p.grad" in t.name for t in full.terms)  # the torch learners keep p.grad: implementation
    for bad in ({"rule": "bptt"}, {"rule": "tp", "cadence": "sequence"}):
        with pytest.raises(ConfigError, match="update"):
            make_config("40-64-10", bad["rule"], cadence=bad.get("cadence", "step"), update="in-loop")


@needs_cc
@pytest.mark.parametrize("rule,net,opt", [("tp", "40-32r-32-10", "adam"), ("ottt", "40-32-48-10", "adam"),
                                          ("tess", "40-32-48-10", "sgd")])
def test_in_loop_kernels_make_the_learners_updates(rule, net, opt):
    """update in-loop: each weight stepped as its gradient is summed, no gradient buffer; the same
    arithmetic as the buffered kernel (bit for bit) and the learner (tpprof/snn keeps its p.grad)."""
    from tpprof.measure.target_reference import max_update_difference

    cfg = _cfg(net, 8, T=4, opt=opt, rule=rule, update="in-loop")
    run = host_run(cfg, dump=True)
    assert run.status == "ok", run.message
    assert not [a for a in layout(cfg).arrays if a.term.split("/")[-1].startswith("grad ")]
    assert run.params == host_run(cfg.with_(update="buffered"), dump=True).params
    assert max_update_difference(cfg, run) <= 1e-5


def test_dashboard_marks_the_target_measured_configs(tmp_path, monkeypatch):
    """The measured page and the device page show the shipped target rows (no toolchain needed)."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from tpprof.resources import shipped_path

    meas = tmp_path / "meas"
    meas.mkdir()
    (meas / "target_tp.csv").write_bytes((shipped_path("measurements") / "target_tp.csv").read_bytes())
    monkeypatch.setenv("TPPROF_MEASUREMENTS_DIR", str(meas))
    monkeypatch.setenv("TPPROF_RESULTS_DIR", str(tmp_path))
    app = str(Path(__file__).resolve().parent.parent / "tpprof" / "app" / "streamlit_app.py")
    at = AppTest.from_file(app, default_timeout=60)
    at.query_params["page"] = "Measured vs analytic"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Measured on the target" in m.value for m in at.markdown)
    at = AppTest.from_file(app, default_timeout=60)
    at.query_params["page"] = "Device regimes"
    at.run()
    at.selectbox(key="rg_device").set_value("stm32h743").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    assert "Measured on the target" in captions and "cycles/step" in captions


def test_estimate_rule_all_gives_cycles_on_a_cortex_m_device(capsys):
    """The shipped target rows give instructions/MAC per core and rule: estimate --rule all on an
    MCU of the catalogue prints cycles/step at a stated CPI (no toolchain needed)."""
    from tpprof.cli import main

    assert main(["estimate", "--net", "fsdd", "--rule", "all", "--batch", "8", "--steps", "50", "--optimizer", "sgd",
                 "--device", "stm32h743"]) == 0
    out = capsys.readouterr().out
    assert "cycles/step†" in out and "stated CPI" in out and "cortex-m7" in out
    assert main(["estimate", "--net", "fsdd", "--rule", "all", "--batch", "8", "--steps", "50", "--device",
                 "k210"]) == 0  # not a Cortex-M: no cycle column
    assert "cycles/step†" not in capsys.readouterr().out
