//! One activation record per activation id, from every source that gave one.
//!
//! The invoker log gives a record of its own for each activation it shows ending (source
//! `invoker-log`); the REST API, JSON lines and user events give OpenWhisk's record. Where both
//! exist the record is kept and the log fills what it lacks: the start type where the record
//! cannot tell (a record with an `initTime` says cold, only the log's `containerState` tells a
//! prewarmed or recreated container), the init and wait times, the container, the path, the
//! times when the record was not placed. Two records of one id from the same kind of source:
//! the first is kept, as sources may repeat one.

use std::collections::HashMap;

use pws_trace::records::{ActivationSource, StartType};

use super::activation_id::ActivationId;
use super::compact_records::{CompactRecord, Number};

/// The records, one per activation id, in the order each id first appears. Takes them by value
/// and moves them: an hour of a busy node is hundreds of MB of records, not to be held twice.
pub fn merge(mut records: Vec<CompactRecord>) -> Vec<CompactRecord> {
    // Per id, in order of first appearance: (index of the platform's record, index of the
    // log's), first of each.
    let mut pairs: Vec<(Option<usize>, Option<usize>)> = Vec::new();
    {
        let mut by_id: HashMap<&ActivationId, usize> = HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let n = *by_id.entry(&r.activation_id).or_insert_with(|| {
                pairs.push((None, None));
                pairs.len() - 1
            });
            let slot = if r.source == ActivationSource::InvokerLog {
                &mut pairs[n].1
            } else {
                &mut pairs[n].0
            };
            slot.get_or_insert(i);
        }
    }
    // What each id keeps: the platform's record, filled from the log's where both exist.
    let mut keep = vec![false; records.len()];
    let mut kept_in_order = Vec::with_capacity(pairs.len());
    for &(platform, log) in &pairs {
        let i = match (platform, log) {
            (Some(r), Some(l)) => {
                let log = std::mem::replace(&mut records[l], CompactRecord::empty());
                fill(&mut records[r], &log);
                r
            }
            (Some(i), None) | (None, Some(i)) => i,
            (None, None) => unreachable!("every id has a record"),
        };
        keep[i] = true;
        kept_in_order.push(i);
    }
    drop(pairs);
    if kept_in_order.windows(2).all(|w| w[0] < w[1]) {
        // The usual case (each id's kept record is where it first appears, or later ones keep
        // their order): filtered in place, in the records' own allocation.
        let mut k = keep.into_iter();
        records.retain(|_| k.next().unwrap_or(false));
        return records;
    }
    kept_in_order
        .into_iter()
        .map(|i| std::mem::replace(&mut records[i], CompactRecord::empty()))
        .collect()
}

