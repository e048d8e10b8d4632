#!/usr/bin/env bash
# tests/interop/run.sh: irohds's C stack against a real iroh node (the Rust
# oracle in tests/interop/iroh-oracle: iroh 1.4.1, iroh-blobs 0.104.0,
# iroh-gossip 0.101.0).  Everything runs on 127.0.0.1; relays and discovery
# are off on both sides.  `make test-interop` builds the tools and runs this.
#
#   (a) iroh serves blobs -> our C client (blobs_get: src/net + src/blobs)
#       fetches and verifies them, whole and in chunk ranges; the bytes must
#       equal the file's, and for ranges what iroh's own getter gets from the
#       same iroh node
#   (b) our daemon holds result blobs -> iroh's getter (and iroh-blobs'
#       Downloader) fetches them from the daemon, whole and in chunk ranges,
#       verified by bao-tree; the daemon's raw responses must be byte for
#       byte what an iroh node serving the same blob sends
#   (c) gossip: iroh dials our daemon and joins its namespace topic (c1), our
#       daemon dials iroh as its bootstrap peer (c2); in each, iroh broadcasts
#       a signed irohds QUERY for a result the daemon holds and must receive
#       the daemon's HAVE answer.  c3: three iroh nodes join through the
#       daemon and broadcast; every message must reach every node (relayed
#       by the daemon where needed) and the daemon's application.
#   (d) tests/interop/sweep.py: random sizes and range sets, both
#       directions, as in (a) and (b); SEED=... repeats a run
#   (n) negative checks, so the harness is seen to fail: a wrong hash, a
#       wrong node id, a corrupted blob in the daemon's store
#
# Every check is independent of our own encoders: bytes are compared with
# the source file (cmp), with what iroh fetches from iroh, hashes with b3sum,
# and what iroh sends or accepts is iroh's own code.  Prints one line per check and "N passed, N failed";
# exits non-zero if any check failed.
#
# Environment: ORACLE, BLOBS_GET, DAEMON, PY override the tool paths
# (`make test-interop-asan` points DAEMON and BLOBS_GET at build/asan);
# KEEP=1 keeps the work dir; SIZES overrides the blob sizes of (a); SEED
# fixes the random sweep of (d).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ORACLE=${ORACLE:-$ROOT/tests/interop/iroh-oracle/target/release/iroh-oracle}
BLOBS_GET=${BLOBS_GET:-$ROOT/build/dev/tests/interop/blobs_get}
DAEMON=${DAEMON:-$ROOT/.venv/bin/irohds-daemon}
PY=${PY:-$ROOT/.venv/bin/python}
SIZES=${SIZES:-"0 1 16384 16385 10485760"}

for t in "$ORACLE" "$BLOBS_GET" "$DAEMON" "$PY"; do
    [ -x "$t" ] || { echo "run.sh: missing $t (make test-interop builds it)" >&2; exit 2; }
done
command -v b3sum >/dev/null || { echo "run.sh: b3sum missing (scripts/deps.sh)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/irohds-interop.XXXXXX)
PIDS=()
passed=0
failed=0
FAILED_NAMES=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); FAILED_NAMES+=("$1"); echo "FAIL $*"; }

# wait_line FILE REGEX SECONDS: wait until FILE has a line matching REGEX.
wait_line() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
field() { sed -n "s/^$2 //p" "$1" | head -n1; }

