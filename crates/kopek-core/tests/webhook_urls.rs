//! The SSRF guard against URLs that reach what a webhook must not: each vector is refused
//! with the reason, resolving names through a stub resolver (this test connects to
//! nothing), and public URLs pass with exactly the addresses that were checked.

use kopek_core::webhook::ssrf::{parse, parse_range, vet, Policy, Refusal, Vetted};
use std::collections::HashMap;
use std::net::IpAddr;

/// The stub DNS: names and what they resolve to, including names that point inside.
fn resolver() -> HashMap<&'static str, Vec<IpAddr>> {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    HashMap::from([
        ("hooks.example.com", vec![ip("93.184.216.34")]),
        (
            "v6.example.com",
            vec![ip("2606:2800:220:1:248:1893:25c8:1946")],
        ),
        (
            "rebind.example.com",
            vec![ip("93.184.216.34"), ip("127.0.0.1")],
        ),
        ("internal.example.com", vec![ip("10.0.0.5")]),
        ("metadata.example.com", vec![ip("169.254.169.254")]),
        ("ula.example.com", vec![ip("fd00:ec2::254")]),
        ("mapped.example.com", vec![ip("::ffff:192.168.1.1")]),
        ("dev.test", vec![ip("127.0.0.1")]),
    ])
}

fn check(url: &str, policy: &Policy) -> Result<Vetted, Refusal> {
    let target = parse(url)?;
    let resolved = resolver()
        .get(target.host.as_str())
        .cloned()
        .unwrap_or_default();
    vet(target, &resolved, policy)
}

#[test]
fn forty_and_more_vectors_are_refused() {
    let vectors = [
        // Not http(s), or not a URL kopek calls.
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "javascript:alert(1)",
        "hooks.example.com/webhook",
        "https:///webhook",
        "https://user:pass@hooks.example.com/",
        "https://hooks.example.com@127.0.0.1/",
        "https://hooks.example.com:0/",
        "https://hooks.example.com:99999/",
        "https://hooks example.com/",
        "https://hooks.example.com\\@127.0.0.1/",
        "https://%31%32%37.0.0.1/",
        "https://-bad-.example.com/",
        // IPv4 loopback, private, link-local and the rest.
        "http://127.0.0.1/",
        "http://127.255.255.254:8080/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.0.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.0.0.8/",
        "http://198.18.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        // Odd spellings of 127.0.0.1.
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://127.0.1/",
        "http://017700000001/",
        // IPv6 forms.
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[64:ff9b:1::1]/",
        "http://[2002:7f00:1::]/",
        "http://[2002:c0a8:101::1]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        "http://[fc00::1]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://[fec0::1]/",
        "http://[ff02::1]/",
        "http://[2001:db8::1]/",
        // Names that are never public, or that resolve inside.
        "http://localhost/",
        "http://LOCALHOST./",
        "http://app.localhost/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://printer.local/",
        "https://internal.example.com/",
        "https://metadata.example.com/",
        "https://ula.example.com/",
        "https://mapped.example.com/",
        "https://rebind.example.com/",
        "https://nowhere.example.com/",
    ];
    let policy = Policy::default();
    let mut refused = 0;
    for url in vectors {
        match check(url, &policy) {
            Ok(vetted) => panic!("{url} was let through to {:?}", vetted.addrs),
            Err(refusal) => {
                assert!(!refusal.to_string().is_empty());
                refused += 1;
            }
        }
    }
    assert!(refused >= 40, "{refused} vectors");
}

#[test]
fn refusals_say_why() {
    let policy = Policy::default();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        check("https://rebind.example.com/", &policy),
        Err(Refusal::ForbiddenAddress(ip("127.0.0.1"), "loopback"))
    );
    assert_eq!(
        check("http://169.254.169.254/", &policy),
        Err(Refusal::ForbiddenAddress(
            ip("169.254.169.254"),
            "link-local (cloud metadata)"
        ))
    );
    assert_eq!(
        check("http://0x7f.0.0.1/", &policy),
        Err(Refusal::Malformed(
            "its host is an address in an unusual spelling"
        ))
    );
    assert_eq!(
        check("http://localhost/", &policy),
        Err(Refusal::ForbiddenName("localhost".into()))
    );
    assert_eq!(
        check("https://nowhere.example.com/", &policy),
        Err(Refusal::Unresolved("nowhere.example.com".into()))
    );
}

#[test]
fn public_urls_pass_with_the_addresses_that_were_checked() {
    let policy = Policy::default();
    let vetted = check("https://Hooks.Example.com./kopek?x=1#top", &policy).unwrap();
    assert_eq!(vetted.target.host, "hooks.example.com");
    // The request asks for the path and query; the fragment never leaves the sender.
    assert_eq!(vetted.target.path, "/kopek?x=1");
    assert_eq!(
        check("https://hooks.example.com", &policy)
            .unwrap()
            .target
            .path,
        "/"
    );
    assert_eq!(
        check("https://hooks.example.com?a=b", &policy)
            .unwrap()
            .target
            .path,
        "/?a=b"
    );
    assert_eq!(vetted.addrs, ["93.184.216.34:443".parse().unwrap()]);
    let vetted = check("http://hooks.example.com:8443/", &policy).unwrap();
    assert_eq!(vetted.addrs, ["93.184.216.34:8443".parse().unwrap()]);
    let vetted = check("https://v6.example.com/", &policy).unwrap();
    assert_eq!(vetted.addrs.len(), 1);
    assert!(check("https://93.184.216.34/", &policy).is_ok());
    assert!(check(
        "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/",
        &policy
    )
    .is_ok());
    // A public IPv4 address, mapped or by 6to4, is as public as itself.
    assert!(check("http://[::ffff:93.184.216.34]/", &policy).is_ok());
    assert!(check("http://[2002:5db8:d822::1]/", &policy).is_ok());
}

#[test]
fn an_operator_can_allow_named_hosts_and_ranges_for_development() {
    let by_name = Policy {
        allowed_hosts: vec!["dev.test".into(), "localhost".into()],
        allowed_ranges: Vec::new(),
    };
    assert!(check("http://dev.test:9000/hook", &by_name).is_ok());
    assert!(
        check("http://localhost/", &by_name).is_err(),
        "localhost resolves to nothing here"
    );
    assert!(
        check("http://127.0.0.1/", &by_name).is_err(),
        "only the named host is allowed"
    );
    let by_range = Policy {
        allowed_hosts: Vec::new(),
        allowed_ranges: vec![("127.0.0.0".parse().unwrap(), 8)],
    };
    assert!(check("http://127.0.0.1:8080/", &by_range).is_ok());
    assert!(check("http://dev.test/", &by_range).is_ok());
    assert!(check("http://10.0.0.1/", &by_range).is_err());
    // Odd spellings stay refused: the allowance is for addresses, not for spellings.
    assert!(check("http://2130706433/", &by_range).is_err());
}

#[test]
fn ranges_are_read_as_an_operator_writes_them() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(parse_range("127.0.0.0/8"), Ok((ip("127.0.0.0"), 8)));
    assert_eq!(parse_range("fd00::/8"), Ok((ip("fd00::"), 8)));
    assert_eq!(parse_range("10.1.2.3"), Ok((ip("10.1.2.3"), 32)));
    for bad in ["", "localhost", "10.0.0.0/33", "::/129", "10.0.0.0/x"] {
        assert!(parse_range(bad).is_err(), "{bad}");
    }
}
