//! OpenWhisk's activation records, in each form they come in, normalised into the trace's
//! [`ActivationRecord`].
//!
//! Three forms, told apart by their shape:
//! - the **stored form** (`WhiskActivation` as the activations database and
//!   `wsk activation get` hold it): `start`, `end`, `duration`, `response.statusCode`
//!   (0 success, 1 application error, 2 action developer error, 3 whisk internal error) and the
//!   annotations `path`, `kind`, `limits` (`memory`, `timeout`, `concurrency`, `logs`),
//!   `causedBy`, `timeout`, `waitTime`, `initTime`;
//! - the **REST form** (`GET /api/v1/namespaces/{ns}/activations?docs=true`): the same, with
//!   `response.status` (the outcome's name) and `response.success` instead of `statusCode`;
//! - the **user-event `Activation` body** (Kafka topic `events`), with its own field names:
//!   `name` is the path `ns/action` (or `ns/pkg/action`), `statusCode`,
//!   `userDefinedStatusCode`, `memory`, `kind`, `initTime`, `waitTime`, `duration`,
//!   `causedBy`, `conductor`, and no `start`/`end` (the record's times are then 0). Its envelope
//!   (`EventMessage`: `eventType`, `namespace`, `body`, …) is accepted too and gives the
//!   activation's namespace; a bare body has only the action's, so `namespace` and `action`
//!   are then OpenWhisk's own split of `name` (`Activation.namespace` / `Activation.action`).
//!
//! Times are epoch milliseconds. On a cold start OpenWhisk moves `start` back by `initTime`, so
//! `duration` = init + run; `waitTime` runs from the controller to the start of init (cold) or
//! run (warm). The start type is what the record alone can tell: an `initTime` means the
//! activation paid an `/init` — [`StartType::Cold`] — and its absence a warm container. OpenWhisk
//! also inits *prewarmed* containers (a stem cell started ahead of time), whose activations
//! carry an `initTime` too but pay no container creation: only the invoker log's
//! `containerState` tells them apart (see [`crate::invoker_log::link`]).
//!
//! A `wsk activation get ID` prints `ok: got activation ID` and then the record over many
//! lines; [`from_line`] reads one record per line, so such output needs the header dropped and
//! the record put on one line (`wsk activation get ID | tail -n +2 | jq -c .`). The header line
//! is rejected with an error saying so.
//!
//! Beyond OpenWhisk: an annotation `containerId` (a string) fills
//! [`ActivationRecord::container_id`]; OpenWhisk never writes it, a local platform may.

use pws_trace::records::{ActivationRecord, ActivationSource, StartType};
use serde_json::{Map, Value};

use crate::doc::STATUS_NAMES;

/// Why a record was rejected; names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "a `wsk activation get` header line: drop it and give the record on one line \
         (`wsk activation get ID | tail -n +2 | jq -c .`)"
    )]
    WskHeader,
    #[error("an activation record is a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("missing field `{0}`")]
    Missing(String),
    #[error("field `{field}`: expected {expected}, got {got}")]
    WrongType {
        field: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("field `{field}`: {why}")]
    Invalid { field: String, why: String },
}

type Result<T> = std::result::Result<T, ActivationError>;

/// One record, in any of the three forms (or a user event's envelope).
pub fn from_json(v: &Value, source: ActivationSource) -> Result<ActivationRecord> {
    let o = v
        .as_object()
        .ok_or_else(|| ActivationError::NotAnObject(type_name(v)))?;
    // Compact text of the record as given; serde_json orders object keys.
    let raw = serde_json::to_string(v)?;
    if o.contains_key("body") && o.contains_key("eventType") {
        from_event_envelope(o, source, raw)
    } else if o.contains_key("statusCode")
        && !o.contains_key("response")
        && !o.contains_key("start")
    {
        from_event_body(o, None, source, raw)
    } else {
        from_doc(o, source, raw)
    }
}

/// One line of a JSON-lines file; `Ok(None)` for a blank line.
pub fn from_line(line: &str, source: ActivationSource) -> Result<Option<ActivationRecord>> {
    let t = line.trim_start_matches('\u{feff}').trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.starts_with("ok: got activation") {
        return Err(ActivationError::WskHeader);
    }
    let v: Value = serde_json::from_str(t)?;
    from_json(&v, source).map(Some)
}

