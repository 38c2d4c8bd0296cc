//! Conformance against the wire vectors produced from the official Mesos schema.
//!
//! Reads every `*.json` in `$MESOS_WIRE_VECTORS` (default
//! `../shared/testdata/mesos-wire`, relative paths taken from the workspace
//! root). For each message vector: protobuf decodes and re-encodes byte for
//! byte, renders the expected JSON, and the expected JSON parses back to the
//! same bytes. The RecordIO vector splits into exactly its named records, fed
//! whole and one byte at a time. A missing or empty directory fails the test.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail, ensure};
use mesos_proto::{
    codec::{from_json_value, from_protobuf, to_json_value},
    v1::{executor, scheduler},
};
use prost_reflect::ReflectMessage;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("MESOS_WIRE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/testdata/mesos-wire"));
    if dir.is_absolute() {
        dir
    } else {
        workspace.join(dir)
    }
}

fn load_vectors(dir: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "wire vector directory {} is missing (set MESOS_WIRE_VECTORS)",
            dir.display()
        )
    })?;
    let mut vectors = BTreeMap::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .context("vector file name is not UTF-8")?
                .to_owned();
            vectors.insert(name, value);
        }
    }
    ensure!(
        !vectors.is_empty(),
        "no *.json vectors in {}",
        dir.display()
    );
    Ok(vectors)
}

/// Checks one message vector for the message type `M`; returns the decoded bytes.
fn check_message<M: ReflectMessage + Default>(name: &str, vector: &Value) -> anyhow::Result<()> {
    let hex_text = vector["protobuf_hex"]
        .as_str()
        .with_context(|| format!("{name}: no protobuf_hex"))?;
    let bytes = hex::decode(hex_text).with_context(|| format!("{name}: bad hex"))?;
    let expected_json = vector
        .get("json")
        .with_context(|| format!("{name}: no json"))?;

    let decoded: M = from_protobuf(&bytes).with_context(|| format!("{name}: decode protobuf"))?;
    ensure!(
        decoded.encode_to_vec() == bytes,
        "{name}: re-encoded bytes differ\n  expected {hex_text}\n  actual   {}",
        hex::encode(decoded.encode_to_vec())
    );

    let rendered = to_json_value(&decoded);
    ensure!(
        &rendered == expected_json,
        "{name}: rendered JSON differs\n  expected {expected_json}\n  actual   {rendered}"
    );

    let parsed: M =
        from_json_value(expected_json.clone()).with_context(|| format!("{name}: parse json"))?;
    ensure!(
        parsed.encode_to_vec() == bytes,
        "{name}: JSON parsed to different bytes\n  expected {hex_text}\n  actual   {}",
        hex::encode(parsed.encode_to_vec())
    );
    Ok(())
}

fn check_vector(name: &str, vector: &Value) -> anyhow::Result<()> {
    match vector["message"].as_str() {
        Some("mesos.v1.scheduler.Call") => check_message::<scheduler::Call>(name, vector),
        Some("mesos.v1.scheduler.Event") => check_message::<scheduler::Event>(name, vector),
        Some("mesos.v1.executor.Call") => check_message::<executor::Call>(name, vector),
        Some("mesos.v1.executor.Event") => check_message::<executor::Event>(name, vector),
        Some(other) => bail!("{name}: no type for message {other}"),
        None => bail!("{name}: neither a message nor a RecordIO vector"),
    }
}