free_port() {
    "$PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ranges_for SIZE: chunk range specs (blobs_get.c's syntax) to try on a blob
# of SIZE bytes: whole groups (16 chunks), parts of one group, across a group
# boundary, open ends, several ranges at once, iroh's last_chunk() request,
# and ranges past the end (answered with the last chunk).
ranges_for() {
    local n=$((($1 + 1023) / 1024))
    [ "$1" -gt 0 ] || { echo last; return; }
    echo "0-1"; echo "last"; echo "$((n - 1))-"; echo "$((n + 5))-"; echo "$((n + 5))-$((n + 9))"
    if [ "$n" -ge 48 ]; then
        printf '%s\n' 3-5 15-17 16-32 5-40 17- 1-3,9-13 0-16,32-48 \
            "7-8,20-40,$((n / 2))-$((n / 2 + 1)),$((n - 1))-" \
            "$((n - 1))-$((n + 1))" "$((n / 2))-$((n / 2 + 33))"
    fi
}

# ---------------------------------------------------------------- (a)
echo "== (a) iroh serves, irohds blobs_get fetches"
# serve FILE OUT: start an iroh node serving FILE; sets SID SADDR SHASH SPID.
serve() {
    "$ORACLE" serve "$1" > "$2" 2> "$2.err" &
    SPID=$!
    PIDS+=($SPID)
    wait_line "$2" '^ready' 30 || return 1
    SID=$(field "$2" node_id); SADDR=$(field "$2" addr); SHASH=$(field "$2" hash)
}
for size in $SIZES; do
    f=$WORK/a_$size.bin
    head -c "$size" /dev/urandom > "$f"
    if ! serve "$f" "$WORK/a_$size.serve"; then
        fail "a-serve-$size" "iroh did not start: $(tail -n3 "$WORK/a_$size.serve.err")"
        continue
    fi
    want=$(b3sum --no-names "$f")
    if [ "$SHASH" = "$want" ]; then pass "a-hash-$size"; else
        fail "a-hash-$size" "iroh $SHASH, b3sum $want"; fi
    name=a-get-$size
    if "$BLOBS_GET" "$SID" "$SADDR" "$SHASH" "$WORK/$name.out" > "$WORK/$name.log" 2>&1; then
        cmp -s "$WORK/$name.out" "$f" && pass "$name" "$(cat "$WORK/$name.log")" ||
            fail "$name" "bytes differ from the file"
    else
        fail "$name" "$(tail -n3 "$WORK/$name.log")"
    fi
    for r in $(ranges_for "$size"); do
        name=a-get-$size-$r
        ref=$WORK/$name.ref
        if ! "$ORACLE" get "$SID" "$SADDR" "$SHASH" "$ref" "$r" > "$ref.log" 2>&1; then
            fail "$name" "iroh could not fetch it from iroh: $(tail -n2 "$ref.log")"
            continue
        fi
        if "$BLOBS_GET" "$SID" "$SADDR" "$SHASH" "$WORK/$name.out" "$r" > "$WORK/$name.log" 2>&1; then
            cmp -s "$WORK/$name.out" "$ref" && pass "$name" "$(cat "$WORK/$name.log")" ||
                fail "$name" "bytes differ from what iroh's getter got"
        else
            fail "$name" "$(tail -n3 "$WORK/$name.log")"
        fi
    done
    if [ "$size" = "$(echo "$SIZES" | awk '{print $NF}')" ]; then
        # (n) a hash iroh does not have: the C client must fail
        other=$(head -c 100 /dev/urandom | b3sum --no-names)
        if "$BLOBS_GET" "$SID" "$SADDR" "$other" "$WORK/n.out" > "$WORK/n-missing.log" 2>&1; then
            fail "n-missing-hash" "blobs_get succeeded for a hash the node does not have"
        else
            pass "n-missing-hash" "$(tail -n1 "$WORK/n-missing.log")"
        fi
        # (n) another node id at iroh's address: our TLS check must refuse it
        if "$BLOBS_GET" "$(head -c 32 /dev/urandom | b3sum --no-names)" "$SADDR" "$SHASH" \
                "$WORK/n.out" > "$WORK/n-wrong-id.log" 2>&1; then
            fail "n-wrong-node-id" "blobs_get accepted a server whose key is not the id dialed"
        else
            pass "n-wrong-node-id" "$(tail -n1 "$WORK/n-wrong-id.log")"
        fi
        # The server name iroh <= 1.0.3 sent (iroh 1.4.1 sends none)
        if "$BLOBS_GET" --sni "$SID" "$SADDR" "$SHASH" "$WORK/a-sni.out" > "$WORK/a-sni.log" 2>&1 &&
           cmp -s "$WORK/a-sni.out" "$f"; then
            pass "a-get-with-sni" "$(cat "$WORK/a-sni.log")"
        else
            fail "a-get-with-sni" "$(tail -n2 "$WORK/a-sni.log")"
        fi
    fi
    kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
done

# ------------------------------------------------------------ daemon setup
D=$WORK/daemon
mkdir -p "$D/code"
DPORT=$(free_port)
write_config() {  # write_config [bootstrap spec]
    {
        echo "listen = \"127.0.0.1:$DPORT\""
        if [ -n "${1:-}" ]; then echo "bootstrap_peers = [\"$1\"]"; else echo "bootstrap_peers = []"; fi
        echo 'log_level = "debug"'
    } > "$D/config.toml"
}
DPID=
start_daemon() {
    IROHDS_HOME=$D "$DAEMON" run >> "$D/daemon.log" 2>&1 &
    DPID=$!
    PIDS+=($DPID)
    local i
    for ((i = 0; i < 200; i++)); do
        IROHDS_HOME=$D "$DAEMON" --json info 2>/dev/null | grep -q '"running": true' && return 0
        sleep 0.05
    done
    return 1
}
stop_daemon() {
    [ -n "$DPID" ] && { kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; }
    DPID=
}
cat > "$D/code/m_interop.py" <<'EOF'
import hashlib
import irohds

@irohds.memo(ns="interop")
def blob(n):
    # n pseudo-random bytes (result blobs hold them plus a small container header)
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d/%d" % (n, i)).digest()
        i += 1
    return bytes(out[:n])
EOF

echo "== (b) irohds daemon serves, iroh fetches"
write_config
if ! start_daemon; then
    fail "b-daemon-start" "$(tail -n5 "$D/daemon.log")"
else
    DID=$(IROHDS_HOME=$D "$DAEMON" --json info | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["node_id"])')
    # Result blob sizes are n + the container header: n=1 gives a tiny blob;
    # the others are picked to land on and just past a 16 KiB group, and
    # at 10 MiB.
    for n in 1 16334 16335 10485760; do
        (cd "$D/code" && IROHDS_HOME=$D "$PY" -W ignore -c "import m_interop; m_interop.blob($n)") \
            || fail "b-compute-$n" "python failed"
    done
    IROHDS_HOME=$D "$DAEMON" --json ls > "$D/ls.json"
    "$PY" -c 'import json,sys
for r in json.load(open(sys.argv[1])): print(r["blob"], r["size"], r["key"])' "$D/ls.json" > "$D/blobs.txt"
    while read -r hash size key; do
        f=$D/store/blobs/${hash:0:2}/$hash
        [ "$(b3sum --no-names "$f")" = "$hash" ] || fail "b-store-$size" "store file does not hash to its name"
        name=b-get-$size
        if "$ORACLE" get "$DID" "127.0.0.1:$DPORT" "$hash" "$WORK/$name.out" > "$WORK/$name.log" 2>&1; then
            cmp -s "$WORK/$name.out" "$f" && pass "$name" "$(grep '^ok' "$WORK/$name.log")" ||
                fail "$name" "bytes differ from the store's file"
        else
            fail "$name" "$(tail -n3 "$WORK/$name.log")"
        fi
        name=b-download-$size
        if "$ORACLE" download "$DID" "127.0.0.1:$DPORT" "$hash" "$WORK/$name.out" > "$WORK/$name.log" 2>&1; then
            cmp -s "$WORK/$name.out" "$f" && pass "$name" "$(grep '^ok' "$WORK/$name.log")" ||
                fail "$name" "bytes differ from the store's file"
        else
            fail "$name" "$(tail -n3 "$WORK/$name.log")"
        fi
        # The same blob served by iroh: the reference for ranges and for the
        # exact response bytes.
        if ! serve "$f" "$WORK/b_$size.serve"; then
            fail "b-serve-$size" "iroh did not start"
            continue
        fi
        for r in "" $(ranges_for "$size"); do
            name=b-get-$size${r:+-$r}
            ref=$WORK/$name.ref
            # shellcheck disable=SC2086
            if [ -n "$r" ]; then
                if ! "$ORACLE" get "$SID" "$SADDR" "$hash" "$ref" $r > "$ref.log" 2>&1; then
                    fail "$name" "iroh could not fetch it from iroh: $(tail -n2 "$ref.log")"
                    continue
                fi
                # shellcheck disable=SC2086
                if "$ORACLE" get "$DID" "127.0.0.1:$DPORT" "$hash" "$WORK/$name.out" $r \
                        > "$WORK/$name.log" 2>&1; then
                    cmp -s "$WORK/$name.out" "$ref" && pass "$name" "$(grep '^ok' "$WORK/$name.log")" ||
                        fail "$name" "bytes differ from what iroh gets from iroh"
                else
                    fail "$name" "$(tail -n3 "$WORK/$name.log")"
                fi
            fi
            name=b-raw-$size${r:+-$r}
            # shellcheck disable=SC2086
            if "$BLOBS_GET" --raw "$WORK/$name.iroh" "$SID" "$SADDR" "$hash" "$WORK/$name.o1" $r \
                    > "$WORK/$name.log" 2>&1 &&
               "$BLOBS_GET" --raw "$WORK/$name.ours" "$DID" "127.0.0.1:$DPORT" "$hash" "$WORK/$name.o2" $r \
                    >> "$WORK/$name.log" 2>&1; then
                cmp -s "$WORK/$name.iroh" "$WORK/$name.ours" &&
                    pass "$name" "response identical to iroh's, $(stat -c %s "$WORK/$name.ours") bytes" ||
                    fail "$name" "the daemon's response differs from iroh's: $(cmp "$WORK/$name.iroh" "$WORK/$name.ours" | head -n1)"
            else
                fail "$name" "$(tail -n3 "$WORK/$name.log")"
            fi
        done
        kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
    done < "$D/blobs.txt"
    # Many ranges in one Get: iroh serves any number (its only bound is the
    # 1 MiB request size); irohds's range sets hold IROHDS_BLOBS_MAX_RANGES
    # (64), so the daemon refuses more with a stream reset.  Either outcome
    # passes if it is clean: served bytes equal iroh's, or a reset.
    read -r hash size _ < <(sort -k2 -n "$D/blobs.txt" | tail -n1)
    if [ -n "${hash:-}" ] && serve "$D/store/blobs/${hash:0:2}/$hash" "$WORK/b_many.serve"; then
        for k in 64 65 200; do
            r=$("$PY" -c "print(','.join(f'{3*i}-{3*i+1}' for i in range($k)))")
            name=b-ranges-x$k
            "$ORACLE" get "$SID" "$SADDR" "$hash" "$WORK/$name.ref" "$r" > "$WORK/$name.ref.log" 2>&1 ||
                { fail "$name" "iroh could not fetch it from iroh"; continue; }
            if "$ORACLE" get "$DID" "127.0.0.1:$DPORT" "$hash" "$WORK/$name.out" "$r" > "$WORK/$name.log" 2>&1; then
                cmp -s "$WORK/$name.out" "$WORK/$name.ref" && pass "$name" "served: $(grep '^ok' "$WORK/$name.log")" ||
                    fail "$name" "bytes differ from what iroh gets from iroh"
            elif grep -q 'stream reset by peer' "$WORK/$name.log"; then
                pass "$name" "refused by the daemon: $(grep -m1 '^Error:' "$WORK/$name.log")"
            else
                fail "$name" "$(grep -m1 '^Error:' "$WORK/$name.log")"
            fi
        done
        kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
    fi
fi

echo "== (c) gossip on the namespace topic"
KEY=$(awk 'NR==1 {print $3}' "$D/blobs.txt" 2>/dev/null)
# gossip_check NAME OUT: iroh saw the daemon as a neighbour and received a
# HAVE (01 01 ...) for KEY from it.
gossip_check() {
    local name=$1 out=$2
    if grep -q "^neighbor_up $DID" "$out"; then pass "$name-neighbor"; else
        fail "$name-neighbor" "iroh never had the daemon as a neighbour"; fi
    if grep -q '^broadcast ' "$out"; then pass "$name-broadcast"; else
        fail "$name-broadcast" "iroh did not broadcast"; fi
    if grep -E "^received $DID 0101[0-9a-f]*$KEY" "$out" >/dev/null; then
        pass "$name-have" "iroh received the daemon's HAVE for the key it queried"
    else
        fail "$name-have" "no HAVE from the daemon: $(grep -c '^received' "$out") messages received"
    fi
}
if [ -z "$KEY" ] || [ -z "$DPID" ]; then
    fail "c-setup" "no daemon or no result from (b)"
else
    # c1: iroh dials the daemon (daemon as bootstrap peer).
    out=$WORK/c1.out
    ORACLE_LINGER=15 "$ORACLE" gossip ns:interop "$DID@127.0.0.1:$DPORT" "query:$KEY" \
        > "$out" 2> "$WORK/c1.err"
    gossip_check c1-iroh-dials-daemon "$out"

    # c2: the daemon dials iroh (iroh as the daemon's bootstrap peer).
    stop_daemon
    out=$WORK/c2.out
    ORACLE_LINGER=20 "$ORACLE" gossip ns:interop - "query:$KEY" > "$out" 2> "$WORK/c2.err" &
    opid=$!
    PIDS+=($opid)
    if wait_line "$out" '^ready' 30; then
        write_config "$(field "$out" node_id)@$(field "$out" addr)"
        start_daemon || fail "c2-daemon-start" "$(tail -n5 "$D/daemon.log")"
        wait "$opid"
        gossip_check c2-daemon-dials-iroh "$out"
    else
        fail "c2-oracle-start" "$(tail -n3 "$WORK/c2.err")"
    fi

    # c3: three iroh nodes join the topic through the daemon and broadcast
    # 10 messages each.  HyParView gives them links among themselves too, so
    # which path a message takes varies; every node must get all 20 messages
    # of the others, and the daemon's application all 30 (its log shows each
    # delivered message being refused as not an irohds message).
    start_line=$(wc -l < "$D/daemon.log")
    c3pids=()
    for x in A B C; do
        ORACLE_COUNT=10 ORACLE_SEND_AFTER_MS=3000 ORACLE_LINGER=14 \
            "$ORACLE" gossip ns:interop "$DID@127.0.0.1:$DPORT" "c3-$x" > "$WORK/c3$x.out" 2> "$WORK/c3$x.err" &
        c3pids+=($!)
        PIDS+=($!)
        sleep 0.7
    done
    for p in "${c3pids[@]}"; do wait "$p"; done
    for x in A B C; do
        got=$(grep -c '^received' "$WORK/c3$x.out")
        via=$(grep -c "^received $DID" "$WORK/c3$x.out")
        if [ "$got" = 20 ]; then pass "c3-$x-received" "20 messages, $via relayed by the daemon"; else
            fail "c3-$x-received" "$got of 20 messages"; fi
    done
    relayed=$(cat "$WORK"/c3?.out | grep -c "^received $DID")
    if [ "$relayed" -gt 0 ]; then pass "c3-relayed-by-daemon" "$relayed deliveries"; else
        fail "c3-relayed-by-daemon" "no message reached an iroh node through the daemon"; fi
    delivered=$(tail -n +$((start_line + 1)) "$D/daemon.log" | grep -c 'dropped a message in interop: Protocol not supported')
    if [ "$delivered" = 30 ]; then pass "c3-daemon-delivered" "30 of 30"; else
        fail "c3-daemon-delivered" "$delivered of 30 messages reached the daemon's application"; fi
fi

# (n) a corrupted blob in the daemon's store: iroh must refuse it.
if [ -n "$DPID" ] && [ -s "$D/blobs.txt" ]; then
    read -r hash size _ < <(sort -k2 -n "$D/blobs.txt" | tail -n1)
    f=$D/store/blobs/${hash:0:2}/$hash
    cp "$f" "$WORK/saved.blob"
    chmod u+w "$f"
    "$PY" -c 'import sys; f=open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 1]))' "$f" $((size / 2))
    if "$ORACLE" get "$DID" "127.0.0.1:$DPORT" "$hash" "$WORK/n-corrupt.out" > "$WORK/n-corrupt.log" 2>&1; then
        fail "n-corrupt-blob" "iroh accepted a corrupted blob from the daemon"
    else
        pass "n-corrupt-blob" "$(grep -m1 '^Error:' "$WORK/n-corrupt.log")"
    fi
    cp "$WORK/saved.blob" "$f"
fi
stop_daemon

# ---------------------------------------------------------------- (d)
SEED=${SEED:-$(date +%s)}
echo "== (d) randomized sizes and ranges, both directions (SEED=$SEED)"
ORACLE=$ORACLE BLOBS_GET=$BLOBS_GET DAEMON=$DAEMON PY=$PY \
    "$PY" "$ROOT/tests/interop/sweep.py" "$SEED" "$WORK" > "$WORK/sweep.log" 2>&1
grep '^FAIL' "$WORK/sweep.log"
if line=$(grep -E '^sweep: [0-9]+ passed, [0-9]+ failed$' "$WORK/sweep.log"); then
    read -r _ sp _ sf _ <<< "$line"
    echo "$line"
    passed=$((passed + sp))
    failed=$((failed + sf))
    ((sf == 0)) || FAILED_NAMES+=("sweep(SEED=$SEED)")
else
    fail "sweep" "$(tail -n5 "$WORK/sweep.log")"
fi

# With sanitized builds (make test-interop-asan): any report in any log.
san=$(grep -rlE 'runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$WORK" 2>/dev/null)
if [ -n "$san" ]; then fail "sanitizers" "reports in: $san"; else pass "sanitizers" "no report in any log"; fi

echo
if ((failed)); then echo "failed: ${FAILED_NAMES[*]}"; fi
echo "$passed passed, $failed failed"
((failed == 0))
