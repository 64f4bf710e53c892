//! `~/.wskprops`, the `wsk` CLI's properties: one `KEY=VALUE` a line (`AUTH`, `APIHOST`,
//! `NAMESPACE`, `APIVERSION`, …); blank lines and `#` comments are ignored, the last of a
//! repeated key wins, keys and values are trimmed.
//!
//! `AUTH` is `uuid:key`, sent as HTTP basic authentication. The key is a password: neither
//! [`Credentials`] nor [`Wskprops`] show it in `Debug` or `Display`, and other keys that may
//! hold secrets (`APIGW_ACCESS_TOKEN`, …) are shown by name only.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WskpropsError {
    #[error("line {line}: expected KEY=VALUE")]
    NotKeyValue { line: usize },
    #[error("line {line}: empty key before `=`")]
    EmptyKey { line: usize },
    #[error("line {line}: AUTH: {why}")]
    BadAuth { line: usize, why: String },
    /// [`Credentials::from_auth`] outside a file.
    #[error("credentials: {0}")]
    Auth(String),
    #[error("no credentials file given, and no HOME for ~/.wskprops")]
    NoHome,
    #[error("cannot read OpenWhisk credentials {}: {error}", path.display())]
    Read { path: PathBuf, error: String },
    #[error("in OpenWhisk credentials {}: {error}", path.display())]
    In {
        path: PathBuf,
        error: Box<WskpropsError>,
    },
    #[error("{} has no AUTH= line", path.display())]
    NoAuth { path: PathBuf },
    #[error("API host {host:?}: {why}")]
    ApiHost { host: String, why: &'static str },
}

/// An API host as `wsk` takes it — `host[:port]` (HTTPS, as `wsk` assumes) or an `http://` or
/// `https://` URL — as a base URL without a trailing slash.
pub fn api_base(host: &str) -> Result<String, WskpropsError> {
    let h = host.trim().trim_end_matches('/');
    let bad = |why| WskpropsError::ApiHost {
        host: host.to_owned(),
        why,
    };
    if h.is_empty() {
        return Err(bad("empty"));
    }
    let lower = h.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(h.to_owned())
    } else if h.contains("://") {
        Err(bad("only http:// and https:// are supported"))
    } else {
        Ok(format!("https://{h}"))
    }
}

/// The credentials of a `.wskprops` file (`file`, else `~/.wskprops`), read as `wsk` does:
/// the file, its properties, and its AUTH credentials, which must be there.
pub fn load(file: Option<&Path>) -> Result<(PathBuf, Wskprops, Credentials), WskpropsError> {
    let path = match file {
        Some(p) => p.to_owned(),
        None => {
            PathBuf::from(std::env::var_os("HOME").ok_or(WskpropsError::NoHome)?).join(".wskprops")
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| WskpropsError::Read {
        path: path.clone(),
        error: e.to_string(),
    })?;
    let props = Wskprops::parse(&text).map_err(|e| WskpropsError::In {
        path: path.clone(),
        error: Box::new(e),
    })?;
    let creds = props
        .auth
        .clone()
        .ok_or_else(|| WskpropsError::NoAuth { path: path.clone() })?;
    Ok((path, props, creds))
}

/// The properties `pws` uses, and the names of the others.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Wskprops {
    pub auth: Option<Credentials>,
    /// `APIHOST` as written: `host[:port]` or a URL.
    pub apihost: Option<String>,
    pub namespace: Option<String>,
    pub apiversion: Option<String>,
    /// Every other `KEY=VALUE`, in file order (values may be secrets: not in `Debug`).
    pub other: Vec<(String, String)>,
}

