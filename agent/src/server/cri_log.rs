//! The CRI container log format and the kubelet's log options, as pure
//! functions: parse `TIMESTAMP STREAM P|F MESSAGE` lines, find where the last
//! N lines start, and turn file lines into what `kubectl logs` prints
//! (partial lines joined, `sinceTime` filter, `--timestamps`, byte limit).
//! No I/O here (see [`super::logs`]).

use jiff::Timestamp;

/// One parsed line of a CRI log file.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// The timestamp as written (RFC 3339 with nanoseconds).
    pub raw_time: &'a [u8],
    pub time: Timestamp,
    pub stderr: bool,
    /// `P`: the runtime split a long line; the next entry continues it.
    pub partial: bool,
    /// The message without the trailing newline.
    pub message: &'a [u8],
}

/// Parse one line (without its `\n`). `None` for a line that is not in
/// the CRI format (skipped, as the kubelet does).
pub fn parse(line: &[u8]) -> Option<Line<'_>> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let raw_time = fields.next()?;
    let stream = fields.next()?;
    let tag = fields.next()?;
    let message = fields.next().unwrap_or(b"");
    let time: Timestamp = std::str::from_utf8(raw_time).ok()?.parse().ok()?;
    let stderr = match stream {
        b"stdout" => false,
        b"stderr" => true,
        _ => return None,
    };
    // Tags may carry more than one flag, separated by ':' (only P is defined).
    let partial = tag.split(|b| *b == b':').any(|t| t == b"P");
    Some(Line { raw_time, time, stderr, partial, message })
}

/// Offset in `data` where the last `n` lines begin (lines end with `\n`; a
/// last line without one counts too). `n == 0` gives `data.len()`.
pub fn tail_start(data: &[u8], n: u64) -> usize {
    if n == 0 {
        return data.len();
    }
    let mut end = data.len();
    if end > 0 && data[end - 1] == b'\n' {
        end -= 1;
    }
    let mut seen = 0;
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// What the client asked for (query of `/containerLogs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub since: Option<Timestamp>,
}

impl Options {
    /// From the kubelet query (`follow=true&tailLines=5&sinceSeconds=..`).
    pub fn parse(pairs: &[(String, String)], now: Timestamp) -> Result<Options, String> {
        let get = |k: &str| pairs.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let flag = |k: &str| matches!(get(k), Some("true") | Some("1"));
        let num = |k: &str| -> Result<Option<i64>, String> {
            get(k).map(|v| v.parse::<i64>().map_err(|_| format!("invalid {k}: {v:?} is not an integer"))).transpose()
        };
        let mut o = Options { follow: flag("follow"), previous: flag("previous"), timestamps: flag("timestamps"), ..Default::default() };
        o.tail_lines = num("tailLines")?.map(|n| n.max(0) as u64);
        o.limit_bytes = num("limitBytes")?.map(|n| n.max(0) as u64);
        if let Some(s) = num("sinceSeconds")? {
            o.since = now.checked_sub(jiff::SignedDuration::from_secs(s.max(0))).ok();
        }
        if let Some(t) = get("sinceTime") {
            o.since = Some(t.parse().map_err(|e| format!("invalid sinceTime {t:?}: {e}"))?);
        }
        Ok(o)
    }
}

/// Turns file lines into output: joins partial lines, drops lines before
/// `since`, adds timestamps, and stops at the byte limit.
#[derive(Debug)]
pub struct Formatter {
    opts: Options,
    /// Bytes still allowed (`None` = no limit).
    budget: Option<u64>,
    /// A partial line waiting for its end: (timestamp as written, text).
    pending: Option<(Vec<u8>, Vec<u8>)>,
}

impl Formatter {
    pub fn new(opts: Options) -> Formatter {
        Formatter { budget: opts.limit_bytes, opts, pending: None }
    }

    /// True once the byte limit is used up: stop reading.
    pub fn done(&self) -> bool {
        self.budget == Some(0)
    }

