//! Node-to-node commands (`DHT.R.*`), sent by coordinators over the peer connections:
//! `GET key` → encoded set, `PUT key set` → merge durably, `MGET key…` → one encoded set
//! per key (one read transaction), `MPUT key set…` → all merged durably in one storage
//! job, one `OK` (the batches of `peer`'s lanes), `MUTATE w cmd…` → coordinate a
//! write, `KEYS partition` → live keys, `TREE partition` → Merkle leaves, `LEAF partition
//! leaf` → its keys and sets, `FLUSH`; membership: `GOSSIP from layout beats` → `[layout,
//! beats]`, `LAYOUT layout` → the installed layout, `PULL partition source…` → keys pulled,
//! `DUMP partition` → every key and set, `HINT target key set` → keep a hint for `target`;
//! reclaiming (see `reclaim`): `SAME partition key hash…` → 1/0 per key (holds exactly
//! that set), `REAP partition key hash…` → deletes the keys whose set is unchanged.

use std::sync::Arc;

use crate::anti_entropy;
use crate::cluster::Layout;
use crate::coordinator::mutate_reply;
use crate::node::Inner;
use crate::reclaim;
use crate::reply::Reply;
use crate::resp::Request;
use crate::version::SiblingSet;

fn parse_partition(inner: &Inner, arg: &[u8]) -> Option<u16> {
    let p = std::str::from_utf8(arg).ok()?.parse::<u16>().ok()?;
    (usize::from(p) < inner.cluster.partitions()).then_some(p)
}

