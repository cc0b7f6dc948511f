#include "common/wire_protocol.h"

#include "common/errno_name.h"
#include "gtest/gtest.h"

namespace churnlab {
namespace {

TEST(CounterCodecTest, LittleEndianRoundTrip) {
  char bytes[kCounterMessageSize];
  EncodeCounter(0x01020304, bytes);
  EXPECT_EQ(bytes[0], 0x04);
  EXPECT_EQ(bytes[3], 0x01);
  EXPECT_EQ(DecodeCounter(bytes), 0x01020304);
  EncodeCounter(-2, bytes);
  EXPECT_EQ(DecodeCounter(bytes), -2);
}

// Feeds `text` in pieces of `chunk` bytes, as a socket may deliver it.
HttpParser::Result FeedInChunks(HttpParser& parser, const std::string& text, size_t chunk,
                                size_t* total_used) {
  *total_used = 0;
  HttpParser::Result result = HttpParser::Result::kNeedMore;
  for (size_t at = 0; at < text.size() && result == HttpParser::Result::kNeedMore;) {
    size_t n = std::min(chunk, text.size() - at);
    size_t used = 0;
    result = parser.Feed(text.data() + at, n, &used);
    at += used;
    *total_used += used;
  }
  return result;
}

TEST(HttpParserTest, ParsesOurResponseInAnyChunking) {
  std::string response = HttpResponse(/*close=*/true);
  for (size_t chunk : {1u, 3u, 7u, 1000u}) {
    HttpParser parser(HttpParser::Kind::kResponse);
    size_t used = 0;
    EXPECT_EQ(FeedInChunks(parser, response + "NEXT", chunk, &used), HttpParser::Result::kComplete);
    EXPECT_EQ(used, response.size()) << chunk;
    EXPECT_EQ(parser.status_code(), 200);
    EXPECT_TRUE(parser.connection_close());
  }
}

TEST(HttpParserTest, RequestsReportConnectionClose) {
  HttpParser parser(HttpParser::Kind::kRequest);
  size_t used = 0;
  EXPECT_EQ(FeedInChunks(parser, HttpRequest("h", false), 5, &used), HttpParser::Result::kComplete);
  EXPECT_FALSE(parser.connection_close());
  parser.Reset(HttpParser::Kind::kRequest);
  EXPECT_EQ(FeedInChunks(parser, HttpRequest("h", true), 5, &used), HttpParser::Result::kComplete);
  EXPECT_TRUE(parser.connection_close());
}

TEST(HttpParserTest, LongHeadersAndBodyWithoutLengthAndChunked) {
  HttpParser parser(HttpParser::Kind::kResponse);
  size_t used = 0;
  std::string long_header =
      "HTTP/1.1 200 OK\r\nX-Long: " + std::string(500, 'a') + "\r\nContent-Length: 3\r\n\r\nabc";
  EXPECT_EQ(FeedInChunks(parser, long_header, 64, &used), HttpParser::Result::kComplete);
  parser.Reset(HttpParser::Kind::kResponse);
  EXPECT_EQ(FeedInChunks(parser, "HTTP/1.0 200 OK\r\n\r\nbody", 64, &used),
            HttpParser::Result::kNeedMore);
  EXPECT_TRUE(parser.CompletesAtEof());
  EXPECT_TRUE(parser.connection_close());
  parser.Reset(HttpParser::Kind::kResponse);
  EXPECT_EQ(
      FeedInChunks(parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 64, &used),
      HttpParser::Result::kError);
  parser.Reset(HttpParser::Kind::kResponse);
  EXPECT_EQ(FeedInChunks(parser, "SSH-2.0-OpenSSH\r\n", 64, &used), HttpParser::Result::kError);
}

TEST(ErrnoNameTest, NamesAndReverse) {
  EXPECT_EQ(ErrnoName(EADDRNOTAVAIL), "EADDRNOTAVAIL");
  EXPECT_EQ(ErrnoName(ECONNREFUSED), "ECONNREFUSED");
  EXPECT_EQ(ErrnoName(0), "OK");
  EXPECT_EQ(ErrnoFromName("EMFILE"), EMFILE);
  EXPECT_EQ(ErrnoFromName("ENOPE"), -1);
}

}  // namespace
}  // namespace churnlab
