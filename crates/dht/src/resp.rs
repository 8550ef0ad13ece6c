//! RESP2 request parsing: arrays of bulk strings (what every client library sends) and
//! inline commands (what `telnet` and `redis-cli` in a pipe send).
//!
//! # Bounded memory
//!
//! The parser is incremental and never trusts a length it has not received: it reports
//! "need more bytes" until the whole request is buffered, so a client that announces
//! `$4294967296` makes the node allocate nothing for it — the header is rejected with
//! [`ProtocolError::BulkLength`] because it is above [`Limits::max_bulk_len`], and a
//! length within the limit only grows the connection's read buffer as the bytes really
//! arrive. Array capacities are clamped too (`*1000000` reserves at most 64 slots up front).
//! The connection also caps its whole buffered request at [`Limits::max_request_len`].
//!
//! The limits are smaller than Redis's (512 MB bulk strings): values in a DHT are
//! replicated N times and travel between nodes, so a single huge value hurts every node.

use crate::error::ProtocolError;

/// Size limits applied to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string (one argument), in bytes. Default 8 MiB.
    pub max_bulk_len: usize,
    /// Most elements in one request array. Default 1,048,576 (as Redis).
    pub max_array_len: usize,
    /// Longest inline command line, in bytes. Default 64 KiB (as Redis).
    pub max_inline_len: usize,
    /// Most bytes one request may occupy in the read buffer. Default 64 MiB.
    pub max_request_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: 8 << 20,
            max_array_len: 1 << 20,
            max_inline_len: 64 << 10,
            max_request_len: 64 << 20,
        }
    }
}

/// Longest `*<n>\r\n` / `$<n>\r\n` header we accept: a sign and 20 digits plus slack.
const MAX_HEADER_LINE: usize = 32;
/// Upper bound on the slots reserved before the elements arrive.
const MAX_PREALLOCATED_ARGS: usize = 64;

/// One client request: the command name and its arguments, as raw bytes.
pub type Request = Vec<Vec<u8>>;

/// Parses one request from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a request, `Ok(Some((args,
/// consumed)))` when a whole one is there (`args` is empty for an empty inline line or
/// `*0`, which clients may send and which get no reply), and an error for malformed or
/// oversized input.
///
/// # Errors
/// A [`ProtocolError`] naming the first violation; the caller replies and closes.
///
/// # Examples
/// ```
/// use keel_dht::resp::{parse_request, Limits};
/// let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
/// let (args, used) = parse_request(buf, &Limits::default()).unwrap().unwrap();
/// assert_eq!(args, vec![b"GET".to_vec(), b"k".to_vec()]);
/// let (args, _) = parse_request(&buf[used..], &Limits::default()).unwrap().unwrap();
/// assert_eq!(args, vec![b"PING".to_vec()]);
/// // A 4 GB length header is refused before anything is allocated.
/// assert!(parse_request(b"*1\r\n$4294967296\r\n", &Limits::default()).is_err());
/// ```
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Request, usize)>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_array(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// Finds the `\r\n`-terminated line starting at `from`; `Ok(None)` if incomplete.
fn header_line(buf: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let window = &buf[from..buf.len().min(from + MAX_HEADER_LINE)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some((&buf[from..from + i], from + i + 2))),
        None if window.len() >= MAX_HEADER_LINE => Err(ProtocolError::HeaderTooLong),
        None => Ok(None),
    }
}

fn parse_len(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse::<i64>().ok()
}

fn parse_array(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, ProtocolError> {
    let Some((line, mut pos)) = header_line(buf, 0)? else {
        return Ok(None);
    };
    let n = parse_len(&line[1..]).ok_or(ProtocolError::ArrayLength)?;
    if n <= 0 {
        return Ok(Some((Vec::new(), pos)));
    }
    let n = usize::try_from(n).map_err(|_| ProtocolError::ArrayLength)?;
    if n > limits.max_array_len {
        return Err(ProtocolError::ArrayLength);
    }
    let mut args = Vec::with_capacity(n.min(MAX_PREALLOCATED_ARGS));
    for _ in 0..n {
        let Some(&first) = buf.get(pos) else {
            return Ok(None);
        };
        if first != b'$' {
            return Err(ProtocolError::ExpectedBulk(char::from(first)));
        }
        let Some((line, next)) = header_line(buf, pos)? else {
            return Ok(None);
        };
        let len = parse_len(&line[1..]).ok_or(ProtocolError::BulkLength)?;
        let len = usize::try_from(len).map_err(|_| ProtocolError::BulkLength)?;
        if len > limits.max_bulk_len {
            return Err(ProtocolError::BulkLength);
        }
        // `len <= max_bulk_len` is small, so `next + len + 2` cannot overflow.
        if buf.len() < next + len + 2 {
            return Ok(None);
        }
        if &buf[next + len..next + len + 2] != b"\r\n" {
            return Err(ProtocolError::BulkTerminator);
        }
        args.push(buf[next..next + len].to_vec());
        pos = next + len + 2;
    }
    Ok(Some((args, pos)))
}

fn parse_inline(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, ProtocolError> {
    let window = &buf[..buf.len().min(limits.max_inline_len.saturating_add(1))];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        return if window.len() > limits.max_inline_len {
            Err(ProtocolError::InlineTooLong)
        } else {
            Ok(None)
        };
    };
    let mut line = &buf[..end];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    Ok(Some((split_inline(line)?, end + 1)))
}

/// Splits an inline line on spaces; `"…"` and `'…'` group words (without escapes).
fn split_inline(line: &[u8]) -> Result<Request, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' | b'\t' => i += 1,
            q @ (b'"' | b'\'') => {
                let close = line[i + 1..]
                    .iter()
                    .position(|&b| b == q)
                    .ok_or(ProtocolError::UnbalancedQuotes)?;
                args.push(line[i + 1..i + 1 + close].to_vec());
                i += close + 2;
            }
            _ => {
                let end = line[i..]
                    .iter()
                    .position(|&b| b == b' ' || b == b'\t')
                    .map_or(line.len(), |p| i + p);
                args.push(line[i..end].to_vec());
                i = end;
            }
        }
    }
    Ok(args)
}