/// `r` with what only the log's record `log` knows.
fn fill(r: &mut CompactRecord, log: &CompactRecord) {
    let log_knows_more = matches!(
        (r.start_type, log.start_type),
        (StartType::Unknown, _) | (StartType::Cold, StartType::Prewarmed | StartType::Recreated)
    );
    if log_knows_more {
        r.start_type = log.start_type;
    }
    for n in [
        Number::InitMs,
        Number::WaitMs,
        Number::DurationMs,
        Number::StatusCode,
        Number::MemoryLimitMb,
    ] {
        if r.numbers.get(n).is_none() {
            r.numbers.copy_from(&log.numbers, n);
        }
    }
    for (mine, theirs) in [
        (&mut r.container_id, &log.container_id),
        (&mut r.namespace, &log.namespace),
        (&mut r.action, &log.action),
    ] {
        if mine.is_empty() {
            *mine = theirs.clone();
        }
    }
    // Times go together: an unplaced record takes the log's span whole.
    if r.start_ns == 0 || r.end_ns == 0 {
        (r.start_ns, r.end_ns) = (log.start_ns, log.end_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::records::ActivationRecord;

    fn merge(records: Vec<ActivationRecord>) -> Vec<CompactRecord> {
        super::merge(records.into_iter().map(CompactRecord::from).collect())
    }

    fn rec(id: &str, source: ActivationSource, st: StartType) -> ActivationRecord {
        ActivationRecord {
            activation_id: id.into(),
            namespace: "guest".into(),
            action: "hello".into(),
            version: String::new(),
            source,
            kind: String::new(),
            start_type: st,
            start_epoch_ms: 1_000,
            end_epoch_ms: 1_080,
            start_ns: 5_000,
            end_ns: 85_000,
            wait_ms: None,
            init_ms: None,
            duration_ms: None,
            status_code: None,
            memory_limit_mb: None,
            timeout_ms: None,
            container_id: String::new(),
            path: String::new(),
            caused_by: String::new(),
            raw: String::new(),
        }
    }

    #[test]
    fn the_record_is_kept_and_the_log_fills_what_it_lacks() {
        let mut rest = rec("a", ActivationSource::RestApi, StartType::Cold);
        rest.init_ms = Some(70);
        rest.duration_ms = Some(80);
        rest.status_code = Some(0);
        rest.memory_limit_mb = Some(256);
        rest.raw = r#"{"annotations":[{"key":"cgroupUsageUsec","value":1}]}"#.into();
        let mut log = rec("a", ActivationSource::InvokerLog, StartType::Prewarmed);
        log.init_ms = Some(71);
        log.wait_ms = Some(640);
        log.duration_ms = Some(79);
        log.container_id = "c".repeat(64);
        log.start_ns = 6_000;
        log.raw = r#"{"annotations":[{"key":"cgroupUsageUsec","value":2}]}"#.into();
        let warm = rec("b", ActivationSource::JsonLines, StartType::Warm);
        let mut warm_log = rec("b", ActivationSource::InvokerLog, StartType::Cold);
        warm_log.init_ms = Some(5);
        let only_log = rec("c", ActivationSource::InvokerLog, StartType::Warm);
        let dup = rec("b", ActivationSource::RestApi, StartType::Unknown);

        let m = merge(vec![
            log,
            warm.clone(),
            rest,
            warm_log,
            only_log.clone(),
            dup,
        ]);
        assert_eq!(
            m.iter()
                .map(|r| r.activation_id.to_string())
                .collect::<Vec<_>>(),
            ["a", "b", "c"],
            "one row per id, in first-seen order"
        );
        let a = &m[0];
        assert_eq!(a.source, ActivationSource::RestApi);
        assert_eq!(a.start_type, StartType::Prewarmed, "only the log tells");
        assert_eq!(
            (
                a.init_ms(),
                a.duration_ms(),
                a.status_code(),
                a.memory_limit_mb()
            ),
            (Some(70), Some(80), Some(0), Some(256)),
            "the record's own values win"
        );
        assert_eq!(a.wait_ms(), Some(640), "filled from the log");
        assert_eq!(a.container_id.len(), 64);
        assert_eq!(
            (a.start_ns, a.platform_cpu_ns()),
            (5_000, Some(1_000)),
            "the record's own"
        );
        let b = &m[1];
        assert_eq!(
            (b.source, b.start_type, b.init_ms()),
            (ActivationSource::JsonLines, StartType::Warm, Some(5)),
            "a record's warm stays warm; its first record is kept"
        );
        assert_eq!(m[2], CompactRecord::from(only_log));
    }

    #[test]
    fn an_unplaced_record_takes_the_logs_span() {
        let mut rest = rec("a", ActivationSource::UserEvent, StartType::Unknown);
        (rest.start_ns, rest.end_ns) = (0, 0);
        let log = rec("a", ActivationSource::InvokerLog, StartType::Cold);
        let m = merge(vec![rest, log]);
        assert_eq!(
            (m[0].start_ns, m[0].end_ns, m[0].start_type),
            (5_000, 85_000, StartType::Cold)
        );
    }
}
