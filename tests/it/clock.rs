//! The pipeline clock: running time, `sync=true` pacing, live sources, pausing, and QoS counts.
//! Every check counts buffers against the clock with slack; none depends on a tight time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parallax::exec::{Pipeline, Progress, RunOptions, Session};

use crate::support::{element, launch, run_expecting, stats, tmp};

/// Starts `line` in a session that counts what reaches its sinks.
fn start(line: &str) -> (Session, Arc<Progress>, Instant) {
    let progress = Arc::new(Progress::new());
    let options = RunOptions {
        progress: Some(Arc::clone(&progress)),
        ..RunOptions::default()
    };
    let mut s = Session::new(Pipeline::parse(line).unwrap(), options).unwrap();
    s.prepare().unwrap();
    let started = Instant::now();
    s.activate().unwrap();
    (s, progress, started)
}

/// Buffers through the sinks so far.
fn rendered(progress: &Progress) -> u64 {
    progress.snapshot().sink_buffers
}

/// The most frames of `fps` a clock-paced sink may have rendered in `running`: the clock never
/// runs ahead of the wall, so this bound holds however loaded the machine is (+2 for the
/// frame at 0 and the one in flight).
fn at_most(fps: f64, running: Duration) -> u64 {
    (running.as_secs_f64() * fps) as u64 + 2
}

#[test]
fn a_sync_sink_paces_a_30_fps_stream_at_30_fps() {
    for line in [
        "videotestsrc num-buffers=600 ! video/x-raw,width=32,height=24,framerate=30/1 ! fakesink sync=true",
        "videotestsrc num-buffers=600 ! video/x-raw,width=32,height=24,framerate=30/1 ! identity sync=true ! fakesink",
        "videotestsrc num-buffers=600 ! video/x-raw,width=32,height=24,framerate=30/1 ! queue ! clocksync ! fakesink",
        "videotestsrc is-live=true num-buffers=600 ! video/x-raw,width=32,height=24,framerate=30/1 ! fakesink",
    ] {
        let (mut s, progress, started) = start(line);
        std::thread::sleep(Duration::from_millis(700));
        let n = rendered(&progress);
        let ran = started.elapsed();
        assert!(n >= 1, "{line}: nothing rendered in {ran:?}");
        assert!(
            n <= at_most(30.0, ran),
            "{line}: {n} frames in {ran:?}: faster than 30 fps"
        );
        s.pause(Duration::from_secs(10)).unwrap();
        s.suspend().unwrap();
    }
}

#[test]
fn without_sync_the_same_stream_runs_as_fast_as_it_can() {
    let out = run_expecting(
        launch(&[
            "-q",
            "videotestsrc",
            "num-buffers=300",
            "!",
            "video/x-raw,width=8,height=8,framerate=1/1",
            "!",
            "fakesink",
        ]),
        0,
    );
    // 300 frames at 1 fps would take 5 minutes paced; unpaced, the watchdog never sees it.
    assert!(out.status.success());
}

#[test]
fn a_paused_clock_does_not_run_so_a_resumed_stream_does_not_rush_to_catch_up() {
    let line = "videotestsrc num-buffers=600 ! video/x-raw,width=32,height=24,framerate=30/1 ! fakesink sync=true";
    let (mut s, progress, started) = start(line);
    std::thread::sleep(Duration::from_millis(300));
    s.pause(Duration::from_secs(10)).unwrap();
    let ran_before = started.elapsed();
    let at_pause = rendered(&progress);
    assert!(at_pause <= at_most(30.0, ran_before));
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        rendered(&progress) <= at_pause + 1,
        "the sink renders nothing while paused"
    );
    let resumed = Instant::now();
    s.activate().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let after = rendered(&progress);
    let window = resumed.elapsed();
    // Had the clock run on while paused, the 24 frames due in the pause would burst out now.
    assert!(
        after <= at_pause + at_most(30.0, window) + 1,
        "{} frames in the {window:?} after resuming: a burst",
        after - at_pause
    );
    s.pause(Duration::from_secs(10)).unwrap();
    s.suspend().unwrap();
}

