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
/// Addresses remembered at once; past this, windows that ended are
/// forgotten, and if all are current the oldest counts go.
const MAX_ADDRESSES: usize = 10_000;

/// Where an address's count is kept: an IPv4 address, or an IPv6 /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

/// Rooms opened per address in the current minute.
#[derive(Debug, Default)]
pub(super) struct RoomBudget {
    opened: HashMap<IpAddr, (u64, u32)>,
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
        if self.opened.len() >= MAX_ADDRESSES {
            self.opened.retain(|_, (m, _)| *m == minute);
            if self.opened.len() >= MAX_ADDRESSES {
                self.opened.clear();
            }
        }
        let entry = self.opened.entry(bucket(ip)).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= ROOMS_PER_ADDRESS_PER_MINUTE {
            return false;
        }
        entry.1 += 1;
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
        // One IPv6 /64 is one address.
        let a: Option<IpAddr> = Some("2001:db8::1".parse().unwrap());
        let b: Option<IpAddr> = Some("2001:db8::2".parse().unwrap());
        for _ in 0..ROOMS_PER_ADDRESS_PER_MINUTE {
            assert!(budget.spend(a, 0));
        }
        assert!(!budget.spend(b, 0));
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
