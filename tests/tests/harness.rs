//! The hand-driven harness: windows close when the test moves the clock,
//! not when the wall clock does.

use std::time::Duration;

use weir::harness::Harness;
use weir_tests::{engine, manifest};

#[test]
fn the_event_clock_waits_for_the_hand_driven_system_time() {
    // Seed 000: 5 s windows, the event clock waits 10 s of system time.
    let m = manifest("examples/seed-000-sensor-average/pipeline.toml");
    let mut h = Harness::new(&m, engine()).unwrap();
    h.push([r#"{"id":"s1","value":20.0,"time":"2024-01-01T00:00:01Z"}"#, r#"{"id":"s1","value":21.0,"time":"2024-01-01T00:00:02Z"}"#]).unwrap();
    h.advance(Duration::from_secs(9)).unwrap();
    assert!(h.take_objects().is_empty(), "9 s after the readings the watermark is still before the window's end");
    // The wall clock does not move the pipeline: only `advance` does.
    std::thread::sleep(Duration::from_millis(50));
    h.advance(Duration::ZERO).unwrap();
    assert!(h.take_objects().is_empty());
    // 10 s of wait + the 3 s left of the window after the last reading.
    h.advance(Duration::from_secs(5)).unwrap();
    let out = h.take_objects();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["num_events"], 2);
    // A bad record is a dead letter with its number in the pushed sequence.
    h.push([r#"{"id":"s1","value":1}"#]).unwrap();
    let dead = h.dead_letters();
    assert_eq!((dead.len(), dead[0].position, dead[0].stage.as_str()), (1, 3, "deserialize"));
    assert!(dead[0].reason.contains("missing field `time`"), "{}", dead[0].reason);
    assert_eq!(h.stats().records, 3);
}
