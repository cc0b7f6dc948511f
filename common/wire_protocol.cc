#include "common/wire_protocol.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace churnlab {

absl::string_view ProtocolName(Protocol protocol) {
  return protocol == Protocol::kCounter ? "counter" : "http";
}

absl::StatusOr<Protocol> ParseProtocol(absl::string_view name) {
  if (name == "counter") return Protocol::kCounter;
  if (name == "http") return Protocol::kHttp;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown protocol '", name, "' (expected counter or http)"));
}

void EncodeCounter(int32_t value, char out[kCounterMessageSize]) {
  uint32_t v = static_cast<uint32_t>(value);
  for (size_t i = 0; i < kCounterMessageSize; ++i)
    out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

int32_t DecodeCounter(const char in[kCounterMessageSize]) {
  uint32_t v = 0;
  for (size_t i = 0; i < kCounterMessageSize; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  }
  return static_cast<int32_t>(v);
}

std::string HttpRequest(absl::string_view host, bool close) {
  return absl::StrCat("GET / HTTP/1.1\r\nHost: ", host, "\r\nUser-Agent: churnlab\r\n",
                      close ? "Connection: close\r\n" : "", "\r\n");
}

std::string HttpResponse(bool close) {
  static constexpr absl::string_view kBody = "churnlab-target ok\n";
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ",
                      kBody.size(), "\r\n", close ? "Connection: close\r\n" : "", "\r\n", kBody);
}

void HttpParser::Reset(Kind kind) {
  kind_ = kind;
  state_ = State::kStartLine;
  connection_close_ = false;
  line_len_ = 0;
  status_code_ = 0;
  content_length_ = -1;
  body_remaining_ = 0;
}

HttpParser::Result HttpParser::Feed(const char* data, size_t len, size_t* consumed) {
  size_t i = 0;
  while (i < len) {
    if (state_ == State::kBody) {
      size_t take = std::min<int64_t>(body_remaining_, len - i);
      i += take;
      body_remaining_ -= take;
      if (body_remaining_ == 0) state_ = State::kDone;
    } else if (state_ == State::kBodyUntilEof) {
      i = len;
    } else if (state_ == State::kStartLine || state_ == State::kHeaderLine) {
      char c = data[i++];
      if (c == '\n') {
        if (EndOfLine() == Result::kError) state_ = State::kError;
      } else if (c != '\r' && line_len_ < kLineKeep) {
        line_[line_len_++] = c;
      }
    }
    if (state_ == State::kDone || state_ == State::kError) break;
  }
  *consumed = i;
  if (state_ == State::kDone) return Result::kComplete;
  if (state_ == State::kError) return Result::kError;
  return Result::kNeedMore;
}

HttpParser::Result HttpParser::EndOfLine() {
  absl::string_view line(line_, line_len_);
  line_len_ = 0;
  if (state_ == State::kStartLine) {
    state_ = State::kHeaderLine;
    if (kind_ == Kind::kRequest) return Result::kNeedMore;
    // "HTTP/1.1 200 OK": the version decides the default for keep-alive.
    int code = 0;
    if (!absl::StartsWith(line, "HTTP/1.") || line.size() < 12 ||
        !absl::SimpleAtoi(line.substr(9, 3), &code)) {
      return Result::kError;
    }
    status_code_ = static_cast<int16_t>(code);
    connection_close_ = line[7] == '0';
    return Result::kNeedMore;
  }
  if (line.empty()) return EndOfHead();
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return Result::kNeedMore;
  absl::string_view name = line.substr(0, colon);
  absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (absl::EqualsIgnoreCase(name, "content-length")) {
    if (!absl::SimpleAtoi(value, &content_length_) || content_length_ < 0) return Result::kError;
  } else if (absl::EqualsIgnoreCase(name, "connection")) {
    if (absl::EqualsIgnoreCase(value, "close")) connection_close_ = true;
    if (absl::EqualsIgnoreCase(value, "keep-alive")) connection_close_ = false;
  } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
    return Result::kError;
  }
  return Result::kNeedMore;
}

HttpParser::Result HttpParser::EndOfHead() {
  if (content_length_ > 0) {
    body_remaining_ = content_length_;
    state_ = State::kBody;
  } else if (content_length_ == 0 || kind_ == Kind::kRequest || status_code_ == 204 ||
             status_code_ == 304 || status_code_ < 200) {
    state_ = State::kDone;
  } else {
    state_ = State::kBodyUntilEof;
  }
  return Result::kNeedMore;
}

}  // namespace churnlab
