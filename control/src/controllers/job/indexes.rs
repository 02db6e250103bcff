//! Completion indexes of Indexed Jobs: the `completedIndexes` /
//! `failedIndexes` text form (`"1,3-5,7"`), the index a pod runs, and
//! which indexes still need a pod.

use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeSet;

/// Annotation (and label) carrying a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// A set of indexes below a bound, kept ordered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes(BTreeSet<i32>);

impl Indexes {
    /// Parses `"1,3-5"`; parts that are malformed or not below `completions`
    /// are dropped (as upstream does, logging them).
    pub fn parse(text: &str, completions: i32) -> Self {
        let mut set = BTreeSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else {
                tracing::debug!(part, "ignoring a malformed completion index interval");
                continue;
            };
            if first < 0 || last < first {
                continue;
            }
            for ix in first..=last.min(completions.saturating_sub(1)) {
                set.insert(ix);
            }
        }
        Self(set)
    }

    pub fn contains(&self, ix: i32) -> bool {
        self.0.contains(&ix)
    }

    pub fn insert(&mut self, ix: i32) -> bool {
        self.0.insert(ix)
    }

    pub fn total(&self) -> i32 {
        i32::try_from(self.0.len()).unwrap_or(i32::MAX)
    }

    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().copied()
    }
}

impl std::fmt::Display for Indexes {
    /// Consecutive runs of two or more become `a-b`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let mut run: Option<(i32, i32)> = None;
        for ix in self.iter() {
            run = match run {
                Some((a, b)) if b + 1 == ix => Some((a, ix)),
                Some(r) => {
                    parts.push(interval(r));
                    Some((ix, ix))
                }
                None => Some((ix, ix)),
            };
        }
        if let Some(r) = run {
            parts.push(interval(r));
        }
        f.write_str(&parts.join(","))
    }
}

fn interval((a, b): (i32, i32)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// The completion index a pod runs, from its annotation; `None` when
/// absent or malformed.
pub fn of_pod(pod: &Pod) -> Option<i32> {
    let v = pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    v.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// A pod's index when it is one the Job wants (below `completions`).
pub fn valid_of_pod(pod: &Pod, completions: i32) -> Option<i32> {
    of_pod(pod).filter(|i| *i < completions)
}

/// The first `count` indexes below `completions` that are neither done
/// (`skip`) nor being worked on (`busy`).
pub fn first_pending(count: usize, completions: i32, skip: &[&Indexes], busy: &BTreeSet<i32>) -> Vec<i32> {
    (0..completions.max(0))
        .filter(|ix| !busy.contains(ix) && !skip.iter().any(|s| s.contains(*ix)))
        .take(count)
        .collect()
}

/// `generateName` of a pod for `index`: `<job>-<index>-`, the job name cut
/// so that the random suffix still fits in 63 characters.
pub fn pod_generate_name(job: &str, index: i32) -> String {
    const MAX_GENERATED: usize = 58;
    let tail = format!("-{index}-");
    let mut prefix = job.to_string();
    if prefix.len() + tail.len() > MAX_GENERATED {
        let mut cut = MAX_GENERATED.saturating_sub(tail.len());
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    prefix + &tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_intervals() {
        let s = Indexes::parse("0,2-4,7", 10);
        assert_eq!(s.total(), 5);
        assert_eq!(s.to_string(), "0,2-4,7");
        assert_eq!(Indexes::parse("1,2,3,5,6", 10).to_string(), "1-3,5-6");
        assert_eq!(Indexes::parse("", 3).to_string(), "");
        // Beyond completions or malformed: dropped.
        assert_eq!(Indexes::parse("1-9,x,4-2", 3).to_string(), "1-2");
    }

    #[test]
    fn pending_indexes_skip_done_and_running() {
        let done = Indexes::parse("0,2", 6);
        let busy: BTreeSet<i32> = [1, 4].into();
        assert_eq!(first_pending(2, 6, &[&done], &busy), vec![3, 5]);
        assert_eq!(first_pending(5, 6, &[&done], &busy), vec![3, 5]);
    }

    #[test]
    fn generate_names_fit() {
        assert_eq!(pod_generate_name("pi", 3), "pi-3-");
        let long = "a".repeat(70);
        let g = pod_generate_name(&long, 12);
        assert_eq!(g.len(), 58);
        assert!(g.ends_with("-12-"));
    }
}
