//! Resource arithmetic as Mesos does it, and the reading of an offer into
//! what is free, what is reserved for each of our nodes, and what is not ours.
//!
//! Scalars are fixed point with three decimals (Mesos rounds the same way, so
//! 0.1 + 0.2 equals 0.3). Port ranges are inclusive and kept normalised.

use std::{collections::BTreeMap, fmt, ops};

use mesos_proto::v1::{
    self, Label, Labels, Resource,
    resource::{self, ReservationInfo},
    value,
};
use serde::{Deserialize, Serialize};

/// Label key naming the framework instance that made a reservation.
pub const LABEL_FRAMEWORK: &str = "mesos-ds.framework";
/// Label key naming the node a reservation belongs to.
pub const LABEL_NODE: &str = "mesos-ds.node";

/// A scalar amount in thousandths, the precision Mesos keeps.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Milli(pub i64);

impl Milli {
    /// Zero.
    pub const ZERO: Milli = Milli(0);

    /// Rounds a Mesos double to thousandths.
    pub fn from_f64(value: f64) -> Self {
        if value.is_finite() {
            Milli((value * 1000.0).round() as i64)
        } else {
            Milli(0)
        }
    }

    /// The value as Mesos sends it.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Whether the amount is above zero.
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl ops::Add for Milli {
    type Output = Milli;
    fn add(self, other: Milli) -> Milli {
        Milli(self.0.saturating_add(other.0))
    }
}

impl ops::AddAssign for Milli {
    fn add_assign(&mut self, other: Milli) {
        *self = *self + other;
    }
}

impl ops::Sub for Milli {
    type Output = Milli;
    fn sub(self, other: Milli) -> Milli {
        Milli(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Milli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}", self.as_f64())
        }
    }
}

/// A set of ports as sorted, merged, inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// Builds a normalised set from arbitrary ranges (empty or reversed ones are dropped).
    pub fn new(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut ranges: Vec<_> = ranges.into_iter().filter(|(b, e)| b <= e).collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (begin, end) in ranges {
            match merged.last_mut() {
                Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((begin, end)),
            }
        }
        Ranges(merged)
    }

    /// The set holding exactly these ports.
    pub fn of_ports(ports: impl IntoIterator<Item = u64>) -> Self {
        Ranges::new(ports.into_iter().map(|p| (p, p)))
    }

    /// Reads a Mesos `Value.Ranges`.
    pub fn from_proto(ranges: &value::Ranges) -> Self {
        Ranges::new(ranges.range.iter().map(|r| (r.begin, r.end)))
    }

    /// Writes a Mesos `Value.Ranges`.
    pub fn to_proto(&self) -> value::Ranges {
        value::Ranges {
            range: self
                .0
                .iter()
                .map(|&(begin, end)| value::Range { begin, end })
                .collect(),
        }
    }

    /// Whether the set holds no port.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many ports the set holds.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(b, e)| e - b + 1).sum()
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u64) -> bool {
        self.0.iter().any(|&(b, e)| b <= port && port <= e)
    }

    /// Whether every port of `other` is in the set.
    pub fn contains_all(&self, other: &Ranges) -> bool {
        other
            .0
            .iter()
            .all(|&(b, e)| self.0.iter().any(|&(sb, se)| sb <= b && e <= se))
    }

    /// The ports of the set, lowest first.
    pub fn ports(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|&(b, e)| b..=e)
    }

    /// The union with `other`.
    pub fn union(&self, other: &Ranges) -> Ranges {
        Ranges::new(self.0.iter().chain(other.0.iter()).copied())
    }

    /// The set without the ports of `other`.
    pub fn difference(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::new();
        for &(mut begin, end) in &self.0 {
            for &(ob, oe) in &other.0 {
                if oe < begin || ob > end {
                    continue;
                }
                if ob > begin {
                    out.push((begin, ob - 1));
                }
                begin = oe.saturating_add(1);
                if begin > end || oe == u64::MAX {
                    break;
                }
            }
            if begin <= end && !other.contains(begin) {
                out.push((begin, end));
            }
        }
        Ranges::new(out)
    }

    /// The lowest `count` ports of the set, or `None` if it has fewer.
    pub fn lowest(&self, count: usize) -> Option<Vec<u64>> {
        let ports: Vec<u64> = self.ports().take(count).collect();
        (ports.len() == count).then_some(ports)
    }
}

/// cpus, mem and disk: the scalar amounts a node asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scalars {
    /// CPU shares.
    pub cpus: Milli,
    /// Memory in MB.
    pub mem: Milli,
    /// Disk in MB.
    pub disk: Milli,
}

impl ops::Add for Scalars {
    type Output = Scalars;
    fn add(self, o: Scalars) -> Scalars {
        Scalars {
            cpus: self.cpus + o.cpus,
            mem: self.mem + o.mem,
            disk: self.disk + o.disk,
        }
    }
}

