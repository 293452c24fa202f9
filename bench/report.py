#!/usr/bin/env python3
"""Turns bench/run's raw measurements into the results table (Markdown) and a bar chart (SVG)."""
import json
import statistics
import sys
from collections import defaultdict

raw, path_json, warm_line, size, cap, runs, machine, out_md, out_svg = sys.argv[1:10]
size = int(size)
rows = defaultdict(list)
for line in open(raw):
    scenario, client, secs, kib = line.rstrip("\n").split("\t")
    rows[(scenario, client)].append((float(secs), int(kib)))


def med(scenario, client):
    v = rows.get((scenario, client))
    return statistics.median(s for s, _ in v) if v else None


def rss(scenario, client):
    v = rows.get((scenario, client))
    return max(k for _, k in v) / 1024 if v else None


out = []
mib = size / 2**20
out.append(f"Machine: {machine}. File: {mib:.0f} MiB GGUF-shaped, served by nginx over HTTPS "
           f"(302 from 127.0.0.1 to a CDN host on 127.0.0.2). Medians of {runs} runs; peak RSS is the "
           f"largest of the runs.\n")
out.append("| scenario | client | median time | throughput | peak RSS | strata-model is faster by |")
out.append("|---|---|---|---|---|---|")
peers = ["curl", "aria2c-x8", "huggingface_hub"]
for scenario, label in [("capped", f"capped ({cap}/connection)"), ("uncapped", "uncapped")]:
    ours = med(scenario, "strata-model")
    for client in ["strata-model"] + peers:
        t = med(scenario, client)
        if t is None:
            continue
        ratio = "—" if client == "strata-model" else f"{t / ours:.2f}×"
        note = " (verifies SHA-256)" if client == "strata-model" else " (no verification)"
        out.append(f"| {label} | {client}{note} | {t:.2f} s | {size / t / 1e6:.0f} MB/s | "
                   f"{rss(scenario, client):.1f} MiB | {ratio} |")

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

cap_ours, unc_ours = med("capped", "strata-model"), med("uncapped", "strata-model")
checks = [
    ("capped: ≥ 1.5× aria2c -x8 (aim 2×)", med("capped", "aria2c-x8") / cap_ours >= 1.5,
     f"{med('capped', 'aria2c-x8') / cap_ours:.2f}×"),
    ("capped: ≥ 5× curl", med("capped", "curl") / cap_ours >= 5, f"{med('capped', 'curl') / cap_ours:.2f}×"),
    ("capped: ≥ 5× huggingface_hub", med("capped", "huggingface_hub") / cap_ours >= 5,
     f"{med('capped', 'huggingface_hub') / cap_ours:.2f}×"),
    ("uncapped: within 1.1× of curl's time", unc_ours <= 1.1 * med("uncapped", "curl"),
     f"{unc_ours / med('uncapped', 'curl'):.2f}× curl's time"),
    ("warm ensure() < 1 ms in process", warm_us < 1000, f"{warm_us:.1f} µs"),
    ("strata-model path < 10 ms as a process", path["mean"] < 0.010, f"{path['mean'] * 1e3:.2f} ms"),
    ("peak RSS of the download < 32 MiB", max(rss("capped", "strata-model"), rss("uncapped", "strata-model")) < 32,
     f"{max(rss('capped', 'strata-model'), rss('uncapped', 'strata-model')):.1f} MiB"),
    ("verify ≥ 0.95× openssl dgst -sha256", v_ssl / v_ours >= 0.95, f"{v_ssl / v_ours:.2f}×"),
]
out.append("")
out.append("| target | result | met |")
out.append("|---|---|---|")
for name, ok, value in checks:
    out.append(f"| {name} | {value} | {'yes' if ok else 'no'} |")
open(out_md, "w").write("\n".join(out) + "\n")

# Bar chart: time per client per scenario.
clients = ["strata-model"] + peers
colors = {"strata-model": "#2b6cb0", "curl": "#a0aec0", "aria2c-x8": "#718096", "huggingface_hub": "#ed8936"}
scenarios = [("capped", f"capped ({cap}/connection)"), ("uncapped", "uncapped")]
bar_h, gap, left, width = 18, 28, 170, 460
height = 60 + len(scenarios) * (len(clients) * bar_h + gap + 20)
tmax = max(med(s, c) or 0 for s, _ in scenarios for c in clients)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
       f'font-family="sans-serif" font-size="12">',
       f'<rect width="100%" height="100%" fill="white"/>',
       f'<text x="10" y="20" font-size="14" font-weight="bold">Time to download {mib:.0f} MiB over HTTPS '
       f'(median of {runs}; lower is better)</text>']
y = 45
for scenario, label in scenarios:
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
