//! The console's tick: every [`super::TICK`] it reads the lab once, whatever the number of
//! open pages, and publishes one serialized [`Snapshot`].
//!
//! What a tick reads: each app's `/metrics`, `/replication` and `/circuit-breaker` (status
//! endpoints, which never call Redis), the proxy API's proxies, each node's process state
//! from `/proc`, and every other tick the sentinels' primary (three short `SENTINEL MASTER`
//! calls). All in parallel, each with a short timeout, so a cut link never stalls the page,
//! and over connections kept from tick to tick ([`super::connections`]): the apps and the
//! proxy API through one keep-alive HTTP client, each sentinel over its own connection.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::Shared;
use super::connections::{self, KeptSentinel};
use super::history::LOG_SENT;
use super::prom::{Rates, Scrape};
use super::snapshot::{AppView, BreakerView, Fault, LinkView, NodeView, Point, PointApp, Snapshot};
use crate::faults::{CLUSTER_G1, CLUSTER_G2, G1, G2, SENTINELS};
use crate::lab::LabNode;
use crate::lab::primary::newest;
use crate::lab::recorded::NodeProcess;
use crate::proxy::model::ProxyJson;

/// What each link carries, in the README's words.
pub const LINKS: [(&str, &str); 5] = [
    (G1, "the apps to node g1"),
    (G2, "the apps to node g2"),
    (
        CLUSTER_G1,
        "the rest of the cluster to g1: the sentinels, and g2's replication while g1 is primary",
    ),
    (
        CLUSTER_G2,
        "the rest of the cluster to g2: the sentinels, and g1's replication while g2 is primary",
    ),
    (SENTINELS, "the apps to the sentinels (to s1)"),
];

/// One app's previous scrape, for the rates.
struct Previous {
    scrape: Scrape,
    at: Instant,
}

