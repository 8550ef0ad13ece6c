//! Cluster commands: `DHT.NODES`, `DHT.RING`, `DHT.OWNERS key`, `DHT.CONSISTENCY
//! [ONE|QUORUM|ALL|DEFAULT]`, `DHT.SIBLINGS key`, `DHT.STATS`, `DHT.JOIN addr`, `DHT.LEAVE`.
//!
//! `DHT.NODES` lists `[name, state]` pairs; the state is `self`, `up`, `down`, or during a
//! membership change `joining` / `leaving`. (`DHT.PUT` is a write, see
//! [`keyspace`](super::keyspace).)

use std::sync::Arc;

use super::{Connection, Consistency};
use crate::membership::{ChangeError, ChangeReport};
use crate::node::Inner;
use crate::reply::Reply;

/// Runs the `DHT.*` commands.
pub(crate) async fn execute(
    inner: &Arc<Inner>,
    conn: &mut Connection,
    name: &str,
    args: &[Vec<u8>],
) -> Reply {
    let c = &inner.cluster;
    match name {
        "DHT.NODES" => {
            let layout = c.layout();
            Reply::Array(
                layout
                    .all_nodes()
                    .into_iter()
                    .map(|m| {
                        let member = layout.members.contains(&m);
                        let stays = layout.pending.as_ref().is_none_or(|p| p.contains(&m));
                        let state = if m != c.me && inner.is_down(&m) {
                            "down"
                        } else if !member {
                            "joining"
                        } else if !stays {
                            "leaving"
                        } else if m == c.me {
                            "self"
                        } else {
                            "up"
                        };
                        Reply::Array(vec![Reply::text(m), Reply::text(state)])
                    })
                    .collect(),
            )
        }
        "DHT.RING" => Reply::Array(
            (0..c.partitions())
                .map(|p| {
                    let mut row = vec![Reply::Integer(p as i64)];
                    row.extend(c.owners(p as u16).into_iter().map(Reply::text));
                    Reply::Array(row)
                })
                .collect(),
        ),
        "DHT.OWNERS" => {
            if args.len() != 2 {
                return Reply::wrong_arity(name);
            }
            let p = c.partition_of(&args[1]);
            Reply::Array(vec![
                Reply::Integer(i64::from(p)),
                Reply::Array(c.owners(p).into_iter().map(Reply::text).collect()),
            ])
        }
        "DHT.CONSISTENCY" => {
            if let Some(level) = args.get(1) {
                conn.consistency = match level.to_ascii_uppercase().as_slice() {
                    b"ONE" => Some(Consistency::One),
                    b"QUORUM" => Some(Consistency::Quorum),
                    b"ALL" => Some(Consistency::All),
                    b"DEFAULT" => None,
                    _ => return Reply::err("consistency must be ONE, QUORUM, ALL or DEFAULT"),
                };
            }
            let q = inner.quorum(conn);
            let level = conn.consistency.map_or("DEFAULT", Consistency::name);
            Reply::text(format!("{level} r={} w={} n={}", q.r, q.w, inner.config.n))
        }
        "DHT.SIBLINGS" => {
            if args.len() != 2 {
                return Reply::wrong_arity(name);
            }
            let set = match inner.read(&args[1], inner.quorum(conn).r).await {
                Ok(s) => s,
                Err(e) => return e,
            };
            let now = inner.clock.now_ms();
            let siblings = set
                .siblings()
                .iter()
                .map(|s| {
                    Reply::Map(vec![
                        (
                            Reply::text("value"),
                            s.value.clone().map_or(Reply::Nil, Reply::Bulk),
                        ),
                        (
                            Reply::text("live"),
                            Reply::Integer(i64::from(s.is_live(now))),
                        ),
                        (
                            Reply::text("dot"),
                            Reply::text(format!("{}={}", s.dot.0, s.dot.1)),
                        ),
                        (Reply::text("vv"), Reply::text(s.vv.to_text())),
                        (
                            Reply::text("written_at_ms"),
                            Reply::Integer(i64::try_from(s.written_at_ms).unwrap_or(i64::MAX)),
                        ),
                    ])
                })
                .collect();
            Reply::Map(vec![
                (Reply::text("context"), Reply::text(set.context().to_text())),
                (Reply::text("siblings"), Reply::Array(siblings)),
            ])
        }
        "DHT.STATS" => {
            let s = inner.stats();
            let pairs = [
                ("connections", s.connections),
                ("commands", s.commands),
                ("reads", s.reads),
                ("writes", s.writes),
                ("forwarded", s.forwarded),
                ("quorum_failures", s.quorum_failures),
                ("read_repairs", s.read_repairs),
                ("hints_stored", s.hints_stored),
                ("hints_delivered", s.hints_delivered),
                ("hints_pending", s.hints_pending),
                ("protocol_errors", s.protocol_errors),
                ("anti_entropy_rounds", s.anti_entropy_rounds),
                ("anti_entropy_keys", s.anti_entropy_keys),
                ("storage_commits", s.storage_commits),
                ("storage_jobs", s.storage_jobs),
                ("siblings_dropped", s.siblings_dropped),
                ("tombstones_collected", s.tombstones_collected),
                ("old_copies_dropped", s.old_copies_dropped),
                ("keys_stored", s.keys_stored),
            ];
            Reply::Map(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        (
                            Reply::text(*k),
                            Reply::Integer(i64::try_from(*v).unwrap_or(i64::MAX)),
                        )
                    })
                    .collect(),
            )
        }
        "DHT.JOIN" => {
            if args.len() != 2 {
                return Reply::wrong_arity(name);
            }
            let seed = String::from_utf8_lossy(&args[1]).into_owned();
            change_reply(inner.join_via(&seed).await)
        }
        "DHT.LEAVE" => {
            if args.len() != 1 {
                return Reply::wrong_arity(name);
            }
            change_reply(inner.leave().await)
        }
        _ => super::unknown(&args.to_vec()),
    }
}

/// `epoch=E partitions_moved=P keys_streamed=K`, or the error.
fn change_reply(result: Result<ChangeReport, ChangeError>) -> Reply {
    match result {
        Ok(r) => Reply::text(format!(
            "epoch={} partitions_moved={} keys_streamed={}",
            r.epoch, r.partitions_moved, r.keys_streamed
        )),
        Err(e) => Reply::err(format!("dht: {e}")),
    }
}
