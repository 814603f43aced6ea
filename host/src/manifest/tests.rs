use std::path::Path;

use super::*;

fn dir_with_plugin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.wasm"), b"stand-in: only existence is checked here").unwrap();
    std::fs::write(dir.path().join("in.jsonl"), b"{}\n").unwrap();
    dir
}

const GOOD: &str = r#"
[source]
kind = "jsonl"
path = "in.jsonl"

[stages]
plugin = "p.wasm"
config = { field = "x" }

[stages.format]
config = { style = "y" }

[clock]
kind = "event"
wait_for_system_duration = "10s"

[window]
kind = "tumbling"
length = "5s"
align_to = "2024-01-01T00:00:00Z"

[sink]
kind = "stdout"
"#;

fn parse(dir: &Path, text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, &dir.join("pipeline.toml"))
}

fn problems(dir: &Path, text: &str) -> Vec<Problem> {
    match parse(dir, text) {
        Err(ManifestError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn a_good_manifest_resolves_paths_and_configs() {
    let dir = dir_with_plugin();
    let m = parse(dir.path(), GOOD).unwrap();
    assert_eq!(m.source, SourceSpec::Jsonl(dir.path().join("in.jsonl")));
    assert_eq!(m.stage(StageKind::Key).unwrap().plugin, dir.path().join("p.wasm"));
    assert_eq!(m.stage(StageKind::Key).unwrap().config, r#"{"field":"x"}"#);
    assert_eq!(m.stage(StageKind::Format).unwrap().config, r#"{"style":"y"}"#);
    assert_eq!(m.clock, ClockSpec::Event { wait_for_system_duration: 10_000_000 });
    assert_eq!(m.window, WindowSpec::Tumbling { length: 5_000_000, align_to: Timestamp(1_704_067_200_000_000) });
    assert_eq!(m.limits, Limits::default());
}

#[test]
fn an_unknown_field_is_named_with_its_line() {
    let dir = dir_with_plugin();
    let text = GOOD.replace("length = \"5s\"", "length = \"5s\"\nlenght = \"6s\"");
    let p = problems(dir.path(), &text);
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("unknown field `lenght`"), "{}", p[0]);
    assert_eq!(p[0].field, "line 20: window.lenght");
}

#[test]
fn a_bad_duration_says_how_to_write_one() {
    let dir = dir_with_plugin();
    let text = GOOD.replace("\"10s\"", "\"ten seconds\"");
    let p = problems(dir.path(), &text);
    assert!(p[0].message.contains("`ten seconds` is not a duration"), "{}", p[0]);
    assert_eq!(p[0].field, "line 15: clock.wait_for_system_duration");
}

#[test]
fn every_semantic_problem_is_reported_at_once_by_field() {
    let dir = dir_with_plugin();
    let text = GOOD
        .replace("path = \"in.jsonl\"", "path = \"missing.jsonl\"")
        .replace("[stages.format]", "[stages.fold]\nplugin = \"nope.wasm\"\n\n[stages.format]")
        .replace("length = \"5s\"", "length = \"0s\"")
        .replace("2024-01-01T00:00:00Z", "new year");
    let p = problems(dir.path(), &text);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["source.path", "stages.fold.plugin", "window.length", "window.align_to"]);
    assert!(p[1].message.contains("nope.wasm"), "{}", p[1]);
    let err = parse(dir.path(), &text).unwrap_err().to_string();
    assert!(err.contains("has 4 problem(s)"), "{err}");
}

#[test]
fn a_stage_without_a_plugin_is_named() {
    let dir = dir_with_plugin();
    let text = GOOD.replace("plugin = \"p.wasm\"\n", "");
    let p = problems(dir.path(), &text);
    assert_eq!(p.len(), 4);
    assert_eq!(p[0].field, "stages.deserialize.plugin");
    assert!(p[0].message.contains("no component"), "{}", p[0]);
}

#[test]
fn unknown_kinds_are_refused() {
    let dir = dir_with_plugin();
    let p = problems(dir.path(), &GOOD.replace("kind = \"tumbling\"", "kind = \"hopping\""));
    assert!(p[0].message.contains("unknown variant `hopping`"), "{}", p[0]);
}

#[test]
fn sliding_and_session_windows_are_checked() {
    let dir = dir_with_plugin();
    let sliding = GOOD.replace("kind = \"tumbling\"", "kind = \"sliding\"\noffset = \"2s\"");
    let m = parse(dir.path(), &sliding).unwrap();
    assert_eq!(m.window, WindowSpec::Sliding { length: 5_000_000, offset: 2_000_000, align_to: Timestamp(1_704_067_200_000_000) });
    let p = problems(dir.path(), &GOOD.replace("kind = \"tumbling\"", "kind = \"sliding\"\noffset = \"6s\""));
    assert_eq!(p[0].field, "window.offset");
    assert!(p[0].message.contains("longer than `length`"), "{}", p[0]);
    let p = problems(dir.path(), &GOOD.replace("kind = \"tumbling\"", "kind = \"sliding\""));
    assert_eq!((p[0].field.as_str(), p[0].message.contains("required")), ("window.offset", true), "{}", p[0]);

    let session = GOOD.replace("kind = \"tumbling\"", "kind = \"session\"\ngap = \"30s\"");
    let p = problems(dir.path(), &session);
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["window.length", "window.align_to"], "a session has a gap, not a length");
    let p = problems(dir.path(), &GOOD.replace("kind = \"tumbling\"", "kind = \"session\""));
    assert!(p.iter().any(|p| p.field == "window.gap" && p.message.contains("required")), "{p:?}");
}

#[test]
fn limits_are_checked() {
    let dir = dir_with_plugin();
    let text = format!("{GOOD}\n[limits]\nmemory = \"512KiB\"\ncall_timeout = \"0s\"\nbatch_size = 0\nfold_buffer = 100000000\n");
    let fields: Vec<String> = problems(dir.path(), &text).into_iter().map(|p| p.field).collect();
    assert_eq!(fields, ["limits.batch_size", "limits.call_timeout", "limits.fold_buffer", "limits.memory"]);
}

#[test]
fn collect_windows_need_a_size() {
    let dir = dir_with_plugin();
    let text = GOOD.replace("kind = \"tumbling\"\nlength = \"5s\"\nalign_to = \"2024-01-01T00:00:00Z\"", "kind = \"collect\"\nmax_size = 0\ntimeout = \"10s\"");
    let p = problems(dir.path(), &text);
    assert_eq!(p[0].field, "window.max_size");
}

#[test]
fn a_field_a_kind_needs_is_named_when_missing() {
    let dir = dir_with_plugin();
    let p = problems(dir.path(), &GOOD.replace("wait_for_system_duration = \"10s\"\n", ""));
    assert_eq!(p[0].field, "clock.wait_for_system_duration");
    assert!(p[0].message.starts_with("required when kind = \"event\""), "{}", p[0]);
    let p = problems(dir.path(), &GOOD.replace("kind = \"stdout\"", "kind = \"file\""));
    assert_eq!(p[0].field, "sink.path");
}

fn kafka(text: &str) -> String {
    text.replace("kind = \"jsonl\"\npath = \"in.jsonl\"", "kind = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\ntopics = [\"t\"]\ngroup_id = \"g\"")
}

#[test]
fn a_kafka_source_without_checkpoints_gets_a_folder_beside_the_manifest() {
    let dir = dir_with_plugin();
    let m = parse(dir.path(), &kafka(GOOD)).unwrap();
    let c = m.checkpoint.clone().expect("a default");
    assert_eq!(c.store, CheckpointStoreSpec::Folder(dir.path().join(".weir").join(format!("{}.checkpoints", m.name))));
    // A file source keeps none.
    assert_eq!(parse(dir.path(), GOOD).unwrap().checkpoint, None);
}

#[test]
fn checkpoint_kinds_name_their_fields() {
    let dir = dir_with_plugin();
    let ddb = format!("{}\n[checkpoint]\nkind = \"dynamodb\"\ntable = \"ckpt\"\ncreate_table = true\ninterval = \"2s\"\n", kafka(GOOD));
    let m = parse(dir.path(), &ddb).unwrap();
    let c = m.checkpoint.unwrap();
    assert_eq!(c.interval, Duration::from_secs(2));
    assert!(matches!(c.store, CheckpointStoreSpec::Dynamodb(ref d) if d.table == "ckpt" && d.create_table));
    let fields = |text: &str| problems(dir.path(), text).into_iter().map(|p| p.field).collect::<Vec<_>>();
    assert_eq!(fields(&format!("{}\n[checkpoint]\nkind = \"dynamodb\"\n", kafka(GOOD))), ["checkpoint.table"]);
    assert_eq!(fields(&format!("{}\n[checkpoint]\ndir = \"c\"\ntable = \"x\"\n", kafka(GOOD))), ["checkpoint.table"]);
    assert_eq!(fields(&format!("{}\n[checkpoint]\ninterval = \"1s\"\n", kafka(GOOD))), ["checkpoint.dir"]);
    assert_eq!(fields(&format!("{}\n[checkpoint]\nkind = \"dynamodb\"\ntable = \"no spaces\"\n", kafka(GOOD))), ["checkpoint.table"]);
}

#[test]
fn collect_windows_are_unique_by_window_id_in_dynamodb() {
    let dir = dir_with_plugin();
    let sink = "[sink]\nkind = \"dynamodb\"\ntable = \"out\"\n";
    let tumbling = parse(dir.path(), &GOOD.replace("[sink]\nkind = \"stdout\"\n", sink)).unwrap();
    assert!(matches!(tumbling.sink, SinkSpec::Dynamodb(ref d) if d.sort_by == SortBy::Start));
    let collect = GOOD
        .replace("[sink]\nkind = \"stdout\"\n", sink)
        .replace("kind = \"tumbling\"\nlength = \"5s\"\nalign_to = \"2024-01-01T00:00:00Z\"", "kind = \"collect\"\nmax_size = 3\ntimeout = \"10s\"");
    let collect = parse(dir.path(), &collect).unwrap();
    assert!(matches!(collect.sink, SinkSpec::Dynamodb(ref d) if d.sort_by == SortBy::WindowId));
}

#[test]
fn the_host_can_decode_key_and_time_by_field() {
    let dir = dir_with_plugin();
    let text = GOOD.replace("[stages.format]", "[stages.deserialize]\nbuiltin = \"json\"\n[stages.key]\nfield = \"device\"\n[stages.format]").replace(
        "wait_for_system_duration = \"10s\"",
        "wait_for_system_duration = \"10s\"\ntime_field = \"ts\"\ntime_format = \"unix_ms\"",
    );
    let m = parse(dir.path(), &text).unwrap();
    assert!(m.stage(StageKind::Deserialize).is_none() && m.stage(StageKind::Key).is_none());
    assert!(m.stage(StageKind::Fold).is_some() && m.stage(StageKind::Format).is_some());
    assert_eq!(
        m.events,
        EventsSpec { builtin_json: true, key_field: Some("device".into()), time_field: Some("ts".into()), time_format: crate::event::TimeFormat::UnixMillis }
    );
}

#[test]
fn host_stages_that_make_no_sense_are_named() {
    let dir = dir_with_plugin();
    let text = GOOD.replace(
        "[stages.format]",
        "[stages.deserialize]\nbuiltin = \"xml\"\n[stages.key]\nfield = \"device\"\nplugin = \"p.wasm\"\n[stages.fold]\nbuiltin = \"json\"\n[stages.format]",
    );
    let text = text.replace("wait_for_system_duration = \"10s\"", "wait_for_system_duration = \"10s\"\ntime_format = \"iso\"");
    let found: Vec<String> = problems(dir.path(), &text).iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
    for wanted in [
        "stages.deserialize.builtin: no built-in `xml`",
        "stages.key.plugin: the host does this stage",
        "stages.fold.builtin: only the deserialize stage has a built-in",
        "clock.time_format: no format `iso`",
        "clock.time_field: required with the built-in deserializer",
    ] {
        assert!(found.iter().any(|f| f.starts_with(wanted)), "no `{wanted}` in {found:#?}");
    }
}
