//! Which addresses an event may make hookflow connect to: every IANA special-purpose range
//! is refused (loopback, private, link-local where cloud metadata lives, CGNAT,
//! documentation, benchmarking, multicast, reserved, and IPv6 transition prefixes that
//! carry one of those inside). The tables follow the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries (RFC 6890 and its updates) plus the multicast blocks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges that are not a public unicast destination: (network, prefix length, name).
const V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "this network"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "shared address space (CGNAT)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation (TEST-NET-1)"),
    (Ipv4Addr::new(192, 31, 196, 0), 24, "AS112"),
    (Ipv4Addr::new(192, 52, 193, 0), 24, "AMT"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(192, 175, 48, 0), 24, "direct delegation AS112"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation (TEST-NET-2)"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation (TEST-NET-3)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (and broadcast)"),
];

/// IPv6 ranges refused outright. `::ffff:0:0/96` (IPv4-mapped) and `64:ff9b::/96` (NAT64)
/// are judged by the IPv4 address inside them instead.
const V6: &[(Ipv6Addr, u8, &str)] = &[
    // Also covers `::` and `::1`: the deprecated IPv4-compatible block, `::127.0.0.1`.
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        96,
        "IPv4-compatible (deprecated), loopback, unspecified",
    ),
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, "IPv4-translated"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use IPv4/IPv6 translation",
    ),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only"),
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64, "dummy IPv6 prefix"),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments (Teredo, ORCHID, benchmarking, …)",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4"),
    (
        Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0),
        48,
        "direct delegation AS112",
    ),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation"),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "segment routing (SRv6) SIDs",
    ),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique-local"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (deprecated)",
    ),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

const MAPPED: (Ipv6Addr, u8) = (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);
const NAT64: (Ipv6Addr, u8) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

/// Why `ip` is not a public destination, or `None` when it is one.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => V4
            .iter()
            .find(|(net, len, _)| in_v4(v4, *net, *len))
            .map(|(.., name)| *name),
        IpAddr::V6(v6) => {
            for (net, len) in [MAPPED, NAT64] {
                if in_v6(v6, net, len) {
                    let o = v6.octets();
                    return special_purpose(IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15])));
                }
            }
            V6.iter()
                .find(|(net, len, _)| in_v6(v6, *net, *len))
                .map(|(.., name)| *name)
        }
    }
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    special_purpose(ip).is_none()
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_last(net: Ipv4Addr, len: u8) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(net) | (u32::MAX >> len))
    }

    fn v6_last(net: Ipv6Addr, len: u8) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(net) | u128::MAX.checked_shr(u32::from(len)).unwrap_or(0))
    }

    /// Every range refuses its first and last address; the addresses just outside a
    /// range are refused only when a neighbouring range covers them.
    #[test]
    fn every_range_is_refused_to_its_edges_and_no_further() {
        for (net, len, name) in V4 {
            let last = v4_last(*net, *len);
            assert!(!is_public(IpAddr::V4(*net)), "{net}/{len} {name}");
            assert!(!is_public(IpAddr::V4(last)), "{last} in {net}/{len} {name}");
            for outside in [u32::from(*net).checked_sub(1), u32::from(last).checked_add(1)]
                .into_iter()
                .flatten()
                .map(Ipv4Addr::from)
            {
                let covered = V4.iter().any(|(n, l, _)| in_v4(outside, *n, *l));
                assert_eq!(
                    is_public(IpAddr::V4(outside)),
                    !covered,
                    "{outside} beside {net}/{len}"
                );
            }
        }
        for (net, len, name) in V6 {
            let last = v6_last(*net, *len);
            assert!(!is_public(IpAddr::V6(*net)), "{net}/{len} {name}");
            assert!(!is_public(IpAddr::V6(last)), "{last} in {net}/{len} {name}");
            for outside in [u128::from(*net).checked_sub(1), u128::from(last).checked_add(1)]
                .into_iter()
                .flatten()
                .map(Ipv6Addr::from)
            {
                let covered = V6.iter().any(|(n, l, _)| in_v6(outside, *n, *l))
                    || [MAPPED, NAT64].iter().any(|(n, l)| in_v6(outside, *n, *l));
                if !covered {
                    assert!(is_public(IpAddr::V6(outside)), "{outside} beside {net}/{len}");
                }
            }
        }
    }

    #[test]
    fn the_addresses_attackers_use() {
        for refused in [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.170",
            "::",
            "::1",
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "2002:7f00:1::1",
            "100::1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(!is_public(ip), "{refused} must be refused");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "2606:2800:220:1::1",
            "2a00:1450:4001:81c::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(is_public(ip), "{public} is public");
        }
    }
}
