#!/usr/bin/env python3
"""The headline benchmark: the seed's experiment, side by side.

Runs the nginx-like HTTP scenario (keepalive_requests 1) on uepoll in fine mode, uepoll in legacy
mode (the global epoll mutex on both close paths, as Linux before 6.4) and the host kernel (TCP
loopback, kernel epoll), at a few worker/thread counts; measures the release path's share of the
server's CPU (perf when it works, uepoll's own counters otherwise) and the legacy mutex's hold
time; runs the connection-churn benchmark; prints one table, writes JSON and a PNG plot.

Only the Python standard library is used; the plot is drawn by gnuplot when it is installed.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BACKENDS = ("fine", "legacy", "kernel")


def log(msg):
    print(msg, flush=True)


def run_json(cmd, json_path, timeout):
    subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
    with open(json_path) as f:
        return json.load(f)


def http_point(build, tmp, backend, workers, duration, extra=(), prefix=()):
    path = os.path.join(tmp, f"http-{backend}-{workers}-{time.monotonic_ns()}.json")
    cmd = [*prefix, os.path.join(build, "bench/http/http_bench"), f"--backend={backend}",
           f"--workers={workers}", f"--client-threads={workers}", "--connections=64",
           f"--duration={duration}", "--warmup=0.5", f"--json={path}", *extra]
    return run_json(cmd, path, timeout=duration * 10 + 60)


def perf_works():
    if shutil.which("perf") is None:
        return False
    probe = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", os.devnull, "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return probe.returncode == 0


def perf_release_share(build, tmp, backend, workers, duration):
    """Share of the server threads' CPU samples spent in the release path, children included:
    uepoll's epoll_release_file, or the kernel's eventpoll_release_file."""
    data = os.path.join(tmp, f"perf-{backend}.data")
    http_point(build, tmp, backend, workers, duration,
               prefix=("perf", "record", "-q", "-e", "cpu-clock", "-g", "-o", data, "--"))
    # Count the server threads' samples, and those with the release path on their stack.
    script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym"],
                            capture_output=True, text=True, timeout=600).stdout
    symbol = "eventpoll_release_file" if backend == "kernel" else "epoll_release_file"
    total = hits = 0
    in_server = hit = False
    for line in script.splitlines() + [""]:
        if not line.strip():  # a blank line ends a sample
            if in_server:
                total += 1
                hits += hit
            in_server = hit = False
        elif not line.startswith("\t"):  # a sample's first line: the thread's name
            in_server = line.split()[0].startswith("http-srv-")
        elif in_server and not hit:
            frame = line.split(None, 1)[-1]
            hit = symbol in frame and "eventpoll_release_file_" not in frame
    share = hits / total if total else 0.0
    os.unlink(data)
    return share


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--out", default="out")
    ap.add_argument("--long", action="store_true", help="five times longer runs, five repeats")
    args = ap.parse_args()

    repeats, duration, churn_seconds = (5, 10.0, 5.0) if args.long else (3, 2.0, 1.0)
    worker_counts = (1, 2, 4) if args.long else (1, 2)
    cpus = os.cpu_count() or 1
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="uepoll-headline-")
    started = time.monotonic()
    result = {"machine": machine(), "repeats": repeats, "duration_s": duration, "http": [],
              "churn": None}

    # 1. Throughput and latency, backends interleaved so that machine drift hits them alike.
    runs = {}
    total = repeats * len(worker_counts) * len(BACKENDS)
    n = 0
    for rep in range(repeats):
        for w in worker_counts:
            for backend in BACKENDS:
                n += 1
                log(f"[{n}/{total}] HTTP {backend:6s} workers={w} client-threads={w} "
                    f"run {rep + 1}/{repeats}")
                runs.setdefault((backend, w), []).append(
                    http_point(args.build, tmp, backend, w, duration))

    # 2. Release path and global mutex, from uepoll's counters (a separate, timed pass).
    timing = {}
    for backend in ("fine", "legacy"):
        w = worker_counts[-1]
        log(f"timing pass: {backend} workers={w}")
        timing[backend] = http_point(args.build, tmp, backend, w, duration, extra=("--timing",))

    # 3. The seed's metric from a profile: perf record -e cpu-clock -g.
    perf_share = {}
    if perf_works():
        for backend in BACKENDS:
            w = worker_counts[-1]
            log(f"profile: perf record -e cpu-clock -g, {backend} workers={w}")
            try:
                perf_share[backend] = perf_release_share(args.build, tmp, backend, w, duration)
            except (subprocess.SubprocessError, OSError) as e:
                log(f"  perf failed: {e}")
    else:
        log("perf is not usable here: release-path shares come from uepoll's counters only")

    # 4. Connection churn (the seed's pattern without HTTP).
    log("churn: socketpair -> ADD -> write -> wait -> read -> close, T = 1..64")
    churn_json = os.path.join(tmp, "churn.json")
    subprocess.run([os.path.join(args.build, "bench/churn/churn"), "--threads=1,2,4,8,16,64",
                    "--modes=fine,legacy,kernel,floor", f"--seconds={churn_seconds}", "--repeat=3",
                    f"--json={churn_json}"], check=True, timeout=900, stdout=subprocess.DEVNULL)
    with open(churn_json) as f:
        result["churn"] = json.load(f)

    # 5. Aggregate.
    rows = []
    for w in worker_counts:
        for backend in BACKENDS:
            rs = runs[(backend, w)]
            row = {
                "backend": backend, "workers": w, "client_threads": w,
                "rps": median([r["rps"] for r in rs]),
                "rps_runs": [r["rps"] for r in rs],
                "p50_us": median([r["p50_us"] for r in rs]),
                "p99_us": median([r["p99_us"] for r in rs]),
                "errors": sum(r["errors"] for r in rs),
                "global_mutex_per_s": median([r["global_mutex_per_s"] or 0 for r in rs])
                if backend != "kernel" else None,
            }
            rows.append(row)
    by = {(r["backend"], r["workers"]): r for r in rows}
    for r in rows:
        r["fine_over_legacy"] = by[("fine", r["workers"])]["rps"] / by[("legacy", r["workers"])]["rps"]
        r["fine_over_kernel"] = by[("fine", r["workers"])]["rps"] / by[("kernel", r["workers"])]["rps"]
    result["http"] = rows
    result["release_path_share_perf"] = perf_share
    result["release_path_share_counters"] = {
        b: t["timing"]["release_path_share"] for b, t in timing.items() if t.get("timing")}
    hold = timing["legacy"]["timing"]["global_mutex_hold_ns_per_acquisition"]
    rate = timing["legacy"]["global_mutex_per_s"] or 0.0
    busy_threads = 2 * worker_counts[-1]
    per_core_rate = rate / min(busy_threads, cpus)
    result["legacy_mutex"] = {
        "acquisitions_per_s": rate, "hold_ns": hold,
        "utilisation_here": rate * hold * 1e-9,
        "saturation_cores": (1.0 / (per_core_rate * hold * 1e-9)) if per_core_rate * hold else None,
    }
    result["elapsed_s"] = time.monotonic() - started

    print_table(result, worker_counts)
    json_path = os.path.join(args.out, "headline.json")
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
    png = plot(result, args.out, tmp)
    log(f"\nwrote {json_path}" + (f" and {png}" if png else " (gnuplot missing: no plot)"))
    shutil.rmtree(tmp, ignore_errors=True)


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": os.uname().release}


def print_table(r, worker_counts):
    m = r["machine"]
    print(f"\n=== HTTP, keepalive_requests 1, 64 connections ({m['cpus']} x {m['cpu']}, "
          f"Linux {m['kernel']}; medians of {r['repeats']} runs of {r['duration_s']:g} s)")
    print(f"{'backend':8s} {'W=T':>4s} {'req/s':>10s} {'p50 us':>8s} {'p99 us':>8s} "
          f"{'fine/legacy':>11s} {'fine/kernel':>11s} {'mutex/s':>9s}")
    for row in r["http"]:
        mutex = "-" if row["global_mutex_per_s"] is None else f"{row['global_mutex_per_s']:.0f}"
        print(f"{row['backend']:8s} {row['workers']:>4d} {row['rps']:>10.0f} {row['p50_us']:>8.0f} "
              f"{row['p99_us']:>8.0f} {row['fine_over_legacy']:>11.2f} "
              f"{row['fine_over_kernel']:>11.2f} {mutex:>9s}")
    print("\n=== Release path (last close of a watched socket, with its children). perf: share of "
          "the server threads' CPU samples;\n    counters: time spent in it, waiting for the "
          "legacy mutex included, over the process's CPU time")
    for b in BACKENDS:
        perf = r["release_path_share_perf"].get(b)
        counters = r["release_path_share_counters"].get(b)
        perf_s = "n/a" if perf is None else f"{perf * 100:.1f}%"
        cnt_s = "n/a" if counters is None else f"{counters * 100:.1f}%"
        print(f"  {b:8s} perf (CPU samples): {perf_s:>7s}   "
              f"counters (time in path C / process CPU time): {cnt_s:>7s}")
    lm = r["legacy_mutex"]
    sat = "n/a" if not lm["saturation_cores"] else f"{lm['saturation_cores']:.0f}"
    print(f"\nlegacy global mutex: {lm['acquisitions_per_s']:.0f}/s, held {lm['hold_ns']:.0f} ns "
          f"each, {lm['utilisation_here'] * 100:.1f}% busy here; saturates at ~{sat} cores")
    print("\n=== Connection churn (ops/s, median)")
    points = r["churn"]["points"]
    threads = sorted({p["threads"] for p in points})
    # floor: the same loop on the bare user-space work of a cycle (bench/churn/floor_backend.hpp);
    # fine x floor: fine's CPU time per iteration in multiples of the floor's.
    print(f"{'T':>4s} " + " ".join(f"{b:>12s}" for b in BACKENDS) + f" {'floor':>12s} "
          f"{'fine/legacy':>12s} {'fine/kernel':>12s} {'fine x floor':>12s}")
    get = {(p["mode"], p["threads"]): p.get("ops_per_s", float("nan")) for p in points}
    times_floor = {p["threads"]: p.get("cpu_times_floor", float("nan"))
                   for p in points if p["mode"] == "fine"}
    for t in threads:
        vals = [get.get((b, t), float("nan")) for b in BACKENDS]
        floor = get.get(("floor", t), float("nan"))
        print(f"{t:>4d} " + " ".join(f"{v:>12.0f}" for v in vals) + f" {floor:>12.0f}" +
              f" {vals[0] / vals[1]:>12.2f} {vals[0] / vals[2]:>12.2f}"
              f" {times_floor.get(t, float('nan')):>12.1f}")
    print(f"\n(elapsed {r['elapsed_s']:.0f} s)")


def plot(r, out, tmp):
    if shutil.which("gnuplot") is None:
        return None
    data = os.path.join(tmp, "plot.dat")
    points = r["churn"]["points"]
    threads = sorted({p["threads"] for p in points})
    get = {(p["mode"], p["threads"]): p.get("ops_per_s", 0) for p in points}
    with open(data, "w") as f:
        for t in threads:
            f.write(f"{t} " + " ".join(str(get.get((b, t), 0)) for b in BACKENDS) + "\n")
    http = os.path.join(tmp, "http.dat")
    with open(http, "w") as f:
        ws = sorted({row["workers"] for row in r["http"]})
        for w in ws:
            vals = {row["backend"]: row["rps"] for row in r["http"] if row["workers"] == w}
            f.write(f"{w} " + " ".join(str(vals[b]) for b in BACKENDS) + "\n")
    png = os.path.join(out, "headline.png")
    script = f"""
set terminal pngcairo size 1200,500 noenhanced
set output '{png}'
set multiplot layout 1,2 title 'uepoll: fine locking vs legacy global mutex vs kernel ({r['machine']['cpus']} CPUs)'
set logscale x 2
set xlabel 'threads'
set ylabel 'operations/s'
set key top left
set title 'connection churn (socketpair, ADD, write, wait, read, close)'
plot '{data}' using 1:2 with linespoints title 'uepoll fine', \
     '' using 1:3 with linespoints title 'uepoll legacy', \
     '' using 1:4 with linespoints title 'kernel'
set title 'HTTP, keepalive_requests 1 (workers = client threads)'
set ylabel 'requests/s'
plot '{http}' using 1:2 with linespoints title 'uepoll fine', \
     '' using 1:3 with linespoints title 'uepoll legacy', \
     '' using 1:4 with linespoints title 'kernel'
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60)
    except (subprocess.SubprocessError, OSError) as e:
        log(f"gnuplot failed: {e}")
        return None
    return png


if __name__ == "__main__":
    sys.exit(main())
