//! Resource arithmetic the way Mesos does it: scalars in fixed point with three
//! decimals, ranges and sets as value sets, reservations as refinement stacks,
//! persistent volumes as indivisible units, and the two wire formats
//! (pre- and post-reservation-refinement).
//!
//! Internally every resource is kept in the post-refinement format
//! (`reservations` stack, no `role`/`reservation`) without `allocation_info`;
//! conversion happens at the edges ([`upgrade`] for what frameworks send,
//! [`for_framework`] for what they are offered).

// The deprecated `role` fields are the pre-refinement wire format, which
// frameworks without RESERVATION_REFINEMENT or MULTI_ROLE still speak.
#![allow(deprecated)]

use std::collections::BTreeMap;

use mesos_proto::v1::{
    Attribute, Resource, Value,
    resource::{AllocationInfo, ReservationInfo, reservation_info},
    value,
};

/// Scalar value type codes (proto enum `Value.Type`).
const SCALAR: i32 = value::Type::Scalar as i32;
const RANGES: i32 = value::Type::Ranges as i32;
const SET: i32 = value::Type::Set as i32;

/// A scalar in Mesos' fixed-point form (thousandths).
fn milli(v: f64) -> i64 {
    // Values are validated finite and non-negative before they get here;
    // the cast saturates for anything absurd.
    (v * 1000.0).round() as i64
}

fn from_milli(m: i64) -> f64 {
    m as f64 / 1000.0
}

/// A normalised list of inclusive ranges: sorted, merged, non-overlapping.
fn normalise_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (b, e) in ranges {
        match out.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((b, e)),
        }
    }
    out
}

fn ranges_of(r: &Resource) -> Vec<(u64, u64)> {
    r.ranges
        .as_ref()
        .map(|rs| rs.range.iter().map(|x| (x.begin, x.end)).collect())
        .unwrap_or_default()
}

fn set_ranges(r: &mut Resource, ranges: Vec<(u64, u64)>) {
    r.ranges = Some(value::Ranges {
        range: ranges
            .into_iter()
            .map(|(begin, end)| value::Range { begin, end })
            .collect(),
    });
}

fn ranges_contain(outer: &[(u64, u64)], inner: &[(u64, u64)]) -> bool {
    inner
        .iter()
        .all(|(b, e)| outer.iter().any(|(ob, oe)| ob <= b && e <= oe))
}

fn ranges_minus(outer: &[(u64, u64)], inner: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = outer.to_vec();
    for &(b, e) in inner {
        let mut next = Vec::with_capacity(out.len() + 1);
        for (ob, oe) in out {
            if e < ob || b > oe {
                next.push((ob, oe));
                continue;
            }
            if ob < b {
                next.push((ob, b - 1));
            }
            if e < oe {
                next.push((e + 1, oe));
            }
        }
        out = next;
    }
    out
}

fn items_of(r: &Resource) -> Vec<String> {
    r.set.as_ref().map(|s| s.item.clone()).unwrap_or_default()
}

/// Whether `a` and `b` differ at most in their quantity, so that they can be
/// merged. Every field is named, so a field added to `Resource` must be
/// placed here; nothing is cloned, as this runs for every pair of resources
/// an agent's bookkeeping compares.
fn same_shape(a: &Resource, b: &Resource) -> bool {
    let Resource {
        name,
        r#type,
        scalar: _,
        ranges: _,
        set: _,
        role,
        disk,
        reservation,
        revocable,
        shared,
        allocation_info,
        provider_id,
        reservations,
    } = a;
    *name == b.name
        && *r#type == b.r#type
        && *role == b.role
        && *disk == b.disk
        && *reservation == b.reservation
        && *revocable == b.revocable
        && *shared == b.shared
        && *allocation_info == b.allocation_info
        && *provider_id == b.provider_id
        && *reservations == b.reservations
}

/// True for a disk resource carrying a persistent volume.
pub fn is_persistent_volume(r: &Resource) -> bool {
    r.disk.as_ref().is_some_and(|d| d.persistence.is_some())
}

