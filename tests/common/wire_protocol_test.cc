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
  EXPECT_EQ(FeedInChunks(parser, HttpRequest({}, "h", false), 5, &used),
            HttpParser::Result::kComplete);
  EXPECT_FALSE(parser.connection_close());
  parser.Reset(HttpParser::Kind::kRequest);
  EXPECT_EQ(FeedInChunks(parser, HttpRequest({}, "h", true), 5, &used),
            HttpParser::Result::kComplete);
  EXPECT_TRUE(parser.connection_close());
}

TEST(HttpRequestTest, CarriesTheUsersMethodPathHeadersAndBody) {
  HttpRequestSpec spec;
  spec.method = "POST";
  spec.path = "/api/v1/items?x=1";
  spec.headers = {"Authorization: Bearer t0k", "Content-Type: application/json"};
  spec.body = "{\"a\":1}";
  ASSERT_TRUE(ValidateHttpRequestSpec(spec).ok());
  EXPECT_EQ(HttpRequest(spec, "api.example:443", /*close=*/true),
            "POST /api/v1/items?x=1 HTTP/1.1\r\nHost: api.example:443\r\nUser-Agent: churnlab\r\n"
            "Authorization: Bearer t0k\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
            "Connection: close\r\n\r\n{\"a\":1}");
  // A Host or User-Agent header of the user's replaces ours.
  spec = HttpRequestSpec{};
  spec.headers = {"host: other", "User-Agent: k6"};
  EXPECT_EQ(HttpRequest(spec, "ignored", false),
            "GET / HTTP/1.1\r\nhost: other\r\nUser-Agent: k6\r\n\r\n");
  // The target's parser reads the body as the request's.
  HttpParser parser(HttpParser::Kind::kRequest);
  size_t used = 0;
  spec.body = "abc";
  std::string text = HttpRequest(spec, "h", false);
  EXPECT_EQ(FeedInChunks(parser, text + "NEXT", 4, &used), HttpParser::Result::kComplete);
  EXPECT_EQ(used, text.size());
}

TEST(HttpRequestTest, RefusesWhatWouldBreakTheRequestNamingIt) {
  auto error = [](HttpRequestSpec spec) {
    return std::string(ValidateHttpRequestSpec(spec).message());
  };
  HttpRequestSpec spec;
  spec.method = "GE T";
  EXPECT_NE(error(spec).find("method: 'GE T'"), std::string::npos);
  spec = {};
  spec.path = "x";
  EXPECT_NE(error(spec).find("path: 'x'"), std::string::npos);
  spec.path = "/a b";
  EXPECT_NE(error(spec).find("path"), std::string::npos);
  spec = {};
  spec.headers = {"NoColon"};
  EXPECT_NE(error(spec).find("'NoColon' is not a header line"), std::string::npos);
  spec.headers = {"X-A: b\r\nInjected: 1"};
  EXPECT_NE(error(spec).find("not a header line"), std::string::npos);
  spec.headers = {"Content-Length: 5"};
  EXPECT_NE(error(spec).find("sets content-length itself"), std::string::npos);
  spec.headers.assign(kMaxRequestHeaders + 1, "X-A: 1");
  EXPECT_NE(error(spec).find("at most 64"), std::string::npos);
  spec = {};
  spec.body.assign(kMaxRequestBodyBytes + 1, 'x');
  EXPECT_NE(error(spec).find("body"), std::string::npos);
}

TEST(HttpParserTest, ReadsChunkedBodiesInAnyChunking) {
  const std::string response =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n1A\r\n" +
      std::string(26, 'z') + "\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (size_t chunk : {1u, 2u, 5u, 1000u}) {
    HttpParser parser(HttpParser::Kind::kResponse);
    size_t used = 0;
    EXPECT_EQ(FeedInChunks(parser, response + "NEXT", chunk, &used), HttpParser::Result::kComplete)
        << chunk;
    EXPECT_EQ(used, response.size()) << chunk;
  }
  for (const char* bad : {"zz\r\n", "5\r\nhelloXX\r\n", "1234567890abcdef0\r\n"}) {
    HttpParser parser(HttpParser::Kind::kResponse);
    size_t used = 0;
    std::string text = std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") + bad;
    EXPECT_EQ(FeedInChunks(parser, text, 64, &used), HttpParser::Result::kError) << bad;
  }
  // A request may not be chunked (the target reads Content-Length only).
  HttpParser request(HttpParser::Kind::kRequest);
  size_t used = 0;
  EXPECT_EQ(
      FeedInChunks(request, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 64, &used),
      HttpParser::Result::kError);
}

TEST(HttpParserTest, AnswersToHeadAnd204HaveNoBody) {
  HttpParser parser;
  size_t used = 0;
  parser.Reset(HttpParser::Kind::kResponse, /*head_response=*/true);
  EXPECT_EQ(FeedInChunks(parser, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 64, &used),
            HttpParser::Result::kComplete);
  parser.Reset(HttpParser::Kind::kResponse);
  EXPECT_EQ(FeedInChunks(parser, "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", 64, &used),
            HttpParser::Result::kComplete);
}

TEST(HttpParserTest, LongHeadersAndBodyWithoutLength) {
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
