#!/usr/bin/env python3
"""Turns bench/run's raw measurements into the results tables (Markdown) and a bar chart (SVG).

Arguments: raw.tsv counts.tsv path.json WARM_LINE SIZE CAP RUNS MACHINE OUT_MD OUT_SVG [push.tsv]
raw.tsv:    scenario, client, seconds, peak RSS KiB (one line per run)
counts.tsv: scenario, client, "hub_requests hub_connections cdn_requests cdn_connections"
push.tsv:   bench/push's cases (push-1g): case, seconds, peak RSS KiB, bytes sent, blob bytes, exit
            code, resumed-from bytes, killed-at bytes
"""
import json
import statistics
import sys
from collections import defaultdict

raw, counts_tsv, path_json, warm_line, size, cap, runs, machine, out_md, out_svg = sys.argv[1:11]
size = int(size)
pushes = [l.rstrip("\n").split("\t") for l in open(sys.argv[11])] if len(sys.argv) > 11 else []
rows = defaultdict(list)
for line in open(raw):
    scenario, client, secs, kib = line.rstrip("\n").split("\t")
    rows[(scenario, client)].append((float(secs), int(kib)))
counts = defaultdict(list)
for line in open(counts_tsv):
    scenario, client, nums = line.rstrip("\n").split("\t")
    counts[(scenario, client)].append([int(n) for n in nums.split()])

WAN_CAP = 20e6  # bytes per second per CDN connection (bench/lib/hub.sh WAN_CAP)
HUB_RTT = 0.080
SCENARIOS = [
    ("capped", f"loopback, capped ({cap}/connection, nginx limit_rate)", size),
    ("uncapped", "loopback, uncapped", size),
    ("wan-256", "WAN (Hub RTT 80 ms, CDN RTT 20 ms, 20 MB/s per connection), 256 MiB", 256 << 20),
    ("wan-1024", "WAN (Hub RTT 80 ms, CDN RTT 20 ms, 20 MB/s per connection), 1 GiB", size),
]
SCENARIOS = [s for s in SCENARIOS if any(k[0] == s[0] for k in rows)]
PEERS = ["aria2c-x8", "aria2c-x16", "curl", "huggingface_hub"]


def med(scenario, client):
    v = rows.get((scenario, client))
    return statistics.median(s for s, _ in v) if v else None


def rss(scenario, client):
    v = rows.get((scenario, client))
    return max(k for _, k in v) / 1024 if v else None


def count(scenario, client):
    v = counts.get((scenario, client))
    return [statistics.median(col) for col in zip(*v)] if v else None


