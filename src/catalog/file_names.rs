//! The names a model's file may have: the rules every catalog file is read with
//! ([`invalid_file_name`]), and those a model registered now must also follow so that FAT,
//! exFAT and Windows accept it ([`non_portable_file_name`]).

/// Why `s` cannot be a model file name, if it cannot: the rules every catalog file is read
/// with (a model registered now also follows [`non_portable_file_name`]).
pub(crate) fn invalid_file_name(s: &str) -> Option<String> {
    if s.contains(['/', '\\']) {
        Some("contains a path separator; give a plain file name".into())
    } else if s.contains("..") {
        Some("contains `..`; give a plain file name".into())
    } else if s.starts_with('.') {
        Some("starts with a dot; hidden files are not allowed".into())
    } else if let Some(c) = s.chars().find(|c| c.is_control() || *c == ':') {
        Some(format!("contains {}, which is not allowed in a file name", shown(c)))
    } else if s.len() > 200 {
        Some("is longer than 200 bytes".into())
    } else if let Some(why) = trailing_dot_or_space(s) {
        Some(why.into())
    } else if s.len() <= 5 || !s.to_ascii_lowercase().ends_with(".gguf") {
        Some("is not a GGUF file name; it must end in `.gguf`".into())
    } else {
        None
    }
}

/// The longest file name `register` and `add` accept: 255 bytes (most filesystems' limit) less
/// the longest suffix strata-model adds (`.part.<pid>-<pid namespace>-<host>.ranges`).
const MAX_NEW_FILE_NAME: usize = 180;

/// The characters FAT, exFAT and Windows refuse in a file name (besides control characters).
const NOT_PORTABLE: [char; 9] = ['<', '>', ':', '"', '/', '\\', '|', '?', '*'];

/// Windows' reserved device names: refused with any extension (`nul.gguf`, `COM1.tar.gguf`),
/// in any case. `COM¹`–`COM³` and `LPT¹`–`LPT³` are reserved too.
const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// Why a file named `s` could not be written on FAT, exFAT or Windows, if it could not: one
/// of `< > : " / \ | ? *`, a control character or a Unicode bidirectional control (named in
/// the answer; it makes a name show as another), a trailing dot or space, or a reserved device
/// name (`CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`,
/// `LPT1`–`LPT9`, with any extension, in any case). `register` and `add` refuse such a name:
/// the model's file is stored under it, and those filesystems would refuse it at download
/// time with a confusing error.
pub(crate) fn non_portable_file_name(s: &str) -> Option<String> {
    let refused = "which FAT, exFAT and Windows refuse in file names";
    if let Some(c) = s.chars().find(|c| c.is_control() || NOT_PORTABLE.contains(c)) {
        return Some(format!("contains {}, {refused}", shown(c)));
    }
    if let Some(c) = s.chars().find(|c| is_bidi_control(*c)) {
        return Some(format!(
            "contains the bidirectional control U+{:04X}, which makes a name show as another",
            u32::from(c)
        ));
    }
    if let Some(why) = trailing_dot_or_space(s) {
        return Some(why.into());
    }
    if s.len() > MAX_NEW_FILE_NAME {
        return Some(format!(
            "is longer than {MAX_NEW_FILE_NAME} bytes: with the names of its partial downloads \
             (`<file>.part.<pid>-<ns>-<host>.ranges`) it would pass the 255 bytes most filesystems allow"
        ));
    }
    let stem = s.split('.').next().unwrap_or(s).trim_end_matches(' ');
    let upper = stem.to_uppercase();
    let device = RESERVED.contains(&upper.as_str())
        || ["COM", "LPT"].iter().any(|p| {
            upper.strip_prefix(p).is_some_and(|n| {
                let mut c = n.chars();
                matches!((c.next(), c.next()), (Some('1'..='9' | '¹' | '²' | '³'), None))
            })
        });
    device.then(|| format!("is named `{stem}`, a device name Windows reserves with any extension"))
}

/// Whether `c` is a Unicode bidirectional control (U+202A–U+202E, U+2066–U+2069, U+200E,
/// U+200F, U+061C): text around it shows in another order than it is.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A name that ends with a dot or a space (it cannot also end in `.gguf`).
fn trailing_dot_or_space(s: &str) -> Option<&'static str> {
    match s.chars().next_back() {
        Some('.') => Some("ends with a dot, which Windows drops and FAT and exFAT refuse"),
        Some(' ') => Some("ends with a space, which Windows drops and FAT and exFAT refuse"),
        _ => None,
    }
}

/// A character for a message: `*` as `` `*` ``, a control character by its code point.
fn shown(c: char) -> String {
    if c.is_control() {
        format!("the control character U+{:04X}", u32::from(c))
    } else {
        format!("`{c}`")
    }
}
