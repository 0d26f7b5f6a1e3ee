//! The outbound-network gate: a request leaves only if its host is both requested by
//! the plugin and granted by the admin.

use super::outbound::{ConnectionPool, Timeouts};
use http::uri::Authority;
use std::fmt;
use std::sync::{Arc, Mutex};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// A host pattern as written in `describe()` and in grants:
/// `api.example.com` (ports 80 and 443), `api.example.com:8443`, `api.example.com:*`
/// (any port), `*.example.com` (any subdomain, ports 80 and 443), or `*` (any host, any
/// port: "whatever the admin grants").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortMatch {
    /// No port written: the default ports of http and https only.
    Default,
    Exact(u16),
    Any,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain (not `example.com` itself).
    Suffix(String),
}

/// A host pattern that cannot be parsed; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern `{pattern}`: {reason}")]
pub struct HostPatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl HostPattern {
    /// Parses a pattern; hosts are case-insensitive.
    pub fn parse(pattern: &str) -> Result<HostPattern, HostPatternError> {
        let err = |reason| HostPatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        let text = pattern.trim().to_ascii_lowercase();
        if text == "*" {
            return Ok(HostPattern {
                text,
                host: HostMatch::Any,
                port: PortMatch::Any,
            });
        }
        if text.contains("://") || text.contains('/') {
            return Err(err("give a host name (and optional port), not a URL"));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, "*")) if !host.contains(':') => (host.to_owned(), PortMatch::Any),
            Some((host, port)) if !host.contains(':') => {
                let port = port
                    .parse()
                    .map_err(|_| err("the port is not a number (or `*` for any port)"))?;
                (host.to_owned(), PortMatch::Exact(port))
            }
            _ => (text.clone(), PortMatch::Default),
        };
        let host = host.strip_suffix('.').unwrap_or(&host).to_owned();
        if host.is_empty() {
            return Err(err("the host is empty"));
        }
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(err("a wildcard must look like `*.example.com`"));
            }
            HostMatch::Suffix(format!(".{suffix}"))
        } else if host.contains('*') {
            return Err(err("a wildcard must look like `*.example.com`"));
        } else if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(err("a host may contain only letters, digits, `.` and `-`"));
        } else {
            HostMatch::Exact(host)
        };
        Ok(HostPattern { text, host, port })
    }

    /// Whether a request to `host:port` matches this pattern.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            PortMatch::Default => port == 80 || port == 443,
            PortMatch::Exact(p) => p == port,
            PortMatch::Any => true,
        };
        if !port_ok {
            return false;
        }
        let host = host.to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host);
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => h == host,
            HostMatch::Suffix(s) => host.ends_with(s.as_str()),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Which hosts one plugin version may reach.
#[derive(Clone, Debug, Default)]
pub struct HostPolicy {
    /// What the plugin asked for in `describe()`.
    pub requested: Vec<HostPattern>,
    /// What the admin granted.
    pub granted: Vec<HostPattern>,
    /// Closed for this call whatever was granted: its step declares `effects: none`.
    pub closed: bool,
}

/// Whether a call may use the network its plugin was granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// The hosts the admin granted, as usual.
    #[default]
    Granted,
    /// No host at all: the call's step declares that it has no effect outside Baton.
    Closed,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// The plugin did not request the host in `describe()`.
    NotRequested,
    /// The plugin requested it but the admin has not granted it.
    NotGranted,
    /// The URL carries `user@` credentials in its authority, which are never allowed.
    UserInfo,
    /// The network is closed for this call (`effects: none` on its step).
    Closed,
}

impl HostPolicy {
    /// `Ok` if `host:port` is both requested and granted, and the network is open.
    pub fn check(&self, host: &str, port: u16) -> Result<(), DenyReason> {
        if self.closed {
            return Err(DenyReason::Closed);
        }
        if !self.requested.iter().any(|p| p.matches(host, port)) {
            return Err(DenyReason::NotRequested);
        }
        if !self.granted.iter().any(|p| p.matches(host, port)) {
            return Err(DenyReason::NotGranted);
        }
        Ok(())
    }
}

/// A refused request, explained for the person reading the step's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub plugin: String,
    pub plugin_name: String,
    pub host: String,
    pub reason: DenyReason,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Denial {
            plugin,
            plugin_name,
            host,
            reason,
        } = self;
        match reason {
            DenyReason::NotGranted => write!(
                f,
                "plugin {plugin} may not reach host {host}: the admin has not granted it; \
                 allow it with `baton plugin grant {plugin_name} --host {host}` (or \
                 `--grant-host {host}` when invoking a local .wasm)"
            ),
            DenyReason::UserInfo => write!(
                f,
                "plugin {plugin} may not send a request to {host}: credentials in the URL \
                 (`user@host`) are refused; send them in a header instead"
            ),
            DenyReason::Closed => write!(
                f,
                "plugin {plugin} may not reach host {host}: the step declares `effects: none`, \
                 so its calls run with the network closed; remove that line from the step if \
                 the action needs the network"
            ),
            DenyReason::NotRequested => write!(
                f,
                "plugin {plugin} may not reach host {host}: the plugin does not request it in \
                 describe() (capabilities.hosts), so no grant can allow it"
            ),
        }
    }
}