/// The pts of every buffer in a `streampay` capture, from fakesink's last-message lines.
fn captured_pts(path: &std::path::Path) -> Vec<f64> {
    let out = run_expecting(
        launch(&[
            "-q",
            "filesrc",
            &format!("location={}", path.display()),
            "!",
            "streamdepay",
            "!",
            "fakesink",
            "silent=false",
        ]),
        0,
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let pts = l.split("pts: ").nth(1)?.split(',').next()?;
            let mut parts = pts.split(':');
            let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
            Some(
                h.parse::<f64>().ok()? * 3600.0
                    + m.parse::<f64>().ok()? * 60.0
                    + s.parse::<f64>().ok()?,
            )
        })
        .collect()
}

#[test]
fn a_live_source_stamps_running_time_and_a_pause_leaves_no_gap_in_it() {
    let dir = tmp();
    let path = dir.path().join("live.strm");
    // identity sleeps 20 ms a buffer: the live source stamps about 50 buffers a second.
    let line = format!(
        "fakesrc is-live=true num-buffers=40 sizetype=fixed sizemax=8 ! identity sleep-time=20000 \
         ! streampay ! filesink location={}",
        path.display()
    );
    let (mut s, _progress, _started) = start(&line);
    std::thread::sleep(Duration::from_millis(250));
    s.pause(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    s.activate().unwrap();
    s.wait().unwrap();
    let pts = captured_pts(&path);
    assert_eq!(pts.len(), 40, "every buffer was captured with a pts");
    for w in pts.windows(2) {
        assert!(w[1] >= w[0], "running time never goes back: {pts:?}");
        // The pause lasted 1.5 s; the clock stood still through it.
        assert!(
            w[1] - w[0] < 0.75,
            "a gap of {} s in the running time: {pts:?}",
            w[1] - w[0]
        );
    }
}

#[test]
fn a_sink_that_cannot_keep_up_counts_its_late_buffers_in_stats() {
    // identity sleeps 100 ms a frame of 33 ms: every frame comes later than 20 ms.
    let out = run_expecting(
        launch(&[
            "-q",
            "--stats=json",
            "videotestsrc",
            "num-buffers=8",
            "!",
            "video/x-raw,width=16,height=16,framerate=30/1",
            "!",
            "identity",
            "sleep-time=100000",
            "!",
            "fakesink",
            "name=out",
            "sync=true",
        ]),
        0,
    );
    let st = stats(&out);
    let sink = element(&st, "out");
    assert_eq!(sink["synced"], 8);
    assert_eq!(sink["late"], 8);
    assert!(
        sink["max_lateness_ns"].as_u64().unwrap() >= 500_000_000,
        "{sink}"
    );
    let out = run_expecting(
        launch(&[
            "-q",
            "--stats",
            "videotestsrc",
            "num-buffers=4",
            "!",
            "video/x-raw,width=16,height=16,framerate=30/1",
            "!",
            "identity",
            "sleep-time=100000",
            "!",
            "clocksync",
            "name=cs",
            "!",
            "fakesink",
        ]),
        0,
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("cs: qos: 4 buffers synced to the clock, 4 late (over 20 ms), max lateness"),
        "{text}"
    );
}

#[test]
fn clocksync_with_sync_false_or_buffers_without_pts_passes_at_once() {
    // 1 fps for 100 frames would take 100 s synced; the watchdog (60 s) would fail it.
    for line in [
        "videotestsrc num-buffers=100 ! video/x-raw,width=8,height=8,framerate=1/1 ! clocksync sync=false ! fakesink",
        "fakesrc num-buffers=100 ! clocksync ! fakesink sync=true",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        let mut all = vec!["-q"];
        all.extend(args);
        run_expecting(launch(&all), 0);
    }
}