impl Wskprops {
    pub fn parse(text: &str) -> Result<Self, WskpropsError> {
        let mut p = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim_start_matches('\u{feff}').trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (k, v) = l
                .split_once('=')
                .ok_or(WskpropsError::NotKeyValue { line })?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(WskpropsError::EmptyKey { line });
            }
            // An empty value unsets, as `wsk property unset` leaves `KEY=`.
            let val = (!v.is_empty()).then(|| v.to_owned());
            match k {
                "AUTH" => {
                    p.auth = val
                        .map(|a| Credentials::from_auth(&a))
                        .transpose()
                        .map_err(|e| WskpropsError::BadAuth {
                            line,
                            why: match e {
                                WskpropsError::Auth(why) => why,
                                other => other.to_string(),
                            },
                        })?
                }
                "APIHOST" => p.apihost = val,
                "NAMESPACE" => p.namespace = val,
                "APIVERSION" => p.apiversion = val,
                _ => {
                    p.other.retain(|(o, _)| o != k);
                    p.other.push((k.to_owned(), v.to_owned()));
                }
            }
        }
        Ok(p)
    }

    /// The API's base URL: `APIHOST` without a trailing `/`, with `https://` put in front when
    /// it has no scheme, as `wsk` does. `None` without an `APIHOST`.
    pub fn api_base(&self) -> Option<String> {
        api_base(self.apihost.as_deref()?).ok()
    }

    /// The value of another key, e.g. `APIGW_ACCESS_TOKEN`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.other
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for Wskprops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let others: Vec<&str> = self.other.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Wskprops")
            .field("auth", &self.auth)
            .field("apihost", &self.apihost)
            .field("namespace", &self.namespace)
            .field("apiversion", &self.apiversion)
            .field("other_keys", &others)
            .finish()
    }
}

/// OpenWhisk credentials `uuid:key`. `Debug` and `Display` show the uuid only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    uuid: String,
    key: String,
}

impl Credentials {
    /// From `AUTH`'s value, `uuid:key`: split at the first `:`, both parts non-empty, no
    /// whitespace or control characters (they would corrupt the header).
    pub fn from_auth(s: &str) -> Result<Self, WskpropsError> {
        let s = s.trim();
        let (uuid, key) = s
            .split_once(':')
            .ok_or_else(|| WskpropsError::Auth("expected uuid:key, found no `:`".into()))?;
        if uuid.is_empty() || key.is_empty() {
            return Err(WskpropsError::Auth(
                "expected uuid:key, one of them is empty".into(),
            ));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(WskpropsError::Auth(
                "whitespace or a control character in uuid:key".into(),
            ));
        }
        Ok(Self {
            uuid: uuid.to_owned(),
            key: key.to_owned(),
        })
    }

    /// The `Authorization` header's value: `Basic base64(uuid:key)`.
    pub fn basic_auth_header(&self) -> String {
        format!(
            "Basic {}",
            base64(format!("{}:{}", self.uuid, self.key).as_bytes())
        )
    }

    /// The user's id (not secret on its own).
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The secret half; for handing to a client, never for printing.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("uuid", &self.uuid)
            .field("key", &"<hidden>")
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:<hidden>", self.uuid)
    }
}

