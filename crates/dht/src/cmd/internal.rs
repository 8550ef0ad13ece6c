//! Node-to-node commands (`DHT.R.*`), sent by coordinators over the peer connections:
//! `GET key` → encoded set, `PUT key set` → merge durably, `MUTATE w cmd…` → coordinate a
//! write, `KEYS partition` → live keys, `FLUSH`.

use std::sync::Arc;

use crate::coordinator::mutate_reply;
use crate::node::Inner;
use crate::reply::Reply;
use crate::resp::Request;
use crate::version::SiblingSet;

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
        ("DHT.R.FLUSH", 1) => match inner.store.flush().await {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::err(format!("dht: storage: {e}")),
        },
        _ => Reply::wrong_arity(name),
    }
}
