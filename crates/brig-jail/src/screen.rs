//! What of the program's terminal output reaches the user's terminal (supervisor side). The
//! output is the program's, so it is hostile: a parser after the DEC model that terminals follow
//! (ESC restarts a sequence anywhere, CAN and SUB cancel one, controls inside one are executed,
//! C1 controls written as UTF-8 count as their 7-bit forms), state kept across reads, passes
//! text and ordinary sequences, keeps OSC strings only of an allow-list (titles, colours, working
//! directory, hyperlinks, prompt marks; not the clipboard, OSC 52, nor anything else that acts
//! outside the screen), drops every DCS, APC, PM and SOS string (terminal-specific commands,
//! tmux's pass-through to the outer terminal among them), and remembers the modes the program
//! switched on, which [`Screen::reset`] switches off when the prison ends.

/// Private modes (`CSI ? N h/l`) that change how the terminal behaves for the next program:
/// (mode, true if "set" is the abnormal state).
const PRIVATE_MODES: &[(u16, bool)] = &[
    (1, true),    // application cursor keys: arrows send other codes
    (7, false),   // autowrap off
    (9, true),    // X10 mouse reporting
    (25, false),  // cursor hidden
    (47, true),   // alternate screen
    (1000, true), // mouse reporting
    (1001, true), // mouse highlight tracking
    (1002, true), // mouse reporting, motion
    (1003, true), // mouse reporting, all motion
    (1004, true), // focus events
    (1005, true), // mouse encoding
    (1006, true), // mouse encoding
    (1015, true), // mouse encoding
    (1016, true), // mouse encoding, pixels
    (1047, true), // alternate screen
    (1049, true), // alternate screen with saved cursor
    (2004, true), // bracketed paste
];

/// OSC numbers passed on: 0-2 titles, 4 palette, 7 working directory, 8 hyperlinks, 10-12
/// colours, 104 and 110-112 colour resets, 133 prompt marks.
const OSC_ALLOWED: &[u32] = &[0, 1, 2, 4, 7, 8, 10, 11, 12, 104, 110, 111, 112, 133];

/// Most CSI parameters kept; a sequence with more makes [`Screen::reset`] reset every mode.
const MAX_PARAMS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// An ESC seen and held back: the next byte says what it starts.
    Esc,
    /// `ESC` and intermediate bytes (`ESC ( 0`), already passed on.
    EscIntermediate,
    Csi,
    /// `ESC ]` seen, its number being read; nothing passed on yet.
    OscNumber,
    /// Inside an OSC (`pass`: being passed on) or another string (never passed on).
    Str {
        pass: bool,
        osc: bool,
    },
    /// An ESC inside such a string, held back: `\` ends the string (ST), anything else ends it
    /// too and starts a new sequence.
    StrEsc {
        pass: bool,
        osc: bool,
    },
}

/// The filter's state; feed it every byte of output in order.
#[derive(Debug)]
pub struct Screen {
    state: State,
    /// A 0xC2 held back: with 0x80-0x9F after it, it is a C1 control.
    c2: bool,
    osc: u32,
    params: Vec<u16>,
    param: u16,
    marker: u8,
    overflow: bool,
    /// Private modes left in their abnormal state.
    abnormal: Vec<u16>,
    insert_mode: bool,
    newline_mode: bool,
    scroll_region: bool,
    keypad_application: bool,
    shift_out: bool,
    kitty_keys: bool,
    modify_other_keys: bool,
    /// Any escape sequence was seen: attributes and character sets may need a reset.
    escapes: bool,
    /// Strings dropped (for tests and the curious).
    pub dropped: u64,
}

impl Default for Screen {
    fn default() -> Screen {
        Screen {
            state: State::Ground,
            c2: false,
            osc: 0,
            params: Vec::with_capacity(MAX_PARAMS),
            param: 0,
            marker: 0,
            overflow: false,
            abnormal: Vec::new(),
            insert_mode: false,
            newline_mode: false,
            scroll_region: false,
            keypad_application: false,
            shift_out: false,
            kitty_keys: false,
            modify_other_keys: false,
            escapes: false,
            dropped: 0,
        }
    }
}

const ESC: u8 = 0x1b;

