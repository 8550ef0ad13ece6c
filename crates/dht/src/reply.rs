//! Replies and their RESP2 / RESP3 encodings.
//!
//! A connection starts in RESP2; `HELLO 3` switches it to RESP3. The two differ only in
//! how a few types go on the wire: a null is `$-1` in RESP2 and `_` in RESP3, a map is a
//! flat array of `2n` elements in RESP2 and `%n` in RESP3.

/// The protocol version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// One reply to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`-style status line (must not contain `\r` or `\n`; they become spaces).
    Simple(String),
    /// `-ERR …`: the message includes its prefix (`ERR`, `WRONGTYPE`, …).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$len` binary-safe string.
    Bulk(Vec<u8>),
    /// The null reply (`$-1` / `_`).
    Nil,
    /// `*n` array.
    Array(Vec<Reply>),
    /// A map: `%n` in RESP3, a flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Self {
        Reply::Simple("OK".into())
    }

    /// `-ERR <msg>`.
    pub fn err(msg: impl std::fmt::Display) -> Self {
        Reply::Error(format!("ERR {msg}"))
    }

    /// Redis's arity error: `-ERR wrong number of arguments for 'get' command`.
    pub fn wrong_arity(command: &str) -> Self {
        Reply::Error(format!(
            "ERR wrong number of arguments for '{}' command",
            command.to_ascii_lowercase()
        ))
    }

    /// `-ERR syntax error`.
    pub fn syntax() -> Self {
        Reply::Error("ERR syntax error".into())
    }

    /// `-ERR value is not an integer or out of range`.
    pub fn not_integer() -> Self {
        Reply::Error("ERR value is not an integer or out of range".into())
    }

    /// A bulk string from text.
    pub fn text(s: impl Into<String>) -> Self {
        Reply::Bulk(s.into().into_bytes())
    }

    /// Appends the encoding of this reply in `proto` to `out`.
    ///
    /// ```
    /// use keel_dht::{Protocol, Reply};
    /// let mut out = Vec::new();
    /// Reply::Nil.encode(Protocol::Resp2, &mut out);
    /// Reply::Nil.encode(Protocol::Resp3, &mut out);
    /// Reply::Map(vec![(Reply::text("a"), Reply::Integer(1))]).encode(Protocol::Resp2, &mut out);
    /// assert_eq!(out, b"$-1\r\n_\r\n*2\r\n$1\r\na\r\n:1\r\n");
    /// ```
    pub fn encode(&self, proto: Protocol, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => line(out, b'+', s),
            Reply::Error(s) => line(out, b'-', s),
            Reply::Integer(n) => {
                out.push(b':');
                out.extend_from_slice(n.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(b) => {
                out.push(b'$');
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil => match proto {
                Protocol::Resp2 => out.extend_from_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
            },
            Reply::Array(items) => {
                header(out, b'*', items.len());
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Map(pairs) => {
                match proto {
                    Protocol::Resp2 => header(out, b'*', pairs.len() * 2),
                    Protocol::Resp3 => header(out, b'%', pairs.len()),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
        }
    }
}

fn header(out: &mut Vec<u8>, tag: u8, n: usize) {
    out.push(tag);
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, tag: u8, s: &str) {
    out.push(tag);
    // A newline inside a status line would end the reply early and desynchronise the client.
    out.extend(
        s.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, p: Protocol) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(p, &mut out);
        out
    }

    #[test]
    fn encodings_match_redis() {
        assert_eq!(enc(&Reply::ok(), Protocol::Resp2), b"+OK\r\n");
        assert_eq!(
            enc(&Reply::wrong_arity("GET"), Protocol::Resp2),
            b"-ERR wrong number of arguments for 'get' command\r\n"
        );
        assert_eq!(enc(&Reply::Integer(-3), Protocol::Resp3), b":-3\r\n");
        assert_eq!(
            enc(&Reply::Bulk(b"a\r\nb".to_vec()), Protocol::Resp2),
            b"$4\r\na\r\nb\r\n"
        );
        assert_eq!(
            enc(&Reply::Array(vec![Reply::Nil]), Protocol::Resp2),
            b"*1\r\n$-1\r\n"
        );
        assert_eq!(
            enc(
                &Reply::Map(vec![(Reply::text("k"), Reply::Nil)]),
                Protocol::Resp3
            ),
            b"%1\r\n$1\r\nk\r\n_\r\n"
        );
        assert_eq!(
            enc(&Reply::Simple("a\r\nb".into()), Protocol::Resp2),
            b"+a  b\r\n"
        );
    }
}
