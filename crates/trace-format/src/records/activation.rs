use crate::codec::{get_opt, put_opt, put_records, Dec, DecodeResult, Put};
use crate::records::{code_enum, Payload};
use crate::BlockKind;

code_enum! {
    /// Where an activation record or container event came from.
    ActivationSource {
        RestApi = 1 => "rest-api",
        JsonLines = 2 => "jsonl",
        InvokerLog = 3 => "invoker-log",
        LocalPlatform = 4 => "local-platform",
        UserEvent = 5 => "user-event",
    }
}

code_enum! {
    /// How the container that ran an activation was obtained.
    StartType {
        Unknown = 0 => "unknown",
        Cold = 1 => "cold",
        Warm = 2 => "warm",
        Prewarmed = 3 => "prewarmed",
        Recreated = 4 => "recreated",
    }
}

/// One function activation, normalised from OpenWhisk's forms, with the raw record kept.
/// Times on the trace clock are 0 where the recorder could not place them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationRecord {
    /// OpenWhisk's 32-hex activationId.
    pub activation_id: String,
    pub namespace: String,
    pub action: String,
    pub version: String,
    pub source: ActivationSource,
    /// Runtime kind (`nodejs:20`, `python:3`, …).
    pub kind: String,
    pub start_type: StartType,
    /// OpenWhisk `start`/`end` in ms since the epoch (start already moved back by initTime
    /// on a cold start, as OpenWhisk does).
    pub start_epoch_ms: u64,
    pub end_epoch_ms: u64,
    /// The same instants on the trace clock.
    pub start_ns: u64,
    pub end_ns: u64,
    pub wait_ms: Option<u64>,
    pub init_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    /// 0 success, 1 application error, 2 action developer error, 3 whisk internal error.
    pub status_code: Option<u64>,
    pub memory_limit_mb: Option<u64>,
    pub timeout_ms: Option<u64>,
    /// The container that ran it, where the source says (64-hex docker id, or a local name).
    pub container_id: String,
    /// Annotation `path` (`ns/package/action`).
    pub path: String,
    pub caused_by: String,
    /// The record as the source gave it (JSON), credentials never included.
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Activations {
    pub records: Vec<ActivationRecord>,
}

impl Payload for Activations {
    const KIND: BlockKind = BlockKind::ACTIVATIONS;

    fn encode(&self, out: &mut Vec<u8>) {
        put_records(out, &self.records, |b, a| {
            b.put_str(&a.activation_id);
            b.put_str(&a.namespace);
            b.put_str(&a.action);
            b.put_str(&a.version);
            b.put_u8(a.source.code());
            b.put_str(&a.kind);
            b.put_u8(a.start_type.code());
            b.put_varint(a.start_epoch_ms);
            b.put_varint(a.end_epoch_ms);
            b.put_varint(a.start_ns);
            b.put_varint(a.end_ns);
            put_opt(b, a.wait_ms);
            put_opt(b, a.init_ms);
            put_opt(b, a.duration_ms);
            put_opt(b, a.status_code);
            put_opt(b, a.memory_limit_mb);
            put_opt(b, a.timeout_ms);
            b.put_str(&a.container_id);
            b.put_str(&a.path);
            b.put_str(&a.caused_by);
            b.put_str(&a.raw);
        });
    }
}

impl Activations {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let records = Dec::new(payload).records("activations", |r| {
            Ok(ActivationRecord {
                activation_id: r.string("activation id")?,
                namespace: r.string("namespace")?,
                action: r.string("action")?,
                version: r.string("version")?,
                source: ActivationSource::from_code(r.u8("activation source")?),
                kind: r.string("runtime kind")?,
                start_type: StartType::from_code(r.u8("start type")?),
                start_epoch_ms: r.varint("start epoch")?,
                end_epoch_ms: r.varint("end epoch")?,
                start_ns: r.varint("start")?,
                end_ns: r.varint("end")?,
                wait_ms: get_opt(r, "wait time")?,
                init_ms: get_opt(r, "init time")?,
                duration_ms: get_opt(r, "duration")?,
                status_code: get_opt(r, "status code")?,
                memory_limit_mb: get_opt(r, "memory limit")?,
                timeout_ms: get_opt(r, "timeout")?,
                container_id: r.string("container id")?,
                path: r.string("path")?,
                caused_by: r.string("caused by")?,
                raw: r.string("raw record")?,
            })
        })?;
        Ok(Self { records })
    }
}
