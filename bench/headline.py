#!/usr/bin/env python3
"""The headline benchmark: the seed's experiment, side by side.

Runs the nginx-like HTTP scenario (keepalive_requests 1) on uepoll in fine mode, uepoll in legacy
mode (the global epoll mutex on both close paths, as Linux before 6.4) and the host kernel (TCP
loopback, kernel epoll), at a few worker/thread counts; measures the release path's share of the
server's CPU (perf CPU samples when perf works; uepoll's own counters beside them) and the legacy
mutex's hold time; runs the connection-churn benchmark; prints one table, writes JSON and a PNG
plot.

Two ways to use uepoll are measured: the fine/legacy rows give every thread a uepoll::Process of
its own (the C++ API, a descriptor table per thread like nginx's worker processes, linked
statically); the capi-fine/capi-legacy rows are what a C program gets: the same benchmark code
built against the installed libuepoll.so (bench/capi, --capi-build) calling uepoll.h, every
thread in the C API's one descriptor table, the lock mode set by UEPOLL_LOCK_MODE.

Only the Python standard library is used; the plot is drawn by gnuplot when it is installed.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BACKENDS = ("fine", "legacy", "kernel")
# The C API rows: name -> UEPOLL_LOCK_MODE (one lock mode per process: the C API reads it once).
CAPI = {"capi-fine": "fine", "capi-legacy": "legacy"}


def log(msg):
    print(msg, flush=True)


def run_json(cmd, json_path, timeout, env=None):
    subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, env=env)
    with open(json_path) as f:
        return json.load(f)


def capi_env(backend):
    """The environment of a C API run: UEPOLL_LOCK_MODE picks its lock mode."""
    return {**os.environ, "UEPOLL_LOCK_MODE": CAPI[backend]}


def http_point(builds, tmp, backend, workers, duration, extra=(), prefix=()):
    """One http_bench run; `builds` is (main build, C API build): capi-* backends run the binary
    built against the installed library."""
    path = os.path.join(tmp, f"http-{backend}-{workers}-{time.monotonic_ns()}.json")
    if backend in CAPI:
        binary, flag, env = os.path.join(builds[1], "http_bench_capi"), "capi", capi_env(backend)
    else:
        binary, flag, env = os.path.join(builds[0], "bench/http/http_bench"), backend, None
    cmd = [*prefix, binary, f"--backend={flag}", f"--workers={workers}",
           f"--client-threads={workers}", "--connections=64", f"--duration={duration}",
           "--warmup=0.5", f"--json={path}", *extra]
    return run_json(cmd, path, timeout=duration * 10 + 60, env=env)


def perf_works():
    if shutil.which("perf") is None:
        return False
    probe = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", os.devnull, "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return probe.returncode == 0


def perf_release_share(builds, tmp, backend, workers, duration):
    """Share of the server threads' CPU samples spent in the release path, children included:
    uepoll's epoll_release_file, or the kernel's eventpoll_release_file."""
    data = os.path.join(tmp, f"perf-{backend}.data")
    http_point(builds, tmp, backend, workers, duration,
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


def merge_churn(runs, seconds, repeats):
    """One churn result from runs of one repetition each: per (mode, T), the median of every
    number over the repetitions that have it (the timing figures come from the first)."""
    points = {}
    for run in runs:
        for p in run["points"]:
            points.setdefault((p["mode"], p["threads"]), []).append(p)
    merged = []
    for (mode, threads), ps in points.items():
        m = {"mode": mode, "threads": threads, "failed": any(p["failed"] for p in ps),
             "samples_ops_per_s": [x for p in ps for x in p.get("samples_ops_per_s", [])]}
        rounds = {}
        for key in sorted({k for p in ps for k in p} - set(m)):
            vals = [p[key] for p in ps if isinstance(p.get(key), (int, float))]
            if vals:
                m[key] = median(vals)
                rounds[key] = [p.get(key) for p in ps]  # one per round, in order
        m["rounds"] = rounds
        merged.append(m)
    return {"object": runs[0]["object"], "cpus": runs[0]["cpus"], "seconds": seconds,
            "repeat": repeats, "points": merged}


def median(values):
    return statistics.median(values) if values else float("nan")


def paired(row_a, row_b, key):
    """The median over rounds of row_a's value over row_b's in the same round."""
    ratios = [ratio(a, b) for a, b in zip(row_a[key], row_b[key])]
    return median([x for x in ratios if x == x])


def ratio(a, b):
    return a / b if a and b and a == a and b == b else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--capi-build", default=None,
                    help="bench/capi built against the installed package "
                         "[BUILD/bench-capi]; the C API rows are left out when it is missing")
    ap.add_argument("--out", default="out")
    ap.add_argument("--long", action="store_true", help="five times longer runs, five repeats")
    args = ap.parse_args()

    repeats, duration, churn_seconds = (5, 10.0, 5.0) if args.long else (3, 2.0, 1.0)
    worker_counts = (1, 2, 4) if args.long else (1, 2)
    cpus = os.cpu_count() or 1
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="uepoll-headline-")
    started = time.monotonic()
    capi_build = args.capi_build or os.path.join(args.build, "bench-capi")
    builds = (args.build, capi_build)
    have_capi = all(os.access(os.path.join(capi_build, b), os.X_OK)
                    for b in ("churn_capi", "http_bench_capi"))
    if not have_capi:
        log(f"no C API build in {capi_build} (bench/capi): the capi rows are left out")
    http_backends = BACKENDS + (tuple(CAPI) if have_capi else ())
    result = {"machine": machine(), "repeats": repeats, "duration_s": duration, "http": [],
              "churn": None,
              "capi_build": os.path.abspath(capi_build) if have_capi else None}

    # 1. Throughput and latency, backends interleaved so that machine drift hits them alike.
    runs = {}
    total = repeats * len(worker_counts) * len(http_backends)
    n = 0
    for rep in range(repeats):
        for w in worker_counts:
            for backend in http_backends:
                n += 1
                log(f"[{n}/{total}] HTTP {backend:11s} workers={w} client-threads={w} "
                    f"run {rep + 1}/{repeats}")
                runs.setdefault((backend, w), []).append(
                    http_point(builds, tmp, backend, w, duration))

    # 2. Release path and global mutex, from uepoll's counters (a separate, timed pass).
    timing = {}
    for backend in ("fine", "legacy") + (("capi-fine",) if have_capi else ()):
        w = worker_counts[-1]
        log(f"timing pass: {backend} workers={w}")
        timing[backend] = http_point(builds, tmp, backend, w, duration, extra=("--timing",))

    # 3. The seed's metric from a profile: perf record -e cpu-clock -g.
    perf_share = {}
    if perf_works():
        for backend in BACKENDS + (("capi-fine",) if have_capi else ()):
            w = worker_counts[-1]
            log(f"profile: perf record -e cpu-clock -g, {backend} workers={w}")
            try:
                perf_share[backend] = perf_release_share(builds, tmp, backend, w, duration)
            except (subprocess.SubprocessError, OSError) as e:
                log(f"  perf failed: {e}")
    else:
        log("perf is not usable here: release-path shares come from uepoll's counters only")

    # 4. Connection churn (the seed's pattern without HTTP). The C API runs in processes of its
    # own (one lock mode per process), so every binary runs one repetition at a time, the
    # repetitions interleaved across binaries as the HTTP runs are; medians are taken here.
    log("churn: socketpair -> ADD -> write -> wait -> read -> close, T = 1..64" +
        (" (capi-*: C API, installed libuepoll.so, one table)" if have_capi else ""))
    churn_reps = 3
    churn_args = ["--threads=1,2,4,8,16,64", f"--seconds={churn_seconds / churn_reps:g}",
                  "--repeat=1"]
    churn_runs = []
    for rep in range(churn_reps):
        timing_flag = [] if rep == 0 else ["--no-timing"]  # one timing pass is enough
        jobs = [([os.path.join(args.build, "bench/churn/churn"), "--modes=fine,legacy,kernel,floor"],
                 None)]
        jobs += [([os.path.join(capi_build, "churn_capi"), "--modes=capi"], capi_env(b))
                 for b in (CAPI if have_capi else ())]
        for i, (cmd, env) in enumerate(jobs):
            path = os.path.join(tmp, f"churn-{rep}-{i}.json")
            subprocess.run([*cmd, *churn_args, *timing_flag, f"--json={path}"], check=True,
                           timeout=900, stdout=subprocess.DEVNULL, env=env)
            with open(path) as f:
                churn_runs.append(json.load(f))
    result["churn"] = merge_churn(churn_runs, churn_seconds, churn_reps)

    # 5. The wake-up ping-pong (two threads, each asleep in epoll_wait -1 on its own instance,
    # waking each other through eventfds): what a wake-up costs, kernel and uepoll in one run.
    log("wake-up ping-pong: micro_bench BM_WakePingPong, kernel and uepoll")
    result["ping_pong"] = ping_pong(args.build, tmp)

    # 6. Aggregate. Every CPU figure is the whole process's (server, client and any helper
    # thread: RUSAGE_SELF), so CPU ratios count every thread.
    rows = []
    for w in worker_counts:
        for backend in http_backends:
            rs = runs[(backend, w)]
            row = {
                "backend": backend, "workers": w, "client_threads": w,
                "api": "c" if backend in CAPI else ("c++" if backend != "kernel" else "kernel"),
                "descriptor_tables": "one (C API)" if backend in CAPI else "one per thread",
                "rps": median([r["rps"] for r in rs]),
                "rps_runs": [r["rps"] for r in rs],
                "req_per_cpu_s_runs": [r["requests"] / r["cpu_s"] if r["cpu_s"] else None
                                       for r in rs],
                "p50_us": median([r["p50_us"] for r in rs]),
                "p99_us": median([r["p99_us"] for r in rs]),
                "cpu_utilization": median([r["cpu_utilization"] for r in rs]),
                # requests per CPU-second of the whole process
                "req_per_cpu_s": median([r["requests"] / r["cpu_s"] for r in rs if r["cpu_s"]]),
                "errors": sum(r["errors"] for r in rs),
                "global_mutex_per_s": median([r["global_mutex_per_s"] or 0 for r in rs])
                if backend != "kernel" else None,
            }
            rows.append(row)
    # Every ratio is the median of per-round ratios: the runs of one round are seconds apart,
    # while the host's neighbours move a backend's rate by up to 3x between rounds.
    by = {(r["backend"], r["workers"]): r for r in rows}
    for r in rows:
        w = r["workers"]
        kernel = by[("kernel", w)]
        r["fine_over_legacy"] = paired(by[("fine", w)], by[("legacy", w)], "rps_runs")
        r["fine_over_kernel"] = paired(by[("fine", w)], kernel, "rps_runs")
        r["over_kernel"] = paired(r, kernel, "rps_runs")
        r["cpu_over_kernel"] = paired(r, kernel, "req_per_cpu_s_runs")
        if r["backend"] in CAPI:
            # what the C API gives against a Process per thread in the same lock mode
            process = by[(CAPI[r["backend"]], w)]
            r["capi_over_process"] = paired(r, process, "rps_runs")
            r["capi_over_process_cpu"] = paired(r, process, "req_per_cpu_s_runs")
        if r["backend"] == "capi-fine" and ("capi-legacy", w) in by:
            r["capi_fine_over_legacy"] = paired(r, by[("capi-legacy", w)], "rps_runs")
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


def ping_pong(build, tmp):
    """Round-trip medians (ns) of BM_WakePingPong per side, or None without micro_bench."""
    bench = os.path.join(build, "bench/micro/micro_bench")
    if not os.access(bench, os.X_OK):
        log(f"  no {bench}: the ping-pong row is left out")
        return None
    path = os.path.join(tmp, "ping-pong.json")
    subprocess.run([bench, "--benchmark_filter=BM_WakePingPong/(kernel|uepoll)/",
                    "--benchmark_repetitions=3", "--benchmark_min_time=0.3",
                    "--benchmark_report_aggregates_only=true", f"--benchmark_out={path}",
                    "--benchmark_out_format=json"], check=True, timeout=300,
                   stdout=subprocess.DEVNULL)
    with open(path) as f:
        runs = json.load(f)["benchmarks"]
    out = {}
    for run in runs:
        if run.get("aggregate_name") == "median":
            side = run["run_name"].split("/")[1]
            out[side] = {"round_trip_ns": run["real_time"], "p50_us": run.get("p50_us"),
                         "p99_us": run.get("p99_us")}
    return out


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


def fmt(v, spec, width):
    """v formatted with spec, or "-" when missing, right-aligned in width."""
    ok = v is not None and v == v
    return f"{v:{spec}}".rjust(width) if ok else "-".rjust(width)


def print_table(r, worker_counts):
    m = r["machine"]
    capi = any(row["backend"] in CAPI for row in r["http"])
    print(f"\n=== HTTP, keepalive_requests 1, 64 connections, an SO_REUSEPORT listener per "
          f"worker ({m['cpus']} x {m['cpu']}, "
          f"Linux {m['kernel']}; medians of {r['repeats']} runs of {r['duration_s']:g} s)")
    print("    fine, legacy: a uepoll::Process (descriptor table) per thread, C++ API, static library")
    if capi:
        print("    capi-*: the C API through the installed libuepoll.so, every thread in its one "
              "table (legacy: the client's closes\n    take the global mutex too)")
    print("    req/cpu-s: requests per CPU-second of the whole process (server, client, any "
          "helper thread); x kernel, cpu x kern:\n    against the kernel's req/s and req/cpu-s; "
          "fine/leg: fine/legacy (capi-fine: capi-fine/capi-legacy);\n    C/proc, C/proc cpu: a "
          "capi row against the Process-per-thread row of its lock mode;\n    every ratio is the "
          "median of the ratios within each round (the runs of a round are seconds apart)")
    print(f"{'backend':11s} {'W=T':>4s} {'req/s':>9s} {'p50 us':>7s} {'p99 us':>7s} "
          f"{'req/cpu-s':>10s} {'fine/leg':>8s} {'x kernel':>8s} {'cpu x kern':>10s} "
          f"{'C/proc':>7s} {'C/proc cpu':>10s} {'mutex/s':>9s}")
    for row in r["http"]:
        w, b = row["workers"], row["backend"]
        fine_leg = None
        if b == "fine":
            fine_leg = row["fine_over_legacy"]
        elif b == "capi-fine":
            fine_leg = row.get("capi_fine_over_legacy")
        kern = b == "kernel"
        print(f"{b:11s} {w:>4d} {row['rps']:>9.0f} {row['p50_us']:>7.0f} {row['p99_us']:>7.0f} "
              f"{fmt(row['req_per_cpu_s'], '.0f', 10)} {fmt(fine_leg, '.2f', 8)} "
              f"{fmt(None if kern else row['over_kernel'], '.2f', 8)} "
              f"{fmt(None if kern else row['cpu_over_kernel'], '.2f', 10)} "
              f"{fmt(row.get('capi_over_process'), '.2f', 7)} "
              f"{fmt(row.get('capi_over_process_cpu'), '.2f', 10)} "
              f"{fmt(row['global_mutex_per_s'], '.0f', 9)}")

    print(f"\n=== Release path (the last close of a watched socket, with its children), HTTP "
          f"W=T={worker_counts[-1]}\n"
          "    perf CPU samples (the seed's metric): share of the server threads' perf samples "
          "(cpu-clock) whose stack holds\n    epoll_release_file (kernel: eventpoll_release_file)"
          "\n    uepoll counters: wall time inside epoll_release_file in every thread (server and "
          "client; waiting for the\n    legacy mutex included) / the process's CPU time, from a "
          "separate run with timing on")
    print(f"{'backend':11s} {'perf CPU samples':>16s}   {'uepoll counters (time in path / CPU)':>36s}")
    for b in BACKENDS + tuple(c for c in CAPI if capi):
        perf = r["release_path_share_perf"].get(b)
        counters = r["release_path_share_counters"].get(b)
        if perf is None and counters is None:
            continue
        perf_s = "n/a" if perf is None else f"{perf * 100:.1f}%"
        cnt_s = "-" if counters is None else f"{counters * 100:.1f}%"
        print(f"{b:11s} {perf_s:>16s}   {cnt_s:>36s}")
    lm = r["legacy_mutex"]
    sat = "n/a" if not lm["saturation_cores"] else f"{lm['saturation_cores']:.0f}"
    print(f"\nlegacy global mutex: {lm['acquisitions_per_s']:.0f}/s, held {lm['hold_ns']:.0f} ns "
          f"each, {lm['utilisation_here'] * 100:.1f}% busy here; saturates at ~{sat} cores")

    points = [p for p in r["churn"]["points"] if not p.get("failed")]
    threads = sorted({p["threads"] for p in points})
    modes = [b for b in ("fine", "legacy") + tuple(CAPI) + ("kernel", "floor")
             if any(p["mode"] == b for p in points)]
    get = {(p["mode"], p["threads"]): p for p in points}

    def stat(mode, t, key):
        return get.get((mode, t), {}).get(key, float("nan"))

    def stat_ratio(mode_a, mode_b, t, key):
        """Median over the rounds of a's value over b's in the same round."""
        rounds = [get.get((m, t), {}).get("rounds", {}).get(key, []) for m in (mode_a, mode_b)]
        return paired({key: rounds[0]}, {key: rounds[1]}, key)

    print("\n=== Connection churn (ops/s, median; ratios: median of the per-round ratios)" +
          (": capi-* rows from churn_capi on the installed libuepoll.so, one process per lock "
           "mode,\n    its repetitions interleaved with the others'; the kernel's workers have a "
           "table each (unshare)" if capi else ""))
    # floor: the same loop on the bare user-space work of a cycle (bench/churn/floor_backend.hpp).
    ratios = [("fine/legacy", "fine", "legacy"), ("fine/kernel", "fine", "kernel")]
    if capi:
        ratios += [("capi/kernel", "capi-fine", "kernel"), ("capi/fine", "capi-fine", "fine"),
                   ("capi f/l", "capi-fine", "capi-legacy")]
    print(f"{'T':>4s} " + " ".join(f"{b:>11s}" for b in modes) + " " +
          " ".join(f"{name:>11s}" for name, _, _ in ratios))
    for t in threads:
        vals = " ".join(fmt(stat(b, t, "ops_per_s"), ".0f", 11) for b in modes)
        rs = " ".join(fmt(stat_ratio(a, b, t, "ops_per_s"), ".2f", 11) for _, a, b in ratios)
        print(f"{t:>4d} {vals} {rs}")

    # The cost of an iteration, every thread's CPU counted (the workers, any helper thread, the
    # idle main thread); bg: CPU outside the workers over the workers' CPU.
    print("\n=== Connection churn, CPU cost: iterations per CPU-second of the whole process "
          "(every thread); (bg: CPU outside\n    the workers / worker CPU); cpu x/kern: against "
          "the kernel's; x floor: CPU per iteration in multiples of the floor's")
    cost_modes = [b for b in modes if b != "floor"]
    cost_ratios = [("cpu f/kern", "fine", "kernel")] + (
        [("cpu capi/kern", "capi-fine", "kernel"), ("cpu capi/fine", "capi-fine", "fine")]
        if capi else [])
    floors = [b for b in ("fine", "legacy") + tuple(CAPI) if b in cost_modes]
    print(f"{'T':>4s} " + " ".join(f"{b:>17s}" for b in cost_modes) + " " +
          " ".join(f"{name:>13s}" for name, _, _ in cost_ratios) + " " +
          " ".join(f"{b + ' x floor':>18s}" for b in floors))
    for t in threads:
        cells = []
        for b in cost_modes:
            bg = stat(b, t, "background_cpu_share")
            cells.append(fmt(stat(b, t, "ops_per_process_cpu_s"), ".0f", 10) +
                         (f" ({bg * 100:3.0f}%)" if bg == bg else "       "))
        rs = [fmt(stat_ratio(a, b, t, "ops_per_process_cpu_s"), ".2f", 13)
              for _, a, b in cost_ratios]
        fl = [fmt(stat_ratio("floor", b, t, "ops_per_process_cpu_s"), ".1f", 18) for b in floors]
        print(f"{t:>4d} " + " ".join(cells) + " " + " ".join(rs) + " " + " ".join(fl))
    pp = r.get("ping_pong")
    if pp and "kernel" in pp and "uepoll" in pp:
        k, u = pp["kernel"]["round_trip_ns"], pp["uepoll"]["round_trip_ns"]
        print("\n=== Wake-up ping-pong: a round trip of two wake-ups between threads asleep in "
              "epoll_wait(-1), median of 3 (us)")
        print(f"{'kernel':>8s} {'uepoll':>8s} {'kernel/uepoll':>14s}")
        print(f"{k / 1e3:>8.1f} {u / 1e3:>8.1f} {ratio(k, u):>14.1f}")
    print(f"\n(elapsed {r['elapsed_s']:.0f} s)")


def plot(r, out, tmp):
    if shutil.which("gnuplot") is None:
        return None
    data = os.path.join(tmp, "plot.dat")
    points = r["churn"]["points"]
    threads = sorted({p["threads"] for p in points})
    modes = [b for b in BACKENDS + tuple(CAPI) if any(p["mode"] == b for p in points)]
    get = {(p["mode"], p["threads"]): p.get("ops_per_s", 0) for p in points}
    with open(data, "w") as f:
        for t in threads:
            f.write(f"{t} " + " ".join(str(get.get((b, t), 0)) for b in modes) + "\n")
    http = os.path.join(tmp, "http.dat")
    backends = [b for b in BACKENDS + tuple(CAPI) if any(row["backend"] == b for row in r["http"])]
    with open(http, "w") as f:
        ws = sorted({row["workers"] for row in r["http"]})
        for w in ws:
            vals = {row["backend"]: row["rps"] for row in r["http"] if row["workers"] == w}
            f.write(f"{w} " + " ".join(str(vals[b]) for b in backends) + "\n")
    titles = {"fine": "uepoll fine", "legacy": "uepoll legacy", "kernel": "kernel",
              "capi-fine": "C API fine (libuepoll.so)", "capi-legacy": "C API legacy (libuepoll.so)"}

    def lines(path, names):
        return ", \\\n     ".join(
            f"'{path if i == 0 else ''}' using 1:{i + 2} with linespoints title '{titles[b]}'"
            for i, b in enumerate(names))

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
plot {lines(data, modes)}
set title 'HTTP, keepalive_requests 1 (workers = client threads)'
set ylabel 'requests/s'
plot {lines(http, backends)}
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
