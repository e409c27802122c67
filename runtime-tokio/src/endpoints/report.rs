//! The verdict of one probe and its plain-text body, in kube-apiserver's
//! format.

use std::fmt::Write as _;

/// The longest reason printed for a failed check, in bytes; longer ones are
/// cut at a character boundary and end with `…`.
pub const MAX_REASON_LEN: usize = 256;

/// How many unknown `?exclude=` names the warning line lists at most.
const MAX_UNKNOWN_LISTED: usize = 16;

/// One of the three probe endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /livez`: the liveness checks.
    Livez,
    /// `GET /readyz`: the readiness checks and the drain switch.
    Readyz,
    /// `GET /healthz`: every check and the drain switch.
    Healthz,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 3] = [Endpoint::Livez, Endpoint::Readyz, Endpoint::Healthz];

    /// `livez`, `readyz` or `healthz`: the name in the closing line.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Livez => "livez",
            Endpoint::Readyz => "readyz",
            Endpoint::Healthz => "healthz",
        }
    }

    /// The route: `/livez`, `/readyz` or `/healthz`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Livez => "/livez",
            Endpoint::Readyz => "/readyz",
            Endpoint::Healthz => "/healthz",
        }
    }
}

/// What one check answered in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// It answered `Ok` in time.
    Ok,
    /// It was named in `?exclude=` and did not run; it counts as passing.
    Excluded,
    /// It answered `Err(reason)`, or timed out (`timeout after 200ms`), or
    /// panicked (`panicked`).
    Failed(String),
}

/// A check's name and outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    name: String,
    outcome: CheckOutcome,
}

impl CheckResult {
    pub(crate) fn new(name: String, outcome: CheckOutcome) -> Self {
        CheckResult { name, outcome }
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it answered.
    pub fn outcome(&self) -> &CheckOutcome {
        &self.outcome
    }

    /// Whether it counts as passing (`Ok` or `Excluded`).
    pub fn passed(&self) -> bool {
        !matches!(self.outcome, CheckOutcome::Failed(_))
    }
}

/// The verdict of one probe: the outcome of every check it selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    endpoint: Endpoint,
    starting: bool,
    results: Vec<CheckResult>,
    unknown_excludes: Vec<String>,
}

impl Report {
    pub(crate) fn starting(endpoint: Endpoint) -> Self {
        Report { endpoint, starting: true, results: Vec::new(), unknown_excludes: Vec::new() }
    }

    pub(crate) fn new(endpoint: Endpoint, results: Vec<CheckResult>, unknown_excludes: Vec<String>) -> Self {
        Report { endpoint, starting: false, results, unknown_excludes }
    }

    /// The endpoint this report answers.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// Whether the startup gate was still closed: no check ran.
    pub fn is_starting(&self) -> bool {
        self.starting
    }

    /// Whether the probe passes: started, and every check passed.
    pub fn passed(&self) -> bool {
        !self.starting && self.results.iter().all(CheckResult::passed)
    }

    /// Every check's outcome, in registration order; the drain switch
    /// (`drain`) last on `/readyz` and `/healthz`.
    pub fn results(&self) -> &[CheckResult] {
        &self.results
    }

    /// `?exclude=` names that matched no check, sorted.
    pub fn unknown_excludes(&self) -> &[String] {
        &self.unknown_excludes
    }

    /// 200 if the probe passed, else 503.
    pub fn status_code(&self) -> u16 {
        if self.passed() { 200 } else { 503 }
    }