/// True when the innermost reservation is dynamic.
pub fn is_dynamically_reserved(r: &Resource) -> bool {
    r.reservations
        .last()
        .is_some_and(|x| x.r#type == Some(reservation_info::Type::Dynamic as i32))
}

/// The role of the innermost reservation, `None` for unreserved resources.
pub fn reservation_role(r: &Resource) -> Option<&str> {
    r.reservations.last().and_then(|x| x.role.as_deref())
}

/// Whether `role` may be allocated `r` (unreserved, reserved to it, or to an ancestor).
pub fn allocatable_to(r: &Resource, role: &str) -> bool {
    match reservation_role(r) {
        None => true,
        Some(reserved) => role == reserved || is_strict_subrole(role, reserved),
    }
}

/// `child` is below `parent` in the role tree.
pub fn is_strict_subrole(child: &str, parent: &str) -> bool {
    child.len() > parent.len() + 1
        && child.starts_with(parent)
        && child.as_bytes().get(parent.len()) == Some(&b'/')
}

/// The resource without its innermost reservation.
pub fn pop_reservation(r: &Resource) -> Resource {
    let mut out = r.clone();
    out.reservations.pop();
    out
}

/// The resource without persistence and volume: the disk it was created from.
pub fn strip_volume(r: &Resource) -> Resource {
    let mut out = r.clone();
    if let Some(disk) = out.disk.as_mut() {
        disk.persistence = None;
        disk.volume = None;
        if disk.source.is_none() {
            out.disk = None;
        }
    }
    out
}

/// The resource as the agent's static configuration knows it: no dynamic
/// reservations and no volume.
pub fn to_static(r: &Resource) -> Resource {
    let mut out = strip_volume(r);
    out.reservations
        .retain(|x| x.r#type == Some(reservation_info::Type::Static as i32));
    out
}

/// A bag of resources with Mesos' merge rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources(Vec<Resource>);

impl Resources {
    /// An empty bag.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Collects resources, merging equal shapes.
    pub fn from_list<'a>(list: impl IntoIterator<Item = &'a Resource>) -> Self {
        let mut out = Self::new();
        for r in list {
            out.add(r);
        }
        out
    }

    /// The resources as a list.
    pub fn as_slice(&self) -> &[Resource] {
        &self.0
    }

    /// The resources as an owned list.
    pub fn to_vec(&self) -> Vec<Resource> {
        self.0.clone()
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates the resources.
    pub fn iter(&self) -> std::slice::Iter<'_, Resource> {
        self.0.iter()
    }

    /// Adds one resource, merging it into an equal shape where Mesos would.
    pub fn add(&mut self, r: &Resource) {
        let r = normalise(r);
        if is_empty_value(&r) {
            return;
        }
        if !is_persistent_volume(&r) {
            if let Some(existing) = self
                .0
                .iter_mut()
                .find(|e| !is_persistent_volume(e) && same_shape(e, &r))
            {
                merge_into(existing, &r);
                return;
            }
        }
        self.0.push(r);
    }

    /// Adds every resource of `other`.
    pub fn add_all(&mut self, other: &Resources) {
        for r in &other.0 {
            self.add(r);
        }
    }

    /// `self + other`.
    pub fn plus(&self, other: &Resources) -> Resources {
        let mut out = self.clone();
        out.add_all(other);
        out
    }

    /// Whether `r` is wholly contained.
    pub fn contains_one(&self, r: &Resource) -> bool {
        let r = normalise(r);
        if is_empty_value(&r) {
            return true;
        }
        if is_persistent_volume(&r) {
            return self.0.contains(&r);
        }
        self.0
            .iter()
            .filter(|e| !is_persistent_volume(e) && same_shape(e, &r))
            .any(|e| value_contains(e, &r))
    }

    /// Whether all of `other` is contained (as a multiset).
    pub fn contains(&self, other: &Resources) -> bool {
        let mut rest = self.clone();
        for r in &other.0 {
            if !rest.contains_one(r) {
                return false;
            }
            rest.subtract_one(r);
        }
        true
    }

    /// Removes `r` as far as it is contained.
    pub fn subtract_one(&mut self, r: &Resource) {
        let r = normalise(r);
        if is_persistent_volume(&r) {
            if let Some(pos) = self.0.iter().position(|e| *e == r) {
                self.0.remove(pos);
            }
            return;
        }
        if let Some(pos) = self
            .0
            .iter()
            .position(|e| !is_persistent_volume(e) && same_shape(e, &r))
        {
            let existing = &mut self.0[pos];
            subtract_value(existing, &r);
            if is_empty_value(existing) {
                self.0.remove(pos);
            }
        }
    }

    /// `self - other`, dropping what is not contained.
    pub fn minus(&self, other: &Resources) -> Resources {
        let mut out = self.clone();
        for r in &other.0 {
            out.subtract_one(r);
        }
        out
    }

    /// The resources for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources(self.0.iter().filter(|r| keep(r)).cloned().collect())
    }

    /// The sum of the scalar resource `name`.
    pub fn scalar(&self, name: &str) -> f64 {
        from_milli(
            self.0
                .iter()
                .filter(|r| r.name == name && r.r#type == SCALAR)
                .map(|r| milli(r.scalar.as_ref().map_or(0.0, |s| s.value)))
                .sum(),
        )
    }

    /// Every resource with its reservations, volume and allocation removed.
    pub fn unreserved_quantities(&self) -> Resources {
        let mut out = Resources::new();
        for r in &self.0 {
            let mut plain = strip_volume(r);
            plain.reservations.clear();
            plain.allocation_info = None;
            out.add(&plain);
        }
        out
    }
}

fn is_empty_value(r: &Resource) -> bool {
    match r.r#type {
        SCALAR => r.scalar.as_ref().is_none_or(|s| milli(s.value) == 0),
        RANGES => r.ranges.as_ref().is_none_or(|x| x.range.is_empty()),
        SET => r.set.as_ref().is_none_or(|x| x.item.is_empty()),
        _ => true,
    }
}

