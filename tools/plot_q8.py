"""Plot and tabulate the f32-state vs 8-bit-state training comparison.

    cargo run --release --example q8_digits -- 256 5 30 > mlp256.csv
    cargo run --release --example q8_digits -- 512,512 5 20 > mlp512x2.csv
    python3 tools/plot_q8.py mlp256.csv mlp512x2.csv    # writes docs/quantized-state.png

Needs numpy and matplotlib. Prints a Markdown table (final epoch, mean and standard
deviation over seeds, per arm) for docs/quantized-state.md.
"""

import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def load(path):
    rows = list(csv.DictReader(open(path)))
    data = {}
    for r in rows:
        data.setdefault(r["arm"], {}).setdefault(int(r["seed"]), []).append(
            (int(r["epoch"]), float(r["train_loss"]), float(r["test_loss"]), float(r["test_acc"]))
        )
    return data


def main():
    paths = sys.argv[1:]
    fig, axes = plt.subplots(len(paths), 2, figsize=(10, 3.6 * len(paths)), squeeze=False)
    print("| model | arm | final train loss | final test loss | final test accuracy |")
    print("|---|---|---|---|---|")
    for row, path in enumerate(paths):
        name = os.path.splitext(os.path.basename(path))[0]
        data = load(path)
        for arm, color in (("f32", "C0"), ("8bit", "C3")):
            runs = np.array([np.array(v) for _, v in sorted(data[arm].items())])  # seed, epoch, col
            ep = runs[0, :, 0]
            for col, ax, label in ((2, axes[row, 0], "test loss"), (3, axes[row, 1], "test accuracy")):
                m, s = runs[:, :, col].mean(0), runs[:, :, col].std(0)
                ax.plot(ep, m, color=color, label=f"{arm} state")
                ax.fill_between(ep, m - s, m + s, color=color, alpha=0.2)
                ax.set_title(f"{name}: {label} (mean ± sd, {runs.shape[0]} seeds)")
                ax.set_xlabel("epoch")
                ax.legend()
            last = runs[:, -1, :]
            cells = [f"{last[:, c].mean():.4f} ± {last[:, c].std():.4f}" for c in (1, 2, 3)]
            print(f"| {name} | {arm} | " + " | ".join(cells) + " |")
        axes[row, 0].set_yscale("log")
    fig.tight_layout()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "quantized-state.png")
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main()
