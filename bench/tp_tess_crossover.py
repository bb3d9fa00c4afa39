"""Print TP-vs-TESS crossovers (peak, fp32, Adam, input 700, T=100) per accounting: the class counts C where TP's peak < TESS's.

Run: python bench/tp_tess_crossover.py (analytic only, about 1 s). Used by the README's
"What the paper's trade-off looks like".
"""
import numpy as np
from tpprof.analytic import estimate_grid
from tpprof.config import Grid, make_config
cs = tuple(range(2, 5001))
for net in ("700-450-20", "700-450-450-20"):
    for acc in ("algorithm", "full"):
        for b in (16, 64, 128):
            df = estimate_grid(Grid(make_config(net, "tp", batch=b), (("classes", cs), ("rule", ("tp", "tess")))), acc)
            tp = df[df.rule == "tp"].peak_bytes.to_numpy(); te = df[df.rule == "tess"].peak_bytes.to_numpy()
            win = np.array(cs)[tp < te].tolist()
            runs = []  # contiguous ranges of C where TP wins
            for c in win:
                if runs and c == runs[-1][1] + 1: runs[-1][1] = c
                else: runs.append([c, c])
            print(net, acc, f"B={b}", "TP smaller for C in", runs or "none (C <= 5000)")