fn normalise(r: &Resource) -> Resource {
    let mut out = r.clone();
    match out.r#type {
        SCALAR => {
            let v = out.scalar.as_ref().map_or(0.0, |s| s.value);
            out.scalar = Some(value::Scalar {
                value: from_milli(milli(v)),
            });
        }
        RANGES => {
            let ranges = normalise_ranges(ranges_of(&out));
            set_ranges(&mut out, ranges);
        }
        SET => {
            let mut items = items_of(&out);
            items.sort();
            items.dedup();
            out.set = Some(value::Set { item: items });
        }
        _ => {}
    }
    out
}

fn merge_into(existing: &mut Resource, r: &Resource) {
    match r.r#type {
        SCALAR => {
            let sum = milli(existing.scalar.as_ref().map_or(0.0, |s| s.value))
                + milli(r.scalar.as_ref().map_or(0.0, |s| s.value));
            existing.scalar = Some(value::Scalar {
                value: from_milli(sum),
            });
        }
        RANGES => {
            let mut all = ranges_of(existing);
            all.extend(ranges_of(r));
            set_ranges(existing, normalise_ranges(all));
        }
        SET => {
            let mut all = items_of(existing);
            all.extend(items_of(r));
            all.sort();
            all.dedup();
            existing.set = Some(value::Set { item: all });
        }
        _ => {}
    }
}

fn value_contains(outer: &Resource, inner: &Resource) -> bool {
    match inner.r#type {
        SCALAR => {
            milli(outer.scalar.as_ref().map_or(0.0, |s| s.value))
                >= milli(inner.scalar.as_ref().map_or(0.0, |s| s.value))
        }
        RANGES => ranges_contain(&ranges_of(outer), &ranges_of(inner)),
        SET => {
            let have = items_of(outer);
            items_of(inner).iter().all(|i| have.contains(i))
        }
        _ => false,
    }
}