impl Screen {
    /// Appends what of `data` may reach the user's terminal to `out`.
    pub fn filter(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < data.len() {
            if self.state == State::Ground && !self.c2 {
                // Text runs are copied whole; only ESC, a possible C1 control (0xC2), SO and SI
                // need a look (most chunks have none: `contains` is the library's fast search).
                let rest = &data[i..];
                if ![ESC, 0xc2, 0x0e, 0x0f].iter().any(|b| rest.contains(b)) {
                    out.extend_from_slice(rest);
                    return;
                }
                let run = data[i..]
                    .iter()
                    .position(|&b| matches!(b, ESC | 0xc2 | 0x0e | 0x0f))
                    .unwrap_or(data.len() - i);
                out.extend_from_slice(&data[i..i + run]);
                i += run;
                if i == data.len() {
                    break;
                }
            }
            self.decode(data[i], out);
            i += 1;
        }
    }

    /// UTF-8-encoded C1 controls (U+0080-U+009F) become ESC and their 7-bit form.
    fn decode(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.c2 {
            self.c2 = false;
            if (0x80..=0x9f).contains(&b) {
                self.byte(ESC, out);
                self.byte(b - 0x40, out);
                return;
            }
            self.byte(0xc2, out);
        } else if b == 0xc2 {
            self.c2 = true;
            return;
        }
        self.byte(b, out);
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        // CAN and SUB cancel any sequence; they are harmless to pass on.
        if matches!(b, 0x18 | 0x1a) {
            self.close_string(out);
            out.push(b);
            self.state = State::Ground;
            return;
        }
        if b == ESC {
            self.state = match self.state {
                State::Str { pass, osc } => State::StrEsc { pass, osc },
                State::StrEsc { .. } => {
                    // The string ended at the first ESC; this one starts something new.
                    self.close_string(out);
                    State::Esc
                }
                _ => State::Esc,
            };
            self.escapes = true;
            return;
        }
        self.state = match self.state {
            State::Ground => {
                match b {
                    0x0e => self.shift_out = true,
                    0x0f => self.shift_out = false,
                    _ => {}
                }
                out.push(b);
                State::Ground
            }
            State::Esc => self.after_esc(b, out),
            State::EscIntermediate => match b {
                0x00..=0x1f => {
                    out.push(b);
                    State::EscIntermediate
                }
                0x20..=0x2f => {
                    out.push(b);
                    State::EscIntermediate
                }
                0x7f => State::EscIntermediate,
                _ => {
                    out.push(b);
                    State::Ground
                }
            },
            State::Csi => self.csi_byte(b, out),
            State::OscNumber => match b {
                b'0'..=b'9' => {
                    self.osc = (self.osc * 10 + u32::from(b - b'0')).min(1_000_000);
                    State::OscNumber
                }
                b';' if OSC_ALLOWED.contains(&self.osc) => {
                    out.extend_from_slice(format!("\x1b]{};", self.osc).as_bytes());
                    State::Str { pass: true, osc: true }
                }
                0x07 => State::Ground,
                _ => {
                    self.dropped += 1;
                    State::Str { pass: false, osc: true }
                }
            },
            State::Str { pass, osc } => match b {
                0x07 if osc => {
                    if pass {
                        out.push(b);
                    }
                    State::Ground
                }
                // Terminals ignore other controls inside strings.
                0x00..=0x1f => State::Str { pass, osc },
                _ => {
                    if pass {
                        out.push(b);
                    }
                    State::Str { pass, osc }
                }
            },
            State::StrEsc { pass, .. } => {
                if pass {
                    out.extend_from_slice(b"\x1b\\");
                }
                if b == b'\\' {
                    State::Ground
                } else {
                    // The string ended at the ESC; `b` follows that ESC.
                    self.after_esc(b, out)
                }
            }
        };
    }

    /// Ends a string being passed on (with ST) when something cuts it short.
    fn close_string(&mut self, out: &mut Vec<u8>) {
        if matches!(self.state, State::Str { pass: true, .. } | State::StrEsc { pass: true, .. }) {
            out.extend_from_slice(b"\x1b\\");
        }
    }

    /// The byte after an ESC (held back until now).
    fn after_esc(&mut self, b: u8, out: &mut Vec<u8>) -> State {
        match b {
            // Controls are executed inside a sequence; DEL is ignored.
            0x00..=0x1f => {
                out.push(b);
                State::Esc
            }
            0x7f => State::Esc,
            b'[' => {
                out.extend_from_slice(&[ESC, b]);
                self.params.clear();
                self.param = 0;
                self.marker = 0;
                State::Csi
            }
            b']' => {
                self.osc = 0;
                State::OscNumber
            }
            b'P' | b'_' | b'^' | b'X' => {
                self.dropped += 1;
                State::Str { pass: false, osc: false }
            }
            0x20..=0x2f => {
                out.extend_from_slice(&[ESC, b]);
                State::EscIntermediate
            }
            _ => {
                match b {
                    b'=' => self.keypad_application = true,
                    b'>' => self.keypad_application = false,
                    b'c' => self.full_reset(),
                    _ => {}
                }
                out.extend_from_slice(&[ESC, b]);
                State::Ground
            }
        }
    }