/// Standard base64 with padding (RFC 4648 §4), for one header: not worth a dependency.
fn base64(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str =
        "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
    const KEY: &str = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

    #[test]
    fn base64_matches_rfc4648_test_vectors() {
        // RFC 4648 §10.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc, "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn parses_a_wskprops_file_and_builds_the_header() {
        let text = format!(
            "# written by wsk\n\nAPIHOST=openwhisk.example.org:443\r\nAUTH = {AUTH}\nNAMESPACE=guest\nAPIVERSION=v1\nAPIGW_ACCESS_TOKEN=secret-token\n"
        );
        let p = Wskprops::parse(&text).unwrap();
        assert_eq!(p.apihost.as_deref(), Some("openwhisk.example.org:443"));
        assert_eq!(p.namespace.as_deref(), Some("guest"));
        assert_eq!(p.apiversion.as_deref(), Some("v1"));
        assert_eq!(p.get("APIGW_ACCESS_TOKEN"), Some("secret-token"));
        assert_eq!(
            p.api_base().as_deref(),
            Some("https://openwhisk.example.org:443")
        );
        let c = p.auth.as_ref().unwrap();
        assert_eq!(c.uuid(), "23bc46b1-71f6-4ed5-8c54-816aa4f8c502");
        assert_eq!(c.key(), KEY);
        // The same as `base64.b64encode` in Python gives for this (OpenWhisk's guest) key.
        assert_eq!(
            c.basic_auth_header(),
            "Basic MjNiYzQ2YjEtNzFmNi00ZWQ1LThjNTQtODE2YWE0ZjhjNTAyOjEyM3pPM3haQ0xyTU42djJCS0sxZFhZRnBYbFBrY2NPRnFtMTJDZEFzTWdSVTRWck5aOWx5R1ZDR3VNREdJd1A="
        );
    }

    #[test]
    fn api_base_keeps_a_scheme_and_adds_https_otherwise() {
        let with = |h: &str| Wskprops {
            apihost: Some(h.into()),
            ..Wskprops::default()
        };
        assert_eq!(
            with("http://172.17.0.1:3233/").api_base().as_deref(),
            Some("http://172.17.0.1:3233")
        );
        assert_eq!(
            with("HTTPS://ow.example").api_base().as_deref(),
            Some("HTTPS://ow.example")
        );
        assert_eq!(
            with("10.0.0.5").api_base().as_deref(),
            Some("https://10.0.0.5")
        );
        assert_eq!(with("  ").api_base(), None);
        assert_eq!(with("ftp://x").api_base(), None, "only http(s)");
        assert!(api_base("ftp://x")
            .unwrap_err()
            .to_string()
            .contains("only http://"));
        assert!(api_base("").unwrap_err().to_string().contains("empty"));
        assert_eq!(Wskprops::default().api_base(), None);
    }

    #[test]
    fn the_key_never_shows_in_debug_or_display() {
        let p = Wskprops::parse(&format!(
            "AUTH={AUTH}\nAPIGW_ACCESS_TOKEN=tok-5ecret\nAPIHOST=h"
        ))
        .unwrap();
        let c = p.auth.clone().unwrap();
        for shown in [
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{c}"),
            format!("{p:?}"),
            format!("{p:#?}"),
        ] {
            assert!(
                !shown.contains(KEY) && !shown.contains("123zO3x"),
                "{shown}"
            );
            assert!(!shown.contains("tok-5ecret"), "{shown}");
            assert!(!shown.contains(&c.basic_auth_header()[6..]), "{shown}");
        }
        assert_eq!(
            format!("{c}"),
            "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:<hidden>"
        );
        assert!(format!("{p:?}").contains("APIGW_ACCESS_TOKEN"));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            Wskprops::parse("APIHOST=h\n\njust words\n"),
            Err(WskpropsError::NotKeyValue { line: 3 })
        );
        assert_eq!(
            Wskprops::parse("# c\n=v"),
            Err(WskpropsError::EmptyKey { line: 2 })
        );
        let e = Wskprops::parse("APIHOST=h\nAUTH=no-colon-here\n").unwrap_err();
        assert!(matches!(e, WskpropsError::BadAuth { line: 2, .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "line 2: AUTH: expected uuid:key, found no `:`"
        );
        let e = Wskprops::parse("AUTH=uuid:\n").unwrap_err();
        assert!(matches!(e, WskpropsError::BadAuth { line: 1, .. }), "{e:?}");
        // The message about a bad AUTH never repeats the value.
        let e = Wskprops::parse("AUTH=u:k3y with space\n").unwrap_err();
        assert!(!e.to_string().contains("k3y"), "{e}");
        assert!(Credentials::from_auth("someone:else").is_ok());
    }

    #[test]
    fn empty_values_unset_and_the_last_key_wins() {
        let p = Wskprops::parse(&format!(
            "NAMESPACE=a\nNAMESPACE=b\nAUTH={AUTH}\nAUTH=\nX=1\nX=2"
        ))
        .unwrap();
        assert_eq!(p.namespace.as_deref(), Some("b"));
        assert!(p.auth.is_none());
        assert_eq!(p.other, vec![("X".to_owned(), "2".to_owned())]);
    }
}