fn subtract_value(existing: &mut Resource, r: &Resource) {
    match r.r#type {
        SCALAR => {
            let left = milli(existing.scalar.as_ref().map_or(0.0, |s| s.value))
                - milli(r.scalar.as_ref().map_or(0.0, |s| s.value));
            existing.scalar = Some(value::Scalar {
                value: from_milli(left.max(0)),
            });
        }
        RANGES => {
            let left = ranges_minus(&ranges_of(existing), &ranges_of(r));
            set_ranges(existing, left);
        }
        SET => {
            let remove = items_of(r);
            let left = items_of(existing)
                .into_iter()
                .filter(|i| !remove.contains(i))
                .collect();
            existing.set = Some(value::Set { item: left });
        }
        _ => {}
    }
}

// ------------------------------------------------------------------ validation

/// Validates one resource as Mesos' `Resources::validate` does (the parts we support).
pub fn validate(r: &Resource) -> Result<(), String> {
    if r.name.is_empty() {
        return Err("Empty resource name".into());
    }
    let ok = match r.r#type {
        SCALAR => r.scalar.is_some() && r.ranges.is_none() && r.set.is_none(),
        RANGES => r.scalar.is_none() && r.ranges.is_some() && r.set.is_none(),
        SET => r.scalar.is_none() && r.ranges.is_none() && r.set.is_some(),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "Invalid {} resource: type and value do not match",
            r.name
        ));
    }
    if let Some(s) = &r.scalar {
        if !s.value.is_finite() || s.value < 0.0 {
            return Err(format!("Invalid scalar resource {}: {}", r.name, s.value));
        }
        if s.value > 0.0 && milli(s.value) == 0 {
            return Err(format!(
                "Invalid scalar resource {}: {} is too small",
                r.name, s.value
            ));
        }
    }
    if let Some(rs) = &r.ranges {
        let mut seen: Vec<(u64, u64)> = Vec::new();
        for x in &rs.range {
            if x.begin > x.end {
                return Err(format!("Invalid ranges resource {}: begin > end", r.name));
            }
            if seen.iter().any(|(b, e)| x.begin <= *e && *b <= x.end) {
                return Err(format!(
                    "Invalid ranges resource {}: overlapping ranges",
                    r.name
                ));
            }
            seen.push((x.begin, x.end));
        }
    }
    if let Some(set) = &r.set {
        let mut items = set.item.clone();
        items.sort();
        items.dedup();
        if items.len() != set.item.len() {
            return Err(format!("Invalid set resource {}: duplicate items", r.name));
        }
    }
    if r.disk.is_some() && r.name != "disk" {
        return Err(format!(
            "DiskInfo should not be set for {} resource",
            r.name
        ));
    }
    validate_reservations(r)?;
    Ok(())
}

fn validate_reservations(r: &Resource) -> Result<(), String> {
    let mut parent: Option<&str> = None;
    for (i, res) in r.reservations.iter().enumerate() {
        let Some(role) = res.role.as_deref() else {
            return Err("Invalid reservation: role must be set".into());
        };
        let Some(kind) = res.r#type else {
            return Err("Invalid reservation: reservation type must be set".into());
        };
        crate::ids::validate_role(role)
            .map_err(|e| format!("Invalid reservation role '{role}': {e}"))?;
        if role == "*" {
            return Err("Invalid reservation: role \"*\" cannot be reserved".into());
        }
        if kind == reservation_info::Type::Static as i32 && i > 0 {
            return Err("Invalid reservation: a STATIC reservation must be the first one".into());
        }
        if let Some(parent) = parent {
            if !is_strict_subrole(role, parent) {
                return Err(format!(
                    "Invalid reservation: role '{role}' is not a sub-role of '{parent}'"
                ));
            }
        }
        parent = Some(role);
    }
    Ok(())
}

// ------------------------------------------------------------------ formats

