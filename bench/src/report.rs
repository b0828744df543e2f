//! The table a run prints: each scenario's figures, its ratios to the baselines and whether
//! it meets its target.

use crate::load::Outcome;

/// One measured row.
pub struct Row {
    pub system: String,
    pub scenario: String,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub peak_rss: Option<u64>,
    pub failed: u64,
}

impl Row {
    pub fn new(system: &str, scenario: &str, outcome: &Outcome, peak_rss: Option<u64>) -> Row {
        Row {
            system: system.to_owned(),
            scenario: scenario.to_owned(),
            per_second: outcome.per_second(),
            p50_ms: outcome.quantile_ms(0.50),
            p99_ms: outcome.quantile_ms(0.99),
            peak_rss,
            failed: outcome.failed,
        }
    }
}

/// One row per system and scenario out of several rounds of the same rows: the round with the
/// median req/s (its p50 and p99 with it), the highest peak RSS of any round, and every
/// round's failures.
pub fn median(rounds: Vec<Vec<Row>>) -> Vec<Row> {
    let mut rounds = rounds.into_iter();
    let Some(first) = rounds.next() else {
        return Vec::new();
    };
    let mut grouped: Vec<Vec<Row>> = first.into_iter().map(|row| vec![row]).collect();
    for round in rounds {
        for row in round {
            if let Some(group) = grouped
                .iter_mut()
                .find(|g| g[0].system == row.system && g[0].scenario == row.scenario)
            {
                group.push(row);
            }
        }
    }
    grouped
        .into_iter()
        .map(|mut group| {
            let peak_rss = group.iter().filter_map(|r| r.peak_rss).max();
            let failed = group.iter().map(|r| r.failed).sum();
            group.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
            let middle = group.swap_remove(group.len() / 2);
            Row {
                peak_rss,
                failed,
                ..middle
            }
        })
        .collect()
}

/// What a row of ours is compared with, and how much faster it must be.
pub struct Target {
    /// The peers' scenario it is compared with (the same, or what stands in for it).
    pub peer_scenario: Option<&'static str>,
    /// Required ratio to oidc-provider's row.
    pub peer_ratio: f64,
}

/// Required ratio to the Python SDK peer's row: ahead of it.
pub const PYTHON_SDK_RATIO: f64 = 1.0;

/// The peer row and the ratio each of our scenarios must reach (issue 14's targets).
pub fn target(scenario: &str) -> Target {
    let (peer_scenario, peer_ratio) = match scenario {
        "discovery" => (Some("discovery"), 2.0),
        "registration" => (Some("registration"), 2.0),
        "refresh" => (Some("refresh"), 1.5),
        "introspection" => (Some("introspection"), 3.0),
        // Neither peer has a ForwardAuth endpoint: introspection is what a resource server
        // would call instead.
        "verify" => (Some("introspection"), 3.0),
        _ => (None, 0.0),
    };
    Target {
        peer_scenario,
        peer_ratio,
    }
}

/// The fastest clean row of `scenario` among the systems named `name` or `name …` (a peer
/// measured in several set-ups, e.g. `python-sdk ×2`): the strictest comparison.
pub fn best_peer<'a>(rows: &'a [Row], name: &str, scenario: &str) -> Option<&'a Row> {
    rows.iter()
        .filter(|r| r.system == name || r.system.starts_with(&format!("{name} ")))
        .filter(|r| r.scenario == scenario && r.per_second > 0.0 && r.failed == 0)
        .max_by(|a, b| a.per_second.total_cmp(&b.per_second))
}

/// A ratio's cell and the target's verdict (`oidc yes ≥2×`), when the peer was measured.
fn versus(row: &Row, peer: Option<&Row>, label: &str, required: f64) -> Option<(String, String)> {
    let peer = peer?;
    let ratio = row.per_second / peer.per_second;
    let rss_ok = row.peak_rss.is_none_or(|b| b <= MAX_HOST_RSS);
    let met = ratio >= required && rss_ok && row.failed == 0;
    Some((
        format!("{ratio:.2}"),
        format!("{label} {} ≥{required}×", if met { "yes" } else { "NO" }),
    ))
}

/// Peak RSS a host may reach under load.
pub const MAX_HOST_RSS: u64 = 64 << 20;
/// The trivial component through our host, as a share of a plain hyper server's req/s.
pub const MIN_TRIVIAL_SHARE: f64 = 0.40;

pub fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| {
        format!("{:.1}", b as f64 / (1 << 20) as f64)
    })
}

