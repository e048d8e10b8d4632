//! iroh-oracle: a real iroh node for irohds interop tests (test tool only).
//!
//! Relays and address lookup (discovery) are off: the endpoint binds one UDP
//! socket on 127.0.0.1 and peers are reached by direct address only.
//!
//!   iroh-oracle serve <file>
//!       add <file> as a raw blob to an in-memory store, print
//!       `node_id <hex>`, `addr <ip:port>`, `hash <hex>`, `ready`, then serve
//!       /iroh-bytes/4 until killed.
//!   iroh-oracle get <node_id hex> <ip:port> <hash hex> <out> [RANGES]
//!       fetch the blob (or the chunk RANGES "A-B,C-,last", as blobs_get.c)
//!       with iroh-blobs' get state machine, which verifies every bao node
//!       against <hash>, and write the verified bytes to <out>, in order.
//!   iroh-oracle download <node_id hex> <ip:port> <hash hex> <out>
//!       the application path: iroh-blobs' Downloader fetches the blob into
//!       a MemStore, then it is exported to <out>.
//!   iroh-oracle gossip <topic hex | ns:NAME> <node_id@ip:port | -> <message | query:KEY>
//!       join <topic> through the bootstrap peer ("-": none, wait to be
//!       joined), broadcast <message> once a neighbor is up, and print every
//!       event (`neighbor_up <id>`, `received <from> <hex content>`), one a
//!       line, for ORACLE_LINGER seconds (default 10).  ns:NAME is the
//!       topic of irohds namespace NAME; query:KEY sends an irohds QUERY
//!       for cache key KEY (hex) in that namespace, signed by this node.
//!
//! Environment: ORACLE_BIND (default 127.0.0.1:0), ORACLE_TIMEOUT (seconds for
//! connect + transfer, default 60), ORACLE_SEND_AFTER_MS (gossip: wait after
//! the first neighbor before broadcasting, default 300), ORACLE_COUNT (gossip:
//! broadcast that many messages, 200 ms apart, "#i" appended; default 1), RUST_LOG (tracing
//! filter, to stderr).

use std::{
    io::Write,
    net::SocketAddr,
    str::FromStr,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use iroh::{
    address_lookup::memory::MemoryLookup, endpoint::presets, protocol::Router, Endpoint,
    EndpointAddr, PublicKey,
};
use iroh_blobs::{store::mem::MemStore, BlobsProtocol, Hash};
use iroh_gossip::{
    api::Event,
    net::Gossip,
    proto::TopicId,
};
use bao_tree::io::BaoContentItem;
use n0_future::StreamExt;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn parse_32(what: &str, s: &str) -> Result<[u8; 32]> {
    let v = hex::decode(s).with_context(|| format!("{what}: not hex"))?;
    v.try_into()
        .map_err(|_| anyhow!("{what}: want 32 bytes (64 hex digits)"))
}

fn parse_key(s: &str) -> Result<PublicKey> {
    PublicKey::from_bytes(&parse_32("node id", s)?).context("node id: not an Ed25519 point")
}

async fn endpoint(alpns: Vec<Vec<u8>>, lookup: &MemoryLookup) -> Result<Endpoint> {
    let bind = std::env::var("ORACLE_BIND").unwrap_or_else(|_| "127.0.0.1:0".into());
    let bind: SocketAddr = bind.parse().context("ORACLE_BIND")?;
    // Builder::new(Minimal) = no relays, no address lookup; only the crypto
    // provider is set.  Replace the default 0.0.0.0/[::] sockets by one socket.
    let ep = Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr(bind)?
        .address_lookup(lookup.clone())
        .alpns(alpns)
        .bind()
        .await?;
    Ok(ep)
}

fn local_addr(ep: &Endpoint) -> Result<SocketAddr> {
    ep.bound_sockets()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("endpoint has no bound socket"))
}

