// The application protocols spoken between the churn engine and a target: the 4-byte counter
// protocol and HTTP/1.1, each in the clear or inside TLS. Both sides use these codecs, so they
// cannot drift apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace churnlab {

enum class Protocol : uint8_t {
  // Request: a 4-byte little-endian int32. Response: the server's counter after incrementing it,
  // as a 4-byte little-endian int32.
  kCounter,
  // HTTP/1.1 requests; responses with Content-Length, chunked, or ending at the server's FIN.
  kHttp,
  // The counter protocol inside TLS (1.2 or 1.3).
  kTls,
  // HTTP/1.1 inside TLS, ALPN "http/1.1".
  kHttps,
};

// "counter", "http", "tls", "https".
absl::string_view ProtocolName(Protocol protocol);
absl::StatusOr<Protocol> ParseProtocol(absl::string_view name);
// Whether the protocol runs inside TLS (tls, https).
bool UsesTls(Protocol protocol);
// Whether the exchanges are HTTP (http, https).
bool SpeaksHttp(Protocol protocol);

inline constexpr size_t kCounterMessageSize = 4;
void EncodeCounter(int32_t value, char out[kCounterMessageSize]);
int32_t DecodeCounter(const char in[kCounterMessageSize]);

// What the engine's HTTP requests look like. The defaults are `GET /` with no body; the Host
// header is the target's name (or ip:port) unless a header gives its own.
struct HttpRequestSpec {
  std::string method = "GET";
  std::string path = "/";
  // "Name: value" each, sent in this order after Host.
  std::vector<std::string> headers;
  std::string body;  // sent with Content-Length when not empty
};
// Limits on what a user's request may hold, so one flag cannot make every connection carry
// megabytes: at most this many headers, bytes per header line, and body bytes.
inline constexpr size_t kMaxRequestHeaders = 64;
inline constexpr size_t kMaxHeaderBytes = 8192;
inline constexpr size_t kMaxRequestBodyBytes = 64 * 1024;
// OK, or INVALID_ARGUMENT naming the field and the bad value: a method that is not an HTTP token,
// a path not starting with '/' or holding spaces or control characters, a header that is not
// "Name: value" or names Content-Length, Transfer-Encoding or Connection (the engine sets those),
// limits exceeded.
absl::Status ValidateHttpRequestSpec(const HttpRequestSpec& spec);
// OK when `line` is "Name: value" with a token name and no control characters; INVALID_ARGUMENT
// naming the text otherwise.
absl::Status CheckHeaderLine(absl::string_view line);
// The engine's HTTP request to `host`; `close` adds "Connection: close".
std::string HttpRequest(const HttpRequestSpec& spec, absl::string_view host, bool close);
// The target's HTTP response with a small body; `close` adds "Connection: close".
std::string HttpResponse(bool close);

// Streaming parser for one HTTP/1.x message head and its body (Content-Length or chunked). It
// keeps only the first kLineKeep bytes of each line, which hold everything it needs (status
// code, the Content-Length, Transfer-Encoding and Connection headers, a chunk's size), so it
// costs ~64 bytes per connection whatever the peer sends. A chunk extension or trailer is read
// and dropped; a request with Transfer-Encoding is a protocol error (the target takes only
// Content-Length).
class HttpParser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };
  enum class Result : uint8_t { kNeedMore, kComplete, kError };

  explicit HttpParser(Kind kind = Kind::kResponse) { Reset(kind); }
  // `head_response`: the response answers a HEAD request, so it has no body.
  void Reset(Kind kind, bool head_response = false);

  // Consumes bytes of `data` up to the end of the current message; *consumed says how many.
  // kComplete once the head and its body are in; further bytes belong to the next message.
  Result Feed(const char* data, size_t len, size_t* consumed);
  // True when the message is a response without Content-Length, whose body ends at the peer's FIN.
  bool CompletesAtEof() const { return state_ == State::kBodyUntilEof; }

  bool connection_close() const { return connection_close_; }
  int status_code() const { return status_code_; }

 private:
  enum class State : uint8_t {
    kStartLine,
    kHeaderLine,
    kBody,
    kBodyUntilEof,
    kChunkSize,     // the line giving the next chunk's size in hex
    kChunkData,     // body_remaining_ bytes of a chunk
    kChunkDataEnd,  // the CRLF after a chunk's data
    kTrailer,       // trailer lines after the last chunk, up to an empty one
    kDone,
    kError
  };
  // "Transfer-Encoding: gzip, chunked" is 32 bytes.
  static constexpr size_t kLineKeep = 40;
  bool InLine() const;
  Result EndOfLine();
  Result EndOfHead();
  Result EndOfChunkLine(absl::string_view line);

  Kind kind_;
  State state_;
  bool connection_close_;
  bool chunked_;
  bool head_response_;
  uint8_t line_len_;
  int16_t status_code_;
  int64_t content_length_;
  int64_t body_remaining_;
  char line_[kLineKeep];
};

}  // namespace churnlab
