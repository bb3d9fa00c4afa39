"""Each learner's step next to its floor: the step's matrix products alone plus its optimiser steps.

    PYTHONPATH=$PWD python bench/bench_floor.py                      # SHD 700-450-20, B=128, T=100
    PYTHONPATH=$PWD python bench/bench_floor.py --rules tp,bptt --steps 25 --rounds 4
    PYTHONPATH=$PWD python bench/bench_floor.py --density 0.05 --rounds 3 --hot   # both replays
    PYTHONPATH=$PWD python bench/bench_floor.py --threshold          # the sparse path's density threshold

CPU time (``time.process_time``), one thread, synthetic spikes at ``--density``; every figure is
the median over ``--rounds`` rounds, and inside a round every learner and every floor is timed
once, one after the other (alternating), so all ratios come from the same window of a shared
machine. The load average is printed with the results.

Floor of a learner (per time step): every matrix product its mini-batch ran (``aten.mm``,
``addmm``, ``bmm``, ``baddbmm``, ``convolution`` and its backward, and the sparse input path's
``embedding_bag``, ``index_select`` and ``index_add_``, or its native weight gradient,
tpprof.snn.native), recorded during one mini-batch and replayed alone, plus its optimiser steps
(the same ``LayerOptimizer``: fused Adam), divided by T, in the order the mini-batch ran them. Each call is replayed on the step's own memory
layout: the learner's parameters and gradients themselves, and for every other operand a view of a
private copy of the storage it read, one copy per address the step used (an operand the step kept
for later, such as BPTT's activations, is new memory read back out of cache; one in a reused block
is hot, as in the step). ``--hot`` adds the earlier replay, one private copy per call signature
shared by all its calls (every operand hot in cache), as the ``best/hot floor`` column. The *dense
floor* records the dense input path, the *sparse floor* the sparse one, plus the building of the
batch's index lists (SpikeFrames, once per mini-batch), without which its products cannot run.
A learner's step is timed on both paths; ``best/floor`` = the faster path over its floor.

``--threshold`` times layer 1's two products with the input (forward x Wᵀ and weight gradient
δᵀ x) dense and on the sparse path's index lists (plus building them, amortised over T) at several
densities, and prints the largest density at which the sparse path is faster;
``tpprof.snn.sparse.SPARSE_DENSITY_MAX`` is set a step below it.
"""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any, Callable, NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from _alternate import alternate, cpu_time
from tpprof.config import make_config
from tpprof.snn import make_learner, native
from tpprof.snn.sparse import SpikeFrames

RULES = ("tp", "tp:classes", "tess", "ottt", "bptt", "bptt-compact", "bptt-ckpt", "tbptt")
#: the products: dense matrix products and convolutions, and the sparse input path's gathers and
#: scatter-adds (its forward is an embedding_bag over Wᵀ, its weight gradient index_select + index_add)
MM_OPS = {"mm", "addmm", "bmm", "baddbmm", "addmm_", "mv", "addmv", "convolution", "convolution_backward",
          "embedding_bag", "_embedding_bag", "_embedding_bag_forward_only", "index_add", "index_add_",
          "index_select"}
#: the sparse input path's native products (tpprof.snn.native), when they run
NATIVE_PRODUCTS = ("wgrad",)


class _Recorder(TorchDispatchMode):
    """Records every matrix-product op of a mini-batch, in order, for :func:`replay_floor`: laid out
    (each call with its operands as views of :class:`_Storages`) or hot (each call as its signature,
    one kept example call per signature). Optimiser steps go into the same sequence as ("opt", o)."""

    def __init__(self, laid: bool, live: list[torch.Tensor]) -> None:
        super().__init__()
        self.laid = laid
        self.seq: list = []
        self.calls: dict[tuple, tuple] = {}  # hot: signature → (func, private args, kwargs)
        self.storages = _Storages(live)
        self.sparse = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name in MM_OPS:
            self.record(func, str(func), args, kwargs)
            self.sparse = self.sparse or "embedding_bag" in name  # the step ran the sparse input path
        return out

    def record(self, func: Callable, name: str, args: tuple, kwargs: dict) -> None:
        if self.laid:
            self.seq.append((func, self.storages.operand(args), dict(kwargs)))
            return
        sig = (name,) + tuple(_sig(a) for a in args)
        if sig not in self.calls:
            self.calls[sig] = (func, tuple(_keep(a) for a in args), dict(kwargs))
        self.seq.append(sig)

    def native(self, func: Callable) -> Callable:
        """``func`` (a tpprof.snn.native kernel, which the dispatch mode does not see) recorded too."""
        def run(*args):  # noqa: ANN002
            self.record(func, f"native.{func.__name__}", args, {})
            self.sparse = True
            return func(*args)
        return run

    def replay(self) -> list:
        """The recorded sequence as calls ready to run (views built now, before any timing)."""
        out = []
        for item in self.seq:
            if item[0] == "opt":
                out.append(item)
            elif self.laid:
                out.append((item[0], self.storages.view(item[1]), item[2]))
            else:
                out.append(self.calls[item])
        return out