/// Runs an internal command.
pub(crate) async fn execute(inner: &Arc<Inner>, name: &str, mut args: Request) -> Reply {
    let c = &inner.cluster;
    match (name, args.len()) {
        ("DHT.R.GET", 2) => {
            let p = c.partition_of(&args[1]);
            match inner.store.get(p, &args[1]) {
                Ok(set) => Reply::Bulk(set.encode()),
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.PUT", 3) => {
            let Ok(set) = SiblingSet::decode(&args[2]) else {
                return Reply::err("dht: corrupt replica set");
            };
            let p = c.partition_of(&args[1]);
            match inner.store.merge(p, &args[1], set).await {
                Ok(_) => Reply::ok(),
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.MGET", n) if n >= 2 => {
            match inner
                .store
                .get_many(args[1..].iter().map(|k| (c.partition_of(k), k)))
            {
                Ok(sets) => Reply::Array(sets.iter().map(|s| Reply::Bulk(s.encode())).collect()),
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.MPUT", n) if n >= 3 && n % 2 == 1 => {
            let mut items = Vec::with_capacity(n / 2);
            let mut pairs = args.into_iter().skip(1);
            while let (Some(key), Some(set)) = (pairs.next(), pairs.next()) {
                let Ok(set) = SiblingSet::decode(&set) else {
                    return Reply::err("dht: corrupt replica set");
                };
                items.push((c.partition_of(&key), key, set));
            }
            match inner.store.merge_many(items).await {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.MUTATE", n) if n >= 4 => {
            let Some(w) = std::str::from_utf8(&args[1])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                return Reply::err("dht: bad w");
            };
            let client_args = args.split_off(2);
            mutate_reply(
                &inner
                    .coordinate(client_args, w.clamp(1, inner.config.n))
                    .await,
            )
        }
        ("DHT.R.KEYS", 2) => {
            let Some(p) = std::str::from_utf8(&args[1])
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
            else {
                return Reply::err("dht: bad partition");
            };
            match inner.store.live_keys(p, inner.clock.now_ms()) {
                Ok(keys) => Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.TREE", 2) => match parse_partition(inner, &args[1]) {
            Some(p) => anti_entropy::tree(inner, p)
                .map_or_else(|| Reply::err("dht: storage failed"), Reply::Bulk),
            None => Reply::err("dht: bad partition"),
        },
        ("DHT.R.LEAF", 3) => {
            let leaf = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|s| s.parse::<usize>().ok());
            match (parse_partition(inner, &args[1]), leaf) {
                (Some(p), Some(l)) if l < anti_entropy::LEAVES => {
                    match anti_entropy::leaf_entries(inner, p, l) {
                        Some(entries) => Reply::Array(
                            entries
                                .into_iter()
                                .flat_map(|(k, v)| [Reply::Bulk(k), Reply::Bulk(v)])
                                .collect(),
                        ),
                        None => Reply::err("dht: storage failed"),
                    }
                }
                _ => Reply::err("dht: bad partition or leaf"),
            }
        }
        ("DHT.R.GOSSIP", 4) => {
            let layout = String::from_utf8_lossy(&args[2]);
            let beats = String::from_utf8_lossy(&args[3]);
            inner.absorb_gossip(&layout, &beats);
            let (layout, beats) = inner.gossip_payload(false);
            Reply::Array(vec![
                Reply::Bulk(layout.into_bytes()),
                Reply::Bulk(beats.into_bytes()),
            ])
        }
        ("DHT.R.LAYOUT", 2) => match Layout::decode(&String::from_utf8_lossy(&args[1])) {
            Some(layout) => {
                inner.install_layout(&layout);
                Reply::Bulk(c.layout().encode().into_bytes())
            }
            None => Reply::err("dht: bad layout"),
        },
        ("DHT.R.PULL", n) if n >= 3 => {
            let Some(p) = parse_partition(inner, &args[1]) else {
                return Reply::err("dht: bad partition");
            };
            let sources: Vec<String> = args[2..]
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            match inner.pull_partition(p, &sources).await {
                Ok(keys) => Reply::Integer(i64::try_from(keys).unwrap_or(i64::MAX)),
                Err(e) => Reply::err(format!("dht: pull: {e}")),
            }
        }
        ("DHT.R.DUMP", 2) => {
            let Some(p) = parse_partition(inner, &args[1]) else {
                return Reply::err("dht: bad partition");
            };
            let mut out = Vec::new();
            match inner.store.for_each_in_partition(p, |k, v| {
                out.push(Reply::Bulk(k.to_vec()));
                out.push(Reply::Bulk(v.to_vec()));
            }) {
                Ok(()) => Reply::Array(out),
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.HINT", 4) => {
            let Ok(set) = SiblingSet::decode(&args[3]) else {
                return Reply::err("dht: corrupt replica set");
            };
            let target = String::from_utf8_lossy(&args[1]).into_owned();
            let p = c.partition_of(&args[2]);
            let stored = if target == c.me {
                inner.store.merge(p, &args[2], set).await.map(|_| ())
            } else {
                inner.store.put_hint(&target, p, &args[2], set).await
            };
            match stored {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.SAME", n) if n >= 4 => {
            let (Some(p), Some(keys)) = (
                parse_partition(inner, &args[1]),
                reclaim::parse_pairs(&args[2..]),
            ) else {
                return Reply::err("dht: bad partition or key/hash pairs");
            };
            match inner.store.holds_unchanged(p, &keys) {
                Ok(same) => Reply::Array(
                    same.into_iter()
                        .map(|b| Reply::Integer(i64::from(b)))
                        .collect(),
                ),
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.REAP", n) if n >= 4 => {
            let (Some(p), Some(keys)) = (
                parse_partition(inner, &args[1]),
                reclaim::parse_pairs(&args[2..]),
            ) else {
                return Reply::err("dht: bad partition or key/hash pairs");
            };
            match inner.store.remove_if_unchanged(p, keys).await {
                Ok(removed) => {
                    inner.metrics.tombstones_collected.add(removed as u64);
                    Reply::Integer(i64::try_from(removed).unwrap_or(i64::MAX))
                }
                Err(e) => Reply::err(format!("dht: storage: {e}")),
            }
        }
        ("DHT.R.FLUSH", 1) => match inner.store.flush().await {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::err(format!("dht: storage: {e}")),
        },
        _ => Reply::wrong_arity(name),
    }
}
