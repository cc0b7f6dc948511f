// Text from others (run names, agent and host names, addresses, error messages that echo input)
// made safe to print on a terminal: a name holding "\x1b]0;..." or "\x1b[2J" must not retitle or
// clear the user's terminal, nor a "\n" forge a line of output.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace churnlab {

// `text` with every control character written as an escape: C0 controls (newline and tab
// included) and DEL as \n, \t, \r, \e or \xNN; C1 controls (U+0080..U+009F, which some
// terminals obey) as \u0080..\u009f; bytes that are not UTF-8 as \xNN; a backslash as \\, so
// an escape cannot be forged. Printable UTF-8 (names in any script) is kept as it is.
std::string TerminalSafe(absl::string_view text);

// The length of the valid multi-byte UTF-8 sequence at the start of `s` (2..4), 0 when there is
// none (ASCII, a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, cut short).
size_t Utf8SequenceLength(absl::string_view s);

// `text` in lines of at most `width` bytes, broken at spaces (a word longer than `width` is cut
// where it reaches it); at least one line, "" for empty text.
std::vector<std::string> WrapWords(absl::string_view text, size_t width);

}  // namespace churnlab
