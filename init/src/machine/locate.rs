//! Find the line of a field (`network.interfaces[1].dhcp`) in YAML text by
//! following keys and list items by indentation. Good enough for the block
//! style people write configs in; falls back to the nearest parent found.

/// One path step: a mapping key or a list index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[\"") {
            // A quoted key: manifests["x.yaml"]
            let (key, after) = r.split_once("\"]").unwrap_or((r, ""));
            out.push(Step::Key(key.to_string()));
            rest = after.trim_start_matches('.');
        } else if let Some(r) = rest.strip_prefix('[') {
            let (idx, after) = r.split_once(']').unwrap_or((r, ""));
            if let Ok(i) = idx.parse() {
                out.push(Step::Index(i));
            }
            rest = after.trim_start_matches('.');
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Step::Key(rest[..end].to_string()));
            rest = rest[end..].trim_start_matches('.');
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#') && t != "---"
}

/// 1-based line of `path` in `text`, only when the whole path is there.
pub fn line_of_exact(text: &str, path: &str) -> Option<usize> {
    let (line, depth) = walk(text, path);
    if depth == steps(path).len() {
        line
    } else {
        None
    }
}

/// 1-based line of `path` in `text`, or of its deepest parent found.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    walk(text, path).0
}

/// The line reached and how many steps of the path were found.
fn walk(text: &str, path: &str) -> (Option<usize>, usize) {
    let lines: Vec<&str> = text.lines().collect();
    // Search window: [start, end) lines, items deeper than `min_indent`.
    let (mut start, mut end) = (0usize, lines.len());
    let mut min_indent: Option<usize> = None;
    let mut found = None;
    let mut depth = 0;
    for step in steps(path) {
        let mut hit = None;
        match &step {
            Step::Key(k) => {
                for (i, l) in lines.iter().enumerate().take(end).skip(start) {
                    if !is_content(l) {
                        continue;
                    }
                    let ind = indent(l);
                    let t = l.trim_start().trim_start_matches("- ");
                    let ind = if l.trim_start().starts_with("- ") { ind + 2 } else { ind };
                    if min_indent.map(|m| ind > m).unwrap_or(true) && (t.starts_with(&format!("{k}:")) || t.starts_with(&format!("\"{k}\":"))) {
                        hit = Some((i, ind));
                        break;
                    }
                }
            }
            Step::Index(n) => {
                let mut count = 0;
                let mut item_indent = None;
                for (i, l) in lines.iter().enumerate().take(end).skip(start) {
                    if !is_content(l) || !l.trim_start().starts_with('-') {
                        continue;
                    }
                    let ind = indent(l);
                    if min_indent.map(|m| ind < m).unwrap_or(false) {
                        continue;
                    }
                    if *item_indent.get_or_insert(ind) != ind {
                        continue;
                    }
                    if count == *n {
                        hit = Some((i, ind));
                        break;
                    }
                    count += 1;
                }
            }
        }
        let Some((i, ind)) = hit else { break };
        found = Some(i + 1);
        depth += 1;
        // The value of this step spans until the next line at this indent or less.
        let mut j = i + 1;
        while j < end {
            let l = lines[j];
            if is_content(l) {
                let li = indent(l);
                let is_item_at_same = l.trim_start().starts_with('-') && li == ind && matches!(step, Step::Key(_));
                if li < ind || (li == ind && !is_item_at_same) || (matches!(step, Step::Index(_)) && li <= ind) {
                    break;
                }
            }
            j += 1;
        }
        start = i;
        end = j;
        min_indent = Some(ind);
        if matches!(step, Step::Index(_)) {
            // Keys of the item sit after "- " on the same line or deeper below.
            min_indent = Some(ind);
        }
    }
    (found, depth)
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const Y: &str = "node:\n  role: server\nnetwork:\n  interfaces:\n    - name: eth0\n      dhcp: true\n    - name: eth1\n      addresses: [10.0.0.2/24]\n      gateway: bad\ntime:\n  ntpServers: []\n";

    #[test]
    fn finds_keys_and_list_items_by_indentation() {
        assert_eq!(line_of(Y, "node.role"), Some(2));
        assert_eq!(line_of(Y, "network.interfaces[0].dhcp"), Some(6));
        assert_eq!(line_of(Y, "network.interfaces[1].gateway"), Some(9));
        assert_eq!(line_of(Y, "network.interfaces[1].name"), Some(7));
        assert_eq!(line_of(Y, "time.ntpServers"), Some(11));
        assert_eq!(line_of(Y, "network.missing"), Some(3), "falls back to the parent");
        assert_eq!(line_of("manifests:\n  a.yaml: x\n  b.yaml: y\n", "manifests[\"b.yaml\"]"), Some(3));
    }
}
