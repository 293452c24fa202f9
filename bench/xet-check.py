#!/usr/bin/env python3
"""Checks bench/xet's static Xet CAS through nginx, as a Xet client reads it, independently of
strata-model: for each version, the resolve HEAD's X-Xet-Hash, the read token, the v2
reconstruction, then every xorb URL with all its ranges in one request (multipart/byteranges
when several), every chunk decoded (raw, LZ4 frame, byte-grouped LZ4), and the file rebuilt from
its terms byte for byte against the file the CDN serves (its SHA-256 and size). Then what a
delta client needs for v2 given v1 (and v3 given v2): the fetches (xorb URL, all its ranges)
holding a chunk the old file's terms do not, and their bytes.

  xet-check.py DIR HUB_URL [LABEL...]     (DIR as xet_start left it; needs the `lz4` module)
"""
import concurrent.futures
import hashlib
import http.client
import json
import ssl
import sys
import urllib.parse

import lz4.frame

d, hub = sys.argv[1], sys.argv[2].rstrip("/")
labels = sys.argv[3:] or ["v1", "v2", "v3"]
ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
rows = {}
with open(f"{d}/fixture/fixture.tsv") as f:
    head = f.readline().rstrip("\n").split("\t")
    for line in f:
        r = dict(zip(head, line.rstrip("\n").split("\t")))
        rows[r["label"]] = r


def request(url, method="GET", headers=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
    c.request(method, u.path + (f"?{u.query}" if u.query else ""), headers=headers or {})
    resp = c.getresponse()
    body = resp.read()
    c.close()
    return resp, body


def multipart(body, boundary):
    delim = b"--" + boundary.encode()
    rest = body[body.index(delim) + len(delim):]
    parts = {}
    while not rest.startswith(b"--"):
        rest = rest[2:] if rest.startswith(b"\r\n") else rest
        end = rest.index(b"\r\n\r\n")
        headers = rest[:end].decode().split("\r\n")
        cr = next(h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("content-range:"))
        a, b = cr.split()[1].split("/")[0].split("-")
        a, b = int(a), int(b)
        data = rest[end + 4:end + 4 + b - a + 1]
        assert len(data) == b - a + 1, "short part"
        parts[a] = data
        rest = rest[end + 4 + len(data):]
        rest = rest[2:] if rest.startswith(b"\r\n") else rest
        assert rest.startswith(delim), "a part longer than its Content-Range"
        rest = rest[len(delim):]
    return parts


def ungroup4(g):
    n = len(g)
    q, r = divmod(n, 4)
    starts, at = [], 0
    for i in range(4):
        starts.append(at)
        at += q + (1 if i < r else 0)
    return bytes(g[starts[i % 4] + i // 4] for i in range(n))


def chunks(data, first):
    out, i, k = {}, 0, first
    while i < len(data):
        h = data[i:i + 8]
        assert h[0] == 0, "chunk version"
        csize = int.from_bytes(h[1:4], "little")
        scheme = h[4]
        usize = int.from_bytes(h[5:8], "little")
        body = data[i + 8:i + 8 + csize]
        raw = body if scheme == 0 else lz4.frame.decompress(body)
        if scheme == 2:
            raw = ungroup4(raw)
        assert len(raw) == usize, f"chunk {k}: {len(raw)} bytes, header says {usize}"
        out[k] = raw
        i += 8 + csize
        k += 1
    return out


def fetch(url, ranges):
    spec = ",".join(f"{r['bytes']['start']}-{r['bytes']['end']}" for r in ranges)
    resp, body = request(url, headers={"Range": f"bytes={spec}", "Accept-Encoding": "identity"})
    assert resp.status == 206, f"{url}: HTTP {resp.status}"
    ct = resp.getheader("Content-Type", "")
    if len(ranges) > 1:
        assert ct.startswith("multipart/byteranges"), ct
        parts = multipart(body, ct.split("boundary=")[1].strip('"'))
    else:
        parts = {ranges[0]["bytes"]["start"]: body}
    got = {}
    for r in ranges:
        data = parts[r["bytes"]["start"]]
        assert len(data) == r["bytes"]["end"] - r["bytes"]["start"] + 1
        c = chunks(data, r["chunks"]["start"])
        assert sorted(c) == list(range(r["chunks"]["start"], r["chunks"]["end"])), "chunk count"
        got.update(c)
    return got, len(body)


recs = {}
for label in labels:
    row = rows[label]
    path = f"{hub}/bench/xet/resolve/{row['commit']}/{row['file']}"
    resp, _ = request(path, "HEAD")
    assert resp.status == 302, resp.status
    assert resp.getheader("X-Xet-Hash") == row["file_id"], "X-Xet-Hash"
    cdn = resp.getheader("Location")
    resp, body = request(f"{hub}/api/models/bench/xet/xet-read-token/{row['commit']}")
    token = json.loads(body)
    cas = token["casUrl"]
    assert cas.startswith("https://")
    resp, body = request(f"{cas}/v2/reconstructions/{row['file_id']}",
                         headers={"Authorization": f"Bearer {token['accessToken']}"})
    assert resp.status == 200, resp.status
    rec = json.loads(body)
    recs[label] = rec
    store, fetched, requests = {}, 0, 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        jobs = {pool.submit(fetch, f["url"], f["ranges"]): x for x, fs in rec["xorbs"].items() for f in fs}
        for job, x in jobs.items():
            got, n = job.result()
            fetched += n
            requests += 1
            for k, v in got.items():
                store[(x, k)] = v
    h, size = hashlib.sha256(), 0
    for t in rec["terms"]:
        n = 0
        for k in range(t["range"]["start"], t["range"]["end"]):
            h.update(store[(t["hash"], k)])
            n += len(store[(t["hash"], k)])
        assert n == t["unpacked_length"], "term length"
        size += n
    served = hashlib.sha256()
    resp, body = request(cdn)
    served.update(body)
    ok = h.hexdigest() == row["sha256"] == served.hexdigest() and size == int(row["size"]) == len(body)
    print(f"{label}: {len(rec['terms'])} terms, {len(rec['xorbs'])} xorbs, {requests} xorb requests, "
          f"{fetched} bytes fetched; rebuilt {size} bytes, sha256 {h.hexdigest()[:16]}… "
          f"{'= the served file' if ok else 'DIFFERS from the served file'}")
    if not ok:
        sys.exit(1)

# What a delta client needs: the fetches holding a chunk the old file's terms do not hold.
for old, new in [("v1", "v2"), ("v2", "v3")]:
    if old not in recs or new not in recs:
        continue
    have = {(t["hash"], k) for t in recs[old]["terms"] for k in range(t["range"]["start"], t["range"]["end"])}
    need_bytes = need_req = new_chunks = 0
    for x, fs in recs[new]["xorbs"].items():
        for f in fs:
            missing = [k for r in f["ranges"] for k in range(r["chunks"]["start"], r["chunks"]["end"]) if (x, k) not in have]
            if missing:
                new_chunks += len(missing)
                need_req += 1
                need_bytes += sum(r["bytes"]["end"] - r["bytes"]["start"] + 1 for r in f["ranges"])
    size = int(rows[new]["size"])
    print(f"delta {old}→{new}: {new_chunks} chunks not in {old}, {need_req} xorb requests, "
          f"{need_bytes} bytes of xorb ranges ({100 * need_bytes / size:.3f} % of {size})")
