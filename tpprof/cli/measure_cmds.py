"""``tpprof measure`` (real peak memory and step time) and ``tpprof validate`` (measured vs
analytic). Thin shells over :mod:`tpprof.measure`; torch is imported only in the subprocesses
that measure, so both commands start fast."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tpprof.cli.config_flags import add_config_flags, ascii_float, ascii_int, refuse_catalogue_device
from tpprof.config import TRAINABLE_RULES
from tpprof.errors import UserError


def _killed(res: Any) -> str:
    n = res.count("killed")
    return f", {n} killed" if n else ""


def _is_target(args: argparse.Namespace) -> bool:
    return any(b.strip().lower().startswith("qemu") for b in str(getattr(args, "backend", None) or "").split(","))


def _handle_measure_target(args: argparse.Namespace) -> int:
    """``--backend qemu:<core>[,qemu:<core>]``: the rule's step as C under QEMU (tpprof.target);
    ``--device`` names the catalogue device whose SRAM the linker imposes."""
    from tpprof.analytic.devices import get_device
    from tpprof.cli.config_flags import LIST_FIELDS, int_flag, rule_changes, split_list
    from tpprof.measure.grid import expand, load_grid
    from tpprof.target.cores import parse_backend
    from tpprof.measure.target import measure_target

    cores = []
    for b in split_list("backend", args.backend):
        core = parse_backend(b)
        if core is None:
            raise UserError("backend", f"{b!r} cannot be mixed with qemu backends in one run", "qemu:<core> only")
        cores.append(core)
    device = get_device(args.device) if args.device else None
    if args.grid:
        blocks, _ = load_grid(args.grid)
    else:
        if not args.net or not args.batch or not args.steps:
            raise UserError("measure", "needs --net, --batch and --steps (or --grid)",
                            "e.g. tpprof measure --backend qemu:cortex-m7 --device stm32h743 --net fsdd --rule tp "
                            "--batch 1,4 --steps 50 --optimizer sgd --out target.csv")
        block: dict[str, Any] = {k: split_list(k, getattr(args, k)) for k in LIST_FIELDS
                                 if getattr(args, k) is not None}
        for k in ("batch", "classes", "steps"):
            if k in block:
                block[k] = [int_flag(k, v) for v in block[k]]
        block.setdefault("rule", ["tp"])
        block.update(rule_changes(args, skip=LIST_FIELDS))
        blocks = [block]
    for bl in blocks:
        bl["device"] = ["cpu"]  # the torch grid's key; the target runs come from the cores above
    points = [(p.cfg, p.net) for p in expand(blocks)]
    if args.dry_run:
        for cfg, net in points:
            for core in cores:
                print(f"{cfg.rule.name} {net} B={cfg.workload.batch} T={cfg.workload.steps} qemu:{core.name}")
        return 0
    if not args.out:
        raise UserError("out", "is missing", "a CSV file to append rows to, e.g. --out measurements/target_mine.csv")
    timeout = args.timeout if args.timeout is not None else 60.0
    log = None if args.quiet else print
    rows = []
    for core in cores:
        rows += measure_target(points, core, device, args.out, timeout=timeout, retry_failed=args.retry_failed, log=log)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "does-not-fit", "timeout", "error")}
    print(f"{len(rows)} measured on the target ({', '.join(f'{n} {s}' for s, n in counts.items())}) into {args.out}")
    return 0 if all(r["status"] in ("ok", "does-not-fit") for r in rows) else 1


def _backend(text: str) -> str:
    """One ``--backend`` value, checked as the grid checks its ``device`` key (one list of accepted
    values), with the error naming the flag the user typed."""
    from tpprof.measure.grid import _check_device

    try:
        return _check_device(text)
    except UserError as e:
        raise UserError("backend", f"{text[:40]!r} is not known", e.accepted) from None


def _handle_measure(args: argparse.Namespace) -> int:
    from tpprof.measure.grid import Protocol, expand, load_grid, run_forked, run_grid, run_subprocess

    if _is_target(args):
        return _handle_measure_target(args)
    if args.device is not None:
        raise UserError("device", f"the catalogue device {args.device[:40]!r} is used only with --backend "
                        "qemu:<core> (the torch learners measure the host)",
                        "--backend qemu:cortex-m7 --device stm32h743, or no --device")
    proto_kw: dict[str, Any] = {}
    blocks: list[dict[str, Any]]
    if args.grid:
        if args.net or args.rule:
            raise UserError("grid", "is given together with --net/--rule", "either --grid FILE.toml or the flags")
        blocks, proto_kw = load_grid(args.grid)
    else:
        if not args.net or not args.batch or not args.steps:
            raise UserError("measure", "needs --net, --batch and --steps (or --grid)",
                            "e.g. tpprof measure --net shd --rule tp,bptt --batch 16 --steps 25 --out m.csv")
        from tpprof.cli.config_flags import LIST_FIELDS, check_rules, int_flag, rule_changes, split_list

        block: dict[str, Any] = {k: split_list(k, getattr(args, k)) for k in LIST_FIELDS
                                 if getattr(args, k) is not None}
        for k in ("batch", "classes", "steps"):  # the grid takes numbers, as a TOML grid gives them
            if k in block:
                block[k] = [int_flag(k, v) for v in block[k]]
        check_rules(args.rule, TRAINABLE_RULES)
        block.setdefault("rule", ["tp", "tess", "bptt"])
        block.update(rule_changes(args, skip=LIST_FIELDS))
        block["device"] = [_backend(b) for b in split_list("backend", args.backend)]  # the grid's key
        blocks = [block]
    proto_kw.update({k: getattr(args, k) for k in ("batches", "repeats", "warmup", "timeout", "threads")
                     if getattr(args, k) is not None})
    if args.no_rss:
        proto_kw["rss"] = False
    protocol = Protocol(**proto_kw)
    points = expand(blocks)
    if args.explain:
        from tpprof.measure.attribution import explain_peak_guarded

        if len(points) != 1 or points[0].device != "cpu":
            raise UserError("explain", f"needs exactly one CPU point, the flags give {len(points)}",
                            "one value per flag, e.g. --net shd --rule tp --batch 16 --steps 25")
        print(explain_peak_guarded(points[0].cfg).render())
        return 0
    if args.dry_run:
        from tpprof.executor import check_executor

        where = check_executor(args.executor)  # what a real run would refuse, refused here (nothing started)
        for p in points:
            print(p.label())
        print(f"{len(points)} points; {where}", file=sys.stderr)
        return 0
    if not args.out:
        raise UserError("out", "is missing", "a CSV file to append rows to, e.g. --out measurements/mine.csv")
    from tpprof.executor import make_executor

    jobs = 1 if args.jobs is None else args.jobs
    if jobs < 1:
        raise UserError("jobs", f"{jobs} is not a worker count", "an integer >= 1, e.g. --jobs 2")
    local = (args.executor or "local").strip().lower() == "local"
    # locally, each point runs in a process forked from a zygote that imported torch once; Ray's
    # workers are fresh processes of their own, started by Ray
    run_one = run_forked if local else run_subprocess
    executor = make_executor(args.executor, jobs, pool="thread") if local else make_executor(args.executor)
    res = run_grid(points, args.out, protocol, run_one=run_one, retry_failed=args.retry_failed,
                   progress=not args.quiet, executor=executor if jobs > 1 or not local else None)
    print(f"{len(res.ran)} measured ({res.count('ok')} ok, {res.count('oom')} oom, {res.count('timeout')} timeout, "
          f"{res.count('error')} error{_killed(res)}), {res.skipped} already in {args.out}"
          + (f", {res.busy} skipped: another run on {args.out} is measuring them" if res.busy else ""))
    for r in res.ran:
        if r["status"] != "ok":
            print(f"  {r['status']}: {r['rule']} {r['net']} B={r['batch']} T={r['steps']}: {r['error']}")
    return 0 if all(r["status"] == "ok" for r in res.ran) else 1


def _handle_validate(args: argparse.Namespace) -> int:
    from tpprof.validate import render, validate_rows
    from tpprof.store import load_many

    if not (0 < args.tolerance < 10):
        raise UserError("tolerance", f"{args.tolerance!r} is out of range", "a fraction such as 0.05")
    src = args.measurements
    if src == "measurements" and not Path(src).exists():  # the default: the shipped folder, from any cwd
        from tpprof.resources import measurements_dir

        src = measurements_dir()
    loaded = load_many(src)
    v = validate_rows(loaded.rows, tolerance=args.tolerance, bad_rows=loaded.bad)
    if args.json:
        json.dump(v.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(render(v, categories=args.categories))
    return 1 if not v.points or (v.summary()["out_of_tolerance"] and args.strict) else 0


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser(
        "measure",
        help="measure real peak memory and step time of the torch learners (grid; appends, resumes)",
        description="Measure peak tensor memory and time per step for rules x nets x B x C x T x dtype x device. "
        "Each point runs in a fresh subprocess; one CSV row is appended and flushed per finished point; "
        "rerunning skips points already in --out. Out-of-memory, timeouts and crashes become a status.",
        epilog="examples:\n  tpprof measure --net shd --rule tp,tess,bptt --batch 16 --steps 25,100 --out m.csv\n"
        "  tpprof measure --grid measurements/default_grid.toml --out measurements/cpu_reference.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(m, lists=True, rules=TRAINABLE_RULES, config_file=False, rule_all=False)
    m.add_argument("--backend", default="cpu",
                   help="where the steps run, comma-separated: cpu, cuda, cuda:N (a grid file's 'device' key), or "
                        "qemu:<core> (the rule's step as C on an emulated Cortex-M: cortex-m0, cortex-m0plus, "
                        "cortex-m3, cortex-m4f, cortex-m7, cortex-m33; needs gcc-arm-none-eabi, "
                        "libnewlib-arm-none-eabi, qemu-system-arm), e.g. --backend cpu,cuda or --backend qemu:cortex-m7 "
                        "(default cpu)")
    m.add_argument("--device", default=None,
                   help="catalogue device whose SRAM the linker script imposes, with --backend qemu:<core> only "
                        "(default: the QEMU machine's RAM), e.g. --device stm32h743")
    m.add_argument("--grid", help="TOML grid file instead of the flags above, e.g. measurements/default_grid.toml")
    m.add_argument("--batches", type=ascii_int, help="measured mini-batches per point, e.g. 2 (default 1)")
    m.add_argument("--repeats", type=ascii_int, help="timed mini-batches per point, median taken, e.g. 5 (default 3)")
    m.add_argument("--warmup", type=ascii_int, help="warm-up mini-batches before measuring, e.g. 1 (default 1)")
    m.add_argument("--timeout", type=ascii_float, help="seconds per point before it is recorded as timeout, e.g. 300 "
                   "(default 600)")
    m.add_argument("--threads", type=ascii_int, help="torch threads per point, e.g. 1 (default 1)")
    m.add_argument("--no-rss", action="store_true", help="skip the RSS secondary counter (CPU), e.g. --no-rss")
    m.add_argument("--retry-failed", action="store_true",
                   help="also rerun points recorded as oom / timeout / error, e.g. --retry-failed")
    m.add_argument("--dry-run", action="store_true", help="list the points and exit, e.g. --dry-run")
    m.add_argument("--explain", action="store_true",
                   help="profile one CPU point in this process and list the blocks live at its peak by "
                   "allocating op, next to the analytic terms (writes no row), e.g. --explain")
    m.add_argument("--quiet", action="store_true", help="no progress bar, e.g. --quiet")
    m.add_argument("--jobs", type=ascii_int,
                   help="points measured at once on this machine, each in its own process forked from one "
                        "process that imported torch once, e.g. --jobs 2 (default 1)")
    m.add_argument("--executor", default="local",
                   help="where points run: local (one at a time on this machine, default), ray (a private "
                        "Ray instance this command starts, on 127.0.0.1, this Python), ray:auto (join the running "
                        "cluster a 'ray start' runs on this host) or ray:HOST:PORT (another machine's cluster); each "
                        "point in a fresh worker process, rows appended here as they finish; workers must run this "
                        "tpprof, Python and torch or the run refuses; needs pip install 'tpprof[ray]', "
                        "e.g. --executor ray:auto")
    m.add_argument("--out", help="CSV file to append rows to (required unless --dry-run/--explain), "
                   "e.g. measurements/mine.csv")
    m.set_defaults(func=_handle_measure)

    v = sub.add_parser(
        "validate",
        help="compare measured peaks with the analytic model (ratios, errors, T-scaling checks)",
        description="Join measurement rows with estimate(cfg, accounting='full'): per point and per category the "
        "ratio measured/analytic, median and max |error| of the total, points beyond --tolerance, "
        "TP/TESS peak(T=400)/peak(T=25) and the BPTT linear-in-T fit R^2.",
        epilog="examples:\n  tpprof validate\n  tpprof validate --measurements m.csv --json --tolerance 0.02",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("--measurements", default="measurements",
                   help="a measurement CSV or a folder of them, e.g. measurements/cpu_reference.csv "
                   "(default: measurements/)")
    v.add_argument("--json", action="store_true", help="print the full result as JSON, e.g. --json")
    v.add_argument("--tolerance", type=ascii_float, default=0.05,
                   help="flag points whose |measured/analytic - 1| exceeds this fraction, e.g. 0.05 (default)")
    v.add_argument("--categories", action="store_true",
                   help="also print measured vs analytic bytes per category at the peak, e.g. --categories")
    v.add_argument("--strict", action="store_true", help="exit 1 when a point is out of tolerance, e.g. --strict")
    v.set_defaults(func=_handle_validate)