async fn serve(file: &str) -> Result<()> {
    let data = tokio::fs::read(file).await.with_context(|| file.to_string())?;
    let lookup = MemoryLookup::new();
    let ep = endpoint(vec![iroh_blobs::ALPN.to_vec()], &lookup).await?;
    let store = MemStore::new();
    let tag = store.blobs().add_bytes(data).await?;
    let blobs = BlobsProtocol::new(&store, None);
    let router = Router::builder(ep.clone())
        .accept(iroh_blobs::ALPN, blobs)
        .spawn();
    say(format!("node_id {}", ep.id()));
    say(format!("addr {}", local_addr(&ep)?));
    say(format!("hash {}", hex::encode(tag.hash.as_bytes())));
    say("ready".into());
    tokio::signal::ctrl_c().await?;
    router.shutdown().await?;
    Ok(())
}

/// "A-B,C-,last" (see blobs_get.c): chunks [A, B), C to the end, and
/// ChunkRanges::last_chunk(); None = the whole blob.
fn parse_ranges(spec: Option<&str>) -> Result<iroh_blobs::protocol::ChunkRanges> {
    use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt};
    let Some(spec) = spec else {
        return Ok(ChunkRanges::all());
    };
    let mut rs = ChunkRanges::empty();
    for item in spec.split(',') {
        let r = if item == "last" {
            ChunkRanges::last_chunk()
        } else {
            let (a, b) = item.split_once('-').ok_or_else(|| anyhow!("bad range {item}"))?;
            let a: u64 = a.parse().context("range start")?;
            if b.is_empty() {
                ChunkRanges::chunks(a..)
            } else {
                ChunkRanges::chunks(a..b.parse::<u64>().context("range end")?)
            }
        };
        rs |= r;
    }
    Ok(rs)
}

/// Fetch `ranges` of `hash` with iroh-blobs' get state machine, which runs
/// bao-tree's decoder against the root hash: every parent and leaf is
/// checked before it is handed out.  Returns the size from the header and
/// the leaves, in order.
async fn fetch(
    conn: iroh::endpoint::Connection,
    hash: Hash,
    ranges: iroh_blobs::protocol::ChunkRanges,
) -> Result<(u64, Vec<(u64, bytes::Bytes)>, iroh_blobs::get::Stats)> {
    use iroh_blobs::get::fsm;
    use iroh_blobs::protocol::GetRequest;
    let request = GetRequest::blob_ranges(hash, ranges);
    let connected = fsm::start(conn, request, Default::default()).next().await?;
    let fsm::ConnectedNext::StartRoot(start) = connected.next().await? else {
        bail!("expected the root blob first");
    };
    let (mut curr, size) = start.next().next().await?;
    let mut leaves = vec![];
    let end = loop {
        match curr.next().await {
            fsm::BlobContentNext::More((next, item)) => {
                if let BaoContentItem::Leaf(leaf) = item? {
                    leaves.push((leaf.offset, leaf.data));
                }
                curr = next;
            }
            fsm::BlobContentNext::Done(end) => break end,
        }
    };
    let fsm::EndBlobNext::Closing(closing) = end.next() else {
        bail!("expected the end of the response");
    };
    // Reads the stream to its end: bytes after the response are an error.
    let stats = closing.next().await?;
    Ok((size, leaves, stats))
}