/// Converts a resource from either wire format to the post-refinement one and
/// strips `allocation_info` (returned separately).
pub fn upgrade(r: &Resource) -> Result<(Resource, Option<String>), String> {
    let mut out = r.clone();
    let allocation = out.allocation_info.take().and_then(|a| a.role);
    let role = out.role.take();
    let reservation = out.reservation.take();
    if !out.reservations.is_empty() {
        // A one-element stack may also carry a consistent pre-refinement form.
        if let Some(role) = role.as_deref().filter(|r| *r != "*") {
            if out.reservations.len() != 1 || reservation_role(&out) != Some(role) {
                return Err("Resource with 'reservations' has an inconsistent 'role'".to_owned());
            }
        }
        return Ok((out, allocation));
    }
    let role = role.unwrap_or_else(|| "*".to_owned());
    if role == "*" {
        if reservation.is_some() {
            return Err("Invalid reservation: role \"*\" cannot be dynamically reserved".into());
        }
        return Ok((out, allocation));
    }
    let entry = match reservation {
        Some(res) => {
            if res.role.is_some() || res.r#type.is_some() {
                return Err(
                    "'Resource.reservation' must not set 'type' or 'role' in the \
                     pre-reservation-refinement format"
                        .into(),
                );
            }
            ReservationInfo {
                r#type: Some(reservation_info::Type::Dynamic as i32),
                role: Some(role),
                principal: res.principal,
                labels: res.labels,
            }
        }
        None => ReservationInfo {
            r#type: Some(reservation_info::Type::Static as i32),
            role: Some(role),
            ..Default::default()
        },
    };
    out.reservations = vec![entry];
    Ok((out, allocation))
}

/// How a framework wants resources rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// MULTI_ROLE: resources carry `allocation_info`.
    pub multi_role: bool,
    /// RESERVATION_REFINEMENT: the `reservations` stack format.
    pub refinement: bool,
}

/// Renders a resource for a framework, or `None` when its format cannot
/// express it (a refined reservation for a framework without the capability).
pub fn for_framework(r: &Resource, role: &str, format: Format) -> Option<Resource> {
    let mut out = r.clone();
    if !format.refinement {
        if out.reservations.len() > 1 {
            return None;
        }
        match out.reservations.pop() {
            None => out.role = Some("*".to_owned()),
            Some(res) => {
                out.role = res.role.clone();
                if res.r#type == Some(reservation_info::Type::Dynamic as i32) {
                    out.reservation = Some(ReservationInfo {
                        principal: res.principal,
                        labels: res.labels,
                        ..Default::default()
                    });
                }
            }
        }
    }
    if format.multi_role {
        out.allocation_info = Some(AllocationInfo {
            role: Some(role.to_owned()),
        });
    }
    Some(out)
}

/// Mesos' ENDPOINT format (operator endpoints): the post-refinement stack plus,
/// for unreserved resources and single reservations, the pre-refinement fields.
pub fn to_endpoint(r: &Resource) -> Resource {
    let mut out = r.clone();
    match out.reservations.as_slice() {
        [] => out.role = Some("*".to_owned()),
        [only] => {
            if only.r#type == Some(reservation_info::Type::Dynamic as i32) {
                out.reservation = Some(ReservationInfo {
                    principal: only.principal.clone(),
                    labels: only.labels.clone(),
                    ..Default::default()
                });
            }
            out.role = only.role.clone();
        }
        _ => {}
    }
    out
}

// ------------------------------------------------------------------ parsing

