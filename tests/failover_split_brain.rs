//! A split brain against real sentinels (docs/design.md, "Topology": `down cluster_g1`): g1
//! loses the cluster while every app still reaches it, g2 is promoted, and g1 rejoins as g2's
//! replica after the heal, throwing away what it took alone. Through the whole run CP is loaded
//! by clients whose history goes to caplab's own checker: it stays linearizable, loses no
//! acknowledged write (every one is on both nodes at the end), and acknowledges nothing while
//! no second copy can be made. AP follows the promotion; an AP instance that polls the
//! sentinels only once a minute learns of it from the first `READONLY` and queues that write
//! for the new primary instead of losing it.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caplab::check::event::Event;
use caplab::check::{CheckOptions, EventType, History, OpKind, Validity, check_history};
use caplab::config::Mode;
use common::app::{TestApp, raw_value};
use common::failover::{
    FailoverApps, ms, wait_believes, wait_cp_acknowledges, wait_rejoined_between,
};
use common::sentinels::{PROMOTION_WITHIN, REJOIN_WITHIN};

/// CP's history, as the scenario runner would record it.
struct Recorder {
    start: Instant,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    fn push(&self, process: u64, kind: EventType, f: OpKind, key: &str, value: Option<String>) {
        let mut events = self.events.lock().unwrap();
        let time = u64::try_from(self.start.elapsed().as_nanos()).unwrap();
        let index = events.len() as u64;
        let mut event = Event::new(index, process, kind, f, key, value, time);
        event.mode = Some("cp".into());
        events.push(event);
    }
}

