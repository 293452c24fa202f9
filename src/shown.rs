//! Text from outside (a manifest's layer titles and media types, an index's platforms) as it
//! may be shown on a terminal: without control characters or Unicode bidirectional controls
//! (which could rewrite or reorder what the user sees), bounded in length; and lists of it
//! bounded in count.

use crate::catalog::is_bidi_control;

/// The most characters of one outside string shown.
const MAX_CHARS: usize = 200;

/// The most items of a list shown in one message.
pub(crate) const MAX_ITEMS: usize = 20;

/// `s` without control characters or bidirectional controls, at most [`MAX_CHARS`]
/// characters (then `…`).
pub(crate) fn printable(s: &str) -> String {
    let mut kept = s.chars().filter(|c| !c.is_control() && !is_bidi_control(*c));
    let mut out: String = kept.by_ref().take(MAX_CHARS).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

/// The first [`MAX_ITEMS`] of `items` joined by `sep`, then `… and N more` when there are more.
pub(crate) fn bounded_list<I: IntoIterator<Item = String>>(items: I, sep: &str) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let mut out = items.iter().take(MAX_ITEMS).cloned().collect::<Vec<_>>().join(sep);
    if items.len() > MAX_ITEMS {
        out.push_str(&format!("{sep}… and {} more", items.len() - MAX_ITEMS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_dropped_and_lists_bounded() {
        assert_eq!(printable("a\u{202E}fnikgg.exe\u{1b}[2J\u{2066}b\u{200F}"), "afnikgg.exe[2Jb");
        assert_eq!(printable(&"x".repeat(500)).chars().count(), MAX_CHARS + 1);
        let list = bounded_list((0..25).map(|i| i.to_string()), ", ");
        assert!(list.starts_with("0, 1,") && list.ends_with("19, … and 5 more"), "{list}");
        assert_eq!(bounded_list(["a".to_string()], "; "), "a");
    }
}
