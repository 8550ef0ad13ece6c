//! Node-to-node commands (`DHT.R.*`), sent by coordinators over the peer connections:
//! `GET key` → encoded set, `PUT key set` → merge durably, `MUTATE w cmd…` → coordinate a
//! write, `KEYS partition` → live keys, `TREE partition` → Merkle leaves, `LEAF partition
//! leaf` → its keys and sets, `FLUSH`.

use std::sync::Arc;

use crate::anti_entropy;
use crate::coordinator::mutate_reply;
use crate::node::Inner;
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
        ("DHT.R.FLUSH", 1) => match inner.store.flush().await {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::err(format!("dht: storage: {e}")),
        },
        _ => Reply::wrong_arity(name),
    }
}