/// The stored and REST forms (`WhiskActivation`).
fn from_doc(
    o: &Map<String, Value>,
    source: ActivationSource,
    raw: String,
) -> Result<ActivationRecord> {
    let activation_id = activation_id(o)?;
    let namespace = req_str(o, "namespace", "namespace")?;
    let action = req_str(o, "name", "name")?;
    let version = opt_str(o, "version", "version")?.unwrap_or_default();
    let start = req_u64(o, "start", "start")?;
    let end = req_u64(o, "end", "end")?;
    if end != 0 && end < start {
        return Err(invalid("end", format!("{end} is before start {start}")));
    }
    // `end` is 0 only while running, when there is no duration yet either.
    let duration = match opt_u64(o, "duration", "duration")? {
        Some(d) => Some(d),
        None if end != 0 => Some(end - start),
        None => None,
    };
    let status_code = match opt_obj(o, "response", "response")? {
        Some(r) => response_status(r)?,
        None => None,
    };
    let ann = Annotations::of(o)?;
    let limits = ann.obj("limits")?;
    let limit = |key: &str| match limits {
        Some(l) => opt_u64(l, key, &format!("annotation limits.{key}")),
        None => Ok(None),
    };
    let memory_limit_mb = limit("memory")?;
    let timeout_ms = limit("timeout")?;
    // Checked for their types only: the record has no field for them, `raw` keeps them.
    limit("concurrency")?;
    limit("logs")?;
    ann.bool("timeout")?;
    let init_ms = ann.u64("initTime")?;
    Ok(ActivationRecord {
        activation_id,
        namespace,
        action,
        version,
        source,
        kind: ann.str("kind")?.unwrap_or_default(),
        start_type: if init_ms.is_some() {
            StartType::Cold
        } else {
            StartType::Warm
        },
        start_epoch_ms: start,
        end_epoch_ms: end,
        start_ns: 0,
        end_ns: 0,
        wait_ms: ann.u64("waitTime")?,
        init_ms,
        duration_ms: duration,
        status_code,
        memory_limit_mb,
        timeout_ms,
        container_id: ann.str("containerId")?.unwrap_or_default(),
        path: ann.str("path")?.unwrap_or_default(),
        caused_by: ann.str("causedBy")?.unwrap_or_default(),
        raw,
    })
}

/// `response.statusCode` (stored form) or `response.status` (REST form).
fn response_status(r: &Map<String, Value>) -> Result<Option<u64>> {
    opt_bool(r, "success", "response.success")?;
    if let Some(code) = opt_u64(r, "statusCode", "response.statusCode")? {
        check_code(code, "response.statusCode")?;
        return Ok(Some(code));
    }
    match opt_str(r, "status", "response.status")? {
        Some(s) => match STATUS_NAMES.iter().position(|n| *n == s) {
            Some(i) => Ok(Some(i as u64)),
            None => Err(invalid(
                "response.status",
                format!("{s:?} is none of {}", STATUS_NAMES.join(", ")),
            )),
        },
        None => Ok(None),
    }
}

/// A user event's `EventMessage`: the body, with the activation's namespace.
fn from_event_envelope(
    o: &Map<String, Value>,
    source: ActivationSource,
    raw: String,
) -> Result<ActivationRecord> {
    let event_type = req_str(o, "eventType", "eventType")?;
    if event_type != "Activation" {
        return Err(invalid(
            "eventType",
            format!("a {event_type:?} event, not an Activation"),
        ));
    }
    let namespace = req_str(o, "namespace", "namespace")?;
    let body =
        opt_obj(o, "body", "body")?.ok_or_else(|| ActivationError::Missing("body".into()))?;
    from_event_body(body, Some(namespace), source, raw)
}

/// A user event's `Activation` body. `namespace` comes from its envelope when there is one.
fn from_event_body(
    o: &Map<String, Value>,
    namespace: Option<String>,
    source: ActivationSource,
    raw: String,
) -> Result<ActivationRecord> {
    let activation_id = activation_id(o)?;
    let path = req_str(o, "name", "name")?;
    // OpenWhisk's own split: the root of the path, then the rest (`pkg/action` in a package).
    let (path_ns, action) = match path.split_once('/') {
        Some((ns, a)) if !ns.is_empty() && !a.is_empty() => (ns.to_owned(), a.to_owned()),
        _ => {
            return Err(invalid(
                "name",
                format!("{path:?} is not a path \"namespace/action\""),
            ))
        }
    };
    let status_code = req_u64(o, "statusCode", "statusCode")?;
    check_code(status_code, "statusCode")?;
    let duration = req_u64(o, "duration", "duration")?;
    let wait = req_u64(o, "waitTime", "waitTime")?;
    // OpenWhisk writes 0 for "no init" (`isColdStart` is `initTime != 0`).
    let init = req_u64(o, "initTime", "initTime")?;
    let kind = req_str(o, "kind", "kind")?;
    req_bool(o, "conductor", "conductor")?;
    // 0 when the activation had no limits annotation.
    let memory = req_u64(o, "memory", "memory")?;
    let caused_by = opt_str(o, "causedBy", "causedBy")?.unwrap_or_default();
    opt_u64(o, "size", "size")?;
    if let Some(v) = o.get("userDefinedStatusCode").filter(|v| !v.is_null()) {
        if v.as_i64().is_none() {
            return Err(wrong("userDefinedStatusCode", "an integer", v));
        }
    }
    Ok(ActivationRecord {
        activation_id,
        namespace: namespace.unwrap_or(path_ns),
        action,
        version: String::new(),
        source,
        kind,
        start_type: if init > 0 {
            StartType::Cold
        } else {
            StartType::Warm
        },
        start_epoch_ms: 0,
        end_epoch_ms: 0,
        start_ns: 0,
        end_ns: 0,
        wait_ms: Some(wait),
        init_ms: (init > 0).then_some(init),
        duration_ms: Some(duration),
        status_code: Some(status_code),
        memory_limit_mb: (memory > 0).then_some(memory),
        timeout_ms: None,
        container_id: String::new(),
        path,
        caused_by,
        raw,
    })
}