/// One CP client: random reads and writes over three keys until `stop`.
async fn cp_client(cp: &TestApp, worker: u64, recorder: &Recorder, stop: &AtomicBool) {
    let mut process = worker * 100_000;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("reg-{}", n % 3);
        if n % 2 == 0 {
            let value = format!("w{worker}-{n}");
            recorder.push(
                process,
                EventType::Invoke,
                OpKind::Write,
                &key,
                Some(value.clone()),
            );
            let reply = cp.post(&format!("/write/{key}/{value}")).await;
            let kind = match (reply.status, reply.json["outcome"].as_str()) {
                (200, _) => EventType::Ok,
                (503, Some("failed")) => EventType::Fail,
                _ => EventType::Info,
            };
            recorder.push(process, kind, OpKind::Write, &key, Some(value));
            if kind == EventType::Info {
                process += 1;
            }
        } else {
            recorder.push(process, EventType::Invoke, OpKind::Read, &key, None);
            let reply = cp.get(&format!("/read/{key}")).await;
            match reply.status {
                200 => {
                    let value = reply.json["value"].as_str().map(str::to_string);
                    recorder.push(process, EventType::Ok, OpKind::Read, &key, value);
                }
                404 => recorder.push(process, EventType::Ok, OpKind::Read, &key, None),
                _ => recorder.push(process, EventType::Fail, OpKind::Read, &key, None),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An acknowledged CP write of its own key: when it was sent and when it was answered.
struct Acked {
    key: String,
    sent: Instant,
    answered: Instant,
}

/// Writes `acked-<n>` through CP until `stop`; returns the acknowledged ones.
async fn cp_writer(cp: &TestApp, stop: &AtomicBool) -> Vec<Acked> {
    let mut acked = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("acked-{n}");
        let sent = Instant::now();
        if cp.post(&format!("/write/{key}/{n}")).await.status == 200 {
            acked.push(Acked {
                key,
                sent,
                answered: Instant::now(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_brain_cp_loses_nothing_it_acknowledged_and_stays_linearizable() {
    let lab = FailoverApps::start().await;
    let sentinels = lab.pair.sentinels_addr.clone();
    let cp = Arc::new(TestApp::start(lab.config(Mode::Cp, &sentinels)).await);
    let ap = TestApp::start(lab.config(Mode::Ap, &sentinels)).await;
    let mut slow = lab.config(Mode::Ap, &sentinels);
    slow.sentinel_poll = Duration::from_secs(60);
    let ap_slow = TestApp::start(slow).await;
    wait_cp_acknowledges(&cp, Duration::from_secs(10)).await;

    let recorder = Arc::new(Recorder {
        start: Instant::now(),
        events: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for worker in 1..=3 {
        let (cp, recorder, stop) = (cp.clone(), recorder.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            cp_client(&cp, worker, &recorder, &stop).await;
        }));
    }
    let writer = {
        let (cp, stop) = (cp.clone(), stop.clone());
        tokio::spawn(async move { cp_writer(&cp, &stop).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    // g1 loses the cluster; the apps still reach it.
    let cut = Instant::now();
    lab.proxy.set_enabled("cluster_g1", false).await;
    // A write sent before the proxy answered may still have reached g2 through it.
    let cut_done = Instant::now();
    let promoted = lab.wait_promotion(PROMOTION_WITHIN).await;
    let ap_moved = wait_believes(&ap, "g2", Duration::from_secs(5)).await;
    let cp_moved = wait_believes(&cp, "g2", Duration::from_secs(5)).await;
    eprintln!(
        "promotion {} ms after the cut; AP and CP believe g2 {} ms and {} ms after it",
        ms(cut, promoted),
        ms(promoted, ap_moved),
        ms(promoted, cp_moved)
    );
    let w = ap.post("/write/split/ap").await;
    assert_eq!(
        (w.status, w.json["node"].as_str()),
        (200, Some("g2")),
        "{w:?}"
    );
    // The instance that polls once a minute still writes to the deposed g1, which takes it.
    let w = ap_slow.post("/write/split-slow/lost").await;
    assert_eq!(
        (w.status, w.json["node"].as_str()),
        (200, Some("g1")),
        "{w:?}"
    );
    let metrics = ap.get("/metrics").await.text;
    for node in ["g1", "g2"] {
        let line = format!(r#"redis_node_is_primary{{mode="ap",node="{node}"}} 1"#);
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Heal: Sentinel turns g1 into a replica of g2, and g1 drops what it took alone.
    let healed = Instant::now();
    lab.proxy.set_enabled("cluster_g1", true).await;
    let (apart, rejoined) = wait_rejoined_between(&lab.pair.g1.url(), REJOIN_WITHIN).await;
    eprintln!(
        "g1 rejoined as g2's replica {} ms after the heal",
        ms(healed, rejoined)
    );
    assert_eq!(
        raw_value(&lab.pair.g1.url(), "split-slow").await,
        None,
        "the deposed primary's lone write is gone"
    );

    // The slow instance polls once a minute: the first READONLY from the demoted g1 wakes its
    // tracker, which finds g2 long before the next poll. That READONLY is this write's (it is
    // queued) or, when a heartbeat beat it to g1 (every 10 ms while the replica looks behind),
    // the heartbeat's, and the write goes straight to g2.
    let w = ap_slow.post("/write/after-heal/queued").await;
    let readonly = Instant::now();
    match (
        w.status,
        w.json["queued"].as_bool(),
        w.json["node"].as_str(),
    ) {
        (202, Some(true), _) | (200, Some(false), Some("g2")) => {}
        _ => panic!("neither queued after READONLY nor sent to g2: {w:?}"),
    }
    let learned = wait_believes(&ap_slow, "g2", Duration::from_secs(2)).await;
    eprintln!(
        "the slow AP instance follows g2 {} ms after its write (status {})",
        ms(readonly, learned),
        w.status
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while raw_value(&lab.pair.g2.url(), "after-heal").await.as_deref() != Some("queued") {
        assert!(
            Instant::now() < deadline,
            "the queued write never reached g2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // CP takes writes again once g1 is g2's replica.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cp.post("/write/after-rejoin/cp").await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "CP never took a write after the rejoin"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let acked = writer.await.unwrap();

    // Final reads, as the scenario runner makes them.
    for n in 0..3 {
        let key = format!("reg-{n}");
        let process = 900_000 + n;
        recorder.push(process, EventType::Invoke, OpKind::Read, &key, None);
        let reply = cp.get(&format!("/read/{key}")).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let value = reply.json["value"].as_str().map(str::to_string);
        recorder.push(process, EventType::Ok, OpKind::Read, &key, value);
    }
    let mut events = recorder.events.lock().unwrap().clone();
    let finals = events.len() - 6;
    for event in &mut events {
        event.phase = Some(
            if event.index as usize >= finals {
                "final"
            } else {
                "run"
            }
            .into(),
        );
    }

    // Nothing acknowledged while no second copy could be made (sent once the cut was in place,
    // answered while g1 was last seen apart), and some before and after.
    let alone: Vec<String> = acked
        .iter()
        .filter(|a| a.sent > cut_done && a.answered < apart)
        .map(|a| {
            format!(
                "{} sent {} ms after the cut, answered {} ms after it",
                a.key,
                ms(cut, a.sent),
                ms(cut, a.answered)
            )
        })
        .collect();
    assert!(
        alone.is_empty(),
        "CP acknowledged writes while g1 was apart (cut in place {} ms after the cut, g1 last \
         seen apart {} ms after it): {alone:?}",
        ms(cut, cut_done),
        ms(cut, apart)
    );
    assert!(
        acked.iter().any(|a| a.answered < cut),
        "none before the cut"
    );
    assert!(
        acked.iter().any(|a| a.sent > rejoined),
        "none after the rejoin"
    );
    // Every acknowledged write is on both nodes.
    for node in [&lab.pair.g1, &lab.pair.g2] {
        for a in &acked {
            let want = a.key.trim_start_matches("acked-");
            let deadline = Instant::now() + Duration::from_secs(5);
            while raw_value(&node.url(), &a.key).await.as_deref() != Some(want) {
                assert!(
                    Instant::now() < deadline,
                    "acknowledged {} missing on {}",
                    a.key,
                    node.url()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    let history = History::from_events(&events).unwrap();
    let report = check_history(
        &history,
        &CheckOptions {
            mode: Some("cp".into()),
            final_phase: Some("final".into()),
            ..CheckOptions::default()
        },
    );
    let oks = events.iter().filter(|e| e.kind == EventType::Ok).count();
    eprintln!(
        "{} CP operations recorded, {oks} ok; {} unique-key writes acknowledged",
        events.len() / 2,
        acked.len()
    );
    assert_eq!(
        report.linearizability.valid,
        Validity::Valid,
        "{:#?}",
        report.linearizability
    );
    assert_eq!(
        report.lost_writes.valid,
        Validity::Valid,
        "{:#?}",
        report.lost_writes
    );
    for app in [ap, ap_slow] {
        app.shutdown().await;
    }
    if let Ok(cp) = Arc::try_unwrap(cp) {
        cp.shutdown().await;
    }
}