def default_connections(nbytes):
    """strata-model's default (download::auto_connections): one per 2 MiB, at most 32."""
    return max(1, min(32, nbytes // (2 << 20)))


def planned_ranges(nbytes, connections):
    """Ranges of a fresh parallel plan (download::plan::Plan::fresh): two per connection,
    between 1 MiB and 64 MiB each."""
    chunk = min(max(nbytes // (connections * 2), 1 << 20), 64 << 20)
    return -(-nbytes // chunk)


def limit(nbytes, connections):
    """The physical limit on the WAN: every connection at the cap, plus three Hub round trips."""
    return nbytes / (connections * WAN_CAP) + 3 * HUB_RTT


out = [f"Machine: {machine}. GGUF-shaped files served by nginx over HTTPS (302 from a Hub on "
       f"127.0.0.1 to a CDN host on 127.0.0.2). Medians of {runs} runs; peak RSS is the largest of "
       f"the runs. The WAN is bench/delay-line in front of both hosts.\n"]
out.append("| scenario | client | median time | throughput | peak RSS | strata-model is faster by |")
out.append("|---|---|---|---|---|---|")
for scenario, label, nbytes in SCENARIOS:
    ours = med(scenario, "strata-model")
    for client in ["strata-model"] + PEERS:
        t = med(scenario, client)
        if t is None:
            continue
        ratio = "—" if client == "strata-model" else f"{t / ours:.2f}×"
        note = " (verifies SHA-256)" if client == "strata-model" else " (no verification)"
        out.append(f"| {label} | {client}{note} | {t:.2f} s | {nbytes / t / 1e6:.0f} MB/s | "
                   f"{rss(scenario, client):.1f} MiB | {ratio} |")

out.append("")
out.append("Requests and connections counted at the server (nginx access log, `$connection`), "
           "medians per download:")
out.append("")
out.append("| scenario | client | Hub requests | Hub connections | CDN requests | CDN connections |")
out.append("|---|---|---|---|---|---|")
for scenario, label, _ in SCENARIOS:
    for client in ["strata-model"] + PEERS:
        c = count(scenario, client)
        if c:
            out.append(f"| {scenario} | {client} | {c[0]:.0f} | {c[1]:.0f} | {c[2]:.0f} | {c[3]:.0f} |")

sweep = sorted({(s, int(c[len("strata-model-c"):])) for (s, c) in rows if c.startswith("strata-model-c")})
if sweep:
    out.append("")
    out.append("Connection sweep of strata-model (`--connections N`), medians:")
    out.append("")
    out.append("| scenario | connections | median time | physical limit | time / limit |")
    out.append("|---|---|---|---|---|")
    for scenario, c in sweep:
        nbytes = next(n for s, _, n in SCENARIOS if s == scenario)
        t = med(scenario, f"strata-model-c{c}")
        lim = limit(nbytes, c)
        out.append(f"| {scenario} | {c} | {t:.2f} s | {lim:.2f} s | {t / lim:.2f} |")

v_ours, v_ssl = med("verify", "strata-model-verify"), med("verify", "openssl-dgst")
m_ours, m_cp = med("mirror", "strata-model-mirror"), med("mirror", "cp+sha256sum")
path = json.load(open(path_json))["results"][0]
warm_us = float(warm_line.split("median ")[1].split(" µs")[0])
out.append("")
out.append("| local operation | strata-model | peer | ratio |")
out.append("|---|---|---|---|")
out.append(f"| `verify` (full SHA-256 of the file) vs `openssl dgst -sha256` | {v_ours:.2f} s "
           f"({size / v_ours / 1e9:.2f} GB/s) | {v_ssl:.2f} s ({size / v_ssl / 1e9:.2f} GB/s) | "
           f"{v_ssl / v_ours:.2f}× openssl's speed |")
out.append(f"| mirror-directory install (copy + verify) vs `cp` then `sha256sum` | {m_ours:.2f} s | "
           f"{m_cp:.2f} s | {m_cp / m_ours:.2f}× faster |")
out.append(f"| warm `ensure()` in process (median of 10 000) vs re-hashing the file | {warm_us:.1f} µs | "
           f"{v_ours:.2f} s | {v_ours * 1e6 / warm_us:,.0f}× faster |")
out.append(f"| warm `strata-model path` as a whole process (hyperfine mean) | {path['mean'] * 1e3:.2f} ms | — | — |")

checks = []


def check(name, ok, value):
    checks.append((name, ok, value))


if med("wan-many", "strata-model-one"):
    one, eight = med("wan-many", "strata-model-one"), med("wan-many", "strata-model-eight")
    out.append("")
    out.append("Many models at once (WAN: Hub RTT 80 ms, CDN RTT 20 ms, 20 MB/s per connection): "
               "`download` of eight 4 MiB models against one (target: at most 2 times).")
    out.append("")
    out.append("| download | median time | Hub requests | CDN connections |")
    out.append("|---|---:|---:|---:|")
    for client, label in (("strata-model-one", "one model"), ("strata-model-eight", "eight models at once")):
        c = count("wan-many", client)
        out.append(f"| {label} | {med('wan-many', client):.2f} s | {c[0]:.0f} | {c[3]:.0f} |" if c else
                   f"| {label} | {med('wan-many', client):.2f} s | | |")
    out.append(f"| eight / one | {eight / one:.2f} | | |")
if pushes:
    out.append("")
    out.append("Pushes (`mirror push oci://`) to the CNCF registry (docker-registry 2.8) behind nginx "
               "capping request bodies at 8 MiB; bytes sent are nginx's `$request_length` over the push; "
               "the `resume` cases are the push after one killed (SIGKILL) once half was saved "
               "(details: bench/results/push.md):")
    out.append("")
    out.append("| case | nginx request bodies | exit | time | sent / blob | killed at | resumed at |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    bodies = {"full": "streamed", "resume-buffered": "buffered (default)", "resume-streamed": "streamed"}
    for case, secs, _kib, sent, blob, code, resumed, killed in pushes:
        blob = int(blob)
        k = f"{int(killed) / blob:.1%}" if int(killed) else "—"
        r = f"{int(resumed) / blob:.1%}" if int(resumed) else "— (from the start)"
        out.append(f"| {case} | {bodies.get(case, '')} | {code} | {float(secs):.2f} s | "
                   f"{int(sent) / blob:.1%} | {k} | {r} |")
    by_case = {p[0]: p for p in pushes}
    if "full" in by_case:
        check("1 GiB push through the 8 MiB body cap succeeds", by_case["full"][5] == "0",
              f"exit {by_case['full'][5]}")
    for case in ("resume-buffered", "resume-streamed"):
        if case in by_case:
            p = by_case[case]
            share = int(p[3]) / int(p[4])
            check(f"killed at half, the next push sends ≤ 55 % ({case})", p[5] == "0" and share <= 0.55,
                  f"{share:.1%}")
if med("wan-256", "strata-model"):
    ours = med("wan-256", "strata-model")
    for peer, want in [("aria2c-x16", 1.5), ("aria2c-x8", 2.0)]:
        r = med("wan-256", peer) / ours
        check(f"WAN 256 MiB: ≥ {want}× {peer}'s speed", r >= want, f"{r:.2f}×")
    c = default_connections(256 << 20)
    lim = limit(256 << 20, c)
    check(f"WAN 256 MiB: within 1.5× of the limit at {c} connections ({lim:.2f} s)", ours <= 1.5 * lim,
          f"{ours / lim:.2f}× the limit")
if med("wan-1024", "strata-model"):
    ours = med("wan-1024", "strata-model")
    lim = limit(size, default_connections(size))
    check(f"WAN 1 GiB: within 1.5× of the limit ({lim:.2f} s)", ours <= 1.5 * lim, f"{ours / lim:.2f}× the limit")
if med("capped", "strata-model"):
    ours = med("capped", "strata-model")
    r = med("capped", "aria2c-x8") / ours
    check("loopback capped: ≥ 2× aria2c -x8", r >= 2, f"{r:.2f}×")
    for peer in ["curl", "huggingface_hub"]:
        r = med("capped", peer) / ours
        check(f"loopback capped: ≥ 5× {peer}", r >= 5, f"{r:.2f}×")
if med("uncapped", "strata-model"):
    r = med("uncapped", "strata-model") / med("uncapped", "curl")
    check("loopback uncapped: ≤ 1.25× curl's time (with verification)", r <= 1.25, f"{r:.2f}× curl's time")
ours_counts = [(s, count(s, "strata-model")) for s, _, _ in SCENARIOS if count(s, "strata-model")]
if ours_counts:
    hub = max(c[0] for _, c in ours_counts)
    check("Hub requests per download ≤ 2", hub <= 2, f"{hub:.0f} at most")
    over = []
    for s, c in ours_counts:
        n = next(n for s2, _, n in SCENARIOS if s2 == s)
        conns = default_connections(n)
        extra = max(0, c[2] - planned_ranges(n, conns))  # requests for split-off or retried ranges
        over.append((c[3] - conns, extra))
    ok = all(o <= e for o, e in over)
    check("CDN connections ≤ the connection count, plus one per split or retried range",
          ok, ", ".join(f"+{o:.0f} (extra requests {e:.0f})" for o, e in over))
peaks = [p for p in (rss(s, "strata-model") for s, _, _ in SCENARIOS) if p is not None]
if peaks:
    peak = max(peaks)
    check("peak RSS of the download ≤ 24 MiB", peak <= 24, f"{peak:.1f} MiB")
if med("wan-many", "strata-model-one"):
    ratio = med("wan-many", "strata-model-eight") / med("wan-many", "strata-model-one")
    check("eight 4 MiB models at once ≤ 2× one (WAN)", ratio <= 2, f"{ratio:.2f}×")
check("warm ensure() < 1 ms in process", warm_us < 1000, f"{warm_us:.1f} µs")
check("strata-model path < 10 ms as a process", path["mean"] < 0.010, f"{path['mean'] * 1e3:.2f} ms")
check("verify ≥ 0.95× openssl dgst -sha256", v_ssl / v_ours >= 0.95, f"{v_ssl / v_ours:.2f}×")
out.append("")
out.append("| target | result | met |")
out.append("|---|---|---|")
for name, ok, value in checks:
    out.append(f"| {name} | {value} | {'yes' if ok else 'no'} |")
open(out_md, "w").write("\n".join(out) + "\n")

# Bar chart: time per client per scenario, each scenario on its own scale.
clients = ["strata-model"] + PEERS
colors = {"strata-model": "#2b6cb0", "curl": "#a0aec0", "aria2c-x8": "#718096", "aria2c-x16": "#4a5568",
          "huggingface_hub": "#ed8936"}
bar_h, gap, left, width = 18, 28, 170, 460
height = 60 + len(SCENARIOS) * (len(clients) * bar_h + gap + 20)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
       f'font-family="sans-serif" font-size="12">',
       '<rect width="100%" height="100%" fill="white"/>',
       f'<text x="10" y="20" font-size="14" font-weight="bold">Time to download and verify '
       f'(median of {runs}; lower is better; each scenario on its own scale)</text>']
y = 45
for scenario, label, _ in SCENARIOS:
    tmax = max(med(scenario, c) or 0 for c in clients)
    svg.append(f'<text x="10" y="{y}" font-weight="bold">{label}</text>')
    y += 8
    for c in clients:
        t = med(scenario, c)
        if t is None:
            continue
        w = max(1, width * t / tmax)
        svg.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{c}</text>')
        svg.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 3}" fill="{colors[c]}"/>')
        svg.append(f'<text x="{left + w + 5:.1f}" y="{y + 13}">{t:.2f} s</text>')
        y += bar_h
    y += gap
svg.append("</svg>")
open(out_svg, "w").write("\n".join(svg) + "\n")
