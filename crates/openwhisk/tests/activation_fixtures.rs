//! OpenWhisk's own activation records (`datasets/openwhisk/`, from its documentation and its
//! compatibility tests) read in every form, and malformed records rejected with the field named.

use std::path::PathBuf;

use pws_openwhisk::activation::{from_json, from_line, ActivationError};
use pws_trace::records::{ActivationRecord, ActivationSource, StartType};
use serde_json::{json, Value};

fn dataset(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/openwhisk")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn read(name: &str, source: ActivationSource) -> ActivationRecord {
    from_json(&dataset(name), source).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const BE97: &str = "be97c2fed5dc43d097c2fed5dc73d085";

#[test]
fn the_rest_form_from_the_documentation() {
    let a = read("activation-rest.json", ActivationSource::RestApi);
    assert_eq!(a.activation_id, "c7bb1339cb4f40e3a6ccead6c99f804e");
    assert_eq!(
        (a.namespace.as_str(), a.action.as_str(), a.version.as_str()),
        ("john@example.com_dev", "hello", "0.0.1")
    );
    assert_eq!(
        (a.start_epoch_ms, a.end_epoch_ms, a.duration_ms),
        (1_493_327_653_767, 1_493_327_653_769, Some(2))
    );
    assert_eq!(a.status_code, Some(0), "`status: success` is code 0");
    assert_eq!((a.memory_limit_mb, a.timeout_ms), (Some(256), Some(60_000)));
    assert_eq!(a.path, "john@example.com_dev/hello");
    // No initTime annotation: a warm start, as far as the record can tell.
    assert_eq!(
        (a.start_type, a.init_ms, a.wait_ms),
        (StartType::Warm, None, None)
    );
    assert_eq!(
        (
            a.kind.as_str(),
            a.caused_by.as_str(),
            a.container_id.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(
        (a.start_ns, a.end_ns, a.source),
        (0, 0, ActivationSource::RestApi)
    );
    // `raw` is the record, compact, and reads back to the same JSON.
    assert!(!a.raw.contains('\n') && !a.raw.contains(": "));
    assert_eq!(
        serde_json::from_str::<Value>(&a.raw).unwrap(),
        dataset("activation-rest.json")
    );
}

#[test]
fn the_stored_form_from_the_compatibility_tests() {
    let a = read("activation-stored.json", ActivationSource::JsonLines);
    assert_eq!(a.activation_id, BE97);
    assert_eq!(
        (a.namespace.as_str(), a.action.as_str(), a.path.as_str()),
        ("ns", "a", "ns2/a")
    );
    assert_eq!(
        (a.kind.as_str(), a.caused_by.as_str()),
        ("testkind", "sequence")
    );
    // The test's times are made up: `duration` is kept as given, not end − start.
    assert_eq!(
        (a.start_epoch_ms, a.end_epoch_ms, a.duration_ms),
        (1_570_013_740_005, 1_570_013_740_007, Some(123))
    );
    assert_eq!(
        (a.start_type, a.init_ms, a.wait_ms),
        (StartType::Cold, Some(10), Some(5))
    );
    assert_eq!(
        (a.status_code, a.memory_limit_mb, a.timeout_ms),
        (Some(0), Some(128), Some(1000))
    );
}

#[test]
fn every_form_of_be97_agrees_on_what_they_share() {
    let stored = read("activation-stored.json", ActivationSource::JsonLines);
    let error = read("activation-stored-error.json", ActivationSource::JsonLines);
    let event = read(
        "user-event-activation-body.json",
        ActivationSource::UserEvent,
    );
    let status = read(
        "user-event-activation-body-status.json",
        ActivationSource::UserEvent,
    );

    // Shared by all four: id, action, path, kind, start type, wait, init, duration, outcome,
    // memory limit, causedBy.
    let shared = |a: &ActivationRecord| {
        (
            a.activation_id.clone(),
            a.action.clone(),
            a.path.clone(),
            a.kind.clone(),
            a.start_type,
            a.wait_ms,
            a.init_ms,
            a.duration_ms,
            a.status_code,
            a.memory_limit_mb,
            a.caused_by.clone(),
        )
    };
    let want = (
        BE97.to_owned(),
        "a".to_owned(),
        "ns2/a".to_owned(),
        "testkind".to_owned(),
        StartType::Cold,
        Some(5),
        Some(10),
        Some(123),
        Some(0),
        Some(128),
        "sequence".to_owned(),
    );
    for a in [&stored, &error, &event, &status] {
        assert_eq!(shared(a), want, "{}", a.raw);
    }
    // The stored forms also share namespace, version, times and the time limit.
    let stored_only = |a: &ActivationRecord| {
        (
            a.namespace.clone(),
            a.version.clone(),
            a.start_epoch_ms,
            a.end_epoch_ms,
            a.timeout_ms,
        )
    };
    assert_eq!(stored_only(&stored), stored_only(&error));
    // A bare user-event body has no start, end or time limit, and only the action's own
    // namespace (the root of its path): here `ns2`, where the activation's is `ns`.
    for e in [&event, &status] {
        assert_eq!(
            (
                e.start_epoch_ms,
                e.end_epoch_ms,
                e.timeout_ms,
                e.version.as_str()
            ),
            (0, 0, None, "")
        );
        assert_eq!(e.namespace, "ns2");
        assert_eq!(e.source, ActivationSource::UserEvent);
    }
    assert_eq!(stored.namespace, "ns");
    // The error's status code 404 is the action's own (`userDefinedStatusCode`), not the
    // outcome: both stay in `raw`.
    assert!(error.raw.contains("404") && status.raw.contains("\"userDefinedStatusCode\":404"));
}

#[test]
fn a_user_event_envelope_gives_the_activation_namespace() {
    let envelope = json!({
        "source": "invoker0",
        "body": dataset("user-event-activation-body.json"),
        "subject": "anon-HfJWZZSG9YE38Y8DJbgp9Xn0YyN",
        "namespace": "ns",
        "userId": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502",
        "eventType": "Activation",
        "timestamp": 1_570_013_740_010u64
    });
    let a = from_json(&envelope, ActivationSource::UserEvent).unwrap();
    assert_eq!(
        (
            a.namespace.as_str(),
            a.action.as_str(),
            a.activation_id.as_str()
        ),
        ("ns", "a", BE97)
    );
    let mut metric = envelope.clone();
    metric["eventType"] = json!("Metric");
    let e = from_json(&metric, ActivationSource::UserEvent).unwrap_err();
    assert_eq!(
        e.to_string(),
        "field `eventType`: a \"Metric\" event, not an Activation"
    );
}

#[test]
fn json_lines_blank_lines_and_the_wsk_header() {
    let line = serde_json::to_string(&dataset("activation-stored.json")).unwrap();
    let a = from_line(&format!("  {line}\r"), ActivationSource::JsonLines)
        .unwrap()
        .unwrap();
    assert_eq!(a.activation_id, BE97);
    assert!(from_line("", ActivationSource::JsonLines)
        .unwrap()
        .is_none());
    assert!(from_line(" \t\r", ActivationSource::JsonLines)
        .unwrap()
        .is_none());
    let e = from_line(
        &format!("ok: got activation {BE97}"),
        ActivationSource::JsonLines,
    )
    .unwrap_err();
    assert!(matches!(e, ActivationError::WskHeader), "{e}");
    assert!(e.to_string().contains("jq -c"), "says what to do: {e}");
    // The pretty-printed record that follows the header is not one line.
    let e = from_line("{", ActivationSource::JsonLines).unwrap_err();
    assert!(e.to_string().starts_with("not JSON"), "{e}");
}

/// The stored fixture with `edit` applied.
fn stored_with(edit: impl FnOnce(&mut Value)) -> Result<ActivationRecord, ActivationError> {
    let mut v = dataset("activation-stored.json");
    edit(&mut v);
    from_json(&v, ActivationSource::JsonLines)
}

fn annotation(v: &mut Value, key: &str, value: Value) {
    let anns = v["annotations"].as_array_mut().unwrap();
    anns.retain(|a| a["key"] != key);
    anns.push(json!({"key": key, "value": value}));
}

#[test]
fn malformed_records_are_rejected_naming_the_field() {
    let msg = |r: Result<ActivationRecord, ActivationError>| r.unwrap_err().to_string();
    assert_eq!(
        msg(stored_with(
            |v| v["activationId"] = json!("be97c2fe-d5dc-43d0-97c2-fed5dc73d085")
        )),
        "field `activationId`: \"be97c2fe-d5dc-43d0-97c2-fed5dc73d085\" is not 32 hex digits"
    );
    assert_eq!(
        msg(stored_with(|v| v["activationId"] = json!("bad"))),
        "field `activationId`: \"bad\" is not 32 hex digits"
    );
    assert_eq!(
        msg(stored_with(|v| v["activationId"] = json!(7))),
        "field `activationId`: expected a string, got an integer"
    );
    assert_eq!(
        msg(stored_with(|v| {
            v.as_object_mut().unwrap().remove("start");
        })),
        "missing field `start`"
    );
    assert_eq!(
        msg(stored_with(|v| v["start"] = Value::Null)),
        "missing field `start`"
    );
    assert_eq!(
        msg(stored_with(|v| v["start"] = json!("1570013740005"))),
        "field `start`: expected a non-negative integer, got a string"
    );
    assert_eq!(
        msg(stored_with(|v| v["end"] = json!(-1))),
        "field `end`: expected a non-negative integer, got a negative integer"
    );
    assert_eq!(
        msg(stored_with(|v| v["end"] = json!(1_570_013_740_000u64))),
        "field `end`: 1570013740000 is before start 1570013740005"
    );
    assert_eq!(
        msg(stored_with(|v| v["duration"] = json!(1.5))),
        "field `duration`: expected a non-negative integer, got a fractional number"
    );
    assert_eq!(
        msg(stored_with(|v| v["namespace"] = json!(["ns"]))),
        "field `namespace`: expected a string, got an array"
    );
    assert_eq!(
        msg(stored_with(|v| v["response"]["statusCode"] = json!(9))),
        "field `response.statusCode`: 9 is not an outcome code (0 to 3)"
    );
    assert_eq!(
        msg(stored_with(|v| v["response"] = json!({"status": "fine", "success": true}))),
        "field `response.status`: \"fine\" is none of success, application error, action developer error, whisk internal error"
    );
    assert_eq!(
        msg(stored_with(|v| v["annotations"] = json!({"kind": "x"}))),
        "field `annotations`: expected an array, got an object"
    );
    assert_eq!(
        msg(stored_with(|v| v["annotations"][2] = json!({"value": 5}))),
        "missing field `annotations[2].key`"
    );
    assert_eq!(
        msg(stored_with(|v| annotation(v, "initTime", json!("10ms")))),
        "field `annotation initTime`: expected a non-negative integer, got a string"
    );
    assert_eq!(
        msg(stored_with(|v| annotation(
            v,
            "limits",
            json!({"memory": "128"})
        ))),
        "field `annotation limits.memory`: expected a non-negative integer, got a string"
    );
    assert_eq!(
        msg(stored_with(|v| annotation(v, "timeout", json!(1)))),
        "field `annotation timeout`: expected true or false, got an integer"
    );
    assert_eq!(
        msg(from_json(&json!([1]), ActivationSource::JsonLines)),
        "an activation record is a JSON object, not an array"
    );

    let body = |edit: &dyn Fn(&mut Value)| {
        let mut v = dataset("user-event-activation-body.json");
        edit(&mut v);
        from_json(&v, ActivationSource::UserEvent)
    };
    assert_eq!(
        msg(body(&|v| v["name"] = json!("a"))),
        "field `name`: \"a\" is not a path \"namespace/action\""
    );
    assert_eq!(
        msg(body(&|v| {
            v.as_object_mut().unwrap().remove("duration");
        })),
        "missing field `duration`"
    );
    assert_eq!(
        msg(body(&|v| v["conductor"] = json!("no"))),
        "field `conductor`: expected true or false, got a string"
    );
}

#[test]
fn edge_cases_of_valid_records() {
    // A package action's user event: OpenWhisk's split keeps the package with the action.
    let mut v = dataset("user-event-activation-body.json");
    v["name"] = json!("john@example.com_dev/utils/hello");
    v["initTime"] = json!(0);
    v["memory"] = json!(0);
    let a = from_json(&v, ActivationSource::UserEvent).unwrap();
    assert_eq!(
        (a.namespace.as_str(), a.action.as_str()),
        ("john@example.com_dev", "utils/hello")
    );
    assert_eq!(
        (a.start_type, a.init_ms, a.memory_limit_mb),
        (StartType::Warm, None, None),
        "0 means none"
    );

    // No duration: end − start, as OpenWhisk defines it; annotations may be absent.
    let a = stored_with(|v| {
        let o = v.as_object_mut().unwrap();
        o.remove("duration");
        o.remove("annotations");
        o.remove("version");
    })
    .unwrap();
    assert_eq!(
        (
            a.duration_ms,
            a.start_type,
            a.version.as_str(),
            a.path.as_str()
        ),
        (Some(2), StartType::Warm, "", "")
    );

    // A local platform may name the container.
    let a = stored_with(|v| annotation(v, "containerId", json!("pws-load-7-3"))).unwrap();
    assert_eq!(a.container_id, "pws-load-7-3");
    // Uppercase hex is still an activation id.
    let a = stored_with(|v| v["activationId"] = json!(BE97.to_uppercase())).unwrap();
    assert_eq!(a.activation_id, BE97.to_uppercase());
}