/// `activationId`: 32 hex digits (a UUID without dashes).
fn activation_id(o: &Map<String, Value>) -> Result<String> {
    let id = req_str(o, "activationId", "activationId")?;
    if !is_activation_id(&id) {
        return Err(invalid(
            "activationId",
            format!("{id:?} is not 32 hex digits"),
        ));
    }
    Ok(id)
}

/// Whether `s` has the shape of an OpenWhisk activation id.
pub fn is_activation_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_code(code: u64, field: &str) -> Result<()> {
    if code as usize >= STATUS_NAMES.len() {
        return Err(invalid(
            field,
            format!("{code} is not an outcome code (0 to 3)"),
        ));
    }
    Ok(())
}

/// The `annotations` array: `[{"key": …, "value": …}, …]`.
struct Annotations<'a>(Vec<(&'a str, &'a Value)>);

impl<'a> Annotations<'a> {
    fn of(o: &'a Map<String, Value>) -> Result<Self> {
        let Some(v) = o.get("annotations").filter(|v| !v.is_null()) else {
            return Ok(Self(Vec::new()));
        };
        let arr = v
            .as_array()
            .ok_or_else(|| wrong("annotations", "an array", v))?;
        let mut out = Vec::with_capacity(arr.len());
        for (i, a) in arr.iter().enumerate() {
            let field = format!("annotations[{i}]");
            let e = a
                .as_object()
                .ok_or_else(|| wrong(&field, "an object {key, value}", a))?;
            let key = match e.get("key") {
                Some(Value::String(k)) => k.as_str(),
                Some(k) => return Err(wrong(&format!("{field}.key"), "a string", k)),
                None => return Err(ActivationError::Missing(format!("{field}.key"))),
            };
            let value = e
                .get("value")
                .ok_or_else(|| ActivationError::Missing(format!("{field}.value")))?;
            out.push((key, value));
        }
        Ok(Self(out))
    }

    /// The value of `key`; the last one wins, as OpenWhisk's `Parameters` merge does.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(wrong(&format!("annotation {key}"), "a string", v)),
        }
    }

    fn u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| wrong(&format!("annotation {key}"), "a non-negative integer", v)),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| wrong(&format!("annotation {key}"), "true or false", v)),
        }
    }

    fn obj(&self, key: &str) -> Result<Option<&'a Map<String, Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_object()
                .map(Some)
                .ok_or_else(|| wrong(&format!("annotation {key}"), "an object", v)),
        }
    }
}

// Field readers: `key` in `o`, reported as `field` (its path in the record). An explicit
// `null` counts as absent.

fn present<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn req<'a>(o: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a Value> {
    present(o, key).ok_or_else(|| ActivationError::Missing(field.to_owned()))
}

fn req_str(o: &Map<String, Value>, key: &str, field: &str) -> Result<String> {
    let v = req(o, key, field)?;
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| wrong(field, "a string", v))
}

fn opt_str(o: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>> {
    present(o, key)
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| wrong(field, "a string", v))
        })
        .transpose()
}

fn req_u64(o: &Map<String, Value>, key: &str, field: &str) -> Result<u64> {
    let v = req(o, key, field)?;
    v.as_u64()
        .ok_or_else(|| wrong(field, "a non-negative integer", v))
}

fn opt_u64(o: &Map<String, Value>, key: &str, field: &str) -> Result<Option<u64>> {
    present(o, key)
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| wrong(field, "a non-negative integer", v))
        })
        .transpose()
}

fn req_bool(o: &Map<String, Value>, key: &str, field: &str) -> Result<bool> {
    let v = req(o, key, field)?;
    v.as_bool().ok_or_else(|| wrong(field, "true or false", v))
}

fn opt_bool(o: &Map<String, Value>, key: &str, field: &str) -> Result<Option<bool>> {
    present(o, key)
        .map(|v| v.as_bool().ok_or_else(|| wrong(field, "true or false", v)))
        .transpose()
}

fn opt_obj<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>> {
    present(o, key)
        .map(|v| v.as_object().ok_or_else(|| wrong(field, "an object", v)))
        .transpose()
}

fn wrong(field: &str, expected: &'static str, got: &Value) -> ActivationError {
    ActivationError::WrongType {
        field: field.to_owned(),
        expected,
        got: type_name(got),
    }
}

fn invalid(field: &str, why: String) -> ActivationError {
    ActivationError::Invalid {
        field: field.to_owned(),
        why,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "an integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