/// Polls until the console stops.
pub async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(super::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: [Option<Previous>; 2] = [None, None];
    let mut sentinel_primary: Option<String> = None;
    let ports = shared.record_now().ports;
    let password = shared.redis_password.as_ref();
    let mut kept = ports
        .sentinels()
        .map(|(name, port)| KeptSentinel::new(name, port, password));
    let mut seq: u64 = 0;
    loop {
        tick.tick().await;
        let record = shared.record_now();
        let ask_sentinels = seq.is_multiple_of(2);
        let (cp_url, ap_url) = (record.cp_url(), record.ap_url());
        let [s1, s2, s3] = &mut kept;
        let (cp, ap, proxies, sentinels) = tokio::join!(
            poll_app(&shared.http, &cp_url),
            poll_app(&shared.http, &ap_url),
            connections::proxies(&shared.http, shared.faults.api()),
            async {
                if ask_sentinels {
                    let (a, b, c) = tokio::join!(s1.state(), s2.state(), s3.state());
                    Some(newest(&record.ports, &[a, b, c]))
                } else {
                    None
                }
            }
        );
        if let Some(answer) = sentinels {
            sentinel_primary = answer.map(|n| n.to_string());
        }
        let now = Instant::now();
        let mut apps = [
            app_view("cp", cp_url, cp, &mut previous[0], now),
            app_view("ap", ap_url, ap, &mut previous[1], now),
        ];
        for app in &mut apps {
            app.breakers.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let (links, proxy_error) = match proxies {
            Ok(proxies) => (links(&proxies), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let lab = shared.recorded_lab();
        let nodes: Vec<NodeView> = [LabNode::G1, LabNode::G2]
            .into_iter()
            .map(|n| NodeView {
                name: n.name(),
                process: lab.node_process(n),
            })
            .collect();
        let faults = faults(&links, &nodes);
        let traffic = super::traffic::tick(&shared, super::TICK.as_secs_f64());
        let scenario = super::scenarios::view(&shared);
        let t_ms = crate::time::unix_ms();
        let point = Point {
            t_ms,
            apps: [PointApp::of(&apps[0]), PointApp::of(&apps[1])],
        };
        let (windows, markers, log) = {
            let mut history = match shared.history.lock() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            history.tick(point.clone(), &faults, sentinel_primary.as_deref());
            (
                history.windows(),
                history.markers(),
                history.recent_log(LOG_SENT),
            )
        };
        let snapshot = Snapshot {
            seq,
            t_ms,
            lab_dir: record.dir.display().to_string(),
            listen: shared.listen.to_string(),
            loopback: shared.listen.ip().is_loopback(),
            apps,
            links,
            proxy_error,
            nodes,
            sentinel_primary: sentinel_primary.clone(),
            faults,
            windows,
            markers,
            log,
            traffic,
            scenario,
            point,
        };
        match serde_json::to_string(&snapshot) {
            Ok(json) => {
                shared.latest.send_replace(Arc::from(json));
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize the console's snapshot"),
        }
        seq += 1;
    }
}

/// What one app's three status endpoints said.
struct AppAnswers {
    metrics: Result<String, String>,
    replication: Result<Value, String>,
    breakers: Result<Value, String>,
}

async fn poll_app(http: &reqwest::Client, base: &str) -> AppAnswers {
    async fn text(http: &reqwest::Client, url: String) -> Result<String, String> {
        let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status()));
        }
        resp.text().await.map_err(|e| e.to_string())
    }
    async fn json(http: &reqwest::Client, url: String) -> Result<Value, String> {
        let body = text(http, url).await?;
        serde_json::from_str(&body).map_err(|e| format!("not JSON: {e}"))
    }
    let (metrics, replication, breakers) = tokio::join!(
        text(http, format!("{base}/metrics")),
        json(http, format!("{base}/replication")),
        json(http, format!("{base}/circuit-breaker")),
    );
    AppAnswers {
        metrics,
        replication,
        breakers,
    }
}

fn app_view(
    mode: &'static str,
    url: String,
    answers: AppAnswers,
    previous: &mut Option<Previous>,
    now: Instant,
) -> AppView {
    let mut view = AppView {
        mode,
        url,
        ..AppView::default()
    };
    let errors: Vec<&String> = [
        answers.metrics.as_ref().err(),
        answers.replication.as_ref().err(),
        answers.breakers.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    view.up = errors.is_empty();
    view.error = errors.first().map(|e| e.to_string());
    if let Ok(text) = &answers.metrics {
        let scrape = Scrape::parse(text);
        view.stale_reads_total = Some(scrape.stale_reads);
        if let Some(before) = previous.as_ref() {
            let seconds = now.duration_since(before.at).as_secs_f64();
            view.rates = Some(Rates::between(&before.scrape, &scrape, seconds));
        }
        *previous = Some(Previous { scrape, at: now });
    } else {
        *previous = None;
    }
    if let Ok(r) = &answers.replication {
        view.primary = r["primary"].as_str().map(str::to_string);
        view.sentinels_reachable = r["following"]["sentinels_reachable"].as_bool();
        view.staleness_ms = [
            r["staleness_ms"]["g1"].as_f64(),
            r["staleness_ms"]["g2"].as_f64(),
        ];
        view.lag_bytes = r["lag_bytes"].as_u64();
        view.link_status = r["link_status"].as_str().map(str::to_string);
        view.queue_depth = r["ap_queue_depth"].as_u64();
        view.roles = r["roles"].clone();
    }
    if let Ok(b) = &answers.breakers
        && let Some(map) = b["breakers"].as_object()
    {
        view.breakers = map
            .iter()
            .map(|(name, b)| BreakerView {
                name: name.clone(),
                state: b["state"].as_str().unwrap_or("unknown").to_string(),
                state_code: b["state_code"]
                    .as_u64()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(0),
                transitions: b["transitions"].as_u64().unwrap_or(0),
                last_transition_unix_ms: b["last_transition_unix_ms"].as_u64(),
            })
            .collect();
    }
    view
}

/// The five links as the proxy API shows them, in the README's order.
pub fn links(proxies: &std::collections::BTreeMap<String, ProxyJson>) -> Vec<LinkView> {
    LINKS
        .iter()
        .map(|&(name, carries)| match proxies.get(name) {
            Some(p) => LinkView {
                name,
                carries,
                enabled: p.enabled,
                toxics: p.toxics.iter().map(describe_toxic).collect(),
            },
            None => LinkView {
                name,
                carries,
                enabled: false,
                toxics: vec!["missing from the proxy API".to_string()],
            },
        })
        .collect()
}

fn describe_toxic(t: &crate::proxy::model::ToxicJson) -> String {
    let attr = |name: &str| t.attributes.get(name).and_then(Value::as_i64);
    let what = match (t.kind.as_str(), attr("latency")) {
        ("latency", Some(ms)) => match attr("jitter") {
            Some(j) if j > 0 => format!("latency {ms}±{j} ms"),
            _ => format!("latency {ms} ms"),
        },
        (kind, _) => kind.to_string(),
    };
    format!("{what} {}", t.stream)
}

/// The faults in force: links cut or carrying toxics, nodes stopped or down.
pub fn faults(links: &[LinkView], nodes: &[NodeView]) -> Vec<Fault> {
    let mut out = Vec::new();
    for link in links {
        if !link.enabled {
            out.push(Fault {
                subject: link.name.to_string(),
                label: format!("{} cut", link.name),
            });
        }
        for toxic in &link.toxics {
            out.push(Fault {
                subject: link.name.to_string(),
                label: format!("{} {toxic}", link.name),
            });
        }
    }
    for node in nodes {
        let state = match node.process {
            NodeProcess::Running => continue,
            NodeProcess::Stopped => "stopped",
            NodeProcess::Down => "down",
        };
        out.push(Fault {
            subject: node.name.to_string(),
            label: format!("node {} {state}", node.name),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_and_slowed_links_and_stopped_nodes_are_faults() {
        let mut proxies = std::collections::BTreeMap::new();
        for (name, _) in LINKS {
            proxies.insert(
                name.to_string(),
                ProxyJson {
                    name: name.to_string(),
                    listen: String::new(),
                    upstream: String::new(),
                    enabled: name != CLUSTER_G2,
                    toxics: Vec::new(),
                },
            );
        }
        if let Some(p) = proxies.get_mut(G1) {
            let mut attributes = serde_json::Map::new();
            attributes.insert("latency".into(), 300.into());
            attributes.insert("jitter".into(), 0.into());
            p.toxics.push(crate::proxy::model::ToxicJson {
                name: "latency_downstream".into(),
                kind: "latency".into(),
                stream: "downstream".into(),
                toxicity: 1.0,
                attributes,
            });
        }
        proxies.remove(SENTINELS);
        let links = links(&proxies);
        assert_eq!(links.len(), 5);
        let nodes = [
            NodeView {
                name: "g1",
                process: NodeProcess::Running,
            },
            NodeView {
                name: "g2",
                process: NodeProcess::Stopped,
            },
        ];
        let labels: Vec<String> = faults(&links, &nodes)
            .into_iter()
            .map(|f| f.label)
            .collect();
        assert_eq!(
            labels,
            [
                "g1 latency 300 ms downstream",
                "cluster_g2 cut",
                "sentinels cut",
                "sentinels missing from the proxy API",
                "node g2 stopped"
            ]
        );
    }

    #[test]
    fn an_app_that_does_not_answer_is_down_and_has_no_rates() {
        let mut previous = None;
        let view = app_view(
            "cp",
            "http://x".into(),
            AppAnswers {
                metrics: Err("refused".into()),
                replication: Err("refused".into()),
                breakers: Err("refused".into()),
            },
            &mut previous,
            Instant::now(),
        );
        assert!(!view.up);
        assert_eq!(view.error.as_deref(), Some("refused"));
        assert!(view.rates.is_none());
    }
}
