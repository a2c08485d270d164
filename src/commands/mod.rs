//! The implementation of each `hepml` command; their arguments are in `cli`.

pub mod batch;
pub mod convert;
pub mod demo;
pub mod explain;
pub mod inject;
pub mod inspect;
mod progress;
pub mod scan;
pub mod train;

/// An error and its causes on one line, "what: why: why", as the user sees it. A cause whose
/// text an earlier message already quotes (a library error that prints its source) is not
/// repeated.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(text.trim()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text.trim());
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::error_line;

    /// A library error that prints its source in its own message, as thiserror's
    /// `#[error("...: {source}")]` does.
    #[derive(Debug)]
    struct Quoting {
        source: std::io::Error,
    }
    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "config c.yaml: {}", self.source)
        }
    }
    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn error_line_names_each_cause_once() {
        let io = || std::io::Error::other("unknown field `widht`");
        let quoting = anyhow::Error::new(Quoting { source: io() }).context("training");
        assert_eq!(
            error_line(&quoting),
            "training: config c.yaml: unknown field `widht`"
        );
        let plain = anyhow::Error::new(io()).context("reading x.root");
        assert_eq!(error_line(&plain), "reading x.root: unknown field `widht`");
    }
}