impl Scalars {
    /// What `self` lacks to cover `wanted`, per resource.
    pub fn shortfall(&self, wanted: &Scalars) -> Scalars {
        let lack = |have: Milli, want: Milli| {
            if have >= want {
                Milli::ZERO
            } else {
                want - have
            }
        };
        Scalars {
            cpus: lack(self.cpus, wanted.cpus),
            mem: lack(self.mem, wanted.mem),
            disk: lack(self.disk, wanted.disk),
        }
    }

    /// Whether nothing is lacking.
    pub fn is_zero(&self) -> bool {
        !self.cpus.is_positive() && !self.mem.is_positive() && !self.disk.is_positive()
    }
}

/// Who may use a reservation: the role and principal of the framework, and its instance label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserver {
    /// The role reservations are made for.
    pub role: String,
    /// The principal reservations and volumes are made with.
    pub principal: String,
    /// Unique per framework instance; tells our reservations from those of
    /// another framework sharing the role.
    pub instance: String,
}

impl Reserver {
    /// The reservation a node's resources carry.
    pub fn reservation(&self, node: &str) -> ReservationInfo {
        ReservationInfo {
            r#type: Some(resource::reservation_info::Type::Dynamic as i32),
            role: Some(self.role.clone()),
            principal: Some(self.principal.clone()),
            labels: Some(Labels {
                labels: vec![
                    Label {
                        key: LABEL_FRAMEWORK.into(),
                        value: Some(self.instance.clone()),
                    },
                    Label {
                        key: LABEL_NODE.into(),
                        value: Some(node.into()),
                    },
                ],
            }),
        }
    }

    /// The node a resource is reserved for, if it carries our labels.
    pub fn owner_of(&self, resource: &Resource) -> Option<String> {
        let reservation = resource.reservations.last()?;
        if reservation.role.as_deref() != Some(self.role.as_str()) {
            return None;
        }
        let labels = &reservation.labels.as_ref()?.labels;
        let label = |key: &str| {
            labels
                .iter()
                .find(|l| l.key == key)
                .and_then(|l| l.value.clone())
        };
        (label(LABEL_FRAMEWORK).as_deref() == Some(self.instance.as_str()))
            .then(|| label(LABEL_NODE))
            .flatten()
    }
}

/// What an offer holds that one of our nodes has reserved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reserved {
    /// Reserved plain scalars (volumes excluded).
    pub scalars: Scalars,
    /// Reserved ports.
    pub ports: Ranges,
    /// Persistent volumes, exactly as offered.
    pub volumes: Vec<Resource>,
    /// Every reserved resource of the node, exactly as offered (volumes included).
    pub resources: Vec<Resource>,
}

/// An offer read from the point of view of one framework.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OfferView {
    /// Unreserved scalars usable by our role.
    pub free: Scalars,
    /// Unreserved ports usable by our role.
    pub free_ports: Ranges,
    /// Our reservations, by node ID.
    pub reserved: BTreeMap<String, Reserved>,
    /// The allocation role of the offer.
    pub role: Option<String>,
}

fn scalar(resource: &Resource) -> Milli {
    resource
        .scalar
        .as_ref()
        .map_or(Milli::ZERO, |s| Milli::from_f64(s.value))
}

fn add_scalar(scalars: &mut Scalars, resource: &Resource) {
    match resource.name.as_str() {
        "cpus" => scalars.cpus += scalar(resource),
        "mem" => scalars.mem += scalar(resource),
        "disk" => scalars.disk += scalar(resource),
        _ => {}
    }
}

fn is_volume(resource: &Resource) -> bool {
    resource
        .disk
        .as_ref()
        .is_some_and(|d| d.persistence.is_some())
}

impl OfferView {
    /// Reads `offer`; resources reserved for anyone else (another role, a static
    /// reservation, another framework's labels) are left out entirely.
    pub fn read(offer: &v1::Offer, reserver: &Reserver) -> Self {
        let mut view = OfferView {
            role: offer.allocation_info.as_ref().and_then(|a| a.role.clone()),
            ..Default::default()
        };
        for resource in &offer.resources {
            // Revocable and shared resources, and disks from resource providers
            // (MOUNT/PATH sources), are outside what our nodes use.
            if resource.revocable.is_some()
                || resource.shared.is_some()
                || resource.provider_id.is_some()
                || resource.disk.as_ref().is_some_and(|d| d.source.is_some())
            {
                continue;
            }
            if resource.reservations.is_empty() && resource.reservation.is_none() {
                if resource.name == "ports" {
                    if let Some(ranges) = &resource.ranges {
                        view.free_ports = view.free_ports.union(&Ranges::from_proto(ranges));
                    }
                } else if !is_volume(resource) {
                    add_scalar(&mut view.free, resource);
                }
                continue;
            }
            let Some(node) = reserver.owner_of(resource) else {
                continue;
            };
            let reserved = view.reserved.entry(node).or_default();
            reserved.resources.push(resource.clone());
            if is_volume(resource) {
                reserved.volumes.push(resource.clone());
            } else if resource.name == "ports" {
                if let Some(ranges) = &resource.ranges {
                    reserved.ports = reserved.ports.union(&Ranges::from_proto(ranges));
                }
            } else {
                add_scalar(&mut reserved.scalars, resource);
            }
        }
        view
    }
}