class _Operand(NamedTuple):
    """A tensor operand as a view of one of :class:`_Storages`' buffers."""

    key: tuple
    shape: tuple
    stride: tuple
    offset: int
    dtype: torch.dtype


class _Storages:
    """Private copies of the storages the step's products read, one per address the step used.

    A step that reuses a freed block gives its products the same address again (hot in cache); a
    step that keeps its tensors for later (BPTT's activations) gives every call new memory, read back
    out of cache. Replaying each call on views of these copies keeps both. Integer storages (the
    sparse path's index lists) keep their contents, which the gathers need; a float copy's values
    are those of its first use (the timing of a product does not depend on them)."""

    def __init__(self, live: list[torch.Tensor]) -> None:
        self.bufs: dict[tuple, torch.Tensor] = {}
        # the learner's parameters and gradients, used as they are
        self.live = {t.untyped_storage().data_ptr(): t.untyped_storage() for t in live}

    def operand(self, a: Any) -> Any:
        if isinstance(a, (list, tuple)):
            return type(a)(self.operand(x) for x in a)
        if not torch.is_tensor(a):
            return a
        if a.layout != torch.strided:
            return _keep(a)
        st = a.untyped_storage()
        if st.data_ptr() in self.live:
            return _Operand(("live", st.data_ptr()), tuple(a.shape), a.stride(), a.storage_offset(), a.dtype)
        nbytes = st.nbytes()
        # an integer storage is keyed by its size too: a later, larger block at the same address
        # must not change the indices an earlier call gathered with
        key = (st.data_ptr(), True) if a.dtype.is_floating_point else (st.data_ptr(), False, nbytes)
        old = self.bufs.get(key)
        if old is None or old.numel() < nbytes:
            buf = torch.empty(nbytes, dtype=torch.uint8)
            buf.copy_(torch.empty(0, dtype=torch.uint8).set_(st))  # the storage's bytes as they are now
            self.bufs[key] = buf
        return _Operand(key, tuple(a.shape), a.stride(), a.storage_offset(), a.dtype)

    def view(self, a: Any) -> Any:
        """The operand as a tensor over its private copy (built before the timing)."""
        if isinstance(a, _Operand):
            st = self.live[a.key[1]] if a.key[0] == "live" else self.bufs[a.key].untyped_storage()
            return torch.empty(0, dtype=a.dtype).set_(st, a.offset, a.shape, a.stride)
        if isinstance(a, (list, tuple)):
            return type(a)(self.view(x) for x in a)
        return a


def _sig(a: Any) -> Any:
    if torch.is_tensor(a):
        return (tuple(a.shape), a.stride() if a.layout == torch.strided else None, str(a.layout), a.dtype)
    if isinstance(a, (list, tuple)):
        return tuple(_sig(x) for x in a)
    return repr(a)


def _keep(a: Any) -> Any:
    """A private copy of a tensor argument (same layout and strides), so replays own their buffers."""
    if torch.is_tensor(a):
        if a.layout != torch.strided:
            return a.clone()
        return torch.empty_strided(a.shape, a.stride(), dtype=a.dtype).copy_(a)
    if isinstance(a, (list, tuple)):
        return type(a)(_keep(x) for x in a)
    return a


def _learner(rule: str, cfg_kw: dict, path: str):
    name, _, mode = rule.partition(":")
    kw = {"target_rows": "classes"} if mode == "classes" else {}
    cfg = make_config(cfg_kw["net"], name, cfg_kw["batch"], None, cfg_kw["steps"], **kw)
    lr = make_learner(cfg, seed=0)
    lr.input_path = path
    return lr


def _batch(cfg_kw: dict, density: float):
    g = torch.Generator().manual_seed(1)
    x = (torch.rand((cfg_kw["batch"], cfg_kw["steps"], 700), generator=g) < density).float()
    y = torch.arange(cfg_kw["batch"]) % 20
    return x, y


def replay_floor(lr, x, y, laid: bool = True, lists: bool = True) -> Callable[[], None]:
    """Replay of one mini-batch's matrix products and optimiser steps, in the order it ran them
    (so the weights and optimiser state pass through the caches as in the step).

    ``laid``: every call on views of private copies of the storages it read, one copy per address
    the step used, and the learner's own parameters and gradients (:class:`_Storages`): operands the
    step kept in memory for later are read back out of cache, as in the step. Otherwise (``hot``)
    one private copy per call signature, shared by all its calls: every operand hot in cache.
    ``lists=False``: the sparse path's index lists are not built (the products and optimiser alone)."""
    params = [p for _, p in lr.named_parameters()]
    rec = _Recorder(laid, params + [p.grad for p in params if p.grad is not None])
    orig = [o.step for o in lr._optims]

    def counting(o, f):
        def step(*a, **k):
            rec.seq.append(("opt", o))
            return f(*a, **k)
        return step

    for o, f in zip(lr._optims, orig):
        o.step = counting(o, f)
    kernels = {k: getattr(native, k) for k in NATIVE_PRODUCTS}
    for k, f in kernels.items():
        setattr(native, k, rec.native(f))
    try:
        with rec:
            lr.train_batch(x, y)
    finally:
        for o, f in zip(lr._optims, orig):
            o.step = f
        for k, f in kernels.items():
            setattr(native, k, f)
    seq = rec.replay()
    sparse = lists and rec.sparse

    def run() -> None:
        if sparse:  # the sparse path's products need the batch's index lists, built once per mini-batch
            SpikeFrames(x, lr.dtype, lr.device, grad=lr.sparse_wgrad)
        with torch.no_grad():
            for item in seq:
                if item[0] == "opt":
                    item[1].step()
                else:
                    func, args, kwargs = item
                    func(*args, **kwargs)
    return run