async fn get(node: &str, addr: &str, hash: &str, out: &str, ranges: Option<&str>) -> Result<()> {
    let id = parse_key(node)?;
    let addr: SocketAddr = addr.parse().context("addr")?;
    let hash = Hash::from_bytes(parse_32("hash", hash)?);
    let ranges = parse_ranges(ranges)?;
    let lookup = MemoryLookup::new();
    let ep = endpoint(vec![], &lookup).await?;
    let t0 = Instant::now();
    let res = tokio::time::timeout(env_secs("ORACLE_TIMEOUT", 60), async {
        let conn = ep
            .connect(EndpointAddr::new(id).with_ip_addr(addr), iroh_blobs::ALPN)
            .await
            .context("connect")?;
        eprintln!("connected to {} in {:?}", conn.remote_id(), t0.elapsed());
        let r = fetch(conn.clone(), hash, ranges).await;
        conn.close(0u32.into(), b"done");
        r
    })
    .await;
    let (size, leaves, stats) = match res {
        Ok(r) => r?,
        Err(_) => bail!("timed out after {:?}", t0.elapsed()),
    };
    // The verified bytes, in order.
    let mut data = Vec::new();
    let mut next = 0u64;
    for (off, leaf) in &leaves {
        if !data.is_empty() && *off < next {
            bail!("leaf at {off} out of order");
        }
        next = off + leaf.len() as u64;
        data.extend_from_slice(leaf);
    }
    tokio::fs::write(out, &data).await.with_context(|| out.to_string())?;
    say(format!(
        "ok size {size} bytes {} payload_read {} elapsed_ms {}",
        data.len(),
        stats.payload_bytes_read,
        t0.elapsed().as_millis()
    ));
    ep.close().await;
    Ok(())
}

/// What an iroh application does: the store's Downloader dials the node
/// (its address from the endpoint's address lookup), fetches the blob into
/// a MemStore (verified), and the blob is exported from the store.
async fn download(node: &str, addr: &str, hash: &str, out: &str) -> Result<()> {
    let id = parse_key(node)?;
    let addr: SocketAddr = addr.parse().context("addr")?;
    let hash = Hash::from_bytes(parse_32("hash", hash)?);
    let lookup = MemoryLookup::new();
    lookup.add_endpoint_info(EndpointAddr::new(id).with_ip_addr(addr));
    let ep = endpoint(vec![], &lookup).await?;
    let store = MemStore::new();
    let t0 = Instant::now();
    let res = tokio::time::timeout(env_secs("ORACLE_TIMEOUT", 60), async {
        store.downloader(&ep).download(hash, Some(id)).await?;
        anyhow::Ok(store.blobs().get_bytes(hash).await?)
    })
    .await;
    let bytes = match res {
        Ok(r) => r?,
        Err(_) => bail!("timed out after {:?}", t0.elapsed()),
    };
    tokio::fs::write(out, &bytes).await.with_context(|| out.to_string())?;
    say(format!("ok size {} elapsed_ms {}", bytes.len(), t0.elapsed().as_millis()));
    ep.close().await;
    Ok(())
}