/// Parses an agent resources string such as
/// `cpus:4;mem:4096;disk:4096;ports:[31000-32000]` (also `name(role):value`
/// for a static reservation and `{a,b}` for sets).
pub fn parse(text: &str) -> Result<Vec<Resource>, String> {
    let mut out = Resources::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, val) = part
            .split_once(':')
            .ok_or_else(|| format!("resource '{part}' is not of the form name:value"))?;
        let (name, role) = match key.split_once('(') {
            Some((name, rest)) => {
                let role = rest
                    .strip_suffix(')')
                    .ok_or_else(|| format!("resource '{part}' has an unclosed role"))?;
                (name.trim(), Some(role.trim()))
            }
            None => (key.trim(), None),
        };
        if name.is_empty() {
            return Err(format!("resource '{part}' has no name"));
        }
        let val = val.trim();
        let mut r = Resource {
            name: name.to_owned(),
            ..Default::default()
        };
        if let Some(inner) = val.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            let mut ranges = Vec::new();
            for piece in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (b, e) = piece
                    .split_once('-')
                    .ok_or_else(|| format!("range '{piece}' in '{part}' is not begin-end"))?;
                let b: u64 = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("range '{piece}' in '{part}' is not numeric"))?;
                let e: u64 = e
                    .trim()
                    .parse()
                    .map_err(|_| format!("range '{piece}' in '{part}' is not numeric"))?;
                if b > e {
                    return Err(format!("range '{piece}' in '{part}' has begin > end"));
                }
                ranges.push((b, e));
            }
            r.r#type = RANGES;
            set_ranges(&mut r, normalise_ranges(ranges));
        } else if let Some(inner) = val.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            r.r#type = SET;
            r.set = Some(value::Set {
                item: inner
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
            });
        } else {
            let v: f64 = val
                .parse()
                .map_err(|_| format!("resource '{part}' has a value that is not a number"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(format!("resource '{part}' must be a non-negative number"));
            }
            r.r#type = SCALAR;
            r.scalar = Some(value::Scalar { value: v });
        }
        if let Some(role) = role.filter(|r| *r != "*") {
            crate::ids::validate_role(role)
                .map_err(|e| format!("resource '{part}' has an invalid role: {e}"))?;
            r.reservations = vec![ReservationInfo {
                r#type: Some(reservation_info::Type::Static as i32),
                role: Some(role.to_owned()),
                ..Default::default()
            }];
        }
        out.add(&r);
    }
    Ok(out.to_vec())
}

/// Parses an attributes string such as `rack:r1;zone:z1;level:3;range:[1-5]`.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, String> {
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, val) = part
            .split_once(':')
            .ok_or_else(|| format!("attribute '{part}' is not of the form name:value"))?;
        let name = name.trim();
        let val = val.trim();
        if name.is_empty() {
            return Err(format!("attribute '{part}' has no name"));
        }
        let mut attr = Attribute {
            name: name.to_owned(),
            ..Default::default()
        };
        if let Some(inner) = val.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            let parsed = parse(&format!("x:[{inner}]"))?;
            attr.r#type = RANGES;
            attr.ranges = parsed.into_iter().next().and_then(|r| r.ranges);
        } else if let Some(inner) = val.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            attr.r#type = SET;
            attr.set = Some(value::Set {
                item: inner.split(',').map(|s| s.trim().to_owned()).collect(),
            });
        } else if let Ok(v) = val.parse::<f64>() {
            attr.r#type = SCALAR;
            attr.scalar = Some(value::Scalar { value: v });
        } else {
            attr.r#type = value::Type::Text as i32;
            attr.text = Some(value::Text {
                value: val.to_owned(),
            });
        }
        out.push(attr);
    }
    Ok(out)
}

// ------------------------------------------------------------------ JSON summaries