    fn csi_byte(&mut self, b: u8, out: &mut Vec<u8>) -> State {
        match b {
            0x7f => return State::Csi,
            0x00..=0x1f => {
                out.push(b);
                return State::Csi;
            }
            _ => out.push(b),
        }
        match b {
            b'0'..=b'9' => {
                self.param = self.param.saturating_mul(10).saturating_add(u16::from(b - b'0'))
            }
            b';' | b':' => self.next_param(),
            b'<'..=b'?' if self.params.is_empty() && self.param == 0 => self.marker = b,
            0x40..=0x7e => {
                self.next_param();
                self.csi_done(b);
                return State::Ground;
            }
            _ => {}
        }
        State::Csi
    }

    fn next_param(&mut self) {
        if self.params.len() < MAX_PARAMS {
            self.params.push(self.param);
        } else {
            self.overflow = true;
        }
        self.param = 0;
    }

    fn csi_done(&mut self, last: u8) {
        let set = match (self.marker, last) {
            (b'?' | 0, b'h') => true,
            (b'?' | 0, b'l') => false,
            (0, b'r') => {
                self.scroll_region = self.params.iter().any(|&p| p != 0);
                return;
            }
            (b'>', b'u') => {
                self.kitty_keys = true;
                return;
            }
            (b'>', b'm') => {
                if self.params.first() == Some(&4) {
                    self.modify_other_keys = self.params.get(1).is_some_and(|&v| v != 0);
                }
                return;
            }
            _ => return,
        };
        for &n in &self.params {
            if self.marker == 0 {
                match n {
                    4 => self.insert_mode = set,
                    20 => self.newline_mode = set,
                    _ => {}
                }
                continue;
            }
            if let Some(&(_, abnormal_when_set)) = PRIVATE_MODES.iter().find(|(m, _)| *m == n) {
                self.abnormal.retain(|&m| m != n);
                if set == abnormal_when_set {
                    self.abnormal.push(n);
                }
            }
        }
    }

    fn full_reset(&mut self) {
        let dropped = self.dropped;
        *self = Screen { dropped, escapes: true, ..Screen::default() };
    }

    /// What brings the user's terminal back from the modes the program left on (empty if it
    /// sent no escape sequence). Ends any sequence left open first.
    pub fn reset(&self) -> Vec<u8> {
        let mut r = Vec::new();
        if !self.escapes && !self.shift_out {
            return r;
        }
        match self.state {
            State::Str { pass: true, .. } | State::StrEsc { pass: true, .. } => {
                r.extend_from_slice(b"\x1b\\")
            }
            State::Ground => {}
            _ => r.push(0x18),
        }
        let all = self.overflow;
        for &(m, abnormal_when_set) in PRIVATE_MODES {
            if all || self.abnormal.contains(&m) {
                let fix = if abnormal_when_set { 'l' } else { 'h' };
                r.extend_from_slice(format!("\x1b[?{m}{fix}").as_bytes());
            }
        }
        if all || self.insert_mode {
            r.extend_from_slice(b"\x1b[4l");
        }
        if all || self.newline_mode {
            r.extend_from_slice(b"\x1b[20l");
        }
        if all || self.scroll_region {
            // Resetting the region homes the cursor: save and restore it around.
            r.extend_from_slice(b"\x1b7\x1b[r\x1b8");
        }
        if all || self.keypad_application {
            r.extend_from_slice(b"\x1b>");
        }
        if all || self.kitty_keys {
            r.extend_from_slice(b"\x1b[<99u");
        }
        if all || self.modify_other_keys {
            r.extend_from_slice(b"\x1b[>4m");
        }
        // Attributes (concealed text among them) and the ASCII character sets, G0 in use.
        r.extend_from_slice(b"\x1b[0m\x1b(B\x1b)B\x0f");
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Screen) {
        let mut s = Screen::default();
        let mut out = Vec::new();
        for c in chunks {
            s.filter(c, &mut out);
        }
        (out, s)
    }

