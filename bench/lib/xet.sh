# A Hugging Face look-alike with Xet storage on nginx over HTTPS, behind the WAN delay lines,
# for bench/xet. Source bench/lib/hub.sh, then this file; then:
#   xet_fixture DIR MIB; xet_start DIR; xet_point DIR REPO COMMIT; ...; xet_stop DIR
#
#   - The Hub, https://127.0.0.1:$XET_HUB_PORT (a delay line, $HUB_DELAY_MS ms each way: an
#     80 ms round trip; nginx on +10), serves two repositories holding the same commits of one
#     file, xet-Q8_0.gguf (bench/xet-fixture writes them: v1, v2 with a few kB more header,
#     v3 changed entirely):
#       bench/xet    stored with Xet: the resolve HEAD's 302 also carries X-Xet-Hash
#       bench/plain  the same files without X-Xet-Hash (an LFS repository: the plain path)
#     /{repo}/resolve/{commit}/{file}  (commits only, not `main`) 302 to the CDN, with X-Repo-Commit, X-Linked-Size,
#                                      X-Linked-Etag, ETag (and X-Xet-Hash on bench/xet)
#     /api/models/{repo}/revision/{main|commit}  the model API's answer (sha, siblings with lfs);
#                                      `main` is DIR/api/{xet,plain}/main.json, which xet_point moves
#     /api/models/bench/xet/xet-read-token/{commit}  {"accessToken","exp","casUrl"}
#   - The CDN and the CAS, https://127.0.0.2:$XET_CDN_PORT (a delay line, $CDN_DELAY_MS ms each
#     way, $WAN_CAP bytes/s per connection, steadily; nginx on +10):
#     /cdn/{commit}/{file}             the files, byte ranges
#     /v2/reconstructions/{file id}    the reconstructions (401 without `Bearer <accessToken>`,
#                                      416 with a Range: whole files only; /v1/ is 404, so a
#                                      client that falls back to v1 fails)
#     /xorbs/{xorb}                    the xorbs, byte ranges, several at once (multipart/byteranges)
#   - Every request is logged to DIR/access.log as "port connection connection_requests method
#     status body_bytes_sent uri": xet_counts reads it.

XET_HUB_PORT=${XET_HUB_PORT:-18480}
XET_CDN_PORT=${XET_CDN_PORT:-18481}
HUB_DELAY_MS=${HUB_DELAY_MS:-40}
CDN_DELAY_MS=${CDN_DELAY_MS:-10}
WAN_CAP=${WAN_CAP:-20000000}

xet_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); }

# xet_fixture DIR MIB [--no-compress]: the three versions and the static CAS in DIR/fixture.
xet_fixture() {
  local d=$1 mib=$2 root
  shift 2
  root=$(xet_root)
  (cd "$root/bench/xet-fixture" && cargo build --release --quiet)
  "$root/bench/xet-fixture/target/release/xet-fixture" "$d/fixture" "$mib" "https://127.0.0.2:$XET_CDN_PORT" "$@" >/dev/null
  chmod -R a+rX "$d/fixture"
}

# xet_commit DIR LABEL FIELD: a field of fixture.tsv (commit, size, sha256, file_id, chunks, ...).
xet_commit() {
  awk -F'\t' -v l="$2" -v f="$3" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == l { print $col[f] }' "$1/fixture/fixture.tsv"
}

# xet_point DIR REPO COMMIT: `main` of bench/REPO (xet or plain) now points at COMMIT.
xet_point() {
  ln -sfn "$1/fixture/api/$3.json" "$1/api/$2/main.json"
}

