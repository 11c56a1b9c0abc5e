//! What is secret, decided by where a value is used: the password of a URL's
//! userinfo (`scheme://user:password@host`), credential options of storage
//! profiles, and (in [`super::template`]) the variables a job declares secret.

use std::sync::OnceLock;

use regex::Regex;

/// `scheme://user:password@` anywhere in a text (the password may be empty).
fn userinfo() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):([^/\s@]*)@").expect("valid regex")
    })
}

/// The password in the userinfo of `url`, as written (percent-encoded or not).
pub fn url_password(url: &str) -> Option<String> {
    let c = userinfo().captures(url)?;
    let pw = c.get(2)?.as_str();
    (!pw.is_empty()).then(|| pw.to_string())
}

/// `url` with the password of its userinfo shown as `***`.
pub fn display_url(url: &str) -> String {
    redact_urls(url)
}

/// `text` with the password of every URL in it shown as `***`; the decoded form
/// of each password is replaced too (drivers print URLs decoded).
pub fn redact_urls(text: &str) -> String {
    let mut decoded = Vec::new();
    for c in userinfo().captures_iter(text) {
        if let Some(pw) = c.get(2).map(|m| m.as_str()).filter(|p| !p.is_empty()) {
            let d = url::form_urlencoded::parse(format!("x={pw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if d.len() >= 4 && d != pw {
                decoded.push(d);
            }
        }
    }
    let mut out = userinfo().replace_all(text, "$1:***@").into_owned();
    for d in decoded {
        out = out.replace(&d, "***");
    }
    out
}

/// Whether a storage profile option holds a credential (its value is then secret):
/// keys, secrets, tokens, passwords, SAS and connection strings, service-account
/// credentials.
pub fn is_credential_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "token",
        "sas",
        "connection_string",
        "service_account_key",
        "application_credentials",
        "access_key",
        "account_key",
        "master_key",
    ]
    .iter()
    .any(|w| k.contains(w))
        && !k.ends_with("_id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_found_and_hidden() {
        assert_eq!(
            url_password("http://user:pa%40ss@host/x").as_deref(),
            Some("pa%40ss")
        );
        assert_eq!(url_password("http://user@host/x"), None);
        assert_eq!(url_password("s3://bucket/a:b@c"), None);
        assert_eq!(
            display_url("https://u:p@lineage.local:5000/api"),
            "https://u:***@lineage.local:5000/api"
        );
        assert_eq!(
            redact_urls(
                "error sending request for url (http://me:hunter22@h/): refused; http://me:hunter22@h/"
            ),
            "error sending request for url (http://me:***@h/): refused; http://me:***@h/"
        );
        assert_eq!(redact_urls("no url here: a:b@c"), "no url here: a:b@c");
    }

    #[test]
    fn credential_keys() {
        for k in [
            "aws_secret_access_key",
            "AWS_SESSION_TOKEN",
            "azure_storage_account_key",
            "azure_storage_sas_key",
            "google_service_account_key",
            "password",
        ] {
            assert!(is_credential_key(k), "{k}");
        }
        for k in [
            "aws_access_key_id",
            "aws_region",
            "aws_endpoint",
            "azure_storage_account_name",
        ] {
            assert!(!is_credential_key(k), "{k}");
        }
    }
}
