//! A tenant's egress allow-list: which scheme, host and port its handlers may call.
//!
//! An entry is `api.example.com` (https on 443), `*.example.org` (any subdomain, not the
//! domain itself), `hooks.example.net:8443` (that port only), `http://legacy.example.com`
//! (plain HTTP, port 80), an IP address (`203.0.113.7`, `[2001:db8::1]`), or `*` (any host;
//! the address checks still apply). Names are ASCII (IDNs in their `xn--` form) and matched
//! case-insensitively; the list is empty, so nothing is allowed, until the operator sets it.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Most entries a tenant's list may hold.
pub const MAX_ENTRIES: usize = 256;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP: only where the entry says `http://`.
    Http,
    /// TLS, the default.
    Https,
}

impl Scheme {
    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.suffix`: stored with its leading dot.
    Subdomains(String),
    Address(IpAddr),
}

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    scheme: Scheme,
    host: HostPattern,
    port: Option<u16>,
    /// The entry as given, normalised (lower case), for showing back.
    text: String,
}

/// Where one outbound request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Its scheme.
    pub scheme: Scheme,
    /// A lower-case name, or an address.
    pub host: DestinationHost,
    /// The port, the scheme's default filled in.
    pub port: u16,
}

/// A destination's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationHost {
    /// A DNS name, resolved by the connector (and its addresses checked there).
    Name(String),
    /// An address given literally.
    Address(IpAddr),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            DestinationHost::Name(name) => write!(f, "{name}:{}", self.port),
            DestinationHost::Address(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            DestinationHost::Address(v4) => write!(f, "{v4}:{}", self.port),
        }
    }
}

impl Destination {
    /// Where `url` goes. `raw` is the URL as the guest wrote it: an IPv4 address in any form
    /// but dotted decimal (`2130706433`, `0177.0.0.1`, `0x7f.1`), which the URL standard
    /// accepts and other parsers read differently, is refused rather than guessed at.
    pub fn of(url: &url::Url, raw: &str) -> Result<Destination, Unusable> {
        let scheme = match url.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => {
                return Err(Unusable::Malformed(format!(
                    "only http and https URLs can be fetched, not {other}:"
                )));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Unusable::Malformed(
                "a URL with credentials in it is not sent; use an Authorization header".into(),
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => DestinationHost::Name(name.to_ascii_lowercase()),
            Some(url::Host::Ipv4(v4)) => {
                if let Some(written) = raw_host(raw).filter(|written| *written != v4.to_string()) {
                    return Err(Unusable::AmbiguousAddress(format!(
                        "egress to {written} is not allowed: an IPv4 address in a non-standard \
                         form (it means {v4})"
                    )));
                }
                DestinationHost::Address(IpAddr::V4(v4))
            }
            Some(url::Host::Ipv6(v6)) => DestinationHost::Address(IpAddr::V6(v6)),
            None => return Err(Unusable::Malformed("the URL has no host".into())),
        };
        Ok(Destination {
            scheme,
            host,
            port: url.port().unwrap_or(scheme.default_port()),
        })
    }
}

/// Why a URL cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// Not an http(s) URL with a host, or one carrying credentials.
    Malformed(String),
    /// An IPv4 address written in a form parsers disagree on: refused like a forbidden address.
    AmbiguousAddress(String),
}

/// The host part of a URL as written: between `//` (after any `user@`) and the port, path,
/// query or fragment; lower-cased.
fn raw_host(raw: &str) -> Option<String> {
    let rest = raw.trim().split_once("//")?.1;
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next()?
    } else {
        host_port.split(':').next()?
    };
    Some(host.to_ascii_lowercase())
}

/// A tenant's list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

impl AllowList {
    /// Parses the operator's entries; the first bad one is named in the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, String> {
        if entries.len() > MAX_ENTRIES {
            return Err(format!("at most {MAX_ENTRIES} egress entries"));
        }
        let entries = entries
            .iter()
            .map(|e| {
                parse_entry(e.as_ref())
                    .map_err(|why| format!("egress entry {:?}: {why}", e.as_ref()))
            })
            .collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// The entries, normalised, as the admin API shows them.
    pub fn entries(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.text.clone()).collect()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some entry allows `destination`.
    pub fn allows(&self, destination: &Destination) -> bool {
        self.entries.iter().any(|entry| {
            entry.scheme == destination.scheme
                && entry.port.unwrap_or(entry.scheme.default_port()) == destination.port
                && match (&entry.host, &destination.host) {
                    (HostPattern::Any, _) => true,
                    (HostPattern::Exact(name), DestinationHost::Name(host)) => name == host,
                    (HostPattern::Subdomains(suffix), DestinationHost::Name(host)) => {
                        host.len() > suffix.len() && host.ends_with(suffix.as_str())
                    }
                    (HostPattern::Address(allowed), DestinationHost::Address(ip)) => allowed == ip,
                    _ => false,
                }
        })
    }
}

/// An entry of `*` may carry a scheme but no port restriction beyond the default one; ports
/// are as for any entry.
fn parse_entry(text: &str) -> Result<Entry, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (scheme, rest) = if let Some(rest) = lower.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = lower.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if lower.contains("://") {
        return Err("only http:// and https:// can be allowed".into());
    } else {
        (Scheme::Https, lower.as_str())
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err("expected a host, optionally with :port, and nothing else".into());
    }
    let (host, port) = split_port(rest)?;
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        HostPattern::Address(IpAddr::V6(v6.parse().map_err(|_| "not an IPv6 address")?))
    } else if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
        HostPattern::Address(IpAddr::V4(v4))
    } else if let Some(suffix) = host.strip_prefix("*.") {
        valid_name(suffix)?;
        HostPattern::Subdomains(format!(".{suffix}"))
    } else {
        valid_name(host)?;
        HostPattern::Exact(host.to_string())
    };
    Ok(Entry {
        scheme,
        host,
        port,
        text: if scheme == Scheme::Http {
            format!("http://{rest}")
        } else {
            rest.to_string()
        },
    })
}

fn split_port(rest: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = match rest.rfind(':') {
        Some(at) if !rest[at..].contains(']') => (&rest[..at], Some(&rest[at + 1..])),
        _ => (rest, None),
    };
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(format!("bad port {p:?}")),
        })
        .transpose()?;
    Ok((host, port))
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens, 1-63 bytes each,
/// 253 at most in all, and not all digits (that would be an address in disguise).
fn valid_name(name: &str) -> Result<(), String> {
    let labels_ok = name.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if name.len() > 253 || !labels_ok {
        return Err("not a host name (ASCII letters, digits, '-' and '.'; IDNs as xn--)".into());
    }
    if name
        .split('.')
        .next_back()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not a host name: write an address as four decimal numbers".into());
    }
    Ok(())
}

/// The allow-list as the admin API takes and shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSpec {
    /// The entries.
    pub allow: Vec<String>,
}

#[cfg(test)]
mod tests;