/// Mesos' summary form of resources in `/master/state`: scalars as numbers,
/// ranges as `"[a-b, c-d]"`, sets as `"{a, b}"`, summed per name.
pub fn summary_json(resources: &Resources) -> serde_json::Value {
    let mut scalars: BTreeMap<String, i64> = BTreeMap::new();
    let mut ranges: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        scalars.insert(name.to_owned(), 0);
    }
    for r in resources.iter() {
        match r.r#type {
            SCALAR => {
                *scalars.entry(r.name.clone()).or_default() +=
                    milli(r.scalar.as_ref().map_or(0.0, |s| s.value));
            }
            RANGES => ranges
                .entry(r.name.clone())
                .or_default()
                .extend(ranges_of(r)),
            SET => sets.entry(r.name.clone()).or_default().extend(items_of(r)),
            _ => {}
        }
    }
    let mut out = serde_json::Map::new();
    for (name, m) in scalars {
        out.insert(name, serde_json::json!(from_milli(m)));
    }
    for (name, rs) in ranges {
        let text = normalise_ranges(rs)
            .iter()
            .map(|(b, e)| format!("{b}-{e}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.insert(name, serde_json::json!(format!("[{text}]")));
    }
    for (name, mut items) in sets {
        items.sort();
        items.dedup();
        out.insert(name, serde_json::json!(format!("{{{}}}", items.join(", "))));
    }
    serde_json::Value::Object(out)
}

/// A scalar resource, for tests and configuration.
pub fn scalar(name: &str, v: f64) -> Resource {
    Resource {
        name: name.to_owned(),
        r#type: SCALAR,
        scalar: Some(value::Scalar { value: v }),
        ..Default::default()
    }
}

/// A ranges resource, for tests and configuration.
pub fn ranges(name: &str, list: &[(u64, u64)]) -> Resource {
    let mut r = Resource {
        name: name.to_owned(),
        r#type: RANGES,
        ..Default::default()
    };
    set_ranges(&mut r, normalise_ranges(list.to_vec()));
    r
}

/// Renders an attribute's value as Mesos' `/master/state` does.
pub fn attribute_json(a: &Attribute) -> serde_json::Value {
    match a.r#type {
        SCALAR => serde_json::json!(a.scalar.as_ref().map_or(0.0, |s| s.value)),
        RANGES => {
            let r = Resource {
                ranges: a.ranges.clone(),
                ..Default::default()
            };
            let text = ranges_of(&r)
                .iter()
                .map(|(b, e)| format!("{b}-{e}"))
                .collect::<Vec<_>>()
                .join(", ");
            serde_json::json!(format!("[{text}]"))
        }
        SET => serde_json::json!(format!(
            "{{{}}}",
            a.set
                .as_ref()
                .map(|s| s.item.join(", "))
                .unwrap_or_default()
        )),
        _ => serde_json::json!(a.text.as_ref().map(|t| t.value.clone()).unwrap_or_default()),
    }
}