/// Encodes a request as a RESP array of bulk strings (what a client sends).
///
/// ```
/// use keel_dht::resp::encode_request;
/// let mut out = Vec::new();
/// encode_request(&[b"GET".as_slice(), b"k".as_slice()], &mut out);
/// assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
/// ```
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(b: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        parse_request(b, &Limits::default())
    }

    #[test]
    fn partial_requests_need_more_bytes() {
        let full = b"*2\r\n$3\r\nSET\r\n$5\r\nhello\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse(full).unwrap().is_some());
    }

    #[test]
    fn huge_lengths_are_rejected_without_allocating() {
        assert_eq!(
            parse(b"*1\r\n$4294967296\r\n"),
            Err(ProtocolError::BulkLength)
        );
        assert_eq!(
            parse(b"*1\r\n$99999999999999999999999\r\n"),
            Err(ProtocolError::BulkLength)
        );
        assert_eq!(parse(b"*4294967296\r\n"), Err(ProtocolError::ArrayLength));
        assert_eq!(parse(b"*-5\r\n"), Ok(Some((vec![], 5))));
        assert_eq!(parse(b"*1\r\n$-1\r\n"), Err(ProtocolError::BulkLength));
        // Within the limit, a big announced length waits for the bytes instead of reserving.
        assert_eq!(parse(b"*1\r\n$8000000\r\nab"), Ok(None));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(
            parse(b"*1\r\n:1\r\n"),
            Err(ProtocolError::ExpectedBulk(':'))
        );
        assert_eq!(parse(b"*x\r\n"), Err(ProtocolError::ArrayLength));
        assert_eq!(
            parse(b"*1\r\n$1\r\nabc"),
            Err(ProtocolError::BulkTerminator)
        );
        assert_eq!(parse(&[b'*'; 40]), Err(ProtocolError::HeaderTooLong));
        let long = vec![b'a'; 70_000];
        assert_eq!(parse(&long), Err(ProtocolError::InlineTooLong));
        assert_eq!(
            parse(b"SET \"a b\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn inline_commands_split_on_spaces_and_quotes() {
        let (args, used) = parse(b"SET  k \"a b\" 'c'\r\nrest").unwrap().unwrap();
        assert_eq!(
            args,
            vec![
                b"SET".to_vec(),
                b"k".to_vec(),
                b"a b".to_vec(),
                b"c".to_vec()
            ]
        );
        assert_eq!(used, 18);
        assert_eq!(parse(b"\r\n"), Ok(Some((vec![], 2))));
        assert_eq!(parse(b"PING\n"), Ok(Some((vec![b"PING".to_vec()], 5))));
    }

    proptest! {
        #[test]
        fn request_round_trips(args in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 1..16)) {
            let mut buf = Vec::new();
            encode_request(&args, &mut buf);
            buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
            let (parsed, used) = parse(&buf).unwrap().unwrap();
            prop_assert_eq!(&parsed, &args);
            let (next, rest) = parse(&buf[used..]).unwrap().unwrap();
            prop_assert_eq!(next, vec![b"PING".to_vec()]);
            prop_assert_eq!(used + rest, buf.len());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let limits = Limits { max_bulk_len: 100, max_array_len: 10, max_inline_len: 50, max_request_len: 1000 };
            let mut rest: &[u8] = &bytes;
            while let Ok(Some((_, used))) = parse_request(rest, &limits) {
                prop_assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
            }
        }

        #[test]
        fn mutated_requests_never_panic(args in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..16), 1..4), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
            let mut buf = Vec::new();
            encode_request(&args, &mut buf);
            for (i, b) in flips {
                let n = buf.len();
                buf[i % n] = b;
            }
            let _ = parse(&buf);
        }
    }
}
