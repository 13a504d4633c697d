#!/usr/bin/env python3
"""Projects churn ops/s and HTTP req/s to 16, 64 and 128 cores (docs/benchmarks.md,
"Projections to 16, 64 and 128 cores"). Python 3, standard library only: python3 bench/project.py

Model (operational bounds): X(N) = min(N / t(N), 1 / sigma(N)) for each serial resource sigma.
  D(N)     one urcu-bp grace period: D0 + (N-1) d_cpu
  Grace periods shared among waiters (rcu.cpp since the evening of 2026-12-06): a thread
  reclaims once per B/r operations and waits W = D (1 + rho/2) for it, rho = g D the share of
  time a grace period runs, g = min(N X r / B, 1 / D) the grace periods run per second (one
  serves every thread waiting for it). Each one interrupts every running thread twice and flips
  a counter that every reader then misses: the threads lose f = g (2 c_ipi + c_line) of their
  time. t(N) = (t1 + (r/B) W [+ c_line per ADD in legacy]) / (1 - f); X is the fixed point.
  Unshared (the morning's code, --unshared): t(N) = t1 + (r/B) (D + 2 N (c_ipi + c_line)) and
  the serial bound sigma = (r/B) D of liburcu's rcu_gp_lock.
  sigma    legacy mutex:     h + k * c_line + (W - D0)/B (the Watch's retire runs under it;
                             h, measured at N=1, already holds D0/B)
           HTTP: each worker's SO_REUSEPORT accept queue moves n_L lines per request
           (W / (n_L * c_line) over W workers; one shared listener on xeon: 1 / (n_L c_line)).
"""

import sys

# --- measured on dev (2 cores, loaded; docs/benchmarks.md gives the commands) --------------
T1_CHURN = 0.60e-6   # s CPU per churn cycle at T=1 (1 / ops_per_cpu_s, fine and legacy alike)
T1_HTTP = 3.3e-6     # s CPU per request, both halves (2 busy cores / req/s, W=1, quiet run)
H_CHURN = 0.09e-6    # s legacy mutex hold per acquisition, churn T=1 (timing pass)
H_HTTP = 0.099e-6    # s the same in scripts/main.sh's http_bench --backend=legacy --timing, W=2
D0 = 12.4e-6         # s one urcu_bp_synchronize_rcu() with no other reader running
R_CHURN, R_HTTP = 3, 4   # objects retired per cycle / request (perf: 341 and 255 per grace period)
B = 1024             # rcu::kMaxPendingPerThread: one grace period per B retires per thread
# --- assumed (multi-socket x86 server; to be re-measured on a big machine) ------------------
C_LINE = 150e-9      # s one contended cache-line transfer (100-200 ns across sockets)
D_CPU = 0.5e-6       # s grace-period growth per running thread (membarrier IPI + reader scan)
C_IPI = 1.0e-6       # s a running thread loses per membarrier IPI it receives
K_LEGACY = 3         # lines that move per legacy acquisition: mutex word, its unlock, the counter
N_LISTENER = 5       # accept-queue line transfers per request (connect, accept, EAGAIN, poll)


HOLD = {T1_CHURN: H_CHURN, T1_HTTP: H_HTTP}


def grace(n):
    return D0 + (n - 1) * D_CPU


def bound(t1, r, n, legacy, sigmas, shared=True):
    """X(N) for an operation of t1 s CPU that retires r objects, under the serial bounds
    `sigmas` (s per operation) and, in legacy mode, the global mutex."""
    d = grace(n)
    if not shared:
        t = t1 + (r / B) * (d + 2 * n * (C_IPI + C_LINE)) + (C_LINE if legacy and n > 1 else 0)
        sigmas = sigmas + [(r / B) * d]
        if legacy:
            sigmas.append(HOLD[t1] + K_LEGACY * C_LINE + (d - D0) / B)
        return min([n / t] + [1 / s for s in sigmas])
    x = n / t1
    for _ in range(200):
        g = min(x * r / B, 1 / d)
        rho = g * d
        wait = d * (1 + rho / 2)
        lost = g * (2 * C_IPI + C_LINE)
        t = (t1 + (r / B) * wait + (C_LINE if legacy and n > 1 else 0)) / max(1e-3, 1 - lost)
        bounds = sigmas + ([HOLD[t1] + K_LEGACY * C_LINE + (wait - D0) / B] if legacy else [])
        x = (x + min([n / t] + [1 / s for s in bounds])) / 2
    return x


def churn(n, legacy, shared=True):
    return bound(T1_CHURN, R_CHURN, n, legacy, [], shared)


def http(n, legacy, shared=True):
    workers = max(1, n // 2)
    return bound(T1_HTTP, R_HTTP, n, legacy, [N_LISTENER * C_LINE / workers], shared)


def check_xeon():
    """The same bounds with xeon's own T=1 inputs against its measured figures. That build freed
    through liburcu's call_rcu thread, so no grace period ran on the workers (no D terms)."""
    t1, hold, t1_http = 1 / 449_853, 142e-9, 4.3e-6  # HTTP: dev's t1 of that time
    churn_xeon = {2: (1_107_194, 1_071_252), 4: (2_427_665, 1_655_772), 8: (4_376_223, 1_615_317),
                  16: (6_256_722, 1_501_288)}
    for n, (fine, legacy) in churn_xeon.items():
        pf = n / t1
        pl = min(n / (t1 + C_LINE), 1 / (hold + K_LEGACY * C_LINE))
        print(f"xeon churn T={n:<3} fine {pf / 1e6:5.2f}M vs {fine / 1e6:5.2f}M"
              f" ({pf / fine - 1:+4.0%})"
              f"   legacy {pl / 1e6:5.2f}M vs {legacy / 1e6:5.2f}M ({pl / legacy - 1:+4.0%})")
    http_xeon = {1: 190_356, 2: 299_906, 4: 383_282, 8: 268_297}  # fine; legacy within 5%
    for w, rps in http_xeon.items():
        p = min(2 * w / t1_http, 1 / (N_LISTENER * C_LINE))  # one listener, EPOLLEXCLUSIVE
        print(f"xeon http W={w:<3} fine {p / 1e3:5.0f}k vs {rps / 1e3:5.0f}k ({p / rps - 1:+4.0%})")


if __name__ == "__main__":
    shared = "--unshared" not in sys.argv
    print(f"grace periods {'shared among waiters' if shared else 'one per waiter'}")
    print(f"{'cores':>5} {'churn fine':>11} {'churn legacy':>13} {'fine/legacy':>11}"
          f" {'http fine':>10} {'http legacy':>12} {'grace us':>9}")
    for n in (1, 2, 16, 64, 128):
        cf, cl = churn(n, False, shared), churn(n, True, shared)
        hf, hl = http(n, False, shared), http(n, True, shared)
        print(f"{n:>5} {cf / 1e6:10.2f}M {cl / 1e6:12.2f}M {cf / cl:11.2f}"
              f" {hf / 1e3:9.0f}k {hl / 1e3:11.0f}k {grace(n) * 1e6:9.1f}")
    check_xeon()