def bench_floor(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    cfg_kw = {"net": "700-450-20", "batch": args.batch, "steps": args.steps}
    x, y = _batch(cfg_kw, args.density)
    T = args.steps
    jobs: dict[tuple[str, str], Callable[[], None]] = {}
    for rule in args.rules.split(","):
        for path in ("dense", "sparse"):
            lr = _learner(rule, cfg_kw, path)
            lr.train_batch(x, y)  # warm-up
            jobs[(rule, f"step {path}")] = (lambda lr=lr: lr.train_batch(x, y))
            jobs[(rule, f"floor {path}")] = replay_floor(_learner(rule, cfg_kw, path), x, y, laid=True)
            if args.hot:
                jobs[(rule, f"hot {path}")] = replay_floor(_learner(rule, cfg_kw, path), x, y, laid=False)
    load0 = os.getloadavg()[0]
    med = {k: statistics.median(v) for k, v in alternate(jobs, args.rounds, per=T).items()}
    print(f"700-450-20, B={args.batch}, T={T}, input density {args.density}, CPU ms per step (median of "
          f"{args.rounds} alternating rounds, 1 thread); load average {load0:.1f} → {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'learner':14s} {'step dense':>10s} {'step sparse':>11s} {'floor dense':>11s} {'floor sparse':>12s} "
          f"{'dense/floor':>11s} {'sparse/floor':>12s} {'best/floor':>10s}" + ("  best/hot floor" if args.hot else ""))
    for rule in args.rules.split(","):
        sd, ss, fd, fs = (med[(rule, k)] for k in ("step dense", "step sparse", "floor dense", "floor sparse"))
        best = min(sd, ss)
        path = "sparse" if ss <= sd else "dense"
        fl = fs if path == "sparse" else fd
        hot = f"  {best / med[(rule, f'hot {path}')]:14.2f}" if args.hot else ""
        print(f"{rule:14s} {sd:10.3f} {ss:11.3f} {fd:11.3f} {fs:12.3f} {sd / fd:11.2f} {ss / fs:12.2f} "
              f"{best / fl:10.2f}{hot}")


def bench_threshold(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    B, n, H, T = args.batch, 700, 450, args.steps
    w = torch.randn(n, H).t()  # column-major, as the learners store W_1 (tpprof.snn.nets.build_net)
    g = torch.zeros(n, H).t()
    d = torch.randn(B, H)
    load0 = os.getloadavg()[0]
    dens = [0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15, 0.2]
    res: dict[float, tuple[list[float], list[float], list[float]]] = {p: ([], [], []) for p in dens}
    xs = {p: (torch.rand(B, T, n, generator=torch.Generator().manual_seed(2)) < p).float() for p in dens}
    for _ in range(args.rounds):
        for p in dens:
            x = xs[p]

            def dense() -> None:
                for t in range(T):
                    torch.nn.functional.linear(x[:, t], w)
                    g.addmm_(d.t(), x[:, t])

            fr: list[SpikeFrames] = []
            conv = cpu_time(lambda: fr.append(SpikeFrames(x, torch.float32, torch.device("cpu"))))

            def sparse() -> None:
                for t in range(T):
                    fr[0].linear(t, w)
                    fr[0].add_wgrad(t, g, d)

            res[p][0].append(cpu_time(dense) / T)
            res[p][1].append(cpu_time(sparse) / T)
            res[p][2].append(conv / T)
    print(f"layer 1 of 700-450-20, B={B}, T={T}: forward + weight-gradient products per step, CPU ms "
          f"(median of {args.rounds} alternating rounds, 1 thread); load average {load0:.1f} → "
          f"{os.getloadavg()[0]:.1f}")
    best, unbroken = 0.0, True
    for p in dens:
        dn, sp, cv = (statistics.median(v) * 1e3 for v in res[p])
        win = sp + cv < dn
        unbroken = unbroken and win
        best = p if unbroken else best
        print(f"  density {p:<7g} dense {dn:6.3f}   sparse {sp:6.3f} + conversion {cv:6.3f} = {sp + cv:6.3f}   "
              f"{'sparse wins' if win else 'dense wins'}")
    print(f"threshold (largest density of an unbroken run of sparse wins from the lowest): {best:g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hot", action="store_true",
                    help="also replay every product on one hot copy per signature (the floor before the laid-out replay)")
    ap.add_argument("--threshold", action="store_true", help="measure the sparse path's density threshold")
    args = ap.parse_args()
    bench_threshold(args) if args.threshold else bench_floor(args)


if __name__ == "__main__":
    main()