    /// The response body, as kube-apiserver writes it:
    ///
    /// - while starting: `starting`;
    /// - passed, not verbose: `ok`;
    /// - otherwise one line per check (`[+]name ok`, `[+]name excluded: ok`,
    ///   `[-]name failed: reason`), a `warn:` line for unknown excludes, then
    ///   `livez check passed` or `livez check failed` (`readyz`, `healthz`).
    ///   A failure is always written this way, `?verbose` or not.
    ///
    /// Reasons are put on one line (control characters become spaces) and
    /// cut to [`MAX_REASON_LEN`] bytes.
    pub fn render(&self, verbose: bool) -> String {
        if self.starting {
            return "starting".to_owned();
        }
        let passed = self.passed();
        if passed && !verbose {
            return "ok".to_owned();
        }
        let mut body = String::new();
        for result in &self.results {
            // Writing to a String cannot fail.
            let _ = match &result.outcome {
                CheckOutcome::Ok => writeln!(body, "[+]{} ok", result.name),
                CheckOutcome::Excluded => writeln!(body, "[+]{} excluded: ok", result.name),
                CheckOutcome::Failed(reason) => {
                    writeln!(body, "[-]{} failed: {}", result.name, one_line(reason, MAX_REASON_LEN))
                }
            };
        }
        if !self.unknown_excludes.is_empty() {
            let listed: Vec<String> = self
                .unknown_excludes
                .iter()
                .take(MAX_UNKNOWN_LISTED)
                .map(|name| format!("{:?}", one_line(name, MAX_REASON_LEN)))
                .collect();
            let more = self.unknown_excludes.len().saturating_sub(MAX_UNKNOWN_LISTED);
            let _ = write!(
                body,
                "warn: some health checks cannot be excluded: no matches for {}",
                listed.join(",")
            );
            let _ = if more > 0 { writeln!(body, " and {more} more") } else { writeln!(body) };
        }
        let verdict = if passed { "passed" } else { "failed" };
        let _ = writeln!(body, "{} check {verdict}", self.endpoint.label());
        body
    }
}

/// `text` with control characters replaced by spaces and cut to at most
/// `max_len` bytes (plus `…`) at a character boundary.
fn one_line(text: &str, max_len: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_len) + 3);
    for c in text.chars() {
        if out.len() + c.len_utf8() > max_len {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    if out.is_empty() { "(no reason given)".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_put_on_one_line_and_cut() {
        assert_eq!(one_line("a\nb\tc", 100), "a b c");
        assert_eq!(one_line("", 100), "(no reason given)");
        assert_eq!(one_line("héllo", 2), "h…");
        assert_eq!(one_line("héllo", 3), "hé…");
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long, MAX_REASON_LEN).len(), MAX_REASON_LEN + '…'.len_utf8());
    }

    #[test]
    fn bodies_follow_kube_apiserver() {
        let ok = CheckResult::new("ping".into(), CheckOutcome::Ok);
        let bad = CheckResult::new("db".into(), CheckOutcome::Failed("down".into()));
        let skip = CheckResult::new("slow".into(), CheckOutcome::Excluded);

        let passed = Report::new(Endpoint::Livez, vec![ok.clone(), skip.clone()], vec![]);
        assert_eq!(passed.status_code(), 200);
        assert_eq!(passed.render(false), "ok");
        assert_eq!(passed.render(true), "[+]ping ok\n[+]slow excluded: ok\nlivez check passed\n");

        let failed = Report::new(Endpoint::Readyz, vec![ok, bad], vec!["nope".into()]);
        assert_eq!(failed.status_code(), 503);
        let body = "[+]ping ok\n[-]db failed: down\n\
                    warn: some health checks cannot be excluded: no matches for \"nope\"\n\
                    readyz check failed\n";
        assert_eq!(failed.render(false), body);
        assert_eq!(failed.render(true), body);

        let starting = Report::starting(Endpoint::Healthz);
        assert_eq!((starting.status_code(), starting.render(true).as_str()), (503, "starting"));
    }

    #[test]
    fn the_unknown_exclude_list_is_bounded() {
        let unknown: Vec<String> = (0..100).map(|i| format!("u{i:03}")).collect();
        let report = Report::new(Endpoint::Livez, vec![], unknown);
        let body = report.render(true);
        assert!(body.contains("\"u015\" and 84 more\n"), "{body}");
        assert!(!body.contains("u016"), "{body}");
    }
}
