//! Events held back from the fold (`limits.fold_buffer`) and folded many to
//! a window give the same windows and the same dead letters as folding
//! each batch at once: whatever the buffer's size, however the held
//! events are cut into calls, and when the fold fails or traps on some.

use std::fmt::Write;
use std::path::Path;

use weir::manifest::StageKind;
use weir::sink::DeadLetter;
use weir_tests::{engine, manifest_text, plugin, run, sums_manifest};

// Readings of four keys over 35 s. Every event of `boom` fails in the
// fold, so no window of it opens.
fn input() -> String {
    let mut text = String::new();
    for second in 0..35u32 {
        for (i, key) in ["a", "b", "c", "boom"].iter().enumerate() {
            if *key == "boom" && !(12..15).contains(&second) && second % 7 != 0 {
                continue;
            }
            let value = (second * 4 + i as u32) % 11;
            writeln!(text, r#"{{"key":"{key}","value":{value},"time":"2022-01-01T00:00:{second:02}Z"}}"#).unwrap();
        }
    }
    text
}

// The windows written (in order) and the dead letters of the faulty
// plugin's fold in `mode` on `boom`, with `window`, `batch_size` records a
// batch and `fold_buffer` placements held.
fn outcome(dir: &Path, mode: &str, window: &str, batch_size: usize, fold_buffer: usize) -> (Vec<String>, Vec<DeadLetter>) {
    outcome_of(dir, &input(), "1h", mode, window, batch_size, fold_buffer)
}

// `outcome` of `input`, with the clock waiting `wait` for late events.
fn outcome_of(dir: &Path, input: &str, wait: &str, mode: &str, window: &str, batch_size: usize, fold_buffer: usize) -> (Vec<String>, Vec<DeadLetter>) {
    std::fs::write(dir.join("input.jsonl"), input).unwrap();
    let text = format!(
        "[source]\nkind = \"jsonl\"\npath = \"input.jsonl\"\n\n[stages]\nplugin = \"{}\"\n[stages.fold]\nconfig = {{ mode = \"{mode}\", when = \"boom\" }}\n\n\
         [clock]\nkind = \"event\"\nwait_for_system_duration = \"{wait}\"\n\n[window]\n{window}\nalign_to = \"2022-01-01T00:00:00Z\"\n\n\
         [sink]\nkind = \"stdout\"\n\n[limits]\nbatch_size = {batch_size}\nfold_buffer = {fold_buffer}\n",
        plugin("faulty").display()
    );
    let out = run(&manifest_text(dir, &text)).unwrap();
    (out.lines, out.dead)
}

fn same_as_folding_each_batch(mode: &str, window: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (lines, dead) = outcome(dir.path(), mode, window, 5, 0);
    assert!(lines.len() >= 9, "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains("boom")), "every event of `boom` failed: {lines:#?}");
    let mut failed: Vec<u64> = dead.iter().map(|d| d.position).collect();
    failed.sort();
    // `boom` at 0, 7, 12, 13, 14, 21 and 28 s: each once, though in two
    // sliding windows.
    assert_eq!(failed.len(), 7, "{dead:#?}");
    // Held until full (7), until a window is due or the end (1,000), and
    // cut into calls shorter than a window's events (batch_size 2).
    for (batch_size, fold_buffer) in [(5, 7), (5, 1_000), (2, 1_000), (64, 1_000)] {
        let (held_lines, held_dead) = outcome(dir.path(), mode, window, batch_size, fold_buffer);
        assert_eq!(held_lines, lines, "batch_size {batch_size}, fold_buffer {fold_buffer}");
        let mut held_failed: Vec<u64> = held_dead.iter().map(|d| d.position).collect();
        held_failed.sort();
        assert_eq!(held_failed, failed, "batch_size {batch_size}, fold_buffer {fold_buffer}: {held_dead:#?}");
        // Whole, as in the file (the held lines are read back from it).
        let text = input();
        let line = |position: u64| text.lines().nth(position as usize - 1).unwrap().to_owned();
        assert!(held_dead.iter().all(|d| d.stage == "fold" && d.value_text() == line(d.position) && d.value_text().contains("\"boom\"") && d.source.ends_with("input.jsonl")), "{held_dead:#?}");
    }
}

// Four hundred keys whose windows fall due a few at a time, each key's
// clock its own: a few due windows' events are found by walking their
// chains, many by one pass over the buffer, and a full buffer folds its
// largest windows. Every way gives the windows and dead letters of no
// buffer.
#[test]
fn held_events_of_many_keys_fold_to_the_same_windows_however_they_are_found() {
    let (mut text, mut windows, mut booms) = (String::new(), std::collections::HashSet::new(), 0);
    for second in 0..60u32 {
        for key in 0..400u32 {
            if (second * 7 + key) % 23 == 0 || (key == 7 && second % 4 == 0) {
                let name = if key == 7 { "boom".to_owned() } else { format!("k{key:03}") };
                writeln!(text, r#"{{"key":"{name}","value":{},"time":"2022-01-01T00:00:{second:02}Z"}}"#, (second * 7 + key) % 13).unwrap();
                if key == 7 {
                    booms += 1;
                } else {
                    windows.insert((key, second / 10));
                }
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let window = "kind = \"tumbling\"\nlength = \"10s\"";
    let (lines, dead) = outcome_of(dir.path(), &text, "0s", "error", window, 16, 0);
    assert_eq!(lines.len(), windows.len());
    assert_eq!(dead.len(), booms, "every event of `boom` fails: {dead:#?}");
    let positions = |dead: &[DeadLetter]| {
        let mut p: Vec<u64> = dead.iter().map(|d| d.position).collect();
        p.sort();
        p
    };
    for fold_buffer in [40, 300, 100_000] {
        let (held_lines, held_dead) = outcome_of(dir.path(), &text, "0s", "error", window, 16, fold_buffer);
        assert_eq!(held_lines, lines, "fold_buffer {fold_buffer}");
        assert_eq!(positions(&held_dead), positions(&dead), "fold_buffer {fold_buffer}");
    }
}

#[test]
fn held_events_fold_to_the_same_tumbling_windows_and_dead_letters() {
    same_as_folding_each_batch("error", "kind = \"tumbling\"\nlength = \"10s\"");
}

#[test]
fn held_events_fold_to_the_same_sliding_windows_when_the_fold_traps() {
    same_as_folding_each_batch("trap", "kind = \"sliding\"\nlength = \"10s\"\noffset = \"5s\"");
}

// Key `a`'s window [0 s, 10 s) gets 2 at 1 s and 3 at 2 s, then events
// that all fail (their text says `boom`) in later calls: the window keeps
// what it had and is written with it, whether each record is folded in a
// call of its own or held and cut into calls of one event.
#[test]
fn a_window_keeps_its_accumulator_when_a_later_call_fails_every_event_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for (second, value, note) in [(1, 2.0, "fine"), (2, 3.0, "fine"), (3, 100.0, "boom"), (4, 100.0, "boom")] {
        writeln!(input, r#"{{"key":"a","value":{value},"note":"{note}","time":"2022-01-01T00:00:{second:02}Z"}}"#).unwrap();
    }
    std::fs::write(dir.path().join("input.jsonl"), input).unwrap();
    for fold_buffer in [0, 1_000] {
        let text = format!(
            "[source]\nkind = \"jsonl\"\npath = \"input.jsonl\"\n\n[stages]\nplugin = \"{}\"\n[stages.fold]\nconfig = {{ mode = \"error\", when = \"boom\" }}\n\n\
             [clock]\nkind = \"event\"\nwait_for_system_duration = \"1h\"\n\n[window]\nkind = \"tumbling\"\nlength = \"10s\"\nalign_to = \"2022-01-01T00:00:00Z\"\n\n\
             [sink]\nkind = \"stdout\"\n\n[limits]\nbatch_size = 1\nfold_buffer = {fold_buffer}\n",
            plugin("faulty").display()
        );
        let out = run(&manifest_text(dir.path(), &text)).unwrap();
        assert_eq!(out.lines.len(), 1, "fold_buffer {fold_buffer}: {:#?}", out.lines);
        let window: serde_json::Value = serde_json::from_str(&out.lines[0]).unwrap();
        assert_eq!((window["key"].as_str(), window["count"].as_u64(), window["sum"].as_f64()), (Some("a"), Some(2), Some(5.0)), "fold_buffer {fold_buffer}: {window}");
        assert_eq!(out.dead.iter().map(|d| d.position).collect::<Vec<_>>(), [3, 4], "fold_buffer {fold_buffer}: {:#?}", out.dead);
    }
}

fn reading(key: &str, second: u32, value: f64) -> String {
    format!(r#"{{"key":"{key}","value":{value},"time":"2022-01-01T00:00:{second:02}Z"}}"#)
}

#[test]
fn a_held_window_is_written_when_it_falls_due_not_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let m = sums_manifest(dir.path(), "faulty", "kind = \"stdin\"", "[stages.deserialize]\nconfig = { when = \"\" }\n\n[limits]\nfold_buffer = 1000");
    let mut h = weir::harness::Harness::new(&m, engine()).unwrap();
    h.push([reading("a", 1, 1.0)]).unwrap();
    h.push([reading("a", 2, 2.0)]).unwrap();
    assert_eq!(h.pipeline().status()[StageKind::Fold as usize].records, 0, "two batches' events are held, not folded yet");
    assert!(h.take_objects().is_empty());
    // The reading at 11 s makes [0, 10) due: its held events are folded
    // and it is written now, not when the input ends.
    h.push([reading("a", 11, 5.0)]).unwrap();
    assert_eq!(h.take_objects(), vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 2, "sum": 3.0 })]);
    h.finish().unwrap();
    assert_eq!(h.take_objects(), vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:10Z", "count": 1, "sum": 5.0 })]);
    assert!(h.dead_letters().is_empty(), "{:?}", h.dead_letters());
}

// With many keys some window is due in almost every batch: a window due
// folds its own held events and leaves the others' held, or each event
// would be folded on its own.
#[test]
fn a_window_due_folds_its_own_held_events_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let m = sums_manifest(dir.path(), "faulty", "kind = \"stdin\"", "[stages.deserialize]\nconfig = { when = \"\" }\n\n[limits]\nfold_buffer = 1000");
    let mut h = weir::harness::Harness::new(&m, engine()).unwrap();
    h.push([reading("a", 1, 1.0), reading("b", 2, 2.0), reading("b", 3, 4.0)]).unwrap();
    // `a` at 11 s makes a's [0, 10) due, not b's (each key's clock is its own).
    h.push([reading("a", 11, 5.0)]).unwrap();
    assert_eq!(h.take_objects(), vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 1, "sum": 1.0 })]);
    let folded = |h: &mut weir::harness::Harness| h.pipeline().status()[StageKind::Fold as usize].records;
    assert_eq!(folded(&mut h), 1, "only the due window's event is folded; b's two and a's at 11 s stay held");
    h.push([reading("b", 12, 1.0)]).unwrap();
    assert_eq!(h.take_objects(), vec![serde_json::json!({ "key": "b", "start": "2022-01-01T00:00:00Z", "count": 2, "sum": 6.0 })]);
    // b's two are folded as its window is due. Three of the five
    // placements are folded now, most of the buffer: it drops them and
    // keeps holding the rest (a at 11 s, b at 12 s), not folding them
    // before their windows are due.
    assert_eq!(folded(&mut h), 3, "a at 11 s and b at 12 s stay held");
    // Their windows take more events after the buffer dropped the folded
    // ones, and fold them with those it kept.
    h.push([reading("a", 13, 2.0), reading("b", 14, 3.0), reading("c", 15, 7.0)]).unwrap();
    assert_eq!(folded(&mut h), 3);
    h.push([reading("a", 21, 1.0)]).unwrap();
    assert_eq!(h.take_objects(), vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:10Z", "count": 2, "sum": 7.0 })]);
    assert_eq!(folded(&mut h), 5, "a's two in [10, 20) only");
    h.finish().unwrap();
    let mut last = h.take_objects();
    last.sort_by_key(|o| (o["key"].as_str().unwrap().to_owned(), o["start"].as_str().unwrap().to_owned()));
    assert_eq!(
        last,
        vec![
            serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:20Z", "count": 1, "sum": 1.0 }),
            serde_json::json!({ "key": "b", "start": "2022-01-01T00:00:10Z", "count": 2, "sum": 4.0 }),
            serde_json::json!({ "key": "c", "start": "2022-01-01T00:00:10Z", "count": 1, "sum": 7.0 }),
        ]
    );
    assert_eq!(folded(&mut h), 9);
    assert!(h.dead_letters().is_empty(), "{:?}", h.dead_letters());
}

// A full buffer folds the windows holding the most events, enough for
// half its room, and keeps holding the others: with many keys the
// largest are the oldest windows, and a window just opened would be
// folded twice if it were folded now.
#[test]
fn a_full_buffer_folds_its_largest_windows_and_keeps_the_rest_held() {
    let dir = tempfile::tempdir().unwrap();
    // Room for 16 placements, or 512 bytes of records copied (read from
    // stdin, these are) and text the fold reads (the faulty plugin's fold
    // reads each record's raw text): the first four readings take 410
    // bytes, six 616.
    let m = sums_manifest(dir.path(), "faulty", "kind = \"stdin\"", "[stages.deserialize]\nconfig = { when = \"\" }\n\n[limits]\nfold_buffer = 16");
    let mut h = weir::harness::Harness::new(&m, engine()).unwrap();
    let folded = |h: &mut weir::harness::Harness| h.pipeline().status()[StageKind::Fold as usize].records;
    h.push([reading("a", 1, 1.0), reading("a", 2, 2.0), reading("a", 3, 3.0), reading("b", 4, 10.0)]).unwrap();
    assert_eq!(folded(&mut h), 0, "not full yet");
    h.push([reading("a", 4, 4.0), reading("c", 5, 20.0)]).unwrap();
    assert_eq!(folded(&mut h), 4, "full: a's four are folded, b's and c's one each stay held");
    h.push([reading("b", 6, 30.0), reading("a", 7, 5.0)]).unwrap();
    assert_eq!(folded(&mut h), 4);
    assert!(h.take_objects().is_empty(), "no window is due");
    h.finish().unwrap();
    let mut last = h.take_objects();
    last.sort_by_key(|o| o["key"].as_str().unwrap().to_owned());
    assert_eq!(
        last,
        vec![
            serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 5, "sum": 15.0 }),
            serde_json::json!({ "key": "b", "start": "2022-01-01T00:00:00Z", "count": 2, "sum": 40.0 }),
            serde_json::json!({ "key": "c", "start": "2022-01-01T00:00:00Z", "count": 1, "sum": 20.0 }),
        ]
    );
    assert_eq!(folded(&mut h), 8);
    assert!(h.dead_letters().is_empty(), "{:?}", h.dead_letters());
}

