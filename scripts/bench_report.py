"""The report of scripts/bench: the Markdown table and the PNG chart of a results dict."""

from __future__ import annotations

from pathlib import Path

LABEL = {"ksmbd": "ksmbd-embedded", "samba": "Samba smbd"}


def fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"


def table(results: dict) -> str:
    m = results["machine"]
    lines = [f"ksmbd-embedded vs Samba: {m['date']}, {m['nproc']} CPUs, {m['cpu']}, "
             f"kernel {m['kernel']}; {results['rounds']} round(s), file "
             f"{results['size_bytes']} bytes; medians",
             f"loopback TCP ceiling (one connection): {results['ceiling']['median']:.0f} MB/s; "
             f"{results['page_cache']}", "",
             "| workload | unit | ksmbd-embedded | Samba | ratio ksmbd/Samba |",
             "|---|---|---:|---:|---:|"]
    for e in results["workloads"].values():
        better = "higher is better" if e["higher_is_better"] else "lower is better"
        lines.append(f"| {e['label']} | {e['unit']} | {fmt(e['ksmbd']['median'])} | "
                     f"{fmt(e['samba']['median'])} | {fmt(e['ratio'])} ({better}) |")
    return "\n".join(lines)


def chart(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    items = list(results["workloads"].items())

    def panel(key: str, e: dict) -> str:  # smbtorture's rates dwarf the others: own panel
        return f"{e['unit']} (smbtorture, 4 connections)" if key.startswith("torture") else e["unit"]
    units: list[str] = []
    for k, e in items:
        if panel(k, e) not in units:
            units.append(panel(k, e))
    heights = [1 + sum(panel(k, e) == u for k, e in items) for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(11, 1.2 + 0.45 * sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    axes = [axes] if len(units) == 1 else list(axes)
    for ax, unit in zip(axes, units):
        rows = [(k, e) for k, e in items if panel(k, e) == unit]
        ys = range(len(rows))
        h = 0.38
        for off, name, color in ((-h / 2, "ksmbd", "tab:blue"), (h / 2, "samba", "tab:orange")):
            vals = [e[name]["median"] or 0 for _, e in rows]
            bars = ax.barh([y + off for y in ys], vals, height=h, color=color, label=LABEL[name])
            ax.bar_label(bars, labels=[fmt(v) if v else "n/a" for v in vals], fontsize=7,
                         padding=2)
        ax.set_yticks(list(ys), [e["label"] for _, e in rows], fontsize=8)
        ax.invert_yaxis()
        better = "higher" if rows[0][1]["higher_is_better"] else "lower"
        ax.set_xlabel(f"{unit} ({better} is better)", fontsize=8)
        if unit == "MB/s":
            ax.axvline(results["ceiling"]["median"], color="gray", ls="--", lw=1,
                       label="loopback TCP ceiling")
        ax.margins(x=0.15)
        if ax is axes[0]:  # the same colors everywhere: one legend
            ax.legend(fontsize=7, loc="lower right")
    m = results["machine"]
    fig.suptitle(f"ksmbd-embedded vs Samba smbd — medians of {results['rounds']} round(s), "
                 f"{m['nproc']} CPUs, {m['cpu'][:50]}, {m['date'][:10]}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)
