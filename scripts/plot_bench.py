#!/usr/bin/env python3
"""Turns raft_bench --json files into one PNG chart.

Usage: scripts/plot_bench.py [-o OUT.png] [--title TEXT] [--gnuplot] FILE.json...

Each file is one raft_bench run. Runs that differ only in --clients form one series (named
transport/storage, plus peers, pipeline or payload where the files differ in them). Left:
commits/s against clients; right: commit latency p50, p99 and p99.9 against clients. Both
axes are logarithmic. The machine and the dates of the runs go under the chart.

Needs matplotlib: when it is missing, the script installs python3-matplotlib with
scripts/deps.sh (apt-get). With --gnuplot, or when matplotlib cannot be had, it writes
OUT.gp and OUT.dat instead, for `gnuplot OUT.gp` to draw the same chart.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PERCENTILES = [("p50", "p50", "-"), ("p99", "p99", "--"), ("p999", "p99.9", ":")]


def die(message):
    print(f"plot_bench: {message}", file=sys.stderr)
    sys.exit(2)


def load_run(path):
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except OSError as e:
        die(f"cannot read {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        die(f"{path} is not JSON: {e}")
    if not isinstance(run, dict) or run.get("program") != "raft_bench":
        die(f"{path} is not a raft_bench --json file (no \"program\": \"raft_bench\")")
    try:
        config, results = run["config"], run["results"]
        row = {
            "path": path,
            "clients": int(config["clients"]),
            "key": tuple(config.get(k) for k in ("transport", "storage", "peers", "pipeline",
                                                 "payload")),
            "commits_per_s": float(results["commits_per_s"]),
            "latency_us": {k: float(results["latency_us"][k]) for k, _, _ in PERCENTILES},
            "date": run.get("date", ""),
            "machine": run.get("machine", {}),
        }
    except (KeyError, TypeError, ValueError) as e:
        die(f"{path}: missing or bad field {e}")
    return row


def series_of(rows):
    """{label: rows sorted by clients}; the label names only what differs between series."""
    keys = sorted({r["key"] for r in rows}, key=lambda k: tuple(str(x) for x in k))
    varies = [len({k[i] for k in keys}) > 1 for i in range(5)]
    series = {}
    for key in keys:
        label = f"{key[0]}/{key[1]}"
        for i, name in ((2, "peers"), (3, "pipeline"), (4, "payload")):
            if varies[i]:
                label += f" {name} {key[i]}"
        series[label] = sorted((r for r in rows if r["key"] == key), key=lambda r: r["clients"])
    return series


def footer(rows):
    machine = rows[0]["machine"]
    dates = sorted(r["date"] for r in rows if r["date"])
    when = dates[0] if dates and dates[0] == dates[-1] else (
        f"{dates[0]} .. {dates[-1]}" if dates else "date unknown")
    cpu = machine.get("cpu_model", machine.get("cpu", "cpu unknown"))
    return (f"raft_bench, {machine.get('nproc', '?')} CPUs {cpu}, {machine.get('kernel', '')}, "
            f"{machine.get('compiler', '')}; {when}")


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


SYSTEM_PYTHON = "/usr/bin/python3"  # Where Debian's python3-matplotlib is importable.


def system_python_has_matplotlib():
    if os.environ.get("PLOT_BENCH_REEXEC") or not os.path.exists(SYSTEM_PYTHON):
        return False
    if os.path.realpath(sys.executable) == os.path.realpath(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import matplotlib"],
                          stderr=subprocess.DEVNULL).returncode == 0


def rerun_with_system_python():
    print(f"plot_bench: {sys.executable} has no matplotlib; running under {SYSTEM_PYTHON}",
          file=sys.stderr)
    os.environ["PLOT_BENCH_REEXEC"] = "1"
    os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])


def ensure_matplotlib():
    """True when matplotlib can be imported here; may install it or re-run this script under
    the system python (where the Debian package installs it) and not return."""
    if have_matplotlib():
        return True
    if system_python_has_matplotlib():
        rerun_with_system_python()
    print("plot_bench: matplotlib is missing; installing python3-matplotlib with "
          "scripts/deps.sh (apt-get)", file=sys.stderr)
    try:
        subprocess.run([os.path.join(HERE, "deps.sh"), "python3-matplotlib"], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"plot_bench: could not install python3-matplotlib ({e})", file=sys.stderr)
        return False
    if have_matplotlib():
        return True
    if system_python_has_matplotlib():
        rerun_with_system_python()
    return False


def plot_matplotlib(series, rows, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(series.items()):
        color = colors[i % len(colors)]
        clients = [r["clients"] for r in runs]
        left.plot(clients, [r["commits_per_s"] for r in runs], "o-", color=color, label=label)
        for key, name, style in PERCENTILES:
            right.plot(clients, [r["latency_us"][key] for r in runs], linestyle=style,
                       marker="o", color=color, label=f"{label} {name}")
    left.set(title="Throughput", xlabel="clients", ylabel="commits/s", xscale="log",
             yscale="log")
    right.set(title="Commit latency (issue to apply on the leader)", xlabel="clients",
              ylabel="µs", xscale="log", yscale="log")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.text(0.5, 0.01, footer(rows), ha="center", fontsize="small")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out, dpi=100)
    print(f"plot_bench: wrote {out}")


def write_gnuplot(series, rows, out, title):
    base = os.path.splitext(out)[0]
    dat, gp = base + ".dat", base + ".gp"
    with open(dat, "w", encoding="utf-8") as f:
        for label, runs in series.items():
            f.write(f"# {label}\n# clients commits_per_s p50_us p99_us p999_us\n")
            for r in runs:
                lat = r["latency_us"]
                f.write(f"{r['clients']} {r['commits_per_s']} {lat['p50']} {lat['p99']} "
                        f"{lat['p999']}\n")
            f.write("\n\n")
    throughput, latency = [], []
    for i, label in enumerate(series):
        throughput.append(f"'{dat}' index {i} using 1:2 with linespoints title '{label}'")
        for col, name in ((3, "p50"), (4, "p99"), (5, "p99.9")):
            latency.append(f"'{dat}' index {i} using 1:{col} with linespoints "
                           f"title '{label} {name}'")
    with open(gp, "w", encoding="utf-8") as f:
        f.write(f"set terminal pngcairo size 1200,500\nset output '{out}'\n"
                f"set multiplot layout 1,2 title \"{title}\\n{footer(rows)}\"\n"
                "set logscale xy\nset grid\nset xlabel 'clients'\n"
                "set title 'Throughput'\nset ylabel 'commits/s'\n"
                f"plot {', '.join(throughput)}\n"
                "set title 'Commit latency'\nset ylabel 'us'\n"
                f"plot {', '.join(latency)}\nunset multiplot\n")
    print(f"plot_bench: wrote {gp} and {dat}; draw with: gnuplot {gp}")


def main():
    parser = argparse.ArgumentParser(
        description="Chart raft_bench --json files: commits/s and latency against clients.")
    parser.add_argument("files", nargs="+", metavar="FILE.json")
    parser.add_argument("-o", "--out", default="raft_bench.png", help="PNG to write")
    parser.add_argument("--title", default="raft_bench: 3-peer group under closed-loop load")
    parser.add_argument("--gnuplot", action="store_true",
                        help="write a gnuplot script and data file instead of using matplotlib")
    args = parser.parse_args()
    if not args.out.endswith(".png"):
        die(f"--out {args.out}: must end in .png")
    rows = [load_run(p) for p in args.files]
    series = series_of(rows)
    if not args.gnuplot and ensure_matplotlib():
        plot_matplotlib(series, rows, args.out, args.title)
    else:
        if not args.gnuplot:
            print("plot_bench: no matplotlib; falling back to gnuplot", file=sys.stderr)
        write_gnuplot(series, rows, args.out, args.title)


if __name__ == "__main__":
    main()