    #[test]
    fn text_and_ordinary_sequences_pass_unchanged() {
        let text: &[u8] =
            b"plain \x1b[1;31mred\x1b[0m \x1b]0;title\x07 \x1b(0q\x1b(B \xc3\xa9 \xc2\xa9\r\n";
        let (out, s) = run(&[text]);
        assert_eq!(out, text);
        assert_eq!(s.dropped, 0);
        let (out, s) = run(&[b"no escapes at all\n"]);
        assert_eq!(out, b"no escapes at all\n");
        assert!(s.reset().is_empty());
    }

    #[test]
    fn clipboard_and_device_strings_are_dropped_however_written() {
        let clip = b"\x1b]52;c;eA==\x07";
        for attack in [
            &b"a\x1b]52;c;Y3VybCBldmls\x07b"[..],
            b"a\x1b]052;c;eA==\x1b\\b",
            b"a\x1b]000000052;c;eA==\x07b",
            b"a\x1b[\x1b]52;c;eA==\x07b",
            b"a\x1b\r]52;c;eA==\x07b",
            b"a\x1b\x7f]52;c;eA==\x07b",
            b"a\x1b(\x1b]52;c;eA==\x07b",
            b"a\x1b]\x1b]52;c;eA==\x07b",
            b"a\xc2\x9d52;c;eA==\x07b",
            b"a\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\b",
            b"a\x1b_G;z\x1b\\b",
            b"a\x1b]1337;File=x\x07b",
        ] {
            let (out, _) = run(&[attack]);
            let shown = String::from_utf8_lossy(&out).into_owned();
            assert!(
                !shown.contains("52;") && !shown.contains("tmux") && !shown.contains("1337"),
                "{shown:?} from {attack:?}"
            );
            assert!(shown.starts_with('a') && shown.ends_with('b'), "{shown:?} from {attack:?}");
        }
        // Split across reads, and after a passed-on OSC cut short by ESC.
        let (out, s) = run(&[b"a\x1b]5", b"2;p;eA==\x1b", b"\\c"]);
        assert_eq!(out, b"ac");
        assert_eq!(s.dropped, 1);
        let (out, _) = run(&[b"\x1b]0;x\x1b", &clip[1..], b"z"]);
        assert_eq!(out, b"\x1b]0;x\x1b\\z");
        // CAN after a held ESC inside an OSC: the OSC is closed, the clipboard one dropped.
        let (out, _) = run(&[b"\x1b]0;x\x1b\x18]52;c;eA==\x07"]);
        assert!(!String::from_utf8_lossy(&out).contains("\x1b]52"), "{out:?}");
    }

    #[test]
    fn a_dropped_string_does_not_swallow_later_output() {
        let (out, _) = run(&[b"\x1b_junk\x1b[31mred\x1b[0m"]);
        assert_eq!(out, b"\x1b[31mred\x1b[0m");
    }

    #[test]
    fn modes_left_on_are_reset_wherever_they_were_set() {
        let (_, s) = run(&[
            b"\x1b[?1049;25;1000;2004h\x1b[?25;1l",
            b"\x1b[?10",
            b"02h\x1b[4h\x1b[2;9r\x1b=",
        ]);
        let r = String::from_utf8(s.reset()).expect("ascii");
        for want in ["\x1b[?1049l", "\x1b[?25h", "\x1b[?1000l", "\x1b[?2004l", "\x1b[?1002l"] {
            assert!(r.contains(want), "{want:?} in {r:?}");
        }
        assert!(r.contains("\x1b[4l") && r.contains("\x1b[r") && r.contains("\x1b>"), "{r:?}");
        assert!(!r.contains("\x1b[?1h"), "{r:?}");
        // Switched off again by the program: nothing to do but attributes and charsets.
        let (_, s) = run(&[b"\x1b[?1049h\x1b[?1049l\x1b[?7l\x1b[?7h"]);
        assert_eq!(s.reset(), b"\x1b[0m\x1b(B\x1b)B\x0f");
        // Too many parameters to follow: every mode is reset; so are SO, kitty keys.
        let mut long = b"\x1b[?".to_vec();
        long.extend(b"0;".repeat(40));
        long.extend(b"1000h\x0e\x1b[>1u");
        let (_, s) = run(&[&long]);
        let r = String::from_utf8(s.reset()).expect("ascii");
        assert!(
            r.contains("\x1b[?1000l") && r.contains("\x0f") && r.contains("\x1b[<99u"),
            "{r:?}"
        );
    }
}
