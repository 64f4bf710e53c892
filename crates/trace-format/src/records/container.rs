use crate::codec::{put_records, Dec, DecodeResult, Put};
use crate::records::{code_enum, ActivationSource, Payload, StartType};
use crate::BlockKind;

code_enum! {
    /// A container operation, or the link between an activation and its container.
    ContainerOp {
        /// The activation `activation_id` was given to container `container_id`.
        Assign = 1 => "assign",
        Create = 2 => "create",
        Init = 3 => "init",
        Run = 4 => "run",
        Pause = 5 => "pause",
        Resume = 6 => "resume",
        Remove = 7 => "remove",
    }
}

/// A container event on the trace clock, from an invoker log or the local platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub ts_ns: u64,
    pub op: ContainerOp,
    pub source: ActivationSource,
    pub container_id: String,
    /// Empty where the operation concerns no activation.
    pub activation_id: String,
    pub action: String,
    pub namespace: String,
    pub start_type: StartType,
    /// The container's cgroup path, where resolved.
    pub cgroup_path: String,
    /// The source's own words (the invoker log line, a docker name, …).
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerEvents {
    pub events: Vec<ContainerEvent>,
}

impl Payload for ContainerEvents {
    const KIND: BlockKind = BlockKind::CONTAINER_EVENTS;

    fn encode(&self, out: &mut Vec<u8>) {
        put_records(out, &self.events, |b, e| {
            b.put_u64(e.ts_ns);
            b.put_u8(e.op.code());
            b.put_u8(e.source.code());
            b.put_str(&e.container_id);
            b.put_str(&e.activation_id);
            b.put_str(&e.action);
            b.put_str(&e.namespace);
            b.put_u8(e.start_type.code());
            b.put_str(&e.cgroup_path);
            b.put_str(&e.detail);
        });
    }
}

impl ContainerEvents {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let events = Dec::new(payload).records("container events", |r| {
            Ok(ContainerEvent {
                ts_ns: r.u64("container event time")?,
                op: ContainerOp::from_code(r.u8("container op")?),
                source: ActivationSource::from_code(r.u8("container event source")?),
                container_id: r.string("container id")?,
                activation_id: r.string("activation id")?,
                action: r.string("action")?,
                namespace: r.string("namespace")?,
                start_type: StartType::from_code(r.u8("start type")?),
                cgroup_path: r.string("cgroup path")?,
                detail: r.string("detail")?,
            })
        })?;
        Ok(Self { events })
    }
}