/// A scalar resource with the given reservation, allocated to `role`.
pub fn scalar_resource(
    name: &str,
    amount: Milli,
    reservation: Option<&ReservationInfo>,
    role: Option<&str>,
) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar {
            value: amount.as_f64(),
        }),
        reservations: reservation.into_iter().cloned().collect(),
        allocation_info: role.map(|r| resource::AllocationInfo {
            role: Some(r.into()),
        }),
        ..Default::default()
    }
}

/// A ports resource with the given reservation, allocated to `role`.
pub fn ports_resource(
    ports: &Ranges,
    reservation: Option<&ReservationInfo>,
    role: Option<&str>,
) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(ports.to_proto()),
        reservations: reservation.into_iter().cloned().collect(),
        allocation_info: role.map(|r| resource::AllocationInfo {
            role: Some(r.into()),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_rounds_like_mesos() {
        assert_eq!(
            Milli::from_f64(0.1) + Milli::from_f64(0.2),
            Milli::from_f64(0.3)
        );
        assert_eq!(Milli::from_f64(1.0004), Milli(1000));
        assert_eq!(Milli::from_f64(f64::NAN), Milli::ZERO);
        assert_eq!(Milli(1500).to_string(), "1.5");
        assert_eq!(Milli(4000).to_string(), "4");
    }

    #[test]
    fn ranges_normalise_and_subtract() {
        let r = Ranges::new([(31005, 31010), (31000, 31004), (31020, 31020), (5, 3)]);
        assert_eq!(r, Ranges::new([(31000, 31010), (31020, 31020)]));
        assert_eq!(r.len(), 12);
        let d = r.difference(&Ranges::of_ports([31000, 31005, 31020]));
        assert_eq!(d, Ranges::new([(31001, 31004), (31006, 31010)]));
        assert_eq!(d.lowest(2), Some(vec![31001, 31002]));
        assert_eq!(Ranges::of_ports([1]).lowest(2), None);
        assert!(r.contains_all(&Ranges::of_ports([31003, 31020])));
        assert!(!r.contains_all(&Ranges::of_ports([31011])));
        assert_eq!(
            Ranges::new([(0, u64::MAX)]).difference(&Ranges::new([(10, u64::MAX)])),
            Ranges::new([(0, 9)])
        );
    }

    #[test]
    fn shortfall_is_per_resource() {
        let have = Scalars {
            cpus: Milli(1000),
            mem: Milli(4_096_000),
            disk: Milli::ZERO,
        };
        let want = Scalars {
            cpus: Milli(2000),
            mem: Milli(1_024_000),
            disk: Milli(10_000),
        };
        assert_eq!(
            have.shortfall(&want),
            Scalars {
                cpus: Milli(1000),
                mem: Milli::ZERO,
                disk: Milli(10_000)
            }
        );
    }

    #[test]
    fn offer_view_separates_free_ours_and_foreign() {
        let us = Reserver {
            role: "kafka".into(),
            principal: "p".into(),
            instance: "i-1".into(),
        };
        let them = Reserver {
            instance: "i-2".into(),
            ..us.clone()
        };
        let mine = us.reservation("broker-0");
        let theirs = them.reservation("broker-0");
        let mut volume = scalar_resource("disk", Milli(100_000), Some(&mine), Some("kafka"));
        volume.disk = Some(resource::DiskInfo {
            persistence: Some(resource::disk_info::Persistence {
                id: "vol".into(),
                principal: Some("p".into()),
            }),
            ..Default::default()
        });
        let offer = v1::Offer {
            resources: vec![
                scalar_resource("cpus", Milli(4000), None, Some("kafka")),
                scalar_resource("cpus", Milli(1000), Some(&mine), Some("kafka")),
                scalar_resource("cpus", Milli(1000), Some(&theirs), Some("kafka")),
                ports_resource(&Ranges::new([(31000, 31999)]), None, Some("kafka")),
                ports_resource(&Ranges::of_ports([9092]), Some(&mine), Some("kafka")),
                volume,
            ],
            allocation_info: Some(resource::AllocationInfo {
                role: Some("kafka".into()),
            }),
            ..Default::default()
        };
        let view = OfferView::read(&offer, &us);
        assert_eq!(view.free.cpus, Milli(4000));
        assert_eq!(view.free_ports.len(), 1000);
        let broker = &view.reserved["broker-0"];
        assert_eq!(
            broker.scalars.cpus,
            Milli(1000),
            "the other instance's cpus are not ours"
        );
        assert_eq!(broker.ports, Ranges::of_ports([9092]));
        assert_eq!(broker.volumes.len(), 1);
        assert_eq!(broker.resources.len(), 3);
        assert_eq!(view.reserved.len(), 1);
    }
}
