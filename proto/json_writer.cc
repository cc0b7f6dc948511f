#include "proto/json_writer.h"

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include "absl/numeric/int128.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "churnlab/v1/telemetry.pb.h"
#include "common/terminal_text.h"
#include "proto/message_json.h"

namespace churnlab {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::util::TimeUtil;

class JsonWriter {
 public:
  JsonWriter(bool one_line, std::string* out) : one_line_(one_line), out_(*out) {}

  absl::Status Object(const Message& message, int depth);

 private:
  absl::Status Field(const Message& message, const FieldDescriptor& field, int depth);
  absl::Status Map(const Message& message, const FieldDescriptor& field, int depth);
  // One value of `field`: element `index` of a repeated field, or the field itself (-1).
  absl::Status Value(const Message& message, const FieldDescriptor& field, int index, int depth);
  // A number, a bool: written as JSON has them (64-bit integers too).
  void Number(const Message& message, const FieldDescriptor& field, int index);
  void Enum(const google::protobuf::EnumDescriptor& type, int number);
  absl::Status WellKnown(const Message& message, bool* written);
  void String(const std::string& text);
  void Double(double value);
  // Before the `n`th member of an object or array at `depth`: its separator and indentation.
  void Next(int n, int depth);
  void Close(char bracket, int members, int depth);
  void Key(const std::string& key);