// When most windows held were folded as they fell due, the buffer numbers
// the few still held afresh, and those windows take the new numbers:
// events that come later join them, and all are folded when they fall due.
#[test]
fn windows_held_across_a_renumbering_fold_whole_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let m = sums_manifest(dir.path(), "faulty", "kind = \"stdin\"", "[stages.deserialize]\nconfig = { when = \"\" }\n\n[limits]\nfold_buffer = 100000");
    let mut h = weir::harness::Harness::new(&m, engine()).unwrap();
    let at = |key: &str, tenths: u32, value: f64| format!(r#"{{"key":"{key}","value":{value},"time":"2022-01-01T00:00:{:02}.{}Z"}}"#, tenths / 10, tenths % 10);
    // A hundred keys read at 1 s, ten at 0.1 s; nothing is due yet.
    let mut first: Vec<String> = (0..100).map(|k| at(&format!("k{k:03}"), 10, 1.0)).collect();
    first.extend((0..10).map(|j| at(&format!("j{j}"), 1, 2.0)));
    h.push(first).unwrap();
    assert!(h.take_objects().is_empty());
    // 9.5 s on, the hundred keys' clocks pass 10 s, the ten's do not:
    // a hundred windows are folded and written, ten stay held.
    h.advance(std::time::Duration::from_millis(9_500)).unwrap();
    assert_eq!(h.take_objects().len(), 100);
    // Their clocks are at 9.6 s: readings at 9.8 s join their windows.
    h.push((0..10).map(|j| at(&format!("j{j}"), 98, 3.0))).unwrap();
    assert!(h.take_objects().is_empty());
    h.advance(std::time::Duration::from_millis(1_000)).unwrap();
    let mut last = h.take_objects();
    last.sort_by_key(|o| o["key"].as_str().unwrap().to_owned());
    let expected: Vec<_> = (0..10).map(|j| serde_json::json!({ "key": format!("j{j}"), "start": "2022-01-01T00:00:00Z", "count": 2, "sum": 5.0 })).collect();
    assert_eq!(last, expected);
    h.finish().unwrap();
    assert!(h.take_objects().is_empty());
    assert!(h.dead_letters().is_empty(), "{:?}", h.dead_letters());
}

