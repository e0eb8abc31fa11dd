//! Room creation budgets: how many new rooms one address may open per
//! minute. A room is a slot of `--max-rooms` held for as long as anyone
//! sits in it, so without a budget a few hundred sockets from two
//! addresses take every slot within seconds and nobody else can open a
//! room. Fixed one-minute windows, counted per address (IPv6 by /64, the
//! least a host is given), in a map bounded in size.

use std::collections::HashMap;
use std::net::IpAddr;

/// New rooms one address may open per minute.
pub const ROOMS_PER_ADDRESS_PER_MINUTE: u32 = 10;
/// New rooms one IPv6 /48 (a site's allocation, many /64s) may open per
/// minute.
pub const ROOMS_PER_SITE_PER_MINUTE: u32 = 4 * ROOMS_PER_ADDRESS_PER_MINUTE;
/// Addresses remembered at once; past this, windows that ended are
/// forgotten, and if all are current the oldest counts go.
const MAX_ADDRESSES: usize = 10_000;

/// Where an address's counts are kept, and each one's limit: an IPv4
/// address; an IPv6 /64 and its /48.
fn buckets(ip: IpAddr) -> Vec<((IpAddr, u8), u32)> {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = |keep: usize| {
                let mut segments = v6.segments();
                segments[keep..].fill(0);
                IpAddr::V6(segments.into())
            };
            vec![
                ((prefix(4), 64), ROOMS_PER_ADDRESS_PER_MINUTE),
                ((prefix(3), 48), ROOMS_PER_SITE_PER_MINUTE),
            ]
        }
        v4 => vec![((v4, 32), ROOMS_PER_ADDRESS_PER_MINUTE)],
    }
}

/// Rooms opened per address in the current minute.
#[derive(Debug, Default)]
pub(super) struct RoomBudget {
    /// (network, prefix length) → (minute, rooms opened in it).
    opened: HashMap<(IpAddr, u8), (u64, u32)>,
}

impl RoomBudget {
    /// Spends one room of `ip`'s budget at `now_s` (seconds since the
    /// epoch); `false` when it is spent. The host itself (127.0.0.1, ::1:
    /// local tools, a proxy's health checks) is not limited.
    pub(super) fn spend(&mut self, ip: Option<IpAddr>, now_s: u64) -> bool {
        let local = |ip: &IpAddr| {
            let ip = ip.to_canonical();
            ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        };
        let Some(ip) = ip.filter(|ip| !local(ip)) else {
            return true;
        };
        let minute = now_s / 60;
        let buckets = buckets(ip);
        if self.opened.len() + buckets.len() > MAX_ADDRESSES {
            self.opened.retain(|_, (m, _)| *m == minute);
            if self.opened.len() + buckets.len() > MAX_ADDRESSES {
                // This minute's counts fill the map: no new address opens
                // a room until it ends (a spray of addresses must not
                // reset everyone's budget).
                return buckets.iter().all(|(b, _)| self.opened.contains_key(b))
                    && self.take(&buckets, minute);
            }
        }
        self.take(&buckets, minute)
    }

    /// Spends one from each of `buckets` if none is spent.
    fn take(&mut self, buckets: &[((IpAddr, u8), u32)], minute: u64) -> bool {
        for (bucket, limit) in buckets {
            let entry = self.opened.entry(*bucket).or_insert((minute, 0));
            if entry.0 != minute {
                *entry = (minute, 0);
            }
            if entry.1 >= *limit {
                return false;
            }
        }
        for (bucket, _) in buckets {
            if let Some(entry) = self.opened.get_mut(bucket) {
                entry.1 += 1;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_opens_a_bounded_number_of_rooms_a_minute() {
        let mut budget = RoomBudget::default();
        let ip: Option<IpAddr> = Some("203.0.113.9".parse().unwrap());
        for _ in 0..ROOMS_PER_ADDRESS_PER_MINUTE {
            assert!(budget.spend(ip, 60));
        }
        assert!(!budget.spend(ip, 119));
        assert!(budget.spend(Some("203.0.113.10".parse().unwrap()), 119));
        assert!(budget.spend(ip, 120));
        // One IPv6 /64 is one address, and a /48 a few.
        let a: Option<IpAddr> = Some("2001:db8::1".parse().unwrap());
        let b: Option<IpAddr> = Some("2001:db8::2".parse().unwrap());
        for _ in 0..ROOMS_PER_ADDRESS_PER_MINUTE {
            assert!(budget.spend(a, 0));
        }
        assert!(!budget.spend(b, 0));
        let mut opened = ROOMS_PER_ADDRESS_PER_MINUTE;
        for net in 1..100u16 {
            let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, net, 0, 0, 0, 1);
            while budget.spend(Some(ip.into()), 0) {
                opened += 1;
            }
        }
        assert_eq!(opened, ROOMS_PER_SITE_PER_MINUTE);
        // The host itself is not counted; other loopback addresses are.
        for _ in 0..100 {
            assert!(budget.spend(Some("127.0.0.1".parse().unwrap()), 0));
        }
        let other: Option<IpAddr> = Some("127.0.0.2".parse().unwrap());
        for _ in 0..ROOMS_PER_ADDRESS_PER_MINUTE {
            assert!(budget.spend(other, 0));
        }
        assert!(!budget.spend(other, 0));
    }
}