  const bool one_line_;
  std::string& out_;
};

// Whether the field is written when it holds its default: repeated fields always (as [] or
// {}), fields with presence only when set, scalars always unless the message omits zeros.
bool Written(const Message& message, const FieldDescriptor& field, bool omit_zeros) {
  const Reflection& r = *message.GetReflection();
  if (field.is_repeated()) return true;
  if (field.has_presence()) return r.HasField(message, &field);
  if (!omit_zeros) return true;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return r.GetInt32(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_INT64:
      return r.GetInt64(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_UINT32:
      return r.GetUInt32(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_UINT64:
      return r.GetUInt64(message, &field) != 0;
    default:
      return true;
  }
}

void JsonWriter::Next(int n, int depth) {
  if (n > 0) out_.push_back(',');
  if (one_line_) return;
  out_.push_back('\n');
  out_.append(2 * (depth + 1), ' ');
}

void JsonWriter::Close(char bracket, int members, int depth) {
  if (members > 0 && !one_line_) {
    out_.push_back('\n');
    out_.append(2 * depth, ' ');
  }
  out_.push_back(bracket);
}

void JsonWriter::Key(const std::string& key) {
  out_.push_back('"');
  out_.append(key);  // field names and map keys checked as they were made: no escapes needed
  out_.append(one_line_ ? "\":" : "\": ");
}

absl::Status JsonWriter::Object(const Message& message, int depth) {
  const Descriptor& type = *message.GetDescriptor();
  bool written = false;
  if (absl::Status s = WellKnown(message, &written); !s.ok() || written) return s;
  const bool omit_zeros = type.options().GetExtension(v1::omit_zeros_in_json);
  out_.push_back('{');
  int members = 0;
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& field = *type.field(i);
    if (!Written(message, field, omit_zeros)) continue;
    Next(members++, depth);
    Key(field.has_json_name() ? field.json_name() : field.name());
    if (absl::Status s = Field(message, field, depth + 1); !s.ok()) return s;
  }
  Close('}', members, depth);
  return absl::OkStatus();
}

absl::Status JsonWriter::Field(const Message& message, const FieldDescriptor& field, int depth) {
  if (field.is_map()) return Map(message, field, depth);
  if (!field.is_repeated()) return Value(message, field, -1, depth);
  const int size = message.GetReflection()->FieldSize(message, &field);
  out_.push_back('[');
  for (int i = 0; i < size; ++i) {
    Next(i, depth);
    if (absl::Status s = Value(message, field, i, depth + 1); !s.ok()) return s;
  }
  Close(']', size, depth);
  return absl::OkStatus();
}

// The key of a map entry as JSON writes it: a string as it is, a number or bool in decimal.
std::string MapKey(const Message& entry) {
  const FieldDescriptor& key = *entry.GetDescriptor()->map_key();
  const Reflection& r = *entry.GetReflection();
  switch (key.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return r.GetString(entry, &key);
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(r.GetInt32(entry, &key));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(r.GetInt64(entry, &key));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(r.GetUInt32(entry, &key));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(r.GetUInt64(entry, &key));
    default:
      return r.GetBool(entry, &key) ? "true" : "false";
  }
}

absl::Status JsonWriter::Map(const Message& message, const FieldDescriptor& field, int depth) {
  const Reflection& r = *message.GetReflection();
  const int size = r.FieldSize(message, &field);
  // Sorted, so that the same message always reads the same: numbers by value, text as text.
  struct Entry {
    std::string key;
    absl::int128 number;
    int index;
  };
  std::vector<Entry> keys;
  keys.reserve(size);
  const bool numeric =
      field.message_type()->map_key()->cpp_type() != FieldDescriptor::CPPTYPE_STRING;
  for (int i = 0; i < size; ++i) {
    Entry e{MapKey(r.GetRepeatedMessage(message, &field, i)), 0, i};
    if (numeric && e.key != "true" && e.key != "false") {
      bool negative = e.key[0] == '-';
      uint64_t magnitude = 0;
      (void)absl::SimpleAtoi(negative ? e.key.substr(1) : e.key, &magnitude);
      e.number = negative ? -absl::int128(magnitude) : absl::int128(magnitude);
    }
    keys.push_back(std::move(e));
  }
  std::sort(keys.begin(), keys.end(), [numeric](const Entry& a, const Entry& b) {
    return numeric && a.number != b.number ? a.number < b.number : a.key < b.key;
  });
  out_.push_back('{');
  int members = 0;
  for (const Entry& e : keys) {
    const Message& entry = r.GetRepeatedMessage(message, &field, e.index);
    Next(members++, depth);
    out_.push_back('"');
    String(e.key);
    out_.append(one_line_ ? "\":" : "\": ");
    const FieldDescriptor& value = *entry.GetDescriptor()->map_value();
    if (absl::Status s = Value(entry, value, -1, depth + 1); !s.ok()) return s;
  }
  Close('}', members, depth);
  return absl::OkStatus();
}

absl::Status JsonWriter::Value(const Message& message, const FieldDescriptor& field, int index,
                               int depth) {
  const Reflection& r = *message.GetReflection();
  const bool one = index < 0;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_ENUM:
      Enum(*field.enum_type(),
           one ? r.GetEnumValue(message, &field) : r.GetRepeatedEnumValue(message, &field, index));
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& text =
          one ? r.GetStringReference(message, &field, &scratch)
              : r.GetRepeatedStringReference(message, &field, index, &scratch);
      out_.push_back('"');
      if (field.type() == FieldDescriptor::TYPE_BYTES) {
        out_.append(absl::Base64Escape(text));
      } else {
        String(text);
      }
      out_.push_back('"');
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return Object(
          one ? r.GetMessage(message, &field) : r.GetRepeatedMessage(message, &field, index),
          depth);
    default:
      Number(message, field, index);
      return absl::OkStatus();
  }
}

void JsonWriter::Number(const Message& message, const FieldDescriptor& field, int index) {
  const Reflection& r = *message.GetReflection();
  const bool one = index < 0;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(
          &out_, one ? r.GetInt32(message, &field) : r.GetRepeatedInt32(message, &field, index));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(
          &out_, one ? r.GetInt64(message, &field) : r.GetRepeatedInt64(message, &field, index));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(
          &out_, one ? r.GetUInt32(message, &field) : r.GetRepeatedUInt32(message, &field, index));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(
          &out_, one ? r.GetUInt64(message, &field) : r.GetRepeatedUInt64(message, &field, index));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      Double(one ? r.GetDouble(message, &field) : r.GetRepeatedDouble(message, &field, index));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      Double(one ? r.GetFloat(message, &field) : r.GetRepeatedFloat(message, &field, index));
      break;
    default:  // CPPTYPE_BOOL
      out_.append((one ? r.GetBool(message, &field) : r.GetRepeatedBool(message, &field, index))
                      ? "true"
                      : "false");
  }
}

