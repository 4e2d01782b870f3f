//! The SSRF guard: which webhook URLs kopek may call. A URL is vetted twice — when an
//! endpoint is registered and before every send — and both times after resolving its
//! host: every address the name resolves to must be public, and the connection is then
//! made to one of exactly those addresses ([`Vetted::addrs`]), so a name that resolves
//! elsewhere between the check and the connect (DNS rebinding) gains nothing.
//!
//! Resolution is the caller's (a real resolver when sending, a stub in tests): this
//! module only reads URLs and judges addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest URL an endpoint may have (Stripe's limit).
pub const URL_MAX: usize = 2_048;

/// Host names that are never public whatever they resolve to: loopback names and cloud
/// metadata services.
const FORBIDDEN_NAMES: &[&str] = &[
    "localhost",
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// A URL read for calling: its scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// Lowercase, without a trailing dot; an IPv6 literal without brackets.
    pub host: String,
    pub port: u16,
    /// The host was an IP address, not a name to resolve.
    pub literal: Option<IpAddr>,
    /// What the request asks for: the path and query (`/` when the URL has none), without
    /// the fragment.
    pub path: String,
}

/// A URL that may be called, and the addresses it may be called at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted {
    pub target: Target,
    pub addrs: Vec<SocketAddr>,
}

/// What an operator allows beyond the public internet, for development: host names
/// (exactly, case-insensitively) and address ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allowed_hosts: Vec<String>,
    pub allowed_ranges: Vec<(IpAddr, u8)>,
}

impl Policy {
    fn allows_host(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }

    fn allows_addr(&self, ip: IpAddr) -> bool {
        self.allowed_ranges
            .iter()
            .any(|&(net, prefix)| in_range(ip, net, prefix))
    }
}

/// Reads an address range as `address/prefix` (`127.0.0.0/8`, `fd00::/8`); an address
/// alone is itself.
pub fn parse_range(text: &str) -> Result<(IpAddr, u8), String> {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (text, None),
    };
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("{text} is not an address range such as 127.0.0.0/8"))?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("{text}: the prefix length must be 0 to {bits}"))?,
        None => bits,
    };
    Ok((ip, prefix))
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a URL kopek can call, and why.
    Malformed(&'static str),
    /// Its host is a name that is never public.
    ForbiddenName(String),
    /// It resolves to (or is) an address that is not public, of this kind.
    ForbiddenAddress(IpAddr, &'static str),
    /// Its host resolves to no address.
    Unresolved(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(why) => write!(f, "the URL is not usable: {why}"),
            Refusal::ForbiddenName(host) => {
                write!(
                    f,
                    "{host} is not a public host; webhooks go to public addresses only"
                )
            }
            Refusal::ForbiddenAddress(ip, kind) => write!(
                f,
                "the URL leads to {ip}, a {kind} address; webhooks go to public addresses only"
            ),
            Refusal::Unresolved(host) => write!(f, "{host} does not resolve to any address"),
        }
    }
}

/// Reads `url` as a webhook URL: `http` or `https`, a host spelled plainly, no user or
/// password. Odd spellings of addresses that some resolvers accept (`2130706433`,
/// `0177.0.0.1`, `0x7f.1`, `127.1`) are refused rather than interpreted.
pub fn parse(url: &str) -> Result<Target, Refusal> {
    use Refusal::Malformed;
    if url.len() > URL_MAX {
        return Err(Malformed("it is longer than 2048 characters"));
    }
    if url
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return Err(Malformed(
            "it contains spaces, backslashes or control characters",
        ));
    }
    let (scheme, rest) = url.split_once("://").ok_or(Malformed("it has no scheme"))?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(Malformed("only http and https URLs are called")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let path = request_path(&rest[authority.len()..]);
    if authority.contains('@') {
        return Err(Malformed("it carries a user or password"));
    }
    if authority.contains('%') {
        return Err(Malformed("its host is percent-encoded"));
    }
    let (host, port) = split_port(authority)?;
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or(Malformed("its port is not 1 to 65535"))?,
        None if https => 443,
        None => 80,
    };
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: Ipv6Addr = v6
            .parse()
            .map_err(|_| Malformed("its IPv6 address is invalid"))?;
        return Ok(Target {
            https,
            host: ip.to_string(),
            port,
            literal: Some(IpAddr::V6(ip)),
            path,
        });
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() {
        return Err(Malformed("it has no host"));
    }
    let looks_numeric = host
        .split('.')
        .next_back()
        .is_some_and(|label| label.starts_with(|c: char| c.is_ascii_digit()));
    if looks_numeric {
        // A host whose last label starts with a digit is an address or nothing: only the
        // canonical dotted quad is read.
        let ip: Ipv4Addr = host
            .parse()
            .map_err(|_| Malformed("its host is an address in an unusual spelling"))?;
        return Ok(Target {
            https,
            host,
            port,
            literal: Some(IpAddr::V4(ip)),
            path,
        });
    }
    let labels_ok = host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !labels_ok {
        return Err(Malformed("its host is not a valid name"));
    }
    Ok(Target {
        https,
        host,
        port,
        literal: None,
        path,
    })
}

