#include "common/terminal_text.h"

#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(TerminalSafeTest, PrintableTextIsKept) {
  EXPECT_EQ(TerminalSafe("agent-1 127.0.0.2:9000 (time-wait)"),
            "agent-1 127.0.0.2:9000 (time-wait)");
  EXPECT_EQ(TerminalSafe("Zürich 東京 🚀"), "Zürich 東京 🚀");
}

TEST(TerminalSafeTest, ControlCharactersAreEscaped) {
  EXPECT_EQ(TerminalSafe("\x1b]0;pwned\x07run"), "\\e]0;pwned\\x07run");
  EXPECT_EQ(TerminalSafe("\x1b[2Jname"), "\\e[2Jname");
  EXPECT_EQ(TerminalSafe("a\nverdict pass\r\t"), "a\\nverdict pass\\r\\t");
  EXPECT_EQ(TerminalSafe(std::string("x\0y", 3)), "x\\x00y");
  EXPECT_EQ(TerminalSafe("del\x7f"), "del\\x7f");
}

TEST(TerminalSafeTest, C1ControlsAndBrokenUtf8AreEscaped) {
  EXPECT_EQ(TerminalSafe("\xc2\x9b"
                         "31m"),
            "\\u009b31m");  // CSI as a code point
  EXPECT_EQ(TerminalSafe("\x9b"
                         "31m"),
            "\\x9b31m");                                       // CSI as a raw byte
  EXPECT_EQ(TerminalSafe("\xc3"), "\\xc3");                    // cut short
  EXPECT_EQ(TerminalSafe("\xc0\xaf"), "\\xc0\\xaf");           // overlong
  EXPECT_EQ(TerminalSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
}

TEST(TerminalSafeTest, AnEscapeCannotBeForged) {
  EXPECT_EQ(TerminalSafe("\\e[2J"), "\\\\e[2J");
  EXPECT_NE(TerminalSafe("\\e"), TerminalSafe("\x1b"));
}

TEST(WrapWordsTest, BreaksAtSpacesAndCutsOnlyWhatCannotFit) {
  EXPECT_EQ(WrapWords("", 10), (std::vector<std::string>{""}));
  EXPECT_EQ(WrapWords("one two three", 7), (std::vector<std::string>{"one two", "three"}));
  EXPECT_EQ(WrapWords("one two three", 100), (std::vector<std::string>{"one two three"}));
  EXPECT_EQ(WrapWords("ab abcdefghij c", 4),
            (std::vector<std::string>{"ab", "abcd", "efgh", "ij c"}));
}

}  // namespace
}  // namespace churnlab
