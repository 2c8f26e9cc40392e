//! What of the program's terminal output reaches the user's terminal (supervisor side). The
//! output is the program's, so it is hostile: a small escape-sequence parser, state kept across
//! reads, passes text and ordinary control sequences, drops the strings that make a terminal act
//! outside the screen (OSC 52 sets the system clipboard; DCS, APC, PM and SOS strings carry
//! terminal-specific commands, tmux's pass-through to the outer terminal among them), and
//! remembers the modes the program switched on, which `reset` switches off when the prison ends.

/// Private modes (`CSI ? N h/l`) that change how the terminal behaves for the next program:
/// (mode, the state the program may leave wrong: true if "set" is the abnormal one).
const PRIVATE_MODES: &[(u16, bool)] = &[
    (1, true),    // application cursor keys: arrows send other codes
    (7, false),   // autowrap off
    (25, false),  // cursor hidden
    (47, true),   // alternate screen
    (1047, true), // alternate screen
    (1049, true), // alternate screen with saved cursor
    (1000, true), // mouse reporting
    (1002, true), // mouse reporting, motion
    (1003, true), // mouse reporting, all motion
    (1004, true), // focus events
    (1005, true), // mouse encoding
    (1006, true), // mouse encoding
    (1015, true), // mouse encoding
    (2004, true), // bracketed paste
];

/// Most bytes of a CSI's parameters or an OSC's number kept for parsing.
const KEEP: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Esc,
    /// `ESC` and one intermediate byte (`ESC ( 0`): the next byte ends it.
    EscIntermediate,
    Csi,
    /// `ESC ]` seen; its number not yet known, nothing forwarded yet.
    OscNumber,
    OscPass,
    OscDrop,
    /// `ESC` inside an OSC or string: `\` ends it (ST).
    StrEsc {
        pass: bool,
        osc: bool,
    },
    StrDrop,
}

/// The filter's state; feed it every byte of output in order.
#[derive(Debug)]
pub struct Screen {
    state: State,
    kept: Vec<u8>,
    /// Private modes left in their abnormal state.
    abnormal: Vec<u16>,
    insert_mode: bool,
    scroll_region: bool,
    keypad_application: bool,
    /// Any escape sequence was seen: character set and attributes may need a reset.
    escapes: bool,
    /// Strings dropped (for tests and the curious).
    pub dropped: u64,
}

impl Default for Screen {
    fn default() -> Screen {
        Screen {
            state: State::Ground,
            kept: Vec::with_capacity(KEEP),
            abnormal: Vec::new(),
            insert_mode: false,
            scroll_region: false,
            keypad_application: false,
            escapes: false,
            dropped: 0,
        }
    }
}