/// `ns:<name>`: the topic of irohds namespace <name> (docs/protocol.md:
/// BLAKE3 derive_key("irohds gossip topic v1", name)); else 64 hex digits.
fn parse_topic(s: &str) -> Result<(TopicId, Option<String>)> {
    if let Some(ns) = s.strip_prefix("ns:") {
        let t = blake3::derive_key("irohds gossip topic v1", ns.as_bytes());
        return Ok((TopicId::from_bytes(t), Some(ns.to_string())));
    }
    Ok((TopicId::from_bytes(parse_32("topic", s)?), None))
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// An irohds QUERY (docs/protocol.md, kind 2) for `key` in namespace `ns`,
/// asked and signed by this endpoint's key; written here from the spec,
/// independently of irohds's C codec.
fn irohds_query(ep: &Endpoint, ns: &str, key: [u8; 32]) -> Vec<u8> {
    let mut m = vec![0x01, 0x02];
    varint(&mut m, ns.len() as u64);
    m.extend_from_slice(ns.as_bytes());
    m.extend_from_slice(&key);
    m.extend_from_slice(ep.id().as_bytes());
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    varint(&mut m, nonce.subsec_nanos() as u64 ^ 0x5eed);
    varint(&mut m, nonce.as_micros() as u64);
    let ctx = b"irohds/v1/query";
    let mut signed = vec![ctx.len() as u8];
    signed.extend_from_slice(ctx);
    signed.extend_from_slice(&m);
    m.extend_from_slice(&ep.secret_key().sign(&signed).to_bytes());
    m
}

async fn gossip(topic: &str, peer: &str, message: &str) -> Result<()> {
    let (topic, ns) = parse_topic(topic)?;
    let lookup = MemoryLookup::new();
    let ep = endpoint(vec![iroh_gossip::ALPN.to_vec()], &lookup).await?;
    let gossip = Gossip::builder().spawn(ep.clone());
    let router = Router::builder(ep.clone())
        .accept(iroh_gossip::ALPN, gossip.clone())
        .spawn();
    say(format!("node_id {}", ep.id()));
    say(format!("addr {}", local_addr(&ep)?));
    let message: Vec<u8> = match message.strip_prefix("query:") {
        Some(key) => {
            let ns = ns.as_deref().ok_or_else(|| anyhow!("query: needs an ns:<name> topic"))?;
            irohds_query(&ep, ns, parse_32("key", key)?)
        }
        None => message.as_bytes().to_vec(),
    };
    let mut bootstrap = vec![];
    if peer != "-" {
        let (id, addr) = peer
            .split_once('@')
            .ok_or_else(|| anyhow!("peer: want <node_id hex>@<ip:port> or -"))?;
        let id = parse_key(id)?;
        let addr = SocketAddr::from_str(addr).context("peer addr")?;
        lookup.add_endpoint_info(EndpointAddr::new(id).with_ip_addr(addr));
        bootstrap.push(id);
    }
    let (sender, mut receiver) = gossip.subscribe(topic, bootstrap).await?.split();
    say("ready".into());
    let deadline = tokio::time::Instant::now() + env_secs("ORACLE_LINGER", 10);
    let mut sent = false;
    loop {
        let ev = tokio::select! {
            ev = receiver.next() => ev,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        match ev {
            None => {
                say("closed".into());
                break;
            }
            Some(Err(e)) => {
                say(format!("error {e}"));
                break;
            }
            Some(Ok(Event::NeighborUp(id))) => {
                say(format!("neighbor_up {id}"));
                if !sent {
                    // Let the peer's side of the join settle (and, in tests
                    // with more peers, the others join) before sending.
                    let ms = std::env::var("ORACLE_SEND_AFTER_MS")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(300);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let count: usize = std::env::var("ORACLE_COUNT")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    for i in 0..count {
                        // Several messages: each gets a distinct suffix (gossip
                        // drops duplicates by content hash).
                        let mut m = message.clone();
                        if count > 1 {
                            m.extend_from_slice(format!("#{i}").as_bytes());
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        sender.broadcast(m.clone().into()).await?;
                        say(format!("broadcast {}", hex::encode(&m)));
                    }
                    sent = true;
                }
            }
            Some(Ok(Event::NeighborDown(id))) => say(format!("neighbor_down {id}")),
            Some(Ok(Event::Received(m))) => say(format!(
                "received {} {} {:?}",
                m.delivered_from,
                hex::encode(&m.content),
                m.scope
            )),
            Some(Ok(Event::Lagged)) => say("lagged".into()),
        }
    }
    router.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["serve", file] => serve(file).await,
        ["get", node, addr, hash, out] => get(node, addr, hash, out, None).await,
        ["get", node, addr, hash, out, r] => get(node, addr, hash, out, Some(r)).await,
        ["download", node, addr, hash, out] => download(node, addr, hash, out).await,
        ["gossip", topic, peer, message] => gossip(topic, peer, message).await,
        _ => {
            eprintln!(
                "usage: iroh-oracle serve <file>\n       \
                 iroh-oracle get <node_id> <ip:port> <hash> <out> [A-B,C-,last]\n       \
                 iroh-oracle download <node_id> <ip:port> <hash> <out>\n       \
                 iroh-oracle gossip <topic hex|ns:NAME> <node_id@ip:port|-> <message|query:KEY>"
            );
            std::process::exit(2)
        }
    }
}