/// The request target of what follows a URL's authority: its path and query, the
/// fragment (which never leaves the client) dropped.
fn request_path(rest: &str) -> String {
    let rest = rest.split('#').next().unwrap_or_default();
    match rest.chars().next() {
        Some('/') => rest.to_owned(),
        Some(_) => format!("/{rest}"),
        None => "/".to_owned(),
    }
}

fn split_port(authority: &str) -> Result<(&str, Option<&str>), Refusal> {
    if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or(Refusal::Malformed("its IPv6 address is not closed"))?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => rest
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or(Refusal::Malformed("something follows its IPv6 address")),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// Vets `target` with the addresses its host resolved to (ignored for a literal): all of
/// them must be public, or allowed by `policy`.
pub fn vet(target: Target, resolved: &[IpAddr], policy: &Policy) -> Result<Vetted, Refusal> {
    let allowed_host = policy.allows_host(&target.host);
    let name = &target.host;
    if target.literal.is_none()
        && !allowed_host
        && (FORBIDDEN_NAMES.contains(&name.as_str())
            || name.ends_with(".localhost")
            || name.ends_with(".internal")
            || name.ends_with(".local"))
    {
        return Err(Refusal::ForbiddenName(name.clone()));
    }
    let ips: Vec<IpAddr> = match target.literal {
        Some(ip) => vec![ip],
        None => resolved.to_vec(),
    };
    if ips.is_empty() {
        return Err(Refusal::Unresolved(name.clone()));
    }
    if !allowed_host {
        // One forbidden address refuses the whole name: the connection could go to it.
        for &ip in &ips {
            if let Some(kind) = forbidden(ip).filter(|_| !policy.allows_addr(ip)) {
                return Err(Refusal::ForbiddenAddress(ip, kind));
            }
        }
    }
    let addrs = ips
        .iter()
        .map(|&ip| SocketAddr::new(ip, target.port))
        .collect();
    Ok(Vetted { target, addrs })
}

/// The kind of a non-public address, `None` for a public one.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let ranges: &[([u8; 4], u8, &'static str)] = &[
        ([0, 0, 0, 0], 8, "\"this network\""),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local (cloud metadata)"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    ranges
        .iter()
        .find(|(net, prefix, _)| {
            in_range(IpAddr::V4(ip), IpAddr::V4(Ipv4Addr::from(*net)), *prefix)
        })
        .map(|(_, _, kind)| *kind)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // IPv4-mapped (::ffff:a.b.c.d): judged as the IPv4 address it is.
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return forbidden_v4(embedded(s[6], s[7]));
    }
    let ranges: &[(Ipv6Addr, u8, &'static str)] = &[
        // IPv4-compatible (::a.b.c.d), deprecated: nothing public uses it.
        (Ipv6Addr::UNSPECIFIED, 96, "IPv4-compatible"),
        // NAT64 and its local-use prefix translate to IPv4 on the operator's network.
        (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "NAT64"),
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            "local NAT64",
        ),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            "discard-only",
        ),
        // Teredo hides an IPv4 address (obfuscated) that no check could trust.
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo"),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            "documentation",
        ),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            "unique-local",
        ),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local"),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
    ];
    if let Some((_, _, kind)) = ranges
        .iter()
        .find(|(net, prefix, _)| in_range(IpAddr::V6(ip), IpAddr::V6(*net), *prefix))
    {
        return Some(kind);
    }
    // 6to4 (2002:a.b.c.d::/48) reaches the IPv4 address it embeds.
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2])).map(|_| "6to4 of a non-public IPv4");
    }
    None
}

fn in_range(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            (u128::from(u32::from(ip)), u128::from(u32::from(net)), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => (u128::from(ip), u128::from(net), 128),
        _ => return false,
    };
    let prefix = u32::from(prefix).min(bits);
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix;
    (ip >> shift) == (net >> shift)
}
