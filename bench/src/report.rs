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
    /// The row of the peer baseline (oidc-provider) it is compared with.
    pub peer_scenario: Option<&'static str>,
    /// Required ratio to that row.
    pub peer_ratio: f64,
}

/// The peer row and the ratio each of our scenarios must reach (the targets).
pub fn target(scenario: &str) -> Target {
    let (peer_scenario, peer_ratio) = match scenario {
        "discovery" => (Some("discovery"), 2.0),
        "registration" => (Some("registration"), 2.0),
        "refresh" => (Some("refresh"), 3.0),
        "introspection" => (Some("introspection"), 3.0),
        // oidc-provider has no ForwardAuth endpoint: its introspection is what a resource
        // server would call instead.
        "verify" => (Some("introspection"), 3.0),
        _ => (None, 0.0),
    };
    Target {
        peer_scenario,
        peer_ratio,
    }
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
        "\n{:<20} {:<14} {:>9} {:>8} {:>8} {:>9} {:>7} {:>9} {:>10} {:>6}",
        "system",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "RSS MiB",
        "failed",
        "/trivial",
        "/oidc-prov",
        "target"
    );
    for row in rows {
        let mut vs_trivial = String::new();
        let mut vs_peer = String::new();
        let mut verdict = String::new();
        if ours.contains(&row.system.as_str()) {
            if let Some(trivial) = find("trivial", "ok") {
                vs_trivial = format!("{:.2}", row.per_second / trivial.per_second);
            }
            let target = target(&row.scenario);
            let peer = target
                .peer_scenario
                .and_then(|s| find("oidc-provider", s))
                .filter(|peer| peer.per_second > 0.0 && peer.failed == 0);
            if let Some(peer) = peer {
                let ratio = row.per_second / peer.per_second;
                vs_peer = format!("{ratio:.2}");
                let rss_ok = row.peak_rss.is_none_or(|b| b <= MAX_HOST_RSS);
                let met = ratio >= target.peer_ratio && rss_ok && row.failed == 0;
                verdict = format!("{} ≥{}×", if met { "yes" } else { "NO" }, target.peer_ratio);
            }
        } else if row.system == "trivial" {
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
            "{:<20} {:<14} {:>9.0} {:>8.2} {:>8.2} {:>9} {:>7} {:>9} {:>10} {}",
            row.system,
            row.scenario,
            row.per_second,
            row.p50_ms,
            row.p99_ms,
            mib(row.peak_rss),
            row.failed,
            vs_trivial,
            vs_peer,
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
}