/// Builds a `Value` for an attribute, for completeness of the public surface.
pub fn attribute_value(a: &Attribute) -> Value {
    Value {
        r#type: a.r#type,
        scalar: a.scalar,
        ranges: a.ranges.clone(),
        set: a.set.clone(),
        text: a.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(r: Resource, role: &str, principal: &str) -> Resource {
        let mut r = r;
        r.reservations.push(ReservationInfo {
            r#type: Some(reservation_info::Type::Dynamic as i32),
            role: Some(role.into()),
            principal: Some(principal.into()),
            labels: None,
        });
        r
    }

    #[test]
    fn scalars_are_fixed_point() {
        let mut bag = Resources::new();
        bag.add(&scalar("cpus", 0.1));
        bag.add(&scalar("cpus", 0.2));
        assert!(bag.contains_one(&scalar("cpus", 0.3)));
        bag.subtract_one(&scalar("cpus", 0.3));
        assert!(bag.is_empty());
    }

    #[test]
    fn ranges_split_and_merge() {
        let bag = Resources::from_list(&[ranges("ports", &[(31000, 31010)])]);
        assert!(bag.contains_one(&ranges("ports", &[(31003, 31003), (31005, 31006)])));
        let left = bag.minus(&Resources::from_list(&[ranges("ports", &[(31003, 31004)])]));
        assert_eq!(
            left.as_slice(),
            &[ranges("ports", &[(31000, 31002), (31005, 31010)])]
        );
        assert!(!left.contains_one(&ranges("ports", &[(31003, 31003)])));
    }

    #[test]
    fn only_the_quantity_may_differ_for_a_merge() {
        let plain = scalar("cpus", 1.0);
        let mut allocated = plain.clone();
        allocated.allocation_info = Some(mesos_proto::v1::resource::AllocationInfo {
            role: Some("r".into()),
        });
        let mut revocable = plain.clone();
        revocable.revocable = Some(mesos_proto::v1::resource::RevocableInfo {});
        let mut bag = Resources::from_list(&[
            plain.clone(),
            scalar("cpus", 2.0),
            allocated.clone(),
            revocable.clone(),
        ]);
        assert_eq!(bag.as_slice().len(), 3, "{bag:?}");
        assert_eq!(bag.scalar("cpus"), 5.0);
        bag.subtract_one(&allocated);
        assert!(!bag.contains_one(&allocated));
        assert!(bag.contains_one(&scalar("cpus", 3.0)) && bag.contains_one(&revocable));
    }

    #[test]
    fn reservations_with_different_labels_stay_apart() {
        let a = dynamic(scalar("cpus", 1.0), "r", "p");
        let mut b = a.clone();
        b.reservations[0].labels = Some(mesos_proto::v1::Labels {
            labels: vec![mesos_proto::v1::Label {
                key: "k".into(),
                value: Some("v".into()),
            }],
        });
        let bag = Resources::from_list(&[a.clone(), a.clone(), b.clone()]);
        assert_eq!(bag.as_slice().len(), 2);
        assert!(bag.contains_one(&dynamic(scalar("cpus", 2.0), "r", "p")));
        assert!(!bag.contains_one(&scalar("cpus", 1.0)));
    }

    #[test]
    fn pre_refinement_round_trip() {
        let pre = Resource {
            role: Some("kafka".into()),
            reservation: Some(ReservationInfo {
                principal: Some("p".into()),
                ..Default::default()
            }),
            ..scalar("mem", 64.0)
        };
        let (post, _) = upgrade(&pre).expect("upgrades");
        assert_eq!(reservation_role(&post), Some("kafka"));
        assert!(is_dynamically_reserved(&post));
        let format = Format {
            multi_role: false,
            refinement: false,
        };
        let back = for_framework(&post, "kafka", format).expect("renders");
        assert_eq!(back, pre);
        let unreserved = for_framework(&scalar("mem", 1.0), "kafka", format).expect("renders");
        assert_eq!(unreserved.role.as_deref(), Some("*"));
    }

    #[test]
    fn refined_reservations_hide_from_old_frameworks() {
        let r = dynamic(dynamic(scalar("cpus", 1.0), "a", "p"), "a/b", "q");
        assert!(validate(&r).is_ok());
        let old = Format {
            multi_role: true,
            refinement: false,
        };
        assert!(for_framework(&r, "a/b", old).is_none());
        assert!(allocatable_to(&r, "a/b"));
        assert!(allocatable_to(&r, "a/b/c"));
        assert!(!allocatable_to(&r, "a"));
    }

    #[test]
    fn parse_agent_resources() {
        let list =
            parse("cpus:4;mem:4096;disk:100;ports:[31000-31009, 32000-32000]").expect("parses");
        let bag = Resources::from_list(&list);
        assert_eq!(bag.scalar("cpus"), 4.0);
        assert!(bag.contains_one(&ranges("ports", &[(32000, 32000)])));
        assert!(parse("cpus").is_err());
        assert!(parse("cpus:-1").is_err());
        let attrs = parse_attributes("rack:r1;level:2").expect("parses");
        assert_eq!(attribute_json(&attrs[0]), serde_json::json!("r1"));
        assert_eq!(attribute_json(&attrs[1]), serde_json::json!(2.0));
    }

    #[test]
    fn volumes_are_indivisible() {
        let mut v = dynamic(scalar("disk", 10.0), "r", "p");
        v.disk = Some(mesos_proto::v1::resource::DiskInfo {
            persistence: Some(mesos_proto::v1::resource::disk_info::Persistence {
                id: "vol".into(),
                principal: Some("p".into()),
            }),
            ..Default::default()
        });
        let bag = Resources::from_list(&[v.clone()]);
        let mut half = v.clone();
        half.scalar = Some(value::Scalar { value: 5.0 });
        assert!(!bag.contains_one(&half));
        assert!(bag.contains_one(&v));
        assert_eq!(strip_volume(&v), dynamic(scalar("disk", 10.0), "r", "p"));
    }
}