void JsonWriter::Enum(const google::protobuf::EnumDescriptor& type, int number) {
  const auto* value = type.FindValueByNumber(number);
  if (value == nullptr) {
    absl::StrAppend(&out_, number);  // a number this build has no name for
    return;
  }
  out_.push_back('"');
  out_.append(EnumWord(*value));  // words and names are [a-z0-9_-]: nothing to escape
  out_.push_back('"');
}

// Duration and Timestamp as protobuf's JSON mapping writes them, refused where it refuses.
absl::Status JsonWriter::WellKnown(const Message& message, bool* written) {
  const std::string& name = message.GetDescriptor()->full_name();
  const bool duration = name == "google.protobuf.Duration";
  if (!duration && name != "google.protobuf.Timestamp") return absl::OkStatus();
  *written = true;
  const Reflection& r = *message.GetReflection();
  const Descriptor& type = *message.GetDescriptor();
  const int64_t seconds = r.GetInt64(message, type.FindFieldByName("seconds"));
  const int32_t nanos = r.GetInt32(message, type.FindFieldByName("nanos"));
  std::string text;
  if (duration) {
    google::protobuf::Duration d;
    d.set_seconds(seconds);
    d.set_nanos(nanos);
    bool ok = seconds >= TimeUtil::kDurationMinSeconds &&
              seconds <= TimeUtil::kDurationMaxSeconds && nanos > -1'000'000'000 &&
              nanos < 1'000'000'000 && !(seconds > 0 && nanos < 0) && !(seconds < 0 && nanos > 0);
    if (!ok)
      return absl::InvalidArgumentError(absl::StrCat("Duration ", seconds, "s is out of range"));
    text = TimeUtil::ToString(d);
  } else {
    google::protobuf::Timestamp t;
    t.set_seconds(seconds);
    t.set_nanos(nanos);
    bool ok = seconds >= TimeUtil::kTimestampMinSeconds &&
              seconds <= TimeUtil::kTimestampMaxSeconds && nanos >= 0 && nanos < 1'000'000'000;
    if (!ok)
      return absl::InvalidArgumentError(absl::StrCat("Timestamp ", seconds, " is out of range"));
    text = TimeUtil::ToString(t);
  }
  absl::StrAppend(&out_, "\"", text, "\"");
  return absl::OkStatus();
}

// A string's characters, JSON-escaped: quote, backslash and C0 controls (as \n, \t, ...,
// \u00XX); other UTF-8 as it is; a byte that is not UTF-8 as U+FFFD, so one bad string (cut in
// the middle of a character, say) never makes a whole report unwritable.
void JsonWriter::String(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(absl::string_view(text).substr(i));
      if (n == 0) {
        out_.append("\\ufffd");
        ++i;
        continue;
      }
      out_.append(text, i, n);
      i += n;
      continue;
    }
    switch (c) {
      case '"':
        out_.append("\\\"");
        break;
      case '\\':
        out_.append("\\\\");
        break;
      case '\b':
        out_.append("\\b");
        break;
      case '\f':
        out_.append("\\f");
        break;
      case '\n':
        out_.append("\\n");
        break;
      case '\r':
        out_.append("\\r");
        break;
      case '\t':
        out_.append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppend(&out_, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out_.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
}

// A whole number as an integer ("2"), any other the shortest text that reads back to it
// ("0.1", "1e+300"); NaN and the infinities as protobuf's JSON mapping writes them.
void JsonWriter::Double(double value) {
  if (std::isnan(value)) {
    out_.append("\"NaN\"");
  } else if (std::isinf(value)) {
    out_.append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) {
    absl::StrAppend(&out_, static_cast<int64_t>(value));
  } else {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out_.append(buffer, end);
  }
}

}  // namespace

absl::Status AppendMessageJson(const Message& message, bool one_line, std::string* out) {
  return JsonWriter(one_line, out).Object(message, 0);
}

}  // namespace churnlab
