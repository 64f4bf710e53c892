//! An activation record as OpenWhisk serialises it (`WhiskActivation` in the controller).
//!
//! Field names are OpenWhisk's. Times are milliseconds since the epoch; on a cold start OpenWhisk
//! moves `start` back by the `initTime` annotation, so `duration` = init + run. The stored form
//! has `response.statusCode` (0 success, 1 application error, 2 action developer error,
//! 3 whisk internal error); the REST form has `response.status` (`success`,
//! `application error`, `action developer error`, `whisk internal error`) and `success`
//! instead. Both deserialize into [`ActivationDoc`]; it serializes as the stored form.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationDoc {
    pub activation_id: String,
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub publish: bool,
    /// ms since the epoch; on a cold start, the start of init.
    pub start: u64,
    /// ms since the epoch; 0 while running.
    #[serde(default)]
    pub end: u64,
    /// `end - start` (init included on a cold start), when ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(default)]
    pub response: Response,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    #[serde(default)]
    pub logs: Vec<String>,
    /// The id of the activation that caused this one (sequences, conductors), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// Stored form: 0 success … 3 whisk internal error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u64>,
    /// REST form: `success`, `application error`, `action developer error`,
    /// `whisk internal error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// REST form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(default)]
    pub result: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub key: String,
    pub value: Value,
}

/// The four outcomes, in OpenWhisk's codes (`ActivationResponse`).
pub const STATUS_NAMES: [&str; 4] = [
    "success",
    "application error",
    "action developer error",
    "whisk internal error",
];

impl ActivationDoc {
    /// The value of annotation `key`, if present.
    pub fn annotation(&self, key: &str) -> Option<&Value> {
        self.annotations
            .iter()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    /// Sets annotation `key`, replacing an earlier value.
    pub fn set_annotation(&mut self, key: &str, value: Value) {
        match self.annotations.iter_mut().find(|a| a.key == key) {
            Some(a) => a.value = value,
            None => self.annotations.push(Annotation {
                key: key.to_owned(),
                value,
            }),
        }
    }

    /// The outcome code, from either form.
    pub fn status_code(&self) -> Option<u64> {
        self.response.status_code.or_else(|| {
            let s = self.response.status.as_deref()?;
            STATUS_NAMES.iter().position(|n| *n == s).map(|i| i as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_form_round_trips_and_annotations_are_found() {
        let mut d = ActivationDoc {
            activation_id: "be97c2fed5dc43d097c2fed5dc73d085".into(),
            namespace: "guest".into(),
            name: "hello".into(),
            subject: "guest".into(),
            version: "0.0.1".into(),
            publish: false,
            start: 1_570_013_740_005,
            end: 1_570_013_740_128,
            duration: Some(123),
            response: Response {
                status_code: Some(0),
                result: json!({"res": 1}),
                ..Response::default()
            },
            annotations: Vec::new(),
            logs: Vec::new(),
            cause: None,
        };
        d.set_annotation("initTime", json!(10));
        d.set_annotation("initTime", json!(11));
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains("\"activationId\":\"be97c2fed5dc43d097c2fed5dc73d085\""));
        assert!(text.contains("\"statusCode\":0") && !text.contains("\"success\""));
        let back: ActivationDoc = serde_json::from_str(&text).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.annotation("initTime"), Some(&json!(11)));
        assert_eq!(back.status_code(), Some(0));
    }

    #[test]
    fn rest_status_names_give_the_stored_codes() {
        let mut r = Response {
            status: Some("action developer error".into()),
            ..Response::default()
        };
        let mut d: ActivationDoc = serde_json::from_value(json!({
            "activationId": "c7bb1339cb4f40e3a6ccead6c99f804e", "namespace": "ns",
            "name": "a", "start": 1, "end": 2
        }))
        .unwrap();
        d.response = r.clone();
        assert_eq!(d.status_code(), Some(2));
        r.status = Some("nonsense".into());
        d.response = r;
        assert_eq!(d.status_code(), None);
    }
}