    /// Feed one file line (without `\n`); append what to print to `out`.
    pub fn feed(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        if self.done() {
            return;
        }
        let Some(line) = parse(raw) else { return };
        if let Some(since) = self.opts.since {
            if line.time < since {
                return;
            }
        }
        let (time, mut text) = match self.pending.take() {
            Some((t, mut text)) => {
                text.extend_from_slice(line.message);
                (t, text)
            }
            None => (line.raw_time.to_vec(), line.message.to_vec()),
        };
        if line.partial {
            self.pending = Some((time, text));
            return;
        }
        text.push(b'\n');
        let mut chunk = Vec::with_capacity(text.len() + 40);
        if self.opts.timestamps {
            chunk.extend_from_slice(&time);
            chunk.push(b' ');
        }
        chunk.extend_from_slice(&text);
        self.emit(&chunk, out);
    }

    fn emit(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        match self.budget.as_mut() {
            None => out.extend_from_slice(chunk),
            Some(b) => {
                let n = (*b).min(chunk.len() as u64) as usize;
                out.extend_from_slice(&chunk[..n]);
                *b -= n as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2024-05-01T10:00:00.000000001Z stdout F one\n\
2024-05-01T10:00:01.5Z stderr F two\n\
2024-05-01T10:00:02Z stdout P thr\n\
2024-05-01T10:00:02.1Z stdout F ee\n\
2024-05-01T10:00:03+02:00 stdout F four\n";

    fn run(opts: Options, data: &str) -> String {
        let start = opts.tail_lines.map(|n| tail_start(data.as_bytes(), n)).unwrap_or(0);
        let mut f = Formatter::new(opts);
        let mut out = Vec::new();
        for l in data.as_bytes()[start..].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            f.feed(l, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_cri_lines() {
        let l = parse(b"2024-05-01T10:00:00.5Z stderr F hello world").unwrap();
        assert!(l.stderr && !l.partial);
        assert_eq!(l.message, b"hello world");
        assert_eq!(l.raw_time, b"2024-05-01T10:00:00.5Z");
        assert!(parse(b"2024-05-01T10:00:00Z stdout P").unwrap().partial);
        assert_eq!(parse(b"2024-05-01T10:00:00Z stdout F ").unwrap().message, b"");
        assert!(parse(b"garbage").is_none());
        assert!(parse(b"2024-05-01T10:00:00Z other F x").is_none());
    }

    #[test]
    fn joins_partial_lines_and_keeps_order() {
        assert_eq!(run(Options::default(), LOG), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn timestamps_use_the_first_fragment() {
        let out = run(Options { timestamps: true, ..Default::default() }, LOG);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "2024-05-01T10:00:00.000000001Z one");
        assert_eq!(lines[2], "2024-05-01T10:00:02Z three");
    }

    #[test]
    fn tail_counts_file_lines() {
        assert_eq!(run(Options { tail_lines: Some(1), ..Default::default() }, LOG), "four\n");
        assert_eq!(run(Options { tail_lines: Some(2), ..Default::default() }, LOG), "ee\nfour\n");
        assert_eq!(run(Options { tail_lines: Some(99), ..Default::default() }, LOG), "one\ntwo\nthree\nfour\n");
        assert_eq!(run(Options { tail_lines: Some(0), ..Default::default() }, LOG), "");
        assert_eq!(tail_start(b"a\nb", 1), 2);
        assert_eq!(tail_start(b"", 3), 0);
    }

    #[test]
    fn since_and_limit() {
        let since: Timestamp = "2024-05-01T10:00:01Z".parse().unwrap();
        assert_eq!(run(Options { since: Some(since), ..Default::default() }, LOG), "two\nthree\n");
        assert_eq!(run(Options { limit_bytes: Some(6), ..Default::default() }, LOG), "one\ntw");
    }

    #[test]
    fn options_from_query() {
        let now: Timestamp = "2024-05-01T10:00:10Z".parse().unwrap();
        let q = |s: &str| -> Vec<(String, String)> {
            s.split('&').map(|p| p.split_once('=').map(|(a, b)| (a.to_string(), b.to_string())).unwrap()).collect()
        };
        let o = Options::parse(&q("follow=true&tailLines=3&sinceSeconds=5&timestamps=1"), now).unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.tail_lines, Some(3));
        assert_eq!(o.since, Some("2024-05-01T10:00:05Z".parse().unwrap()));
        assert!(Options::parse(&q("tailLines=x"), now).is_err());
    }
}