xet_start() { # DIR
  local d=$1 sizes="" etags="" hashes="" repo label commit size sha id
  hub_install
  hub_certs "$d"
  mkdir -p "$d/tmp" "$d/api/xet" "$d/api/plain"
  chmod 755 "$d"
  while IFS=$'\t' read -r label commit _ size sha id _; do
    [ "$label" = label ] && continue
    for repo in xet plain; do
      ln -sfn "$d/fixture/api/$commit.json" "$d/api/$repo/$commit.json"
      sizes+="    \"$repo/$commit/xet-Q8_0.gguf\" $size;"$'\n'
      etags+="    \"$repo/$commit/xet-Q8_0.gguf\" \"\\\"$sha\\\"\";"$'\n'
    done
    hashes+="    \"xet/$commit/xet-Q8_0.gguf\" $id;"$'\n'
  done <"$d/fixture/fixture.tsv"
  xet_point "$d" xet "$(xet_commit "$d" v1 commit)"
  xet_point "$d" plain "$(xet_commit "$d" v1 commit)"
  cat >"$d/nginx.conf" <<CONF
$(hub_nginx_head "$d" '$server_port $connection $connection_requests $request_method $status $body_bytes_sent $uri')
  map_hash_bucket_size 128;
  default_type application/octet-stream;
  map "\$xrepo/\$xrev/\$xfile" \$xet_size {
    default "";
$sizes  }
  map "\$xrepo/\$xrev/\$xfile" \$xet_etag {
    default "";
$etags  }
  map "\$xrepo/\$xrev/\$xfile" \$xet_hash {
    default "";
$hashes  }
  server {
    listen 127.0.0.1:$((XET_HUB_PORT + 10)) ssl;
    keepalive_requests 10000;
    location ~ ^/bench/(?<xrepo>xet|plain)/resolve/(?<xrev>[^/]+)/(?<xfile>[^/]+)\$ {
      if (\$xet_size = "") { return 404; }
      add_header X-Repo-Commit \$xrev always;
      add_header X-Linked-Etag \$xet_etag always;
      add_header X-Linked-Size \$xet_size always;
      add_header ETag \$xet_etag always;
      add_header X-Xet-Hash \$xet_hash always;
      return 302 https://127.0.0.2:$XET_CDN_PORT/cdn/\$xrev/\$xfile;
    }
    location ~ ^/api/models/bench/(?<xrepo>xet|plain)/revision/(?<xrev>[0-9a-z]+)\$ {
      default_type application/json;
      alias $d/api/\$xrepo/\$xrev.json;
    }
    location ~ "^/api/models/bench/xet/xet-read-token/[0-9a-f]{40}\$" {
      default_type application/json;
      alias $d/fixture/token.json;
    }
  }
  server {
    listen 127.0.0.2:$((XET_CDN_PORT + 10)) ssl;
    keepalive_requests 10000;
    location /cdn/ {
      alias $d/fixture/files/;
    }
    location /v2/reconstructions/ {
      if (\$http_authorization != "Bearer xet-bench-token") { return 401; }
      # Whole-file reconstructions only: nginx would answer a Range with a slice of the JSON.
      if (\$http_range != "") { return 416; }
      default_type application/json;
      alias $d/fixture/cas/reconstructions/;
    }
    location /xorbs/ {
      alias $d/fixture/cas/xorbs/;
      max_ranges 1024;
    }
  }
}
CONF
  nginx -p "$d" -c "$d/nginx.conf" &
  hub_delay_lines "$d" "$XET_HUB_PORT" "$XET_CDN_PORT"
  hub_wait "$d" "https://127.0.0.1:$((XET_HUB_PORT + 10))/"
}

xet_stop() { # DIR
  hub_stop "$1"
}

# xet_counts DIR: "hub_requests hub_connections hub_bytes cdn_requests cdn_connections
# cdn_bytes xet_token_requests reconstruction_requests xorb_requests xorb_bytes" (bytes: nginx's
# $body_bytes_sent; the CDN's counts include the CAS's) logged since the last xet_counts_reset.
xet_counts() {
  awk -v h="$((XET_HUB_PORT + 10))" -v c="$((XET_CDN_PORT + 10))" '
    $1 == h { hr++; hc[$2] = 1; hb += $6 }
    $1 == h && $7 ~ /\/xet-read-token\// { tr++ }
    $1 == c { cr++; cc[$2] = 1; cb += $6 }
    $1 == c && $7 ~ /^\/v[12]\/reconstructions\// { rr++ }
    $1 == c && $7 ~ /^\/xorbs\// { xr++; xb += $6 }
    END { printf "%d %d %d %d %d %d %d %d %d %d\n", hr, length(hc), hb, cr, length(cc), cb, tr, rr, xr, xb }' "$1/access.log"
}

xet_counts_reset() { # DIR
  : >"$1/access.log"
}