/// The `wasi:http` hooks of one call: checks every request against the policy and keeps
/// the refusals so the call's result can explain them.
pub(crate) struct NetGuard {
    pub plugin: Arc<str>,
    pub plugin_name: Arc<str>,
    pub policy: Arc<HostPolicy>,
    pub denials: Arc<Mutex<Vec<Denial>>>,
    pub request_timeout: std::time::Duration,
    pub pool: Arc<ConnectionPool>,
}

impl WasiHttpHooks for NetGuard {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        drop(fut);
        let authority = request.uri().authority().cloned();
        let is_https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
        if let Err(denial) = self.admit(authority.as_ref(), is_https) {
            self.denials.lock().expect("denials lock").push(denial);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // Bound every phase of the request so a silent server cannot hold a call past
        // its deadline; the guest may ask for shorter timeouts.
        let timeouts = Timeouts::capped(options, self.request_timeout);
        let pool = self.pool.clone();
        Box::new(async move {
            let response = pool.send(request, timeouts).await?;
            // The connection is driven by its own task, so nothing is left to await.
            let io = async { Ok(()) };
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

impl NetGuard {
    fn admit(&self, authority: Option<&Authority>, is_https: bool) -> Result<(), Denial> {
        // `user@host` would be checked as `host` but connected to as the whole string.
        if let Some(a) = authority.filter(|a| a.as_str().contains('@')) {
            return Err(Denial {
                plugin: self.plugin.to_string(),
                plugin_name: self.plugin_name.to_string(),
                host: a.as_str().to_owned(),
                reason: DenyReason::UserInfo,
            });
        }
        let (host, port) = match authority {
            Some(a) => (
                a.host().trim_matches(['[', ']']).to_owned(),
                a.port_u16().unwrap_or(if is_https { 443 } else { 80 }),
            ),
            None => (String::new(), 0),
        };
        self.policy.check(&host, port).map_err(|reason| Denial {
            plugin: self.plugin.to_string(),
            plugin_name: self.plugin_name.to_string(),
            host: match authority.and_then(|a| a.port_u16()) {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            },
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(requested: &[&str], granted: &[&str]) -> HostPolicy {
        let parse = |v: &[&str]| v.iter().map(|p| HostPattern::parse(p).unwrap()).collect();
        HostPolicy {
            requested: parse(requested),
            granted: parse(granted),
            closed: false,
        }
    }

    #[test]
    fn a_closed_network_refuses_even_granted_hosts() {
        let mut p = policy(&["api.example.com"], &["api.example.com"]);
        p.closed = true;
        assert_eq!(p.check("api.example.com", 443), Err(DenyReason::Closed));
    }

    #[test]
    fn needs_both_request_and_grant() {
        let p = policy(&["api.example.com"], &["api.example.com"]);
        assert_eq!(p.check("api.example.com", 443), Ok(()));
        assert_eq!(p.check("API.example.com", 80), Ok(()));
        assert_eq!(p.check("evil.com", 443), Err(DenyReason::NotRequested));
        let p = policy(&["*"], &["api.example.com:8443"]);
        assert_eq!(p.check("api.example.com", 8443), Ok(()));
        assert_eq!(p.check("api.example.com", 443), Err(DenyReason::NotGranted));
        // No port means the default ports only; `:*` means any.
        let p = policy(&["*"], &["api.example.com", "db.example.com:*"]);
        assert_eq!(
            p.check("api.example.com", 6379),
            Err(DenyReason::NotGranted)
        );
        assert_eq!(p.check("api.example.com.", 443), Ok(()));
        assert_eq!(p.check("db.example.com", 6379), Ok(()));
        let p = policy(&["api.example.com"], &["*"]);
        assert_eq!(
            p.check("other.example.com", 443),
            Err(DenyReason::NotRequested)
        );
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let p = HostPattern::parse("*.example.com").unwrap();
        assert!(p.matches("a.example.com", 443));
        assert!(p.matches("a.b.example.com", 80));
        assert!(!p.matches("example.com", 443));
        assert!(!p.matches("badexample.com", 443));
    }

    #[test]
    fn rejects_malformed_patterns_with_a_reason() {
        for (bad, why) in [
            ("https://x.com", "not a URL"),
            ("x.com:http", "port is not a number"),
            ("a*.com", "wildcard"),
            ("", "empty"),
            ("x y", "letters"),
        ] {
            let e = HostPattern::parse(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn denial_names_plugin_host_and_grant() {
        let d = Denial {
            plugin: "http@0.1.0".into(),
            plugin_name: "http".into(),
            host: "api.example.com".into(),
            reason: DenyReason::NotGranted,
        };
        let text = d.to_string();
        assert!(text.contains("http@0.1.0"));
        assert!(text.contains("baton plugin grant http --host api.example.com"));
    }

    #[test]
    fn credentials_in_the_authority_are_refused() {
        let guard = NetGuard {
            plugin: "http@0.1.0".into(),
            plugin_name: "http".into(),
            policy: Arc::new(policy(&["*"], &["api.example.com"])),
            denials: Default::default(),
            request_timeout: std::time::Duration::from_secs(1),
            pool: Default::default(),
        };
        let sneaky: Authority = "evil@api.example.com".parse().unwrap();
        let denial = guard.admit(Some(&sneaky), true).unwrap_err();
        assert_eq!(denial.reason, DenyReason::UserInfo);
        assert!(denial.to_string().contains("credentials in the URL"));
        let plain: Authority = "api.example.com".parse().unwrap();
        assert!(guard.admit(Some(&plain), true).is_ok());
    }
}