impl Screen {
    /// Appends what of `data` may reach the user's terminal to `out`.
    pub fn filter(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < data.len() {
            if self.state == State::Ground {
                // Text runs are copied whole; only an ESC starts something to look at (most
                // chunks have none: `contains` is the library's fast byte search).
                if !data[i..].contains(&0x1b) {
                    out.extend_from_slice(&data[i..]);
                    return;
                }
                let run = data[i..].iter().position(|&b| b == 0x1b).unwrap_or(data.len() - i);
                out.extend_from_slice(&data[i..i + run]);
                i += run;
                if i == data.len() {
                    break;
                }
            }
            self.byte(data[i], out);
            i += 1;
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        const ESC: u8 = 0x1b;
        // CAN and SUB abort any sequence.
        if matches!(b, 0x18 | 0x1a) && self.state != State::Ground {
            if matches!(self.state, State::Csi | State::OscPass | State::Esc) {
                out.push(b);
            }
            self.state = State::Ground;
            return;
        }
        self.state = match self.state {
            State::Ground => {
                self.escapes = true;
                State::Esc
            }
            State::Esc => match b {
                b'[' => {
                    out.extend_from_slice(&[ESC, b]);
                    self.kept.clear();
                    State::Csi
                }
                b']' => {
                    self.kept.clear();
                    State::OscNumber
                }
                b'P' | b'_' | b'^' | b'X' => {
                    self.dropped += 1;
                    State::StrDrop
                }
                ESC => {
                    out.push(ESC);
                    State::Esc
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
            },
            State::EscIntermediate => {
                out.push(b);
                if (0x20..=0x2f).contains(&b) {
                    State::EscIntermediate
                } else {
                    State::Ground
                }
            }
            State::Csi => {
                out.push(b);
                if (0x40..=0x7e).contains(&b) {
                    self.csi_done(b);
                    State::Ground
                } else {
                    if self.kept.len() < KEEP {
                        self.kept.push(b);
                    }
                    State::Csi
                }
            }
            State::OscNumber => match b {
                b'0'..=b'9' if self.kept.len() < 8 => {
                    self.kept.push(b);
                    State::OscNumber
                }
                _ if self.kept == b"52" => {
                    self.dropped += 1;
                    string_next(b, false, true)
                }
                _ => {
                    out.extend_from_slice(&[ESC, b']']);
                    out.extend_from_slice(&self.kept);
                    out.push(b);
                    string_next(b, true, true)
                }
            },
            State::OscPass => {
                out.push(b);
                string_next(b, true, true)
            }
            State::OscDrop => string_next(b, false, true),
            State::StrDrop => string_next(b, false, false),
            State::StrEsc { pass, osc } => {
                if pass {
                    out.push(b);
                }
                match (b, pass, osc) {
                    (b'\\', ..) => State::Ground,
                    (_, true, _) => State::OscPass,
                    (_, false, true) => State::OscDrop,
                    _ => State::StrDrop,
                }
            }
        };
    }

    fn csi_done(&mut self, last: u8) {
        let params = std::mem::take(&mut self.kept);
        let set = match last {
            b'h' => true,
            b'l' => false,
            b'r' => {
                self.scroll_region = params.iter().any(u8::is_ascii_digit);
                self.kept = params;
                return;
            }
            _ => {
                self.kept = params;
                return;
            }
        };
        let (private, list) = match params.split_first() {
            Some((b'?', rest)) => (true, rest),
            _ => (false, &params[..]),
        };
        for n in list.split(|&c| c == b';') {
            let Some(n) = std::str::from_utf8(n).ok().and_then(|s| s.parse::<u16>().ok()) else {
                continue;
            };
            if !private {
                if n == 4 {
                    self.insert_mode = set;
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
        self.kept = params;
    }

    fn full_reset(&mut self) {
        let dropped = self.dropped;
        *self = Screen { dropped, ..Screen::default() };
    }

    /// What brings the user's terminal back from the modes the program left on (empty if it
    /// sent no escape sequence). Ends any sequence left open first.
    pub fn reset(&self) -> Vec<u8> {
        let mut r = Vec::new();
        if !self.escapes {
            return r;
        }
        if matches!(self.state, State::OscPass | State::StrEsc { pass: true, .. }) {
            r.extend_from_slice(b"\x1b\\");
        } else if self.state == State::Csi {
            r.push(0x18);
        }
        for &m in &self.abnormal {
            let abnormal_when_set = PRIVATE_MODES.iter().any(|&(n, s)| n == m && s);
            let fix = if abnormal_when_set { 'l' } else { 'h' };
            r.extend_from_slice(format!("\x1b[?{m}{fix}").as_bytes());
        }
        if self.insert_mode {
            r.extend_from_slice(b"\x1b[4l");
        }
        if self.scroll_region {
            // Resetting the region homes the cursor: save and restore it around.
            r.extend_from_slice(b"\x1b7\x1b[r\x1b8");
        }
        if self.keypad_application {
            r.extend_from_slice(b"\x1b>");
        }
        // Attributes (concealed text among them) and the ASCII character set.
        r.extend_from_slice(b"\x1b[0m\x1b(B");
        r
    }
}

/// After byte `b` inside an OSC (`osc`: BEL ends it too) or another string: the next state.
fn string_next(b: u8, pass: bool, osc: bool) -> State {
    match b {
        0x07 if osc => State::Ground,
        0x1b => State::StrEsc { pass, osc },
        _ if pass => State::OscPass,
        _ if osc => State::OscDrop,
        _ => State::StrDrop,
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
        let text: &[u8] = b"plain \x1b[1;31mred\x1b[0m \x1b]0;title\x07 \x1b(0q\x1b(B \xc3\xa9\r\n";
        let (out, s) = run(&[text]);
        assert_eq!(out, text);
        assert_eq!(s.dropped, 0);
        let (out, s) = run(&[b"no escapes at all\n"]);
        assert_eq!(out, b"no escapes at all\n");
        assert!(s.reset().is_empty());
    }

    #[test]
    fn clipboard_and_device_strings_are_dropped_even_when_split() {
        let (out, s) = run(&[b"a\x1b]52;c;Y3VybCBldmls\x07b", b"\x1b]5", b"2;p;eA==\x1b\\c"]);
        assert_eq!(out, b"abc");
        assert_eq!(s.dropped, 2);
        let (out, _) = run(&[b"x\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\y\x1b_G;z\x1b\\w"]);
        assert_eq!(out, b"xyw");
        // OSC 5 and OSC 520 are not the clipboard.
        let (out, _) = run(&[b"\x1b]5;x\x07\x1b]520;y\x1b\\"]);
        assert_eq!(out, b"\x1b]5;x\x07\x1b]520;y\x1b\\");
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
        // Switched off again by the program: nothing to do but attributes and charset.
        let (_, s) = run(&[b"\x1b[?1049h\x1b[?1049l\x1b[?7l\x1b[?7h"]);
        assert_eq!(s.reset(), b"\x1b[0m\x1b(B");
    }
}
