use super::*;

fn dest(url: &str) -> Result<Destination, String> {
    Destination::of(&url::Url::parse(url).map_err(|e| e.to_string())?, url).map_err(|e| match e {
        Unusable::Malformed(why) | Unusable::AmbiguousAddress(why) => why,
    })
}

fn list(entries: &[&str]) -> AllowList {
    AllowList::parse(entries).unwrap()
}

#[test]
fn entries_match_scheme_host_and_port() {
    let allow = list(&[
        "api.example.com",
        "*.example.org",
        "hooks.example.net:8443",
        "http://legacy.example.com",
    ]);
    for ok in [
        "https://api.example.com/v1",
        "https://API.example.com:443/",
        "https://a.example.org/",
        "https://a.b.example.org/",
        "https://hooks.example.net:8443/x",
        "http://legacy.example.com/",
    ] {
        assert!(allow.allows(&dest(ok).unwrap()), "{ok} should be allowed");
    }
    for refused in [
        "http://api.example.com/",
        "https://api.example.com:8443/",
        "https://example.org/",
        "https://evilexample.org/",
        "https://hooks.example.net/",
        "https://legacy.example.com/",
        "https://api.example.com.evil.net/",
    ] {
        assert!(
            !allow.allows(&dest(refused).unwrap()),
            "{refused} should be refused"
        );
    }
}

#[test]
fn the_empty_list_allows_nothing_and_star_allows_any_host() {
    assert!(!AllowList::default().allows(&dest("https://example.com/").unwrap()));
    let any = list(&["*"]);
    assert!(any.allows(&dest("https://example.com/").unwrap()));
    assert!(any.allows(&dest("https://203.0.113.9/").unwrap()));
    assert!(!any.allows(&dest("http://example.com/").unwrap()));
}

#[test]
fn addresses_are_matched_as_addresses() {
    let allow = list(&["203.0.113.7", "[2001:db8::1]:8443"]);
    assert!(allow.allows(&dest("https://203.0.113.7/").unwrap()));
    assert!(allow.allows(&dest("https://[2001:db8:0::1]:8443/").unwrap()));
    assert!(!allow.allows(&dest("https://203.0.113.8/").unwrap()));
}

#[test]
fn non_standard_ipv4_forms_are_refused() {
    for url in [
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://127.1/",
        "http://%31%32%37.0.0.1/",
    ] {
        let error = dest(url).unwrap_err();
        assert!(error.contains("non-standard"), "{url}: {error}");
    }
    assert!(dest("http://127.0.0.1:8080/").is_ok());
    assert!(dest("http://user:pw@example.com/").is_err());
    assert!(dest("ftp://example.com/").is_err());
}

#[test]
fn bad_entries_are_named() {
    for bad in [
        "",
        "ftp://x.com",
        "x.com/path",
        "x.com:0",
        "x.com:99999",
        "-x.com",
        "1.2.3",
        "a@b.com",
        "ünï.com",
    ] {
        let error = AllowList::parse(&[bad]).unwrap_err();
        assert!(error.contains(&format!("{bad:?}")), "{bad}: {error}");
    }
    assert_eq!(
        list(&["API.Example.com", "http://X.org:8080/"]).entries(),
        ["api.example.com", "http://x.org:8080"]
    );
}
