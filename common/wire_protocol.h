// The two application protocols spoken between the churn engine and the target: the 4-byte
// counter protocol and HTTP/1.1. Both sides use these codecs, so they cannot drift apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace churnlab {

enum class Protocol : uint8_t {
  // Request: a 4-byte little-endian int32. Response: the server's counter after incrementing it,
  // as a 4-byte little-endian int32.
  kCounter,
  // One HTTP/1.1 request, one response with Content-Length.
  kHttp,
};

// "counter" / "http".
absl::string_view ProtocolName(Protocol protocol);
absl::StatusOr<Protocol> ParseProtocol(absl::string_view name);

inline constexpr size_t kCounterMessageSize = 4;
void EncodeCounter(int32_t value, char out[kCounterMessageSize]);
int32_t DecodeCounter(const char in[kCounterMessageSize]);

// The engine's HTTP request; `close` adds "Connection: close".
std::string HttpRequest(absl::string_view host, bool close);
// The target's HTTP response with a small body; `close` adds "Connection: close".
std::string HttpResponse(bool close);

// Streaming parser for one HTTP/1.x message head and its Content-Length body. It keeps only the
// first kLineKeep bytes of each line, which hold everything it needs (status code, the
// Content-Length and Connection headers), so it costs ~48 bytes per connection whatever the
// peer sends. Chunked bodies are a protocol error.
class HttpParser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };
  enum class Result : uint8_t { kNeedMore, kComplete, kError };

  explicit HttpParser(Kind kind = Kind::kResponse) { Reset(kind); }
  void Reset(Kind kind);

  // Consumes bytes of `data` up to the end of the current message; *consumed says how many.
  // kComplete once the head and its body are in; further bytes belong to the next message.
  Result Feed(const char* data, size_t len, size_t* consumed);
  // True when the message is a response without Content-Length, whose body ends at the peer's FIN.
  bool CompletesAtEof() const { return state_ == State::kBodyUntilEof; }

  bool connection_close() const { return connection_close_; }
  int status_code() const { return status_code_; }

 private:
  enum class State : uint8_t { kStartLine, kHeaderLine, kBody, kBodyUntilEof, kDone, kError };
  static constexpr size_t kLineKeep = 24;
  Result EndOfLine();
  Result EndOfHead();

  Kind kind_;
  State state_;
  bool connection_close_;
  uint8_t line_len_;
  int16_t status_code_;
  int64_t content_length_;
  int64_t body_remaining_;
  char line_[kLineKeep];
};

}  // namespace churnlab