// A window due alone among many held is found by walking its chain of
// placements; its events are folded in the order they arrived, which a
// fold that keeps a list shows.
#[test]
fn a_window_due_among_many_held_folds_its_events_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[source]\nkind = \"stdin\"\n\n[stages]\nplugin = \"{}\"\n[stages.deserialize]\nconfig = {{ time_field = \"time\" }}\n[stages.key]\nconfig = {{ field = \"key\" }}\n\n\
         [clock]\nkind = \"event\"\nwait_for_system_duration = \"0s\"\n\n[window]\nkind = \"tumbling\"\nlength = \"10s\"\nalign_to = \"2022-01-01T00:00:00Z\"\n\n\
         [sink]\nkind = \"stdout\"\n\n[limits]\nfold_buffer = 1000\n",
        plugin("collect_list").display()
    );
    let m = manifest_text(dir.path(), &text);
    let mut h = weir::harness::Harness::new(&m, engine()).unwrap();
    let item = |key: &str, n: u32, second: u32| format!(r#"{{"key":"{key}","n":{n},"time":"2022-01-01T00:00:{second:02}Z"}}"#);
    // `a`'s five items come in five batches, each among twenty other keys'
    // items, so its placements lie apart in the buffer.
    for n in 0..5 {
        let mut batch: Vec<String> = (0..20).map(|k| item(&format!("k{k:02}"), 100 + n, 1 + n)).collect();
        batch.insert(7 + n as usize, item("a", n, 1 + n));
        h.push(batch).unwrap();
    }
    assert!(h.take_objects().is_empty());
    // `a` at 11 s makes a's [0, 10) due and no other window.
    h.push([item("a", 9, 11)]).unwrap();
    let objects = h.take_objects();
    assert_eq!(objects.len(), 1, "{objects:#?}");
    let order: Vec<u64> = objects[0]["items"].as_array().unwrap().iter().map(|i| i["n"].as_u64().unwrap()).collect();
    assert_eq!(order, [0, 1, 2, 3, 4], "{objects:#?}");
    assert_eq!(h.pipeline().status()[StageKind::Fold as usize].records, 5, "only a's window is folded: the twenty others stay held");
    h.finish().unwrap();
    assert_eq!(h.take_objects().len(), 21, "the twenty keys' windows and a's second");
    assert!(h.dead_letters().is_empty(), "{:?}", h.dead_letters());
}
