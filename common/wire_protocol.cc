#include "common/wire_protocol.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace churnlab {

absl::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kCounter:
      return "counter";
    case Protocol::kHttp:
      return "http";
    case Protocol::kTls:
      return "tls";
    case Protocol::kHttps:
      return "https";
  }
  return "unknown";
}

absl::StatusOr<Protocol> ParseProtocol(absl::string_view name) {
  for (Protocol p : {Protocol::kCounter, Protocol::kHttp, Protocol::kTls, Protocol::kHttps}) {
    if (name == ProtocolName(p)) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown protocol '", name, "' (expected counter, http, tls or https)"));
}

bool UsesTls(Protocol protocol) {
  return protocol == Protocol::kTls || protocol == Protocol::kHttps;
}

bool SpeaksHttp(Protocol protocol) {
  return protocol == Protocol::kHttp || protocol == Protocol::kHttps;
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

namespace {

// RFC 9110's tchar: what a method or a header name may hold.
bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("!#$%&'*+-.^_`|~", c)) return false;
  }
  return true;
}

bool HasControl(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool IsHeader(absl::string_view line, absl::string_view name) {
  return absl::StartsWithIgnoreCase(line, name) && line.size() > name.size() &&
         line[name.size()] == ':';
}

}  // namespace

absl::Status CheckHeaderLine(absl::string_view line) {
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon)) || HasControl(line)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", line, "' is not a header line \"Name: value\" (a token name, no control characters)"));
  }
  if (line.size() > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a header line of ", line.size(), " bytes; at most ", kMaxHeaderBytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateHttpRequestSpec(const HttpRequestSpec& spec) {
  if (!IsToken(spec.method)) {
    return absl::InvalidArgumentError(
        absl::StrCat("method: '", spec.method, "' is not an HTTP method (a token like GET)"));
  }
  if (!absl::StartsWith(spec.path, "/") || HasControl(spec.path) ||
      absl::StrContains(spec.path, ' ') || spec.path.size() > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "path: '", spec.path, "' must start with '/' and hold no spaces or control characters"));
  }
  if (spec.headers.size() > kMaxRequestHeaders) {
    return absl::InvalidArgumentError(
        absl::StrCat("headers: ", spec.headers.size(), "; at most ", kMaxRequestHeaders));
  }
  for (const std::string& h : spec.headers) {
    absl::Status s = CheckHeaderLine(h);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("headers: ", s.message()));
    for (absl::string_view managed : {"content-length", "transfer-encoding", "connection"}) {
      if (IsHeader(h, managed)) {
        return absl::InvalidArgumentError(
            absl::StrCat("headers: '", h, "': the engine sets ", managed,
                         " itself (from the body and requests_per_connection)"));
      }
    }
  }
  if (spec.body.size() > kMaxRequestBodyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: ", spec.body.size(), " bytes; at most ", kMaxRequestBodyBytes));
  }
  return absl::OkStatus();
}

std::string HttpRequest(const HttpRequestSpec& spec, absl::string_view host, bool close) {
  std::string out = absl::StrCat(spec.method, " ", spec.path, " HTTP/1.1\r\n");
  bool own_host = false;
  bool own_agent = false;
  for (const std::string& h : spec.headers) {
    own_host = own_host || IsHeader(h, "host");
    own_agent = own_agent || IsHeader(h, "user-agent");
  }
  if (!own_host) absl::StrAppend(&out, "Host: ", host, "\r\n");
  if (!own_agent) absl::StrAppend(&out, "User-Agent: churnlab\r\n");
  for (const std::string& h : spec.headers) absl::StrAppend(&out, h, "\r\n");
  if (!spec.body.empty()) absl::StrAppend(&out, "Content-Length: ", spec.body.size(), "\r\n");
  absl::StrAppend(&out, close ? "Connection: close\r\n" : "", "\r\n", spec.body);
  return out;
}

std::string HttpResponse(bool close) {
  static constexpr absl::string_view kBody = "churnlab-target ok\n";
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ",
                      kBody.size(), "\r\n", close ? "Connection: close\r\n" : "", "\r\n", kBody);
}

void HttpParser::Reset(Kind kind, bool head_response) {
  kind_ = kind;
  head_response_ = head_response;
  state_ = State::kStartLine;
  connection_close_ = false;
  chunked_ = false;
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
    } else if (state_ == State::kChunkData) {
      size_t take = std::min<int64_t>(body_remaining_, len - i);
      i += take;
      body_remaining_ -= take;
      if (body_remaining_ == 0) state_ = State::kChunkDataEnd;
    } else if (state_ == State::kBodyUntilEof) {
      i = len;
    } else if (InLine()) {
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

bool HttpParser::InLine() const {
  return state_ == State::kStartLine || state_ == State::kHeaderLine ||
         state_ == State::kChunkSize || state_ == State::kChunkDataEnd || state_ == State::kTrailer;
}

HttpParser::Result HttpParser::EndOfChunkLine(absl::string_view line) {
  if (state_ == State::kChunkDataEnd) {
    if (!line.empty()) return Result::kError;
    state_ = State::kChunkSize;
    return Result::kNeedMore;
  }
  if (state_ == State::kTrailer) {
    if (line.empty()) state_ = State::kDone;
    return Result::kNeedMore;
  }
  // "1a3f" or "1a3f;name=value": the extension is dropped. More than 15 hex digits would not
  // fit.
  absl::string_view digits = line.substr(0, line.find(';'));
  digits = absl::StripAsciiWhitespace(digits);
  uint64_t size = 0;
  if (digits.empty() || digits.size() > 15) return Result::kError;
  for (char c : digits) {
    if (!absl::ascii_isxdigit(c)) return Result::kError;
    size = size * 16 + (absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10);
  }
  if (size == 0) {
    state_ = State::kTrailer;
  } else {
    body_remaining_ = static_cast<int64_t>(size);
    state_ = State::kChunkData;
  }
  return Result::kNeedMore;
}

HttpParser::Result HttpParser::EndOfLine() {
  absl::string_view line(line_, line_len_);
  line_len_ = 0;
  if (state_ != State::kStartLine && state_ != State::kHeaderLine) return EndOfChunkLine(line);
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
    // Only a response may be chunked here, and chunked must be its last coding.
    if (kind_ == Kind::kRequest || !absl::EndsWithIgnoreCase(value, "chunked")) {
      return Result::kError;
    }
    chunked_ = true;
  }
  return Result::kNeedMore;
}

HttpParser::Result HttpParser::EndOfHead() {
  // A response to HEAD, 1xx, 204 and 304 have no body, whatever their headers say.
  bool bodiless = kind_ == Kind::kResponse && (head_response_ || status_code_ == 204 ||
                                               status_code_ == 304 || status_code_ < 200);
  if (chunked_ && !bodiless) {
    state_ = State::kChunkSize;
  } else if (content_length_ > 0 && !bodiless) {
    body_remaining_ = content_length_;
    state_ = State::kBody;
  } else if (content_length_ == 0 || kind_ == Kind::kRequest || bodiless) {
    state_ = State::kDone;
  } else {
    state_ = State::kBodyUntilEof;
  }
  return Result::kNeedMore;
}

}  // namespace churnlab