fn check_recordio(name: &str, vector: &Value, all: &BTreeMap<String, Value>) -> anyhow::Result<()> {
    let stream = hex::decode(
        vector["stream_hex"]
            .as_str()
            .with_context(|| format!("{name}: no stream_hex"))?,
    )?;
    let expected: Vec<Vec<u8>> = vector["records"]
        .as_array()
        .with_context(|| format!("{name}: no records"))?
        .iter()
        .map(|record| {
            let record = record.as_str().context("record name is not a string")?;
            let hex_text = all
                .get(record)
                .and_then(|v| v["protobuf_hex"].as_str())
                .with_context(|| format!("{name}: record {record} has no vector"))?;
            Ok(hex::decode(hex_text)?)
        })
        .collect::<anyhow::Result<_>>()?;
    ensure!(!expected.is_empty(), "{name}: names no records");

    // Whole stream at once, then one byte at a time.
    for chunk_size in [stream.len(), 1] {
        let mut decoder = mesos_recordio::Decoder::default();
        let mut records = Vec::new();
        for chunk in stream.chunks(chunk_size) {
            decoder.feed(chunk);
            while let Some(record) = decoder.next_record()? {
                // Each record must also be a valid Event.
                from_protobuf::<scheduler::Event>(&record)
                    .with_context(|| format!("{name}: record {} is not an Event", records.len()))?;
                records.push(record.to_vec());
            }
        }
        decoder.finish()?;
        ensure!(
            records == expected,
            "{name}: split into {} records with chunk size {chunk_size}, expected the {} named",
            records.len(),
            expected.len()
        );
    }
    Ok(())
}

/// Checks every vector in `dir`; returns (message vectors, RecordIO vectors).
fn check_dir(dir: &Path) -> anyhow::Result<(usize, usize)> {
    let vectors = load_vectors(dir)?;
    let mut failures = Vec::new();
    let (mut messages, mut streams) = (0, 0);
    for (name, vector) in &vectors {
        let result = if vector.get("framing").and_then(Value::as_str) == Some("recordio") {
            streams += 1;
            check_recordio(name, vector, &vectors)
        } else {
            messages += 1;
            check_vector(name, vector)
        };
        if let Err(error) = result {
            failures.push(format!("{error:#}"));
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
    Ok((messages, streams))
}

#[test]
fn every_wire_vector_round_trips() -> anyhow::Result<()> {
    let (messages, streams) = check_dir(&vectors_dir())?;
    ensure!(streams >= 1, "no RecordIO vector found");
    eprintln!("checked {messages} message vectors and {streams} RecordIO stream(s)");
    Ok(())
}

/// The conformance check itself must fail on a missing or empty directory and
/// on a vector whose bytes, JSON or record list is wrong.
#[test]
fn the_check_rejects_missing_empty_and_wrong_vectors() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    assert!(check_dir(&scratch.path().join("absent")).is_err());
    assert!(check_dir(scratch.path()).is_err(), "empty directory passed");

    let source = vectors_dir();
    let original: Value = serde_json::from_str(&std::fs::read_to_string(
        source.join("scheduler_call_decline.json"),
    )?)?;
    type Tamper = fn(&mut Value);
    let tamperings: [(&str, Tamper); 4] = [
        ("flipped byte", |v| {
            let hex_text = v["protobuf_hex"]
                .as_str()
                .unwrap_or_default()
                .replacen("10", "11", 1);
            v["protobuf_hex"] = Value::from(hex_text);
        }),
        ("changed JSON value", |v| {
            v["json"]["decline"]["filters"]["refuse_seconds"] = Value::from(6.0)
        }),
        ("extra JSON key", |v| {
            v["json"]["decline"]["filters"]["extra"] = Value::from(1)
        }),
        ("unknown message", |v| {
            v["message"] = Value::from("mesos.v1.Nope")
        }),
    ];
    for (what, tamper) in tamperings {
        let dir = tempfile::tempdir()?;
        let mut vector = original.clone();
        tamper(&mut vector);
        std::fs::write(dir.path().join("v.json"), serde_json::to_vec(&vector)?)?;
        assert!(
            check_dir(dir.path()).is_err(),
            "a vector with a {what} passed"
        );
    }

    let stream: Value = serde_json::from_str(&std::fs::read_to_string(
        source.join("recordio_scheduler_stream.json"),
    )?)?;
    let dir = tempfile::tempdir()?;
    for entry in std::fs::read_dir(&source)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(
                &path,
                dir.path().join(path.file_name().context("file name")?),
            )?;
        }
    }
    let mut short = stream.clone();
    short["records"].as_array_mut().context("records")?.pop();
    std::fs::write(
        dir.path().join("recordio_scheduler_stream.json"),
        serde_json::to_vec(&short)?,
    )?;
    assert!(
        check_dir(dir.path()).is_err(),
        "a RecordIO vector naming too few records passed"
    );
    Ok(())
}