/// Prints the table of `rows` (ours are those of `ours`), with ratios and targets.
pub fn print(rows: &[Row], ours: &[&str]) {
    let find = |system: &str, scenario: &str| {
        rows.iter()
            .find(|r| r.system == system && r.scenario == scenario)
    };
    println!(
        "\n{:<20} {:<14} {:>9} {:>8} {:>8} {:>9} {:>7} {:>9} {:>10} {:>10} {:>6}",
        "system",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "RSS MiB",
        "failed",
        "/trivial",
        "/oidc-prov",
        "/py-sdk",
        "target"
    );
    for row in rows {
        let mut vs_trivial = String::new();
        let mut vs_peer = String::new();
        let mut vs_python = String::new();
        let mut verdict = String::new();
        if ours.contains(&row.system.as_str()) {
            // `mcp-auth reuse=0` is compared with `trivial reuse=0`.
            let reuse = row
                .system
                .find(" reuse=")
                .map_or("", |at| &row.system[at..]);
            if let Some(trivial) = find(&format!("trivial{reuse}"), "ok") {
                vs_trivial = format!("{:.2}", row.per_second / trivial.per_second);
            }
            let target = target(&row.scenario);
            let scenario = target.peer_scenario.unwrap_or_default();
            let mut verdicts = Vec::new();
            if let Some((ratio, met)) = versus(
                row,
                best_peer(rows, "oidc-provider", scenario),
                "oidc",
                target.peer_ratio,
            ) {
                vs_peer = ratio;
                verdicts.push(met);
            }
            if let Some((ratio, met)) = versus(
                row,
                best_peer(rows, "python-sdk", scenario),
                "py",
                PYTHON_SDK_RATIO,
            ) {
                vs_python = ratio;
                verdicts.push(met);
            }
            verdict = verdicts.join(", ");
        } else if row.system == "trivial" || row.system.starts_with("trivial ") {
            if let Some(hyper) = find("hyper", "ok") {
                let share = row.per_second / hyper.per_second;
                let rss_ok = row.peak_rss.is_none_or(|b| b <= MAX_HOST_RSS);
                verdict = format!(
                    "{} {share:.2} of hyper (≥{MIN_TRIVIAL_SHARE})",
                    if share >= MIN_TRIVIAL_SHARE && rss_ok {
                        "yes"
                    } else {
                        "NO"
                    }
                );
            }
        }
        println!(
            "{:<20} {:<14} {:>9.0} {:>8.2} {:>8.2} {:>9} {:>7} {:>9} {:>10} {:>10} {}",
            row.system,
            row.scenario,
            row.per_second,
            row.p50_ms,
            row.p99_ms,
            mib(row.peak_rss),
            row.failed,
            vs_trivial,
            vs_peer,
            vs_python,
            verdict
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, per_second: f64, p50_ms: f64, peak_rss: u64) -> Row {
        Row {
            system: system.to_owned(),
            scenario: "ok".to_owned(),
            per_second,
            p50_ms,
            p99_ms: 2.0 * p50_ms,
            peak_rss: Some(peak_rss),
            failed: 0,
        }
    }

    #[test]
    fn the_median_round_speaks_for_each_row() {
        let rounds = vec![
            vec![row("a", 300.0, 3.0, 10), row("b", 9.0, 9.0, 1)],
            vec![row("a", 100.0, 1.0, 30), row("b", 7.0, 7.0, 2)],
            vec![row("a", 200.0, 2.0, 20), row("b", 8.0, 8.0, 3)],
        ];
        let rows = median(rounds);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].system.as_str(), rows[0].per_second), ("a", 200.0));
        // The median round's latencies, the worst round's RSS.
        assert_eq!((rows[0].p50_ms, rows[0].peak_rss), (2.0, Some(30)));
        assert_eq!((rows[1].per_second, rows[1].peak_rss), (8.0, Some(3)));
    }

    #[test]
    fn a_peer_measured_twice_is_compared_by_its_fastest_clean_row() {
        let mut failed = row("python-sdk ×3", 900.0, 1.0, 1);
        failed.failed = 1;
        let rows = vec![
            row("python-sdk", 100.0, 1.0, 1),
            row("python-sdk ×2", 150.0, 1.0, 1),
            failed,
            row("python-sdkx", 999.0, 1.0, 1),
            row("oidc-provider", 50.0, 1.0, 1),
        ];
        let best = best_peer(&rows, "python-sdk", "ok").expect("a row");
        assert_eq!(best.system, "python-sdk ×2");
        assert_eq!(
            best_peer(&rows, "python-sdk", "refresh").map(|r| r.per_second),
            None
        );

        let ours = row("mcp-auth", 120.0, 1.0, 1);
        let (ratio, verdict) = versus(&ours, Some(best), "py", 1.0).expect("compared");
        assert_eq!((ratio.as_str(), verdict.as_str()), ("0.80", "py NO ≥1×"));
    }
}
